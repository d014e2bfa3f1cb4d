//! The pixel operations the models' own pipelines apply before and between inferences, with the
//! arithmetic of the libraries those pipelines call, so that the same image reaches the same
//! tensor here as there:
//!
//! - [`resize_pil_bilinear`]: Pillow's `Image.resize(.., BILINEAR)`, the classifier's resize (a
//!   triangle filter widened by the scale when shrinking, 22-bit fixed-point coefficients, each
//!   pass rounded to 8 bits);
//! - [`resize_linear`]: OpenCV's `cv2.resize` with `INTER_LINEAR`, the OCR resizes (two taps at
//!   half-pixel centres, 11-bit coefficients, the vertical pass as OpenCV's vector code does it);
//! - [`warp_perspective_cubic`]: OpenCV's `warpPerspective` with `INTER_CUBIC` and replicated
//!   borders, which straightens each detected text region (positions to 1/32 pixel, 15-bit
//!   bicubic weights with a = -0.75);
//! - [`perspective_transform`]: the homography taking four points to four others.
//!
//! Images are [`image::RgbImage`]; each model decides its channel order when it builds its tensor.

use image::{Rgb, RgbImage};

/// Pillow's fixed-point precision for 8-bit resampling.
const PIL_PRECISION_BITS: u32 = 32 - 8 - 2;

/// One pass's coefficients: for each output index, the first input index and its weights.
struct Taps {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    width: usize,
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for the bilinear filter.
fn pil_taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    let width = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * width];
    let mut pre = vec![0f64; width];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut total = 0.0;
        for (x, p) in pre.iter_mut().enumerate().take(xmax) {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = if t.abs() < 1.0 { 1.0 - t.abs() } else { 0.0 };
            *p = w;
            total += w;
        }
        for (x, p) in pre.iter().enumerate().take(xmax) {
            let k = if total != 0.0 { p / total } else { 0.0 };
            let fixed = k * f64::from(1u32 << PIL_PRECISION_BITS);
            weights[xx * width + x] = if k < 0.0 { fixed - 0.5 } else { fixed + 0.5 } as i32;
        }
        bounds.push((xmin, xmax));
    }
    Taps {
        bounds,
        weights,
        width,
    }
}

fn clip8(v: i32) -> u8 {
    (v >> PIL_PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's bilinear resize of an RGB image (horizontal pass, then vertical, each to 8 bits, in
/// 32-bit sums as Pillow keeps them).
pub fn resize_pil_bilinear(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (w, h) = (w as usize, h as usize);
    let half: i32 = 1 << (PIL_PRECISION_BITS - 1);
    let horizontal = if sw != w {
        let taps = pil_taps(sw, w);
        let mut out = vec![0u8; w * sh * 3];
        for (row, line) in src
            .as_raw()
            .chunks_exact(sw * 3)
            .zip(out.chunks_exact_mut(w * 3))
        {
            for (xx, px) in line.chunks_exact_mut(3).enumerate() {
                let (xmin, n) = taps.bounds[xx];
                let k = &taps.weights[xx * taps.width..xx * taps.width + n];
                let (mut r, mut g, mut b) = (half, half, half);
                for (p, &kv) in row[xmin * 3..(xmin + n) * 3].chunks_exact(3).zip(k) {
                    r += i32::from(p[0]) * kv;
                    g += i32::from(p[1]) * kv;
                    b += i32::from(p[2]) * kv;
                }
                px.copy_from_slice(&[clip8(r), clip8(g), clip8(b)]);
            }
        }
        out
    } else {
        src.as_raw().clone()
    };
    let vertical = if sh != h {
        let taps = pil_taps(sh, h);
        let stride = w * 3;
        let mut out = vec![0u8; w * h * 3];
        let mut acc = vec![0i32; stride];
        for (yy, line) in out.chunks_exact_mut(stride).enumerate() {
            let (ymin, n) = taps.bounds[yy];
            let k = &taps.weights[yy * taps.width..yy * taps.width + n];
            acc.fill(half);
            for (i, &kv) in k.iter().enumerate() {
                let src_row = &horizontal[(ymin + i) * stride..(ymin + i + 1) * stride];
                for (a, &v) in acc.iter_mut().zip(src_row) {
                    *a += i32::from(v) * kv;
                }
            }
            for (o, &a) in line.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        out
    } else {
        horizontal
    };
    RgbImage::from_raw(w as u32, h as u32, vertical).unwrap_or_default()
}

/// OpenCV's fixed-point scale for resize coefficients.
const RESIZE_COEF_SCALE: f32 = 2048.0;

/// For each output index, OpenCV's source index and its two 11-bit weights.
fn linear_taps(in_size: usize, out_size: usize) -> Vec<(usize, i32, i32)> {
    let scale = in_size as f64 / out_size as f64;
    (0..out_size)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                frac = 0.0;
                s = 0;
            }
            if s >= in_size as i64 - 1 {
                frac = 0.0;
                s = in_size as i64 - 1;
            }
            let a0 = ((1.0 - frac) * RESIZE_COEF_SCALE).round() as i32;
            let a1 = (frac * RESIZE_COEF_SCALE).round() as i32;
            (s as usize, a0, a1)
        })
        .collect()
}

