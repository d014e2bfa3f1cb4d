//! The media models' speed on one core (BENCHMARKS.md, "Media models"): images per second for
//! one image, the classifier alone (decode, preprocess, score) and the full analysis a media
//! job runs (decode, PDQ and the banks, QR codes, metadata, the classifier, OCR), and the
//! process's peak memory. `loadtest/models.sh` runs it beside the packages' own Python
//! pipelines (`loadtest/model_reference_bench.py`), each pinned to the same core, in
//! alternating rounds.
//!
//! Usage: model_bench --image FILE [--models DIR] [--mode nsfw|full] [--runs N]

use std::time::Instant;

use modgate::media::bank::Bank;
use modgate::media::sniff::MediaKind;
use modgate::media::{Analysis, analyse};
use modgate::vision::{ModelFiles, Models, nsfw};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut image, mut dir, mut mode, mut runs) =
        (None, "models".to_string(), "full".to_string(), 20usize);
    while let Some(flag) = args.next() {
        let value = args.next().expect("a value after each flag");
        match flag.as_str() {
            "--image" => image = Some(value),
            "--models" => dir = value,
            "--mode" => mode = value,
            "--runs" => runs = value.parse().expect("--runs N"),
            _ => panic!(
                "usage: model_bench --image FILE [--models DIR] [--mode nsfw|full] [--runs N]"
            ),
        }
    }
    let bytes = std::fs::read(image.expect("--image FILE")).expect("the image is readable");
    let files = ModelFiles::find(std::path::Path::new(&dir)).expect("models");
    let mut models = Models::load(&files).expect("the models load");
    let engine = modgate::config::EngineConfig::default()
        .build()
        .expect("the lexicon builds");
    let empty = Bank::default();
    let analysis = Analysis::standalone(&empty, &engine);
    let far = Instant::now() + std::time::Duration::from_secs(3600);
    if mode == "steps" {
        // Where the classifier's time goes: decoding, preprocessing, inference.
        let (mut decode, mut pre, mut infer) = (0f64, 0f64, 0f64);
        for _ in 0..runs {
            let t = Instant::now();
            let rgb = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
            let t1 = Instant::now();
            let input = nsfw::preprocess(&rgb).expect("preprocesses");
            let t2 = Instant::now();
            std::hint::black_box(
                models
                    .nsfw
                    .run(vec![1, 224, 224, 3], input, far)
                    .expect("runs"),
            );
            let t3 = Instant::now();
            decode += (t1 - t).as_secs_f64();
            pre += (t2 - t1).as_secs_f64();
            infer += (t3 - t2).as_secs_f64();
        }
        let ms = |v: f64| v * 1000.0 / runs as f64;
        let rgb = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
        let (mut resize, mut trip) = (0f64, 0f64);
        for _ in 0..runs {
            let t = Instant::now();
            let small = modgate::vision::imgops::resize_pil_bilinear(&rgb, 256, 256);
            let t1 = Instant::now();
            let crop = image::imageops::crop_imm(&small, 16, 16, 224, 224).to_image();
            std::hint::black_box(modgate::vision::jpegtrip::round_trip(&crop, 75));
            let t2 = Instant::now();
            resize += (t1 - t).as_secs_f64();
            trip += (t2 - t1).as_secs_f64();
        }
        println!(
            "  of which: resize {:.1} ms, jpeg round trip {:.1} ms",
            ms(resize),
            ms(trip)
        );
        println!(
            "modgate classifier steps: decode {:.1} ms, preprocess {:.1} ms, inference {:.1} ms",
            ms(decode),
            ms(pre),
            ms(infer)
        );
        return;
    }
    let mut once = || match mode.as_str() {
        "nsfw" => {
            let rgb = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
            let score = nsfw::score(&mut models.nsfw, &rgb, far).expect("scores");
            format!("{score:.4}")
        }
        _ => {
            let v = analyse(&bytes, MediaKind::Image, &analysis, Some(&mut models));
            let steps: Vec<String> = v
                .strategies
                .iter()
                .map(|s| format!("{} {:.1} ms", s.strategy, s.ms))
                .collect();
            format!(
                "{} {:?} ({})",
                v.result.suggest.as_str(),
                v.media.map(|m| m.text).unwrap_or_default(),
                steps.join(", ")
            )
        }
    };
    // One run to warm up (first-run allocations in ONNX Runtime), then the timed runs.
    let answer = once();
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(once());
    }
    let secs = started.elapsed().as_secs_f64();
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "modgate mode={mode} runs={runs} images_per_sec={:.3} ms_per_image={:.1} peak_rss_mib={} answer={answer}",
        runs as f64 / secs,
        secs * 1000.0 / runs as f64,
        peak_kib / 1024
    );
}
