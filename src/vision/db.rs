//! Text regions from the detector's probability map, the way PP-OCR's "differentiable
//! binarization" post-processing finds them (RapidOCR's `DBPostProcess` with its defaults):
//! threshold the map, dilate by 2×2, take each connected region's border (outer borders and the
//! borders of holes, as OpenCV's `findContours` with `RETR_LIST` lists them), fit the smallest
//! rotated rectangle, keep it when the map's mean inside it is high enough, grow it by
//! area × 1.6 / perimeter, fit again, scale to the image and order the regions in reading order.

use super::geom::{Pt, area_and_perimeter, min_area_rect, offset_round};

/// RapidOCR's detection settings (`config.yaml`, `Det`).
const THRESH: f32 = 0.3;
const BOX_THRESH: f64 = 0.5;
const MAX_CANDIDATES: usize = 1000;
const UNCLIP_RATIO: f64 = 1.6;
const MIN_SIZE: f64 = 3.0;
/// Regions whose tops differ by less than this are on one line.
const LINE_Y: i64 = 10;

/// A text region: its corners (top-left, top-right, bottom-right, bottom-left) in the image's
/// pixels, and the detector's mean score inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub corners: [[i64; 2]; 4],
    pub score: f64,
}

/// The regions of a `width`×`height` probability map, scaled to a `dest_w`×`dest_h` image.
pub fn regions(
    pred: &[f32],
    width: usize,
    height: usize,
    dest_w: usize,
    dest_h: usize,
) -> Vec<Region> {
    let mut bitmap = vec![false; width * height];
    for (b, p) in bitmap.iter_mut().zip(pred) {
        *b = *p > THRESH;
    }
    // cv2.dilate with a 2×2 kernel anchored at its centre (1, 1): a pixel is set when it, its
    // left, upper or upper-left neighbour is.
    let mut mask = bitmap.clone();
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            mask[i] = bitmap[i]
                || (x > 0 && bitmap[i - 1])
                || (y > 0 && bitmap[i - width])
                || (x > 0 && y > 0 && bitmap[i - width - 1]);
        }
    }
    let mut found = Vec::new();
    for contour in borders(&mask, width, height)
        .into_iter()
        .take(MAX_CANDIDATES)
    {
        let (rect, short) = min_area_rect(&contour);
        if short < MIN_SIZE {
            continue;
        }
        let points = mini_box(&rect);
        let score = box_score(pred, width, height, &points);
        if BOX_THRESH > score {
            continue;
        }
        // Clipper takes integer vertices: the corners are truncated, as pyclipper does.
        let (area, perimeter) = area_and_perimeter(&points);
        if perimeter == 0.0 {
            continue;
        }
        let distance = area * UNCLIP_RATIO / perimeter;
        let int_box: Vec<[i64; 2]> = points.iter().map(|p| [p[0] as i64, p[1] as i64]).collect();
        let grown = offset_round(&int_box, distance);
        let (rect, short) = min_area_rect(&grown);
        if short < MIN_SIZE + 2.0 {
            continue;
        }
        let grown = mini_box(&rect);
        let scale = |v: f64, from: usize, to: usize| -> i64 {
            (v / from as f64 * to as f64)
                .round_ties_even()
                .clamp(0.0, to as f64) as i64
        };
        let corners = grown.map(|p| [scale(p[0], width, dest_w), scale(p[1], height, dest_h)]);
        // `filter_det_res`: corners clockwise from top-left, clipped inside the image, and
        // regions of 3 pixels or less across dropped.
        let mut corners = clockwise(corners);
        for c in &mut corners {
            c[0] = c[0].clamp(0, dest_w as i64 - 1);
            c[1] = c[1].clamp(0, dest_h as i64 - 1);
        }
        let dist = |a: [i64; 2], b: [i64; 2]| {
            (((a[0] - b[0]).pow(2) + (a[1] - b[1]).pow(2)) as f64).sqrt() as i64
        };
        if dist(corners[0], corners[1]) <= 3 || dist(corners[0], corners[3]) <= 3 {
            continue;
        }
        found.push(Region { corners, score });
    }
    reading_order(found)
}