/// OpenCV's `cv2.resize(src, (w, h))` (`INTER_LINEAR`) on an 8-bit, 3-channel image.
pub fn resize_linear(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    if (src.width(), src.height()) == (w, h) {
        return src.clone();
    }
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (ow, oh) = (w as usize, h as usize);
    let xs = linear_taps(sw, ow);
    let ys = linear_taps(sh, oh);
    let data = src.as_raw();
    // The horizontal pass of every source row a vertical tap reads, kept at 11 bits.
    let hrow = |y: usize, out: &mut [i32]| {
        let row = &data[y * sw * 3..(y + 1) * sw * 3];
        for (&(sx, a0, a1), o) in xs.iter().zip(out.chunks_exact_mut(3)) {
            let next = (sx + 1).min(sw - 1);
            let (p0, p1) = (&row[sx * 3..sx * 3 + 3], &row[next * 3..next * 3 + 3]);
            for c in 0..3 {
                o[c] = i32::from(p0[c]) * a0 + i32::from(p1[c]) * a1;
            }
        }
    };
    let mut out = vec![0u8; ow * oh * 3];
    let (mut r0, mut r1) = (vec![0i32; ow * 3], vec![0i32; ow * 3]);
    let mut cached: (Option<usize>, Option<usize>) = (None, None);
    for (line, &(sy, b0, b1)) in out.chunks_exact_mut(ow * 3).zip(&ys) {
        let sy1 = (sy + 1).min(sh - 1);
        if cached.0 != Some(sy) {
            if cached.1 == Some(sy) {
                std::mem::swap(&mut r0, &mut r1);
                cached = (Some(sy), None);
            } else {
                hrow(sy, &mut r0);
                cached.0 = Some(sy);
            }
        }
        if cached.1 != Some(sy1) {
            hrow(sy1, &mut r1);
            cached.1 = Some(sy1);
        }
        for ((o, &v0), &v1) in line.iter_mut().zip(&r0).zip(&r1) {
            // OpenCV's vector path: multiply-high of the 4-bit-shifted sums, then round by 2.
            let t = (((v0 >> 4) * b0) >> 16) + (((v1 >> 4) * b1) >> 16);
            *o = ((t + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(w, h, out).unwrap_or_default()
}

/// The homography (row-major, 3×3, `m[8]` = 1) that takes each `from` point to its `to` point, as
/// OpenCV's `getPerspectiveTransform` solves it; `None` when the points are degenerate.
pub fn perspective_transform(from: &[[f32; 2]; 4], to: &[[f32; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (f64::from(from[i][0]), f64::from(from[i][1]));
        let (u, v) = (f64::from(to[i][0]), f64::from(to[i][1]));
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    // Gaussian elimination with partial pivoting on the augmented 8×9 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                if f != 0.0 {
                    for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                        *v -= f * p;
                    }
                }
            }
        }
    }
    let mut m = [0f64; 9];
    for i in 0..8 {
        m[i] = a[i][8] / a[i][i];
    }
    m[8] = 1.0;
    Some(m)
}

/// Subpixel positions per pixel in OpenCV's remapping tables.
const TAB_SIZE: i32 = 32;
/// Fixed-point scale of OpenCV's 8-bit remap weights.
const REMAP_COEF_SCALE: i32 = 1 << 15;

/// OpenCV's bicubic kernel (a = -0.75) at fraction `x`.
fn cubic(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// OpenCV's 2-D bicubic weight table: for each of 32×32 subpixel positions, 16 weights summing
/// to exactly 2^15 (the rounding error goes to the central weight OpenCV picks).
fn cubic_table() -> Vec<[i32; 16]> {
    let mut table = Vec::with_capacity((TAB_SIZE * TAB_SIZE) as usize);
    for i in 0..TAB_SIZE {
        let vy = cubic(i as f32 / TAB_SIZE as f32);
        for j in 0..TAB_SIZE {
            let vx = cubic(j as f32 / TAB_SIZE as f32);
            let mut w = [0i32; 16];
            let mut sum = 0;
            for k1 in 0..4 {
                for k2 in 0..4 {
                    let v = (vy[k1] * vx[k2] * REMAP_COEF_SCALE as f32).round() as i32;
                    w[k1 * 4 + k2] = v;
                    sum += v;
                }
            }
            if sum != REMAP_COEF_SCALE {
                let diff = sum - REMAP_COEF_SCALE;
                let (mut lo, mut hi) = (5usize, 5usize);
                for k1 in 1..3 {
                    for k2 in 1..3 {
                        let k = k1 * 4 + k2;
                        if w[k] < w[lo] {
                            lo = k;
                        }
                        if w[k] > w[hi] {
                            hi = k;
                        }
                    }
                }
                if diff < 0 {
                    w[hi] -= diff;
                } else {
                    w[lo] -= diff;
                }
            }
            table.push(w);
        }
    }
    table
}

fn table() -> &'static [[i32; 16]] {
    static TABLE: std::sync::OnceLock<Vec<[i32; 16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(cubic_table)
}

/// OpenCV's `warpPerspective(src, m, (w, h), flags=INTER_CUBIC, borderMode=BORDER_REPLICATE)`:
/// each output pixel (x, y) samples `src` at `m·(x, y, 1)`.
pub fn warp_perspective_cubic(src: &RgbImage, m: &[f64; 9], w: u32, h: u32) -> RgbImage {
    let inverse = invert(m).unwrap_or([0.0; 9]);
    let (sw, sh) = (src.width() as i32, src.height() as i32);
    let data = src.as_raw();
    let tab = table();
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let x0 = inverse[1] * f64::from(y) + inverse[2];
        let y0 = inverse[4] * f64::from(y) + inverse[5];
        let w0 = inverse[7] * f64::from(y) + inverse[8];
        for x in 0..w {
            let ww = w0 + inverse[6] * f64::from(x);
            let ww = if ww != 0.0 {
                f64::from(TAB_SIZE) / ww
            } else {
                0.0
            };
            let fx = ((x0 + inverse[0] * f64::from(x)) * ww)
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX));
            let fy = ((y0 + inverse[3] * f64::from(x)) * ww)
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX));
            let (ix, iy) = (fx.round_ties_even() as i32, fy.round_ties_even() as i32);
            let (sx, sy) = (ix >> 5, iy >> 5);
            let weights = &tab[((iy & 31) * TAB_SIZE + (ix & 31)) as usize];
            let mut acc = [0i32; 3];
            for k1 in 0..4 {
                let yy = (sy - 1 + k1).clamp(0, sh - 1) as usize;
                for k2 in 0..4 {
                    let xx = (sx - 1 + k2).clamp(0, sw - 1) as usize;
                    let wgt = weights[(k1 * 4 + k2) as usize];
                    let p = (yy * sw as usize + xx) * 3;
                    for c in 0..3 {
                        acc[c] += i32::from(data[p + c]) * wgt;
                    }
                }
            }
            let px = acc.map(|v| ((v + (1 << 14)) >> 15).clamp(0, 255) as u8);
            out.put_pixel(x, y, Rgb(px));
        }
    }
    out
}

