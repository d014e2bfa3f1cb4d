use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let dir = std::env::args().nth(1).unwrap_or("models".into());
    let only = std::env::args().nth(2);
    for (file, shape, runs) in onnx_runtimes::CASES {
        if only.as_deref().is_some_and(|o| !file.starts_with(o)) {
            continue;
        }
        let t = Instant::now();
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(format!("{dir}/{file}"))?
            .with_input_fact(0, f32::fact(shape.to_vec()).into())?
            .into_optimized()?
            .into_runnable()?;
        let load = t.elapsed().as_secs_f64() * 1000.0;
        let len: usize = shape.iter().product();
        let data = onnx_runtimes::input(len, 7);
        let tensor: Tensor = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), data)?.into();
        let mut times = Vec::new();
        let mut checksum = 0f64;
        for _ in 0..*runs {
            let t = Instant::now();
            let out = model.run(tvec!(tensor.clone().into()))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let v = out[0].to_plain_array_view::<f32>()?;
            checksum = v.iter().take(4096).map(|x| *x as f64).sum();
        }
        println!(
            "tract {file} load_ms {load:.0} median_ms {:.2} checksum {checksum:.6} peak_rss_mib {}",
            onnx_runtimes::median(times),
            onnx_runtimes::peak_rss_kib() / 1024
        );
    }
    Ok(())
}
