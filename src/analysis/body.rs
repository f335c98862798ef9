//! Body segmentation (robust to a couch, padding and a phantom touching the FOV edge) and the fit
//! of a definition's outline to it.

use super::image::{components, fill_holes, open, Mask};
use super::Geo;
use crate::phantom::Outline;
use ndarray::{Array2, ArrayView2};

/// HU above which a pixel belongs to an object (the script's threshold; lung inserts are holes
/// that the hole filling closes).
const BODY_HU: f32 = -400.0;
/// Structures thinner than about twice this (couch shells, cables, the table top) are removed.
const OPEN_RADIUS_MM: f64 = 4.0;

#[derive(Debug, Clone)]
pub struct Body {
    pub mask: Mask,
    pub area_mm2: f64,
    /// Centroid, in this stack's pixels (row, col).
    pub centroid: (f64, f64),
    /// Second moments in mm²: (xx, xy, yy).
    pub cov: (f64, f64, f64),
    /// The body touches the image border or the no-data region (FOV edge, padding).
    pub touches_edge: bool,
}

impl Body {
    /// Orientation of the major axis, degrees in (-90, 90], image view (clockwise positive).
    pub fn major_axis_deg(&self) -> f64 {
        let (xx, xy, yy) = self.cov;
        0.5 * (2.0 * xy).atan2(xx - yy).to_degrees()
    }
}

/// Segment the largest object of a slice. `None` when the slice holds no object.
pub fn segment(slice: ArrayView2<f32>, geo: &Geo) -> Option<Body> {
    let (rows, cols) = slice.dim();
    let raw: Mask = slice.mapv(|v| v.is_finite() && v > BODY_HU);
    let k = (OPEN_RADIUS_MM / geo.px[0].min(geo.px[1]))
        .round()
        .clamp(1.0, 255.0) as u8;
    let opened = open(&raw, k);
    let (labels, counts) = components(&opened);
    let (best, &n) = counts.iter().enumerate().max_by_key(|(_, c)| **c)?;
    if n == 0 {
        return None;
    }
    let comp: Mask = labels.mapv(|l| l as usize == best);
    let mask = fill_holes(&comp);
    let px_area = geo.px[0] * geo.px[1];
    let (mut n, mut sr, mut sc) = (0usize, 0.0, 0.0);
    for ((r, c), v) in mask.indexed_iter() {
        if *v {
            n += 1;
            sr += r as f64;
            sc += c as f64;
        }
    }
    let (cr, cc) = (sr / n as f64, sc / n as f64);
    let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
    let mut touches = false;
    for ((r, c), v) in mask.indexed_iter() {
        if !*v {
            continue;
        }
        let dx = (c as f64 - cc) * geo.px[1];
        let dy = (r as f64 - cr) * geo.px[0];
        xx += dx * dx;
        xy += dx * dy;
        yy += dy * dy;
        if r == 0 || c == 0 || r + 1 == rows || c + 1 == cols {
            touches = true;
        } else if !touches {
            for (dr, dc) in [(0isize, 1isize), (0, -1), (1, 0), (-1, 0)] {
                let v = slice[[(r as isize + dr) as usize, (c as isize + dc) as usize]];
                if !v.is_finite() {
                    touches = true;
                }
            }
        }
    }
    let nf = n as f64;
    Some(Body {
        mask,
        area_mm2: nf * px_area,
        centroid: (cr, cc),
        cov: (xx / nf, xy / nf, yy / nf),
        touches_edge: touches,
    })
}

/// Is the image-frame point (x, y) inside the outline placed at `centre` with `rot_deg`?
#[cfg(test)]
pub fn inside_outline(outline: &Outline, centre: (f64, f64), rot_deg: f64, x: f64, y: f64) -> bool {
    Placed::new(outline, centre, rot_deg).contains(x, y)
}

/// An outline placed in the image frame, its rotation computed once.
struct Placed<'a> {
    outline: &'a Outline,
    centre: (f64, f64),
    sin: f64,
    cos: f64,
}

impl<'a> Placed<'a> {
    fn new(outline: &'a Outline, centre: (f64, f64), rot_deg: f64) -> Self {
        let (sin, cos) = rot_deg.to_radians().sin_cos();
        Placed {
            outline,
            centre,
            sin,
            cos,
        }
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        let (s, c) = (self.sin, self.cos);
        let dx = x - self.centre.0;
        let dy = y - self.centre.1;
        // inverse rotation into phantom coordinates
        let px = dx * c + dy * s;
        let py = -dx * s + dy * c;
        match *self.outline {
            Outline::Circle { diameter_mm } => px * px + py * py <= diameter_mm * diameter_mm / 4.0,
            Outline::Ellipse {
                width_mm,
                height_mm,
            } => {
                let a = width_mm / 2.0;
                let b = height_mm / 2.0;
                (px / a).powi(2) + (py / b).powi(2) <= 1.0
            }
            Outline::Square { side_mm } => px.abs() <= side_mm / 2.0 && py.abs() <= side_mm / 2.0,
        }
    }
}

/// Rows `r0..r1` and columns `c0..c1` holding every set pixel of `mask`.
fn mask_box(mask: &Mask) -> (usize, usize, usize, usize) {
    let (mut r0, mut r1, mut c0, mut c1) = (usize::MAX, 0, usize::MAX, 0);
    for ((r, c), &m) in mask.indexed_iter() {
        if m {
            r0 = r0.min(r);
            r1 = r1.max(r + 1);
            c0 = c0.min(c);
            c1 = c1.max(c + 1);
        }
    }
    (r0.min(r1), r1, c0.min(c1), c1)
}

