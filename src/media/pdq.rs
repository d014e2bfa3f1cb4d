//! PDQ, Meta's open 256-bit perceptual image hash (the format hash-sharing programmes exchange),
//! written from the published algorithm:
//!
//! 1. luminance `0.299 R + 0.587 G + 0.114 B` as `f32`;
//! 2. a "Jarosz" tent filter (two passes of a box filter along rows then columns, each window
//!    `ceil(dimension / 128)`), then decimation to 64×64 at the centres of 64 equal bands;
//! 3. the 16×16 low-frequency corner (without the DC row and column) of the 2-D DCT-II;
//! 4. one bit per coefficient: set when above the median (Torben's algorithm);
//! 5. hex as the platform writes it: the 256-bit number whose bit `k` is coefficient `k`, most
//!    significant digit first.
//!
//! The quality figure (0–100) counts significant gradients of the 64×64 image; hashes below
//! [`MIN_QUALITY`] come from near-flat images and match too easily.
//!
//! Images larger than [`HASH_MAX_SIDE`] on a side are first reduced with a box filter, which
//! bounds memory per worker; smaller images hash bit for bit as the reference does (checked
//! against an independent implementation in the tests). The column pass of the tent filter runs
//! a row at a time over all columns, with each column's arithmetic in the reference's order.

use std::fmt;

use image::DynamicImage;

/// Below this the hash says little: a match on it is not trusted.
pub const MIN_QUALITY: u8 = 50;
/// Larger sides are reduced first (two `f32` buffers of the full image otherwise: 32 MiB at
/// this size).
pub const HASH_MAX_SIDE: u32 = 2048;
const MIN_SIDE: u32 = 5;
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// A 256-bit PDQ hash: big-endian bytes of the number whose bit `k` is coefficient `k`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdqHash(pub [u8; 32]);

