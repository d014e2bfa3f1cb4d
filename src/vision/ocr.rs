//! Text recognition: PP-OCR's detection, direction and recognition models as `rapidocr` ships
//! them, in that package's pipeline with its default settings, so the same image reads the same
//! here as there:
//!
//! 1. the image is scaled into 30–2000 px a side, and a very flat one is padded above and below;
//! 2. detection runs at least 736 px on the short side (multiples of 32); its map becomes regions
//!    ([`super::db`]);
//! 3. each region is cut out straight (a perspective warp; a tall one is turned a quarter);
//! 4. the direction model turns regions read upside down (over 0.9 sure), six at a time;
//! 5. the recognizer reads them, six at a time in order of width, each batch padded to its
//!    widest; greedy CTC decoding; lines scoring under 0.5 or blank are dropped.
//!
//! Nothing after detection runs when detection finds no text.

use std::path::Path;
use std::time::Instant;

use image::{DynamicImage, RgbImage};

use super::db::{Region, regions};
use super::imgops::{
    perspective_transform, resize_linear, rotate90_ccw, rotate180, warp_perspective_cubic,
};
use super::runtime::{ModelError, Net};

const MIN_SIDE: u32 = 30;
const MAX_SIDE: u32 = 2000;
const PAD_MIN_HEIGHT: u32 = 30;
const PAD_RATIO: f64 = 8.0;
const DET_LIMIT_SIDE: f64 = 736.0;
const CLS_SHAPE: (usize, usize) = (48, 192);
const CLS_THRESH: f32 = 0.9;
const REC_HEIGHT: usize = 48;
const REC_WIDTH: usize = 320;
const BATCH: usize = 6;
const TEXT_SCORE: f32 = 0.5;

/// A line of text read from an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    /// The recognizer's mean confidence over the line's characters.
    pub score: f32,
    /// Where it is, in the image's pixels (top-left, top-right, bottom-right, bottom-left).
    pub corners: [[i64; 2]; 4],
}

/// The three OCR models of one worker.
pub struct Ocr {
    det: Net,
    cls: Net,
    rec: Net,
    /// The recognizer's classes: CTC blank, the dictionary, and a space.
    classes: Vec<String>,
}

impl std::fmt::Debug for Ocr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocr")
            .field("classes", &self.classes.len())
            .finish()
    }
}

/// The image as RapidOCR's loader hands it to the pipeline: grey made colour; grey with alpha
/// kept where opaque and white elsewhere; colour with alpha blended over white or black,
/// whichever contrasts with the visible pixels' mean luminance.
pub fn rgb_for_ocr(img: &DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageLumaA8(la) => RgbImage::from_fn(la.width(), la.height(), |x, y| {
            let [g, a] = la.get_pixel(x, y).0;
            let v = if a != 0 { g } else { 0 }.saturating_add(255 - a);
            image::Rgb([v, v, v])
        }),
        DynamicImage::ImageRgba8(rgba) => {
            let (mut sum, mut n) = (0f64, 0u64);
            for p in rgba.pixels().filter(|p| p[3] > 0) {
                sum += 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
                n += 1;
            }
            let bg: f32 = if n == 0 || sum / n as f64 >= 128.0 {
                if n == 0 { 255.0 } else { 0.0 }
            } else {
                255.0
            };
            RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let p = rgba.get_pixel(x, y).0;
                let a = f32::from(p[3]) / 255.0;
                image::Rgb([0, 1, 2].map(|c| (f32::from(p[c]) * a + bg * (1.0 - a)) as u8))
            })
        }
        other => other.to_rgb8(),
    }
}

/// The recognizer's dictionary file: one character per line.
pub fn read_keys(path: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::Load(format!("{}: {e}", path.display())))?;
    let mut classes = vec![String::new()];
    classes.extend(
        text.split('\n')
            .map(|l| l.trim_end_matches('\r').to_string()),
    );
    if classes.last().is_some_and(String::is_empty) {
        classes.pop();
    }
    classes.push(" ".into());
    Ok(classes)
}