/// Intersection over union of the body and the outline placed at (centre mm, rotation), counted
/// only where the image has data (a phantom cut by the FOV is judged on what is visible).
/// `body_box` is the body's bounding box ([`mask_box`]): only pixels inside it or near enough to
/// the outline's centre to be inside the outline are visited (no other pixel counts).
fn outline_iou(
    body: &Body,
    valid: &Array2<bool>,
    geo: &Geo,
    outline: &Outline,
    centre_mm: (f64, f64),
    rot_deg: f64,
    body_box: (usize, usize, usize, usize),
) -> f64 {
    let placed = Placed::new(outline, centre_mm, rot_deg);
    let (rows, cols) = body.mask.dim();
    // The outline lies within its half-diagonal of its centre (plus a pixel for rounding).
    let (w, h) = outline.size_mm();
    let reach = 0.5 * w.hypot(h);
    let span = |centre: f64, px: f64, origin: f64, n: usize| -> (usize, usize) {
        let lo = ((centre - reach - origin) / px).floor() - 1.0;
        let hi = ((centre + reach - origin) / px).ceil() + 2.0;
        (
            lo.clamp(0.0, n as f64) as usize,
            hi.clamp(0.0, n as f64) as usize,
        )
    };
    let (or0, or1) = span(centre_mm.1, geo.px[0], geo.origin[0], rows);
    let (oc0, oc1) = span(centre_mm.0, geo.px[1], geo.origin[1], cols);
    let (br0, br1, bc0, bc1) = body_box;
    let (r0, r1) = if br1 > br0 {
        (or0.min(br0), or1.max(br1))
    } else {
        (or0, or1)
    };
    let (c0, c1) = if bc1 > bc0 {
        (oc0.min(bc0), oc1.max(bc1))
    } else {
        (oc0, oc1)
    };
    let (mut inter, mut uni) = (0usize, 0usize);
    for r in r0..r1 {
        let y = geo.y_of(r as f64);
        for c in c0..c1 {
            if !valid[[r, c]] {
                continue;
            }
            let b = body.mask[[r, c]];
            let o = placed.contains(geo.x_of(c as f64), y);
            if b && o {
                inter += 1;
            }
            if b || o {
                uni += 1;
            }
        }
    }
    if uni == 0 {
        0.0
    } else {
        inter as f64 / uni as f64
    }
}

/// The best placement of an outline on a body: (IoU, centre mm, rotation deg).
pub fn fit_outline(
    body: &Body,
    valid: &Array2<bool>,
    geo: &Geo,
    outline: &Outline,
) -> (f64, (f64, f64), f64) {
    let centre0 = (geo.x_of(body.centroid.1), geo.y_of(body.centroid.0));
    let rots: Vec<f64> = match *outline {
        Outline::Circle { .. } => vec![0.0],
        Outline::Ellipse {
            width_mm,
            height_mm,
        } => {
            let a = body.major_axis_deg();
            let base = if width_mm >= height_mm { a } else { a + 90.0 };
            vec![base]
        }
        Outline::Square { .. } => (0..30).map(|i| i as f64 * 3.0).collect(),
    };
    let body_box = mask_box(&body.mask);
    let iou_at = |c: (f64, f64), r: f64| outline_iou(body, valid, geo, outline, c, r, body_box);
    let mut best = (f64::MIN, centre0, 0.0);
    for rot in rots {
        let iou = iou_at(centre0, rot);
        if iou > best.0 {
            best = (iou, centre0, rot);
        }
    }
    // Hill-climb the centre (and the angle for squares), in pixel then half-pixel steps.
    let step0 = geo.px[0].max(geo.px[1]);
    for step in [4.0 * step0, step0, 0.5 * step0] {
        for _ in 0..40 {
            let mut improved = false;
            let (iou0, (cx, cy), rot) = best;
            let mut cands = vec![
                ((cx + step, cy), rot),
                ((cx - step, cy), rot),
                ((cx, cy + step), rot),
                ((cx, cy - step), rot),
            ];
            if matches!(outline, Outline::Square { .. } | Outline::Ellipse { .. }) {
                cands.push(((cx, cy), rot + step / step0));
                cands.push(((cx, cy), rot - step / step0));
            }
            for (c, r) in cands {
                let iou = iou_at(c, r);
                if iou > iou0 + 1e-9 && iou > best.0 {
                    best = (iou, c, r);
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(px: f64) -> Geo {
        Geo {
            px: [px, px],
            origin: [0.0, 0.0],
        }
    }

    #[test]
    fn couch_is_removed_and_ellipse_fits() {
        let g = geo(2.0);
        let (rows, cols) = (200, 200);
        let outline = Outline::Ellipse {
            width_mm: 330.0,
            height_mm: 270.0,
        };
        let centre = (210.0, 190.0);
        let img = Array2::from_shape_fn((rows, cols), |(r, c)| {
            let x = c as f64 * 2.0;
            let y = r as f64 * 2.0;
            if inside_outline(&outline, centre, 20.0, x, y) {
                0.0
            } else if (330.0..334.0).contains(&y) {
                300.0 // a couch plate
            } else {
                -1000.0
            }
        });
        let body = segment(img.view(), &g).unwrap();
        let valid = img.mapv(|v| v.is_finite());
        let (iou, c, rot) = fit_outline(&body, &valid, &g, &outline);
        assert!(iou > 0.95, "iou {iou}");
        assert!(
            (c.0 - centre.0).abs() < 2.0 && (c.1 - centre.1).abs() < 2.0,
            "{c:?}"
        );
        assert!((rot - 20.0).abs() < 2.0, "rot {rot}");
        let wrong = fit_outline(&body, &valid, &g, &Outline::Square { side_mm: 180.0 });
        assert!(wrong.0 < 0.7, "square iou {}", wrong.0);
    }
}