impl PdqHash {
    /// Bits that differ.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// From 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<PdqHash> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(PdqHash(out))
    }

    fn set_bit(&mut self, k: usize) {
        self.0[31 - k / 8] |= 1 << (k % 8);
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The hash and quality of a decoded image; `None` for images under 5 pixels on a side.
pub fn hash_image(image: &DynamicImage) -> Option<(PdqHash, u8)> {
    let (coefficients, quality) = coefficients_of(image)?;
    Some((bits(&coefficients), quality))
}

/// The hashes of the image's eight rotations and mirror images (the original first, then the
/// reference's order: three rotations, two axis flips, two diagonal flips), computed from one
/// DCT by the reference's sign and transpose identities, and the quality. A rotated or mirrored
/// copy lands within a few bits of one of them (its pixels are sampled on a transposed grid).
pub fn hash_image_dihedral(image: &DynamicImage) -> Option<([PdqHash; 8], u8)> {
    let (a, quality) = coefficients_of(image)?;
    let at = |i: usize, j: usize| a[i * 16 + j];
    let mut out = [PdqHash([0; 32]); 8];
    // For each variant: the value at (row, column) of the transformed matrix.
    let variants: [&dyn Fn(usize, usize) -> f32; 8] = [
        &|i, j| at(i, j),
        &|i, j| if i % 2 == 1 { at(j, i) } else { -at(j, i) },
        &|i, j| {
            if (i + j) % 2 == 1 {
                -at(i, j)
            } else {
                at(i, j)
            }
        },
        &|i, j| if j % 2 == 1 { at(j, i) } else { -at(j, i) },
        &|i, j| if i % 2 == 1 { at(i, j) } else { -at(i, j) },
        &|i, j| if j % 2 == 1 { at(i, j) } else { -at(i, j) },
        &|i, j| at(j, i),
        &|i, j| {
            if (i + j) % 2 == 1 {
                -at(j, i)
            } else {
                at(j, i)
            }
        },
    ];
    for (hash, variant) in out.iter_mut().zip(variants) {
        let mut m = [0f32; 256];
        for (k, v) in m.iter_mut().enumerate() {
            *v = variant(k / 16, k % 16);
        }
        *hash = bits(&m);
    }
    Some((out, quality))
}

/// The 16×16 DCT coefficients and the quality of a decoded image.
fn coefficients_of(image: &DynamicImage) -> Option<([f32; 256], u8)> {
    let (w, h) = (image.width(), image.height());
    if w < MIN_SIDE || h < MIN_SIDE {
        return None;
    }
    let reduced;
    let image = if w > HASH_MAX_SIDE || h > HASH_MAX_SIDE {
        reduced = image.thumbnail_exact(w.min(HASH_MAX_SIDE), h.min(HASH_MAX_SIDE));
        &reduced
    } else {
        image
    };
    let (cols, rows) = (image.width() as usize, image.height() as usize);
    let mut luma = Vec::with_capacity(rows * cols);
    match image {
        DynamicImage::ImageLuma8(g) => luma.extend(g.as_raw().iter().map(|&v| f32::from(v))),
        DynamicImage::ImageRgb8(rgb) => luma.extend(rgb.pixels().map(|p| luma_of(p.0))),
        other => luma.extend(other.to_rgb8().pixels().map(|p| luma_of(p.0))),
    }
    Some(coefficients_luma(&mut luma, rows, cols))
}

fn luma_of([r, g, b]: [u8; 3]) -> f32 {
    LUMA[0] * f32::from(r) + LUMA[1] * f32::from(g) + LUMA[2] * f32::from(b)
}

/// The hash and quality of a row-major luminance buffer (overwritten).
pub fn hash_luma(luma: &mut [f32], rows: usize, cols: usize) -> (PdqHash, u8) {
    let (coefficients, quality) = coefficients_luma(luma, rows, cols);
    (bits(&coefficients), quality)
}

/// One bit per coefficient: set when above the median.
fn bits(coefficients: &[f32; 256]) -> PdqHash {
    let median = torben_median(coefficients);
    let mut hash = PdqHash([0; 32]);
    for (k, c) in coefficients.iter().enumerate() {
        if *c > median {
            hash.set_bit(k);
        }
    }
    hash
}

fn coefficients_luma(luma: &mut [f32], rows: usize, cols: usize) -> ([f32; 256], u8) {
    let mut scratch = vec![0f32; luma.len()];
    let along_rows = window(cols);
    let along_cols = window(rows);
    for _ in 0..2 {
        for r in 0..rows {
            box_filter(
                &luma[r * cols..],
                &mut scratch[r * cols..],
                cols,
                1,
                along_rows,
            );
        }
        box_columns(&scratch, luma, rows, cols, along_cols);
    }
    let mut small = [[0f32; 64]; 64];
    for (i, row) in small.iter_mut().enumerate() {
        let src_row = ((2 * i + 1) * rows) / 128;
        for (j, v) in row.iter_mut().enumerate() {
            let src_col = ((2 * j + 1) * cols) / 128;
            *v = luma[src_row * cols + src_col];
        }
    }
    (dct_16(&small), quality(&small))
}

/// The box window for reducing `dimension` to 64 in two passes: `ceil(dimension / 128)`.
fn window(dimension: usize) -> usize {
    dimension.div_ceil(128)
}

/// A centred moving average of width `window` over `len` values `stride` apart, the window
/// shrinking at the ends (the reference's four phases).
fn box_filter(input: &[f32], output: &mut [f32], len: usize, stride: usize, window: usize) {
    let half = (window + 2) / 2;
    let at = |i: usize| i * stride;
    let mut sum = 0f32;
    let mut count = 0f32;
    // Phase 1: fill the leading half window.
    let mut right = 0;
    for _ in 0..half - 1 {
        sum += input[at(right)];
        count += 1.0;
        right += 1;
    }
    // Phase 2: write while the window grows to full size.
    let mut out = 0;
    for _ in 0..window - half + 1 {
        sum += input[at(right)];
        count += 1.0;
        output[at(out)] = sum / count;
        right += 1;
        out += 1;
    }
    // Phase 3: slide the full window.
    let mut left = 0;
    for _ in 0..len - window {
        sum += input[at(right)];
        sum -= input[at(left)];
        output[at(out)] = sum / count;
        left += 1;
        right += 1;
        out += 1;
    }
    // Phase 4: the window shrinks off the end.
    for _ in 0..half - 1 {
        sum -= input[at(left)];
        count -= 1.0;
        output[at(out)] = sum / count;
        left += 1;
        out += 1;
    }
}

/// [`box_filter`] down every column at once, a row at a time (cache-friendly): each column sees
/// the same additions, subtractions and divisions in the same order, so the result is the same
/// to the bit.
fn box_columns(input: &[f32], output: &mut [f32], rows: usize, cols: usize, window: usize) {
    let half = (window + 2) / 2;
    let row = |r: usize| &input[r * cols..(r + 1) * cols];
    let add = |sum: &mut [f32], r: &[f32]| sum.iter_mut().zip(r).for_each(|(s, v)| *s += v);
    let sub = |sum: &mut [f32], r: &[f32]| sum.iter_mut().zip(r).for_each(|(s, v)| *s -= v);
    let mut sum = vec![0f32; cols];
    let mut count = 0f32;
    let (mut left, mut right, mut out) = (0, 0, 0);
    let mut write = |out: usize, sum: &[f32], count: f32| {
        for (o, s) in output[out * cols..(out + 1) * cols].iter_mut().zip(sum) {
            *o = s / count;
        }
    };
    for _ in 0..half - 1 {
        add(&mut sum, row(right));
        count += 1.0;
        right += 1;
    }
    for _ in 0..window - half + 1 {
        add(&mut sum, row(right));
        count += 1.0;
        write(out, &sum, count);
        right += 1;
        out += 1;
    }
    for _ in 0..rows - window {
        add(&mut sum, row(right));
        sub(&mut sum, row(left));
        write(out, &sum, count);
        left += 1;
        right += 1;
        out += 1;
    }
    for _ in 0..half - 1 {
        sub(&mut sum, row(left));
        count -= 1.0;
        write(out, &sum, count);
        left += 1;
        out += 1;
    }
}

/// Significant gradients of the 64×64 image, scaled to 0–100.
#[allow(clippy::needless_range_loop)] // matrix arithmetic reads clearest with indices
fn quality(small: &[[f32; 64]; 64]) -> u8 {
    let mut sum: i64 = 0;
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i64;
    for i in 0..63 {
        for j in 0..64 {
            sum += step(small[i][j], small[i + 1][j]).abs();
        }
    }
    for row in small {
        for j in 0..63 {
            sum += step(row[j], row[j + 1]).abs();
        }
    }
    (sum / 90).min(100) as u8
}

/// The 16×64 DCT-II matrix rows 1..=16 (the DC row left out), scaled by `sqrt(2/64)`.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: std::sync::OnceLock<[[f32; 64]; 16]> = std::sync::OnceLock::new();
    MATRIX.get_or_init(|| {
        // As the reference: an f32 scale, the product taken in f64, stored as f32.
        let scale = f64::from((2.0f64 / 64.0).sqrt() as f32);
        let mut m = [[0f32; 64]; 16];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                *v = (scale * angle.cos()) as f32;
            }
        }
        m
    })
}

