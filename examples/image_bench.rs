//! Image analysis on one core: 1-megapixel JPEGs per second, side by side with decoding alone,
//! with and without the QR scan; and the peak memory one analysis takes.
//!
//! Each round measures, on this thread, for `--seconds` each:
//! - decode only (the `image` crate, the same limits): the baseline every analysis pays;
//! - the whole analysis without the QR scan: sniff, decode, PDQ, a 10,000-entry global bank and
//!   a 1,000-entry app bank, embedded text through the text engine;
//! - the same with the QR scan.
//!
//! Memory per worker: the peak heap one analysis allocates above what was allocated before it,
//! counted by the global allocator (`peak_alloc` wraps the system allocator).
//!
//! Run through `loadtest/images.sh` (builds, pins this process to one CPU).
//! Usage: image_bench [--seconds N] [--rounds N]

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;

use modgate::media::bank::{Bank, BankEntry};
use modgate::media::sniff::MediaKind;
use modgate::media::{Analysis, TextCheck, analyse, images};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// A photo-like 1152×864 JPEG (~1.0 megapixel): gradients, shapes, texture, and a caption.
fn photo() -> Vec<u8> {
    let (w, h) = (1152u32, 864u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let disc = (fx - 0.35).powi(2) + (fy - 0.55).powi(2) < 0.05;
        let block = fx > 0.6 && fx < 0.9 && fy > 0.1 && fy < 0.4;
        let n = (((x * 7919) ^ (y * 104_729)) % 29) as f32;
        let r = if disc { 220.0 } else { 255.0 * fx };
        let g = if block {
            40.0
        } else {
            127.5 + 127.5 * (7.0 * fy).sin()
        };
        let b = 127.5 + 127.5 * (5.0 * fx * fy).cos();
        image::Rgb([
            (r + n).min(255.0) as u8,
            (g + n).min(255.0) as u8,
            (b - n).max(0.0) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// `n` bank entries with pseudo-random hashes.
fn bank(n: usize, seed: u64) -> Bank {
    let mut x = seed;
    let entries = (0..n)
        .map(|_| {
            let mut hash = String::with_capacity(64);
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                hash.push_str(&format!("{x:016x}"));
            }
            BankEntry {
                hash,
                kind: MediaKind::Image,
                label: 20002,
                suggest: "risky".into(),
                note: None,
            }
        })
        .collect();
    Bank::build(entries).unwrap()
}

/// Runs `f` repeatedly for `secs`; calls per second.
fn rate(secs: u64, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        f();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The peak heap `f` adds to what is allocated before it, in MiB.
fn peak_mib(f: impl FnOnce()) -> f64 {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    f();
    (HEAP.peak_usage() - before) as f64 / (1024.0 * 1024.0)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut seconds, mut rounds) = (5u64, 3usize);
    for pair in argv.chunks(2) {
        let v: u64 = pair
            .get(1)
            .and_then(|v| v.parse().ok())
            .expect("usage: image_bench [--seconds N] [--rounds N]");
        match pair[0].as_str() {
            "--seconds" => seconds = v,
            "--rounds" => rounds = v as usize,
            _ => panic!("usage: image_bench [--seconds N] [--rounds N]"),
        }
    }
    let jpeg = photo();
    let engine = modgate::config::EngineConfig::default().build().unwrap();
    let (global, app) = (bank(10_000, 7), bank(1_000, 11));
    let limits = images::ImageLimits::default();
    let analysis = |qr: bool| Analysis {
        global: &global,
        app: Some(&app),
        pdq_distance: 31,
        limits,
        text: Some(TextCheck {
            engine: &engine,
            table: None,
            qr_links: modgate::engine::Suggest::Risky,
        }),
        qr_scan: qr,
        models: modgate::media::models::ModelSettings::default(),
    };
    let v = analyse(&jpeg, MediaKind::Image, &analysis(true), None);
    assert_eq!(v.errcode, 0, "{v:?}");
    println!(
        "# image analysis, one core: a {}-byte 1152x864 JPEG, {seconds} s per measure, {rounds} rounds\n",
        jpeg.len()
    );
    println!(
        "| round | decode only, images/s | analysis without QR scan | / decode | with QR scan | / decode |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for round in 1..=rounds {
        let decode = rate(seconds, || {
            std::hint::black_box(images::decode(&jpeg, &limits).unwrap());
        });
        let no_qr = rate(seconds, || {
            std::hint::black_box(analyse(&jpeg, MediaKind::Image, &analysis(false), None));
        });
        let qr = rate(seconds, || {
            std::hint::black_box(analyse(&jpeg, MediaKind::Image, &analysis(true), None));
        });
        println!(
            "| {round} | {decode:.1} | {no_qr:.1} | {:.0}% | {qr:.1} | {:.0}% |",
            100.0 * no_qr / decode,
            100.0 * qr / decode
        );
    }
    let decode_mib = peak_mib(|| {
        std::hint::black_box(images::decode(&jpeg, &limits).unwrap());
    });
    let no_qr_mib = peak_mib(|| {
        std::hint::black_box(analyse(&jpeg, MediaKind::Image, &analysis(false), None));
    });
    let qr_mib = peak_mib(|| {
        std::hint::black_box(analyse(&jpeg, MediaKind::Image, &analysis(true), None));
    });
    println!(
        "\nPeak heap of one analysis (memory per worker): decode only {decode_mib:.1} MiB, \
         without QR scan {no_qr_mib:.1} MiB, with QR scan {qr_mib:.1} MiB."
    );
}