impl Ocr {
    pub fn new(det: Net, cls: Net, rec: Net, classes: Vec<String>) -> Ocr {
        Ocr {
            det,
            cls,
            rec,
            classes,
        }
    }

    /// The lines of text in `rgb`, in reading order.
    pub fn read(&mut self, rgb: &RgbImage, deadline: Instant) -> Result<Vec<Line>, ModelError> {
        let img = within_bounds(rgb);
        let (img, top) = pad_flat(img);
        let found = self.detect(&img, deadline)?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let crops: Vec<RgbImage> = found.iter().map(|r| crop(&img, r)).collect();
        let crops = self.turn_upside_down(crops, deadline)?;
        let read = self.recognize(&crops, deadline)?;
        let (sx, sy) = (
            f64::from(rgb.width()) / f64::from(img.width()),
            f64::from(rgb.height()) / f64::from(img.height() - 2 * top),
        );
        Ok(found
            .iter()
            .zip(read)
            .filter(|(_, (text, score))| !text.trim().is_empty() && *score >= TEXT_SCORE)
            .map(|(region, (text, score))| Line {
                text,
                score,
                corners: region.corners.map(|[x, y]| {
                    [
                        ((x as f64) * sx).round() as i64,
                        (((y - i64::from(top)) as f64) * sy).round().max(0.0) as i64,
                    ]
                }),
            })
            .collect())
    }

    fn detect(&mut self, img: &RgbImage, deadline: Instant) -> Result<Vec<Region>, ModelError> {
        let (w, h) = (img.width(), img.height());
        let short = f64::from(w.min(h));
        let ratio = if short < DET_LIMIT_SIDE {
            DET_LIMIT_SIDE / short
        } else {
            1.0
        };
        let round32 = |v: u32| ((f64::from(v) / 32.0).round_ties_even() * 32.0) as u32;
        let (rw, rh) = (
            round32((f64::from(w) * ratio) as u32),
            round32((f64::from(h) * ratio) as u32),
        );
        if rw == 0 || rh == 0 {
            return Ok(Vec::new());
        }
        let resized = resize_linear(img, rw, rh);
        let input = chw_bgr(&resized);
        let (shape, pred) =
            self.det
                .run(vec![1, 3, i64::from(rh), i64::from(rw)], input, deadline)?;
        if shape.len() != 4 || shape[2] != i64::from(rh) || shape[3] != i64::from(rw) {
            return Err(ModelError::Output(format!(
                "detection map of shape {shape:?}"
            )));
        }
        Ok(regions(
            &pred,
            rw as usize,
            rh as usize,
            w as usize,
            h as usize,
        ))
    }

    fn turn_upside_down(
        &mut self,
        mut crops: Vec<RgbImage>,
        deadline: Instant,
    ) -> Result<Vec<RgbImage>, ModelError> {
        let (ch, cw) = CLS_SHAPE;
        let order = by_width(&crops);
        for batch in order.chunks(BATCH) {
            let mut input = Vec::with_capacity(batch.len() * 3 * ch * cw);
            for &i in batch {
                let ratio = f64::from(crops[i].width()) / f64::from(crops[i].height());
                let rw = ((ch as f64 * ratio).ceil() as usize).min(cw);
                input.extend(padded(&crops[i], ch, rw, cw));
            }
            let (shape, probs) = self.cls.run(
                vec![batch.len() as i64, 3, ch as i64, cw as i64],
                input,
                deadline,
            )?;
            if probs.len() != batch.len() * 2 {
                return Err(ModelError::Output(format!(
                    "direction output of shape {shape:?}"
                )));
            }
            for (k, &i) in batch.iter().enumerate() {
                let (upright, flipped) = (probs[2 * k], probs[2 * k + 1]);
                if flipped > upright && flipped > CLS_THRESH {
                    crops[i] = rotate180(&crops[i]);
                }
            }
        }
        Ok(crops)
    }