/// `D · A · Dᵀ`: the 16×16 coefficients, row-major (sums in the reference's order).
#[allow(clippy::needless_range_loop)] // matrix arithmetic reads clearest with indices
fn dct_16(a: &[[f32; 64]; 64]) -> [f32; 256] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for i in 0..16 {
        for j in 0..64 {
            let mut sum = 0f32;
            for k in 0..64 {
                sum += d[i][k] * a[k][j];
            }
            t[i][j] = sum;
        }
    }
    let mut b = [0f32; 256];
    for i in 0..16 {
        for j in 0..16 {
            let mut sum = 0f32;
            for k in 0..64 {
                sum += t[i][k] * d[j][k];
            }
            b[i * 16 + j] = sum;
        }
    }
    b
}

/// Torben Mogensen's median (the reference's choice: its tie-breaking decides bits).
fn torben_median(m: &[f32; 256]) -> f32 {
    let half = m.len().div_ceil(2);
    let mut min = m.iter().copied().fold(f32::INFINITY, f32::min);
    let mut max = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0, 0, 0);
        let (mut max_below, mut min_above) = (min, max);
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_below {
                    max_below = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_above {
                    min_above = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_below
            } else if less + equal >= half {
                guess
            } else {
                min_above
            };
        } else if less > greater {
            max = max_below;
        } else {
            min = min_above;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};

    /// A deterministic photo-like test image: smooth gradients, a few shapes, some texture.
    pub(crate) fn scene(w: u32, h: u32, seed: u32) -> RgbImage {
        let s = seed as f32;
        ImageBuffer::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let mut r = 255.0 * fx;
            let mut g = 255.0 * (0.5 + 0.5 * (6.0 * fy + s).sin());
            let mut b = 255.0 * (0.5 + 0.5 * (4.0 * fx * fy + 0.7 * s).cos());
            let (cx, cy) = (0.3 + 0.1 * (s % 3.0), 0.6 - 0.05 * (s % 4.0));
            if (fx - cx).powi(2) + (fy - cy).powi(2) < 0.03 {
                r = 240.0 - r * 0.5;
                g *= 0.2;
            }
            if fx > 0.6 && fx < 0.85 && fy > 0.15 && fy < 0.45 {
                b = 255.0 - b;
                r *= 0.3;
            }
            let n = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(31)) % 17)
                as f32;
            Rgb([
                (r + n).clamp(0.0, 255.0) as u8,
                (g + n).clamp(0.0, 255.0) as u8,
                (b + n).clamp(0.0, 255.0) as u8,
            ])
        })
    }

    fn png(img: &RgbImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(img)
            .unwrap();
        out
    }

    fn ours(bytes: &[u8]) -> PdqHash {
        hash_image(&image::load_from_memory(bytes).unwrap())
            .unwrap()
            .0
    }

    /// Bit for bit what an independent implementation (the `pdqhash` crate, itself checked
    /// against Meta's reference vectors) computes, on images of several shapes and contents.
    #[test]
    fn matches_an_independent_implementation_bit_for_bit() {
        for (w, h, seed) in [
            (64, 64, 1),
            (200, 120, 2),
            (333, 517, 3),
            (640, 480, 4),
            (97, 1000, 5),
            (1024, 768, 6),
            (1500, 900, 7),
        ] {
            let bytes = png(&scene(w, h, seed));
            let theirs =
                pdqhash::generate_pdq_full_size(&pdqhash::image::load_from_memory(&bytes).unwrap())
                    .0;
            assert_eq!(ours(&bytes), PdqHash(theirs), "{w}x{h} seed {seed}");
        }
    }

    #[test]
    fn copies_match_and_other_images_do_not() {
        let original = scene(800, 600, 11);
        let h = ours(&png(&original));
        // Re-encoded as JPEG at quality 70.
        assert!(ours(&jpeg(&original, 70)).distance(&h) <= 16);
        // Resized to 37% and re-encoded.
        let small =
            image::imageops::resize(&original, 300, 225, image::imageops::FilterType::Triangle);
        assert!(ours(&jpeg(&small, 85)).distance(&h) <= 20);
        // Lightly cropped: 2% off each side. (PDQ is not built for heavy crops: on this image
        // 3% per side is already ~46 bits away, past the customary threshold of 31.)
        let cropped = image::imageops::crop_imm(&original, 16, 12, 768, 576).to_image();
        let d = ours(&png(&cropped)).distance(&h);
        assert!(d <= 31, "crop distance {d}");
        // Unrelated images are far.
        for seed in [12, 13, 14] {
            let other = ours(&png(&scene(800, 600, seed * 7)));
            assert!(
                other.distance(&h) > 60,
                "seed {seed}: {}",
                other.distance(&h)
            );
        }
    }

    /// A rotated or mirrored copy matches one of the original's eight dihedral hashes, and
    /// the variants agree with hashing the transformed image directly.
    #[test]
    fn rotated_and_mirrored_copies_match_a_dihedral_hash() {
        let original = image::DynamicImage::ImageRgb8(scene(320, 240, 4));
        let (variants, _) = hash_image_dihedral(&original).unwrap();
        assert_eq!(variants[0], hash_image(&original).unwrap().0);
        for (name, turned) in [
            ("rot90", original.rotate90()),
            ("rot180", original.rotate180()),
            ("rot270", original.rotate270()),
            ("fliph", original.fliph()),
            ("flipv", original.flipv()),
        ] {
            let h = hash_image(&turned).unwrap().0;
            let distances: Vec<u32> = variants.iter().map(|v| v.distance(&h)).collect();
            let best = *distances.iter().min().unwrap();
            // Within the customary match distance: a rotated image is filtered and sampled on a
            // transposed grid, so its hash is close to, not equal to, the variant.
            assert!(best <= 31, "{name}: distances {distances:?}");
            assert!(
                variants[0].distance(&h) > 40,
                "{name} is far from the original's hash"
            );
        }
    }

    #[test]
    fn hex_round_trips_and_tiny_images_have_no_hash() {
        let h = ours(&png(&scene(100, 100, 9)));
        assert_eq!(PdqHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(PdqHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(PdqHash::from_hex("abc"), None);
        assert_eq!(PdqHash::from_hex(&"zz".repeat(32)), None);
        assert_eq!(h.distance(&h), 0);
        let tiny = DynamicImage::ImageRgb8(scene(4, 40, 1));
        assert!(hash_image(&tiny).is_none());
        let flat = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(200, 200, Rgb([90, 90, 90])));
        assert_eq!(
            hash_image(&flat).unwrap().1,
            0,
            "a flat image has no quality"
        );
        assert!(
            hash_image(&DynamicImage::ImageRgb8(scene(300, 300, 2)))
                .unwrap()
                .1
                >= MIN_QUALITY
        );
    }
}
