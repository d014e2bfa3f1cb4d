//! Shared by both runners: deterministic inputs and measurements.
pub fn input(len: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// (model file, input shape, runs)
pub const CASES: &[(&str, &[usize], usize)] = &[
    ("open-nsfw.onnx", &[1, 224, 224, 3], 20),
    ("ppocr-det.onnx", &[1, 3, 640, 960], 8),
    ("ppocr-cls.onnx", &[1, 3, 48, 192], 20),
    ("ppocr-rec.onnx", &[1, 3, 48, 320], 20),
];