    fn recognize(
        &mut self,
        crops: &[RgbImage],
        deadline: Instant,
    ) -> Result<Vec<(String, f32)>, ModelError> {
        let mut out = vec![(String::new(), 0.0); crops.len()];
        let order = by_width(crops);
        for batch in order.chunks(BATCH) {
            let ratio = |i: usize| f64::from(crops[i].width()) / f64::from(crops[i].height());
            let widest = batch
                .iter()
                .map(|&i| ratio(i))
                .fold(REC_WIDTH as f64 / REC_HEIGHT as f64, f64::max);
            let width = (REC_HEIGHT as f64 * widest) as usize;
            let mut input = Vec::with_capacity(batch.len() * 3 * REC_HEIGHT * width);
            for &i in batch {
                let rw = ((REC_HEIGHT as f64 * ratio(i)).ceil() as usize).min(width);
                input.extend(padded(&crops[i], REC_HEIGHT, rw, width));
            }
            let (shape, probs) = self.rec.run(
                vec![batch.len() as i64, 3, REC_HEIGHT as i64, width as i64],
                input,
                deadline,
            )?;
            let &[n, steps, classes] = shape.as_slice() else {
                return Err(ModelError::Output(format!(
                    "recognizer output of shape {shape:?}"
                )));
            };
            if n as usize != batch.len() || classes as usize != self.classes.len() {
                return Err(ModelError::Output(format!(
                    "recognizer output of shape {shape:?} for a dictionary of {} classes",
                    self.classes.len()
                )));
            }
            let (steps, classes) = (steps as usize, classes as usize);
            for (k, &i) in batch.iter().enumerate() {
                let rows = &probs[k * steps * classes..(k + 1) * steps * classes];
                out[i] = decode(rows.chunks_exact(classes), &self.classes);
            }
        }
        Ok(out)
    }
}

/// Greedy CTC: the likeliest class at each step, repeats merged, blanks dropped; the score is
/// the mean probability of the characters kept (rounded to 5 places, as the reference does).
fn decode<'a>(steps: impl Iterator<Item = &'a [f32]>, classes: &[String]) -> (String, f32) {
    let mut text = String::new();
    let mut probs = Vec::new();
    let mut previous = usize::MAX;
    for row in steps {
        let (best, p) = row
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        if best != previous && best != 0 {
            text.push_str(&classes[best]);
            probs.push((f64::from(p) * 1e5).round_ties_even() / 1e5);
        }
        previous = best;
    }
    let mean = if probs.is_empty() {
        0.0
    } else {
        probs.iter().sum::<f64>() / probs.len() as f64
    };
    (text, ((mean * 1e5).round_ties_even() / 1e5) as f32)
}

/// Indices ordered by width over height (a stable sort).
fn by_width(crops: &[RgbImage]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..crops.len()).collect();
    order.sort_by(|&a, &b| {
        let r = |i: usize| f64::from(crops[i].width()) / f64::from(crops[i].height());
        r(a).total_cmp(&r(b))
    });
    order
}

/// `img` resized to `height`×`width` (OpenCV's linear), scaled to -1..1, BGR planes, and padded
/// with zeros to `padded_width`.
fn padded(img: &RgbImage, height: usize, width: usize, padded_width: usize) -> Vec<f32> {
    let resized = resize_linear(img, width.max(1) as u32, height as u32);
    let mut out = vec![0f32; 3 * height * padded_width];
    for (x, y, p) in resized.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        for (c, v) in [p[2], p[1], p[0]].into_iter().enumerate() {
            out[c * height * padded_width + y * padded_width + x] =
                (f32::from(v) / 255.0 - 0.5) / 0.5;
        }
    }
    out
}

/// The detector's input: -1..1, BGR planes.
fn chw_bgr(img: &RgbImage) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    let (b, rest) = out.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    let scale = |v: u8| (f32::from(v) * (1.0 / 255.0) - 0.5) / 0.5;
    for (p, ((bo, go), ro)) in img
        .as_raw()
        .chunks_exact(3)
        .zip(b.iter_mut().zip(g.iter_mut()).zip(r.iter_mut()))
    {
        *bo = scale(p[2]);
        *go = scale(p[1]);
        *ro = scale(p[0]);
    }
    out
}

