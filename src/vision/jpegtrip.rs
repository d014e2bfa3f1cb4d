//! The lossy part of a JPEG round trip, computed directly: what Pillow's
//! `save(format="JPEG")` (quality 75, 4:2:0) followed by `Image.open` does to an RGB image's
//! pixels, with libjpeg-turbo's integer arithmetic at each step. The classifier's reference
//! preprocessing makes this round trip; a general encoder and decoder differ from libjpeg in
//! their colour conversion, chroma resampling and DCTs by enough to move scores (up to 35 levels
//! on a pixel, 0.014 on a score, measured), and entropy coding changes nothing, so the steps are
//! done here and the bitstream never exists:
//!
//! 1. RGB → YCbCr (`jccolor.c`, 16-bit fixed point);
//! 2. chroma averaged over 2×2 with libjpeg's alternating bias (`h2v2_downsample`);
//! 3. per 8×8 block: the slow integer forward DCT (`jfdctint.c`), quantisation by libjpeg-turbo's
//!    reciprocal division (`jcdctmgr.c`) with the standard tables scaled to quality 75,
//!    dequantisation, the slow integer inverse DCT (`jidctint.c`);
//! 4. chroma brought back by "fancy" triangular upsampling (`h2v2_fancy_upsample`);
//! 5. YCbCr → RGB (`jdcolor.c`).
//!
//! Only images whose sides are multiples of 16 are taken (the classifier's are 224×224), so no
//! block reaches past the edge.

use image::{Rgb, RgbImage};

const CONST_BITS: i32 = 13;
const PASS1_BITS: i32 = 2;
const SCALEBITS: i32 = 16;

/// ITU-T T.81 Annex K tables, natural (row-major) order.
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// `jpeg_quality_scaling` and `jpeg_add_quant_table` (baseline: 1..255).
fn scaled(table: &[u16; 64], quality: u32) -> [i32; 64] {
    let q = quality.clamp(1, 100);
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    table.map(|v| ((u32::from(v) * scale + 50) / 100).clamp(1, 255) as i32)
}

const fn fix(x: f64) -> i32 {
    (x * (1 << CONST_BITS) as f64 + 0.5) as i32
}

// The DCTs' constants, FIX(x) in libjpeg's terms.
const F0_298: i32 = fix(0.298_631_336);
const F0_390: i32 = fix(0.390_180_644);
const F0_541: i32 = fix(0.541_196_100);
const F0_765: i32 = fix(0.765_366_865);
const F0_899: i32 = fix(0.899_976_223);
const F1_175: i32 = fix(1.175_875_602);
const F1_501: i32 = fix(1.501_321_110);
const F1_847: i32 = fix(1.847_759_065);
const F1_961: i32 = fix(1.961_570_560);
const F2_053: i32 = fix(2.053_119_869);
const F2_562: i32 = fix(2.562_915_447);
const F3_072: i32 = fix(3.072_711_026);

fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

/// `jpeg_fdct_islow`: in place, output scaled up by 8.
fn fdct(d: &mut [i32; 64]) {
    for pass in 0..2 {
        for i in 0..8 {
            let at = |k: usize| if pass == 0 { i * 8 + k } else { k * 8 + i };
            let v: [i32; 8] = std::array::from_fn(|k| d[at(k)]);
            let (tmp0, tmp7) = (v[0] + v[7], v[0] - v[7]);
            let (tmp1, tmp6) = (v[1] + v[6], v[1] - v[6]);
            let (tmp2, tmp5) = (v[2] + v[5], v[2] - v[5]);
            let (tmp3, tmp4) = (v[3] + v[4], v[3] - v[4]);
            let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
            let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
            let (even_shift, odd_shift) = if pass == 0 {
                (None, CONST_BITS - PASS1_BITS)
            } else {
                (Some(PASS1_BITS), CONST_BITS + PASS1_BITS)
            };
            let even = |x: i32| match even_shift {
                None => x << PASS1_BITS,
                Some(n) => descale(x, n),
            };
            d[at(0)] = even(tmp10 + tmp11);
            d[at(4)] = even(tmp10 - tmp11);
            let z1 = (tmp12 + tmp13) * F0_541;
            d[at(2)] = descale(z1 + tmp13 * F0_765, odd_shift);
            d[at(6)] = descale(z1 + tmp12 * -F1_847, odd_shift);
            let (z1, z2, z3, z4) = (tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7);
            let z5 = (z3 + z4) * F1_175;
            let (t4, t5) = (tmp4 * F0_298, tmp5 * F2_053);
            let (t6, t7) = (tmp6 * F3_072, tmp7 * F1_501);
            let z1 = z1 * -F0_899;
            let z2 = z2 * -F2_562;
            let z3 = z3 * -F1_961 + z5;
            let z4 = z4 * -F0_390 + z5;
            d[at(7)] = descale(t4 + z1 + z3, odd_shift);
            d[at(5)] = descale(t5 + z2 + z4, odd_shift);
            d[at(3)] = descale(t6 + z2 + z3, odd_shift);
            d[at(1)] = descale(t7 + z1 + z4, odd_shift);
        }
    }
}

