use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or("models".into());
    let only = std::env::args().nth(2);
    let lib = std::env::var("ORT_DYLIB_PATH")?;
    let env = ort::init_from(lib)?.build()?;
    for (file, shape, runs) in onnx_runtimes::CASES {
        if only.as_deref().is_some_and(|o| !file.starts_with(o)) {
            continue;
        }
        let t = Instant::now();
        let mut session = ort::session::Session::builder(&env)?
            .with_intra_threads(1)
            .map_err(|e| e.to_string())?
            .with_inter_threads(1)
            .map_err(|e| e.to_string())?
            .commit_from_file(format!("{dir}/{file}"))?;
        let load = t.elapsed().as_secs_f64() * 1000.0;
        let len: usize = shape.iter().product();
        let data = onnx_runtimes::input(len, 7);
        let mut times = Vec::new();
        let mut checksum = 0f64;
        for _ in 0..*runs {
            let input = ort::value::Tensor::from_array((shape.to_vec(), data.clone()))?;
            let t = Instant::now();
            let outputs = session.run(ort::inputs![input])?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let (_, v) = outputs[0].try_extract_tensor::<f32>()?;
            checksum = v.iter().take(4096).map(|x| *x as f64).sum();
        }
        println!(
            "ort {file} load_ms {load:.0} median_ms {:.2} checksum {checksum:.6} peak_rss_mib {}",
            onnx_runtimes::median(times),
            onnx_runtimes::peak_rss_kib() / 1024
        );
    }
    Ok(())
}