/// RapidOCR's `get_mini_boxes` ordering of a rectangle's corners: by x, then the upper of the
/// two leftmost first, the upper of the two rightmost second.
fn mini_box(rect: &[Pt; 4]) -> [Pt; 4] {
    let mut p = *rect;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// `order_points_clockwise`: top-left, top-right, bottom-right, bottom-left.
fn clockwise(pts: [[i64; 2]; 4]) -> [[i64; 2]; 4] {
    let mut by_x = pts;
    by_x.sort_by_key(|p| p[0]);
    let mut left = [by_x[0], by_x[1]];
    let mut right = [by_x[2], by_x[3]];
    left.sort_by_key(|p| p[1]);
    right.sort_by_key(|p| p[1]);
    [left[0], right[0], right[1], left[1]]
}

/// `box_score_fast`: the map's mean over the pixels of the polygon (integer vertices, edges
/// included), within its bounding box clipped to the map.
fn box_score(pred: &[f32], width: usize, height: usize, poly: &[Pt; 4]) -> f64 {
    let clip = |v: f64, hi: usize| (v as i64).clamp(0, hi as i64 - 1) as usize;
    let xs = poly.iter().map(|p| p[0]);
    let ys = poly.iter().map(|p| p[1]);
    let xmin = clip(xs.clone().fold(f64::MAX, f64::min).floor(), width);
    let xmax = clip(xs.fold(f64::MIN, f64::max).ceil(), width);
    let ymin = clip(ys.clone().fold(f64::MAX, f64::min).floor(), height);
    let ymax = clip(ys.fold(f64::MIN, f64::max).ceil(), height);
    let verts: Vec<[f64; 2]> = poly
        .iter()
        .map(|p| [(p[0] - xmin as f64).trunc(), (p[1] - ymin as f64).trunc()])
        .collect();
    let (mut sum, mut count) = (0f64, 0usize);
    for y in ymin..=ymax {
        let fy = (y - ymin) as f64;
        // The polygon's extent on this row, from every edge that spans it.
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for i in 0..4 {
            let (a, b) = (verts[i], verts[(i + 1) % 4]);
            let (y0, y1) = (a[1].min(b[1]), a[1].max(b[1]));
            if fy < y0 || fy > y1 {
                continue;
            }
            if a[1] == b[1] {
                lo = lo.min(a[0].min(b[0]));
                hi = hi.max(a[0].max(b[0]));
            } else {
                let x = a[0] + (fy - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if lo > hi {
            continue;
        }
        let from = (lo.round() as i64).max(0) as usize + xmin;
        let to = ((hi.round() as i64) as usize + xmin).min(xmax);
        for x in from..=to {
            sum += f64::from(pred[y * width + x]);
            count += 1;
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// The border pixels of every region: each 8-connected set pixel group's outer border, and the
/// border around each 4-connected hole in it (set pixels next to the hole). Only the extreme
/// pixels of each row are kept: the rectangle fitted afterwards depends on the hull alone. A
/// hole lies inside the bounding box of the group around it, so holes are looked for there,
/// not over the whole map.
fn borders(mask: &[bool], width: usize, height: usize) -> Vec<Vec<Pt>> {
    let mut out = Vec::new();
    let mut label = vec![0u32; width * height];
    let mut next = 0u32;
    let mut stack: Vec<usize> = Vec::new();
    // Per row of the current group: its leftmost and rightmost pixel.
    let mut extent: Vec<(usize, usize)> = vec![(usize::MAX, 0); height];
    let mut boxes: Vec<(usize, usize, usize, usize)> = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let (mut top, mut bottom, mut left, mut right) = (usize::MAX, 0, usize::MAX, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            let e = &mut extent[y];
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
            top = top.min(y);
            bottom = bottom.max(y);
            left = left.min(x);
            right = right.max(x);
            let (x0, x1) = (x.saturating_sub(1), (x + 1).min(width - 1));
            let (y0, y1) = (y.saturating_sub(1), (y + 1).min(height - 1));
            for ny in y0..=y1 {
                for nx in x0..=x1 {
                    let j = ny * width + nx;
                    if mask[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        let mut points = Vec::with_capacity(2 * (bottom - top + 1));
        for (y, e) in extent.iter_mut().enumerate().take(bottom + 1).skip(top) {
            if e.0 != usize::MAX {
                points.push([e.0 as f64, y as f64]);
                points.push([e.1 as f64, y as f64]);
            }
            *e = (usize::MAX, 0);
        }
        out.push(points);
        boxes.push((left, top, right, bottom));
    }
    // Holes: within each group's box, 4-connected unset pixels that do not reach the box's
    // edge. A hole found once is not looked for again from a box around it.
    let mut hole = vec![false; width * height];
    let mut seen = vec![0u32; width * height];
    for (n, &(left, top, right, bottom)) in boxes.iter().enumerate() {
        if right - left < 2 || bottom - top < 2 {
            continue;
        }
        let pass = n as u32 + 1;
        for y in top + 1..bottom {
            for x in left + 1..right {
                let start = y * width + x;
                if mask[start] || hole[start] || seen[start] == pass {
                    continue;
                }
                seen[start] = pass;
                stack.push(start);
                let mut members = vec![start];
                let mut open = false;
                while let Some(i) = stack.pop() {
                    let (x, y) = (i % width, i / width);
                    if x <= left || y <= top || x >= right || y >= bottom {
                        open = true;
                    }
                    for (nx, ny) in [
                        (x.wrapping_sub(1), y),
                        (x + 1, y),
                        (x, y.wrapping_sub(1)),
                        (x, y + 1),
                    ] {
                        if nx < left || ny < top || nx > right || ny > bottom {
                            continue;
                        }
                        let j = ny * width + nx;
                        if !mask[j] && seen[j] != pass {
                            seen[j] = pass;
                            stack.push(j);
                            members.push(j);
                        }
                    }
                }
                if open {
                    continue;
                }
                // The set pixels beside the hole, by their rows' extremes.
                for &i in &members {
                    hole[i] = true;
                    let (x, y) = (i % width, i / width);
                    for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] {
                        if mask[ny * width + nx] {
                            let e = &mut extent[ny];
                            e.0 = e.0.min(nx);
                            e.1 = e.1.max(nx);
                        }
                    }
                }
                let mut points = Vec::new();
                for (y, e) in extent.iter_mut().enumerate().take(bottom + 1).skip(top) {
                    if e.0 != usize::MAX {
                        points.push([e.0 as f64, y as f64]);
                        points.push([e.1 as f64, y as f64]);
                    }
                    *e = (usize::MAX, 0);
                }
                out.push(points);
            }
        }
    }
    out
}

/// `sorted_boxes`: by the top-left corner's y, then into lines (a new line where y grows by 10
/// or more), each line left to right.
fn reading_order(mut regions: Vec<Region>) -> Vec<Region> {
    regions.sort_by_key(|r| r.corners[0][1]);
    let mut line = 0i64;
    let mut keyed: Vec<(i64, i64, Region)> = Vec::with_capacity(regions.len());
    let mut last_y = None;
    for r in regions {
        let y = r.corners[0][1];
        if let Some(prev) = last_y
            && y - prev >= LINE_Y
        {
            line += 1;
        }
        last_y = Some(y);
        keyed.push((line, r.corners[0][0], r));
    }
    keyed.sort_by_key(|k| (k.0, k.1));
    keyed.into_iter().map(|k| k.2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(width: usize, height: usize, blocks: &[(usize, usize, usize, usize)]) -> Vec<f32> {
        let mut m = vec![0.05f32; width * height];
        for &(x0, y0, x1, y1) in blocks {
            for y in y0..y1 {
                for x in x0..x1 {
                    m[y * width + x] = 0.9;
                }
            }
        }
        m
    }

    /// Two lines of text, the lower one in two pieces: three regions, grown past the map's
    /// blocks, scaled, in reading order; a speck too small to be text is dropped. The expected
    /// figures are RapidOCR 3.10.0's `DBPostProcess` and `sorted_boxes` on the same map.
    #[test]
    fn blocks_become_the_regions_the_reference_finds() {
        let m = map(
            200,
            100,
            &[
                (120, 60, 180, 75),
                (10, 10, 150, 30),
                (20, 62, 100, 76),
                (5, 90, 7, 92),
            ],
        );
        let r = regions(&m, 200, 100, 400, 200);
        let corners: Vec<[[i64; 2]; 4]> = r.iter().map(|x| x.corners).collect();
        assert_eq!(
            corners,
            vec![
                [[0, 0], [328, 0], [328, 88], [0, 88]],
                [[20, 104], [220, 104], [220, 172], [20, 172]],
                [[220, 100], [380, 100], [380, 170], [220, 170]],
            ]
        );
        // The reference lists scores in the order it found the regions, not reading order.
        let mut scores: Vec<f64> = r.iter().map(|x| x.score).collect();
        scores.sort_by(f64::total_cmp);
        for (got, want) in scores.into_iter().zip([0.83354, 0.83381, 0.85378]) {
            assert!((got - want).abs() < 0.001, "{got} vs {want}");
        }
    }

    /// A ring has an outer border and the border of its hole, as `findContours` lists them; a
    /// notch open to the outside is no hole.
    #[test]
    fn holes_are_borders_too() {
        let mut mask = vec![false; 20 * 20];
        for y in 2..12 {
            for x in 2..12 {
                mask[y * 20 + x] = !(5..9).contains(&x) || !(5..9).contains(&y);
            }
        }
        let found = borders(&mask, 20, 20);
        assert_eq!(found.len(), 2, "{found:?}");
        let xs: Vec<f64> = found[1].iter().map(|p| p[0]).collect();
        assert_eq!(xs.iter().cloned().fold(f64::MAX, f64::min), 4.0);
        assert_eq!(xs.iter().cloned().fold(f64::MIN, f64::max), 9.0);
        for y in 5..9 {
            mask[y * 20 + 11] = false;
            for x in 9..12 {
                mask[y * 20 + x] = false;
            }
        }
        assert_eq!(borders(&mask, 20, 20).len(), 1);
    }

    /// A faint map has no text.
    #[test]
    fn nothing_above_the_threshold_is_nothing() {
        let m = vec![0.2f32; 64 * 64];
        assert!(regions(&m, 64, 64, 64, 64).is_empty());
    }
}