/// The inverse of a 3×3 matrix (OpenCV warps with the inverse of the transform it is given).
fn invert(m: &[f64; 9]) -> Option<[f64; 9]> {
    let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if det.abs() < 1e-15 {
        return None;
    }
    let d = 1.0 / det;
    Some([
        (m[4] * m[8] - m[5] * m[7]) * d,
        (m[2] * m[7] - m[1] * m[8]) * d,
        (m[1] * m[5] - m[2] * m[4]) * d,
        (m[5] * m[6] - m[3] * m[8]) * d,
        (m[0] * m[8] - m[2] * m[6]) * d,
        (m[2] * m[3] - m[0] * m[5]) * d,
        (m[3] * m[7] - m[4] * m[6]) * d,
        (m[1] * m[6] - m[0] * m[7]) * d,
        (m[0] * m[4] - m[1] * m[3]) * d,
    ])
}

/// `np.rot90`: a quarter turn counter-clockwise.
pub fn rotate90_ccw(src: &RgbImage) -> RgbImage {
    image::imageops::rotate270(src)
}

/// `cv2.rotate(.., ROTATE_180)`.
pub fn rotate180(src: &RgbImage) -> RgbImage {
    image::imageops::rotate180(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    /// A constant image stays constant through every resize and warp: the weights sum to one.
    #[test]
    fn flat_images_stay_flat() {
        let flat = RgbImage::from_pixel(37, 23, Rgb([200, 17, 99]));
        for (w, h) in [(256, 256), (11, 5), (37, 23), (74, 46)] {
            assert!(
                resize_pil_bilinear(&flat, w, h)
                    .pixels()
                    .all(|p| p.0 == [200, 17, 99])
            );
            assert!(
                resize_linear(&flat, w, h)
                    .pixels()
                    .all(|p| p.0 == [200, 17, 99])
            );
        }
        let m = perspective_transform(
            &[[3.0, 2.0], [30.0, 4.0], [29.0, 20.0], [2.0, 19.0]],
            &[[0.0, 0.0], [27.0, 0.0], [27.0, 17.0], [0.0, 17.0]],
        )
        .unwrap();
        let warped = warp_perspective_cubic(&flat, &m, 27, 17);
        assert!(warped.pixels().all(|p| p.0 == [200, 17, 99]));
    }

    /// Values computed with opencv-python-headless 5.1.0.95 and Pillow 13.0.0 on the same
    /// gradient (`cv2.resize(g, (17, 13))`, `Image.fromarray(g).resize((17, 13), BILINEAR)`).
    #[test]
    fn matches_the_libraries_on_a_gradient() {
        let g = gradient(40, 30);
        let r = resize_linear(&g, 17, 13);
        assert_eq!(r.get_pixel(0, 0).0, [5, 3, 1]);
        assert_eq!(r.get_pixel(16, 12).0, [12, 142, 67]);
        assert_eq!(r.get_pixel(8, 6).0, [137, 73, 34]);
        let p = resize_pil_bilinear(&g, 17, 13);
        assert_eq!(p.get_pixel(5, 5).0, [87, 61, 24]);
        assert_eq!(p.get_pixel(0, 0).0, [6, 4, 2]);
        // A shift by whole pixels through the warp is exact.
        let m = perspective_transform(
            &[[2.0, 3.0], [12.0, 3.0], [12.0, 9.0], [2.0, 9.0]],
            &[[0.0, 0.0], [10.0, 0.0], [10.0, 6.0], [0.0, 6.0]],
        )
        .unwrap();
        let w = warp_perspective_cubic(&g, &m, 10, 6);
        for y in 0..6 {
            for x in 0..10 {
                assert_eq!(w.get_pixel(x, y), g.get_pixel(x + 2, y + 3));
            }
        }
    }
}