/// libjpeg-turbo's `compute_reciprocal` and `quantize` for one coefficient (16-bit DCT
/// elements): the quotient rounded to nearest, as a multiply and shift.
fn quantize(x: i32, divisor: i32) -> i32 {
    let d = divisor as u32;
    if d == 1 {
        return x;
    }
    let b = 31 - d.leading_zeros();
    let mut r = 16 + b;
    let mut fq = (1u64 << r) / u64::from(d);
    let fr = (1u64 << r) % u64::from(d);
    let mut c = u64::from(d / 2);
    if fr == 0 {
        fq >>= 1;
        r -= 1;
    } else if fr <= u64::from(d / 2) {
        c += 1;
    } else {
        fq += 1;
    }
    let shift = r - 16;
    let t = u64::from(x.unsigned_abs());
    let q = (((t + c) * fq) >> (shift + 16)) as i32;
    if x < 0 { -q } else { q }
}

/// `jpeg_idct_islow`: dequantised coefficients to samples (level-shifted back, clamped).
fn idct(c: &[i32; 64]) -> [u8; 64] {
    let mut ws = [0i32; 64];
    let mut out = [0u8; 64];
    for pass in 0..2 {
        for i in 0..8 {
            let v: [i32; 8] = std::array::from_fn(|k| {
                if pass == 0 {
                    c[k * 8 + i]
                } else {
                    ws[i * 8 + k]
                }
            });
            let z1 = (v[2] + v[6]) * F0_541;
            let tmp2 = z1 + v[6] * -F1_847;
            let tmp3 = z1 + v[2] * F0_765;
            let tmp0 = (v[0] + v[4]) << CONST_BITS;
            let tmp1 = (v[0] - v[4]) << CONST_BITS;
            let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
            let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
            let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
            let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
            let z5 = (z3 + z4) * F1_175;
            let t0 = t0 * F0_298;
            let t1 = t1 * F2_053;
            let t2 = t2 * F3_072;
            let t3 = t3 * F1_501;
            let z1 = z1 * -F0_899;
            let z2 = z2 * -F2_562;
            let z3 = z3 * -F1_961 + z5;
            let z4 = z4 * -F0_390 + z5;
            let (t0, t1, t2, t3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
            let r = [
                tmp10 + t3,
                tmp11 + t2,
                tmp12 + t1,
                tmp13 + t0,
                tmp13 - t0,
                tmp12 - t1,
                tmp11 - t2,
                tmp10 - t3,
            ];
            for (k, value) in r.into_iter().enumerate() {
                if pass == 0 {
                    ws[k * 8 + i] = descale(value, CONST_BITS - PASS1_BITS);
                } else {
                    let s = descale(value, CONST_BITS + PASS1_BITS + 3) + 128;
                    out[i * 8 + k] = s.clamp(0, 255) as u8;
                }
            }
        }
    }
    out
}

/// One plane through DCT, quantisation and back.
fn round_trip_plane(plane: &mut [u8], width: usize, height: usize, table: &[i32; 64]) {
    for by in (0..height).step_by(8) {
        for bx in (0..width).step_by(8) {
            let mut block = [0i32; 64];
            for y in 0..8 {
                for x in 0..8 {
                    block[y * 8 + x] = i32::from(plane[(by + y) * width + bx + x]) - 128;
                }
            }
            fdct(&mut block);
            let coefs: [i32; 64] =
                std::array::from_fn(|k| quantize(block[k], table[k] << 3) * table[k]);
            let samples = idct(&coefs);
            for y in 0..8 {
                plane[(by + y) * width + bx..(by + y) * width + bx + 8]
                    .copy_from_slice(&samples[y * 8..y * 8 + 8]);
            }
        }
    }
}

/// `h2v2_fancy_upsample`, with the edge rows repeated as libjpeg's context rows are.
fn upsample(plane: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; w * 2 * h * 2];
    for row in 0..h {
        for v in 0..2 {
            let near = &plane[row * w..(row + 1) * w];
            let other_row = if v == 0 {
                row.saturating_sub(1)
            } else {
                (row + 1).min(h - 1)
            };
            let far = &plane[other_row * w..(other_row + 1) * w];
            let sums: Vec<i32> = (0..w)
                .map(|c| i32::from(near[c]) * 3 + i32::from(far[c]))
                .collect();
            let line = &mut out[(row * 2 + v) * w * 2..(row * 2 + v + 1) * w * 2];
            for c in 0..w {
                let this = sums[c];
                let left = if c == 0 { None } else { Some(sums[c - 1]) };
                let right = if c + 1 == w { None } else { Some(sums[c + 1]) };
                line[2 * c] = match left {
                    None => (this * 4 + 8) >> 4,
                    Some(l) => (this * 3 + l + 8) >> 4,
                } as u8;
                line[2 * c + 1] = match right {
                    None => (this * 4 + 7) >> 4,
                    Some(r) => (this * 3 + r + 7) >> 4,
                } as u8;
            }
        }
    }
    out
}

