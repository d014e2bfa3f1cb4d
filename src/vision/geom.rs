//! Plane geometry for text detection: convex hulls, the minimum-area rotated rectangle around a
//! set of points (OpenCV's `minAreaRect` with `boxPoints`), and the rounded outward offset of a
//! polygon (Clipper's `JT_ROUND` offset, which PP-OCR's detector uses to grow each region back
//! to the text's full extent).

/// A point, in pixels.
pub type Pt = [f64; 2];

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// The convex hull, counter-clockwise in a y-down frame's mirror (Andrew's monotone chain),
/// without collinear points.
pub fn convex_hull(points: &[Pt]) -> Vec<Pt> {
    let mut p: Vec<Pt> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<Pt> = Vec::with_capacity(p.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Pt>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// The smallest-area rectangle holding `points`: its four corners and its shorter side. A
/// rectangle of least area has a side on an edge of the hull, so each hull edge is tried.
pub fn min_area_rect(points: &[Pt]) -> ([Pt; 4], f64) {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return ([[0.0; 2]; 4], 0.0),
        1 => return ([hull[0]; 4], 0.0),
        _ => {}
    }
    let mut best: Option<(f64, [Pt; 4], f64)> = None;
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        let v = [-u[1], u[0]];
        let (mut lo_u, mut hi_u, mut lo_v, mut hi_v) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &hull {
            let pu = (p[0] - a[0]) * u[0] + (p[1] - a[1]) * u[1];
            let pv = (p[0] - a[0]) * v[0] + (p[1] - a[1]) * v[1];
            lo_u = lo_u.min(pu);
            hi_u = hi_u.max(pu);
            lo_v = lo_v.min(pv);
            hi_v = hi_v.max(pv);
        }
        let area = (hi_u - lo_u) * (hi_v - lo_v);
        if best.as_ref().is_none_or(|b| area < b.0 - 1e-9) {
            let at =
                |su: f64, sv: f64| [a[0] + u[0] * su + v[0] * sv, a[1] + u[1] * su + v[1] * sv];
            let corners = [
                at(lo_u, lo_v),
                at(hi_u, lo_v),
                at(hi_u, hi_v),
                at(lo_u, hi_v),
            ];
            best = Some((area, corners, (hi_u - lo_u).min(hi_v - lo_v)));
        }
    }
    match best {
        Some((_, corners, short)) => (corners.map(|p| p.map(|c| f64::from(c as f32))), short),
        None => ([hull[0]; 4], 0.0),
    }
}

/// A polygon's area (unsigned) and perimeter.
pub fn area_and_perimeter(poly: &[Pt]) -> (f64, f64) {
    let n = poly.len();
    let (mut twice, mut length) = (0.0, 0.0);
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        twice += a[0] * b[1] - b[0] * a[1];
        length += ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    }
    (twice.abs() / 2.0, length)
}

/// The vertices of a convex polygon grown outward by `delta` with round corners, as Clipper's
/// offset makes them (integer input vertices, arcs stepped for a 0.25 px tolerance, output
/// vertices rounded to whole pixels).
pub fn offset_round(poly: &[[i64; 2]], delta: f64) -> Vec<Pt> {
    let n = poly.len();
    if n < 3 || delta <= 0.0 {
        return poly.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    }
    let pts: Vec<Pt> = poly.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let signed: f64 = (0..n)
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    // Outward normal of edge i → i+1, whichever way the polygon winds.
    let normal = |i: usize| -> Pt {
        let (a, b) = (pts[i], pts[(i + 1) % n]);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            return [0.0, 0.0];
        }
        if signed > 0.0 {
            [dy / len, -dx / len]
        } else {
            [-dy / len, dx / len]
        }
    };
    let steps_per_rad = {
        let steps = std::f64::consts::PI / (1.0 - 0.25 / delta).acos();
        steps / (2.0 * std::f64::consts::PI)
    };
    let mut out = Vec::new();
    for (k, vertex) in pts.iter().enumerate() {
        let before = normal((k + n - 1) % n);
        let after = normal(k);
        let from = before[1].atan2(before[0]);
        let mut turn = after[1].atan2(after[0]) - from;
        while turn > std::f64::consts::PI {
            turn -= 2.0 * std::f64::consts::PI;
        }
        while turn < -std::f64::consts::PI {
            turn += 2.0 * std::f64::consts::PI;
        }
        let steps = ((steps_per_rad * turn.abs()).round() as usize).max(1);
        for s in 0..=steps {
            let angle = from + turn * s as f64 / steps as f64;
            out.push([
                (vertex[0] + angle.cos() * delta).round(),
                (vertex[1] + angle.sin() * delta).round(),
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_rectangle_of_an_upright_block_is_the_block() {
        let mut pts = Vec::new();
        for y in 10..=20 {
            for x in 5..=45 {
                pts.push([f64::from(x), f64::from(y)]);
            }
        }
        let (corners, short) = min_area_rect(&pts);
        assert!((short - 10.0).abs() < 1e-9, "{short}");
        let mut xs: Vec<f64> = corners.iter().map(|p| p[0]).collect();
        xs.sort_by(f64::total_cmp);
        assert_eq!(xs, vec![5.0, 5.0, 45.0, 45.0]);
    }

    #[test]
    fn a_tilted_rectangle_is_found_at_its_tilt() {
        // The corners of a 40×10 rectangle turned by 30°.
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        let rect: Vec<Pt> = [[0.0, 0.0], [40.0, 0.0], [40.0, 10.0], [0.0, 10.0]]
            .iter()
            .map(|p| [100.0 + p[0] * c - p[1] * s, 50.0 + p[0] * s + p[1] * c])
            .collect();
        let (_, short) = min_area_rect(&rect);
        assert!((short - 10.0).abs() < 1e-4, "{short}");
        let (area, perimeter) = area_and_perimeter(&rect);
        assert!((area - 400.0).abs() < 1e-6 && (perimeter - 100.0).abs() < 1e-6);
    }

    /// Growing a rectangle by d adds d on every side (the round corners stay inside).
    #[test]
    fn a_round_offset_grows_each_side() {
        let grown = offset_round(&[[10, 10], [50, 10], [50, 20], [10, 20]], 4.0);
        let (corners, short) = min_area_rect(&grown);
        assert!((short - 18.0).abs() < 1e-9, "{short} {corners:?}");
        let xs = corners.iter().map(|p| p[0]);
        assert_eq!(xs.clone().fold(f64::MAX, f64::min), 6.0);
        assert_eq!(xs.fold(f64::MIN, f64::max), 54.0);
    }
}