/// `resize_image_within_bounds`: the longest side brought down to 2000, then the shortest up to
/// 30, each to multiples of 32.
fn within_bounds(rgb: &RgbImage) -> RgbImage {
    let round32 = |v: f64| (((v as u32) as f64 / 32.0).round_ties_even() * 32.0) as u32;
    let mut img = None;
    let (w, h) = (rgb.width(), rgb.height());
    if w.max(h) > MAX_SIDE {
        let ratio = f64::from(MAX_SIDE) / f64::from(w.max(h));
        let (rw, rh) = (round32(f64::from(w) * ratio), round32(f64::from(h) * ratio));
        img = Some(resize_linear(rgb, rw.max(1), rh.max(1)));
    }
    let current = img.as_ref().unwrap_or(rgb);
    let (w, h) = (current.width(), current.height());
    if w.min(h) < MIN_SIDE {
        let ratio = f64::from(MIN_SIDE) / f64::from(w.min(h));
        let (rw, rh) = (round32(f64::from(w) * ratio), round32(f64::from(h) * ratio));
        img = Some(resize_linear(current, rw.max(1), rh.max(1)));
    }
    img.unwrap_or_else(|| rgb.clone())
}

/// `apply_vertical_padding`: a short or very wide image gets black bands above and below, so
/// the detector sees its text at a workable aspect; the band's height is returned.
fn pad_flat(img: RgbImage) -> (RgbImage, u32) {
    let (w, h) = (img.width(), img.height());
    if h > PAD_MIN_HEIGHT && f64::from(w) / f64::from(h) <= PAD_RATIO {
        return (img, 0);
    }
    let new_h = ((f64::from(w) / PAD_RATIO) as u32).max(PAD_MIN_HEIGHT) * 2;
    let pad = new_h.abs_diff(h) / 2;
    let mut out = RgbImage::new(w, h + 2 * pad);
    image::imageops::replace(&mut out, &img, 0, i64::from(pad));
    (out, pad)
}

/// `get_rotate_crop_image`: the region cut out and straightened; a region at least 1.5 times
/// taller than wide is turned a quarter counter-clockwise.
fn crop(img: &RgbImage, r: &Region) -> RgbImage {
    let p = r.corners.map(|[x, y]| [x as f32, y as f32]);
    let dist = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let w = dist(p[0], p[1]).max(dist(p[2], p[3])) as u32;
    let h = dist(p[0], p[3]).max(dist(p[1], p[2])) as u32;
    let (w, h) = (w.max(1), h.max(1));
    let to = [
        [0.0, 0.0],
        [w as f32, 0.0],
        [w as f32, h as f32],
        [0.0, h as f32],
    ];
    let Some(m) = perspective_transform(&p, &to) else {
        return RgbImage::from_pixel(w, h, image::Rgb([0, 0, 0]));
    };
    let out = warp_perspective_cubic(img, &m, w, h);
    if f64::from(h) / f64::from(w) >= 1.5 {
        rotate90_ccw(&out)
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let classes: Vec<String> = ["", "a", "b", " "].iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<f32>> = vec![
            vec![0.1, 0.8, 0.1, 0.0],
            vec![0.1, 0.9, 0.0, 0.0],
            vec![0.9, 0.1, 0.0, 0.0],
            vec![0.2, 0.7, 0.1, 0.0],
            vec![0.0, 0.0, 0.4, 0.6],
            vec![0.1, 0.0, 0.9, 0.0],
        ];
        let (text, score) = decode(rows.iter().map(Vec::as_slice), &classes);
        assert_eq!(text, "aa b");
        assert!(
            (score - (0.8 + 0.7 + 0.6 + 0.9) / 4.0).abs() < 1e-5,
            "{score}"
        );
    }

    #[test]
    fn flat_images_are_padded_and_large_ones_scaled() {
        let (padded, top) = pad_flat(RgbImage::new(400, 20));
        assert_eq!((padded.height(), top), (20 + 2 * 40, 40));
        let (same, top) = pad_flat(RgbImage::new(400, 100));
        assert_eq!((same.height(), top), (100, 0));
        let big = within_bounds(&RgbImage::new(4000, 1000));
        assert_eq!((big.width(), big.height()), (1984, 512));
        let small = within_bounds(&RgbImage::new(200, 20));
        assert_eq!((small.width(), small.height()), (288, 32));
    }
}