/// The pixels Pillow gives back after saving `img` as a JPEG of `quality` (4:2:0) and opening it.
/// `None` when a side is not a multiple of 16.
pub fn round_trip(img: &RgbImage, quality: u32) -> Option<RgbImage> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 || w % 16 != 0 || h % 16 != 0 {
        return None;
    }
    let fixed = |x: f64| (x * f64::from(1 << SCALEBITS) + 0.5) as i32;
    let half = 1 << (SCALEBITS - 1);
    let offset = 128 << SCALEBITS;
    let mut y_plane = vec![0u8; w * h];
    let mut cb_full = vec![0u8; w * h];
    let mut cr_full = vec![0u8; w * h];
    for (i, p) in img.pixels().enumerate() {
        let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        y_plane[i] =
            ((fixed(0.299) * r + fixed(0.587) * g + fixed(0.114) * b + half) >> SCALEBITS) as u8;
        cb_full[i] = ((-fixed(0.168_74) * r - fixed(0.331_26) * g + fixed(0.5) * b + offset + half
            - 1)
            >> SCALEBITS) as u8;
        cr_full[i] = ((fixed(0.5) * r - fixed(0.418_69) * g - fixed(0.081_31) * b + offset + half
            - 1)
            >> SCALEBITS) as u8;
    }
    let (cw, ch) = (w / 2, h / 2);
    let down = |full: &[u8]| -> Vec<u8> {
        let mut out = vec![0u8; cw * ch];
        for y in 0..ch {
            for x in 0..cw {
                let s = u32::from(full[2 * y * w + 2 * x])
                    + u32::from(full[2 * y * w + 2 * x + 1])
                    + u32::from(full[(2 * y + 1) * w + 2 * x])
                    + u32::from(full[(2 * y + 1) * w + 2 * x + 1]);
                let bias = if x % 2 == 0 { 1 } else { 2 };
                out[y * cw + x] = ((s + bias) >> 2) as u8;
            }
        }
        out
    };
    let (mut cb, mut cr) = (down(&cb_full), down(&cr_full));
    round_trip_plane(&mut y_plane, w, h, &scaled(&LUMA, quality));
    let chroma = scaled(&CHROMA, quality);
    round_trip_plane(&mut cb, cw, ch, &chroma);
    round_trip_plane(&mut cr, cw, ch, &chroma);
    let (cb, cr) = (upsample(&cb, cw, ch), upsample(&cr, cw, ch));
    let shift = |x: i32| x >> SCALEBITS;
    Some(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let yy = i32::from(y_plane[i]);
        let (b, r) = (i32::from(cb[i]) - 128, i32::from(cr[i]) - 128);
        let red = yy + shift(fixed(1.402) * r + half);
        let green = yy + shift(-fixed(0.344_14) * b + half - fixed(0.714_14) * r);
        let blue = yy + shift(fixed(1.772) * b + half);
        Rgb([red, green, blue].map(|v| v.clamp(0, 255) as u8))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quotients by reciprocal are the rounded quotients.
    #[test]
    fn reciprocal_quantisation_rounds_to_nearest() {
        for d in [8i32, 16, 88, 96, 440, 792, 2040] {
            for x in -20_000i32..20_000 {
                let want = (x.abs() + d / 2) / d * x.signum();
                assert_eq!(quantize(x, d), want, "{x} / {d}");
            }
        }
    }

    /// A flat colour survives the round trip as libjpeg gives it back.
    #[test]
    fn flat_colours_come_back() {
        let img = RgbImage::from_pixel(32, 16, Rgb([90, 140, 200]));
        let back = round_trip(&img, 75).unwrap();
        let p = back.get_pixel(7, 5).0;
        assert!(back.pixels().all(|q| q.0 == p));
        assert!(
            p.iter()
                .zip([90, 140, 200])
                .all(|(a, b)| (i32::from(*a) - b).abs() <= 2),
            "{p:?}"
        );
        assert!(round_trip(&RgbImage::new(20, 16), 75).is_none());
    }
}
