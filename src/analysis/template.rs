//! Fitting a definition's hole template to an image: per-hole contrast, rotation search, pose
//! refinement. Inserts with no contrast (water in a water-equivalent body) are still placed,
//! because the template is fitted on the holes that do show.

use super::image::{annulus_stats, disc_median, for_each_in_annulus, median};
use super::{Geo, Pose};
use crate::phantom::{Hole, PhantomDef};
use ndarray::ArrayView2;

/// Contrast of one hole at one placement.
#[derive(Debug, Clone, Copy)]
pub struct HoleContrast {
    /// |inner − outer|, HU (0 when either is not measurable).
    pub contrast: f64,
    /// Fraction of the hole's disc with no data.
    pub missing: f64,
}

/// Where a hole of the template lands in the image frame (mm).
pub fn hole_xy(hole: &Hole, pose: &Pose) -> (f64, f64) {
    rotate_xy(hole.x_mm, hole.y_mm, pose)
}

pub fn rotate_xy(px: f64, py: f64, pose: &Pose) -> (f64, f64) {
    let (s, c) = pose.rotation_deg.to_radians().sin_cos();
    (
        pose.centre_x_mm + px * c - py * s,
        pose.centre_y_mm + px * s + py * c,
    )
}

/// Contrast of a disc of radius `r` (mm) at (x, y) against the ring just outside it. The ring's
/// median is used, so that a ring reaching past the body edge (outer CIRS holes) or touching a
/// neighbour does not pull the fit.
pub fn contrast_at(img: ArrayView2<f32>, geo: &Geo, x: f64, y: f64, r: f64) -> HoleContrast {
    let centre = (geo.row_of(y), geo.col_of(x));
    let pxmax = geo.px[0].max(geo.px[1]);
    let r_in = (r - 0.75 * pxmax).max(0.5 * r);
    let inner = annulus_stats(img, centre, 0.0, r_in, geo.px);
    let (rows, cols) = img.dim();
    let mut ring: Vec<f32> = Vec::new();
    for_each_in_annulus(
        rows,
        cols,
        centre,
        r + 1.0 + 0.5 * pxmax,
        r + 3.0 + pxmax,
        geo.px,
        |rr, cc| {
            let v = img[[rr, cc]];
            if v.is_finite() {
                ring.push(v);
            }
        },
    );
    let total = (inner.n + inner.n_nan).max(1) as f64;
    let missing = inner.n_nan as f64 / total;
    let (mi, mo) = (inner.mean(), median(&mut ring));
    let contrast = if mi.is_finite() && mo.is_finite() {
        (mi - mo).abs()
    } else {
        0.0
    };
    HoleContrast { contrast, missing }
}

pub fn hole_contrasts(
    img: ArrayView2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    pose: &Pose,
) -> Vec<HoleContrast> {
    def.holes
        .iter()
        .map(|h| {
            let (x, y) = hole_xy(h, pose);
            contrast_at(img, geo, x, y, h.radius_mm)
        })
        .collect()
}

/// The objective the template fit maximises: the summed contrast of all holes.
pub fn template_score(img: ArrayView2<f32>, geo: &Geo, def: &PhantomDef, pose: &Pose) -> f64 {
    hole_contrasts(img, geo, def, pose)
        .iter()
        .map(|h| h.contrast)
        .sum()
}

/// Number of holes the layout expects to show contrast against the body.
pub fn expected_visible(def: &PhantomDef) -> usize {
    if def.layout.is_empty() {
        // Plugs placed by the user (no layout): most of them differ from the body; a few may
        // not (solid water in a solid-water body).
        return (def.holes.len() as f64 * EXPECTED_VISIBLE_WITHOUT_LAYOUT).ceil() as usize;
    }
    def.holes
        .iter()
        .filter(|h| {
            def.layout
                .get(&h.id)
                .and_then(|m| def.material(m))
                .map(|m| (m.hu_expected - def.body_hu).abs() >= VISIBLE_HU * 2.0)
                .unwrap_or(false)
        })
        .count()
}

/// Fraction of the holes expected to show when the definition has no layout.
const EXPECTED_VISIBLE_WITHOUT_LAYOUT: f64 = 0.75;

/// A hole "shows" when its contrast exceeds this (HU).
pub const VISIBLE_HU: f64 = 25.0;

/// Fraction (0..1) of the expected-visible holes that show at this pose.
pub fn evidence(contrasts: &[HoleContrast], def: &PhantomDef) -> f64 {
    let expected = expected_visible(def).max(1);
    let seen = contrasts
        .iter()
        .filter(|c| c.contrast >= VISIBLE_HU && c.missing < 0.5)
        .count();
    (seen as f64 / expected as f64).min(1.0)
}

/// Search the rotation (over `angles`) at a fixed centre; returns (score, rotation).
pub fn best_rotation(
    img: ArrayView2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    centre: (f64, f64),
    angles: impl Iterator<Item = f64>,
) -> (f64, f64) {
    let mut best = (f64::MIN, 0.0);
    for a in angles {
        let pose = Pose {
            centre_x_mm: centre.0,
            centre_y_mm: centre.1,
            rotation_deg: a,
        };
        let s = template_score(img, geo, def, &pose);
        if s > best.0 {
            best = (s, a);
        }
    }
    best
}

/// Local refinement of centre and rotation by coordinate ascent on the template score.
/// `steps`: (shift mm, angle deg) pairs from coarse to fine. `allow_rotation` false keeps the
/// angle (e.g. a detection phantom).
pub fn refine_pose(
    img: ArrayView2<f32>,
    geo: &Geo,
    def: &PhantomDef,
    start: Pose,
    steps: &[(f64, f64)],
) -> (f64, Pose) {
    let mut pose = start;
    let mut score = template_score(img, geo, def, &pose);
    for &(dmm, dang) in steps {
        for _ in 0..30 {
            let mut improved = false;
            let cands = [
                (dmm, 0.0, 0.0),
                (-dmm, 0.0, 0.0),
                (0.0, dmm, 0.0),
                (0.0, -dmm, 0.0),
                (0.0, 0.0, dang),
                (0.0, 0.0, -dang),
            ];
            for (dx, dy, da) in cands {
                if dx == 0.0 && dy == 0.0 && da == 0.0 {
                    continue;
                }
                let p = Pose {
                    centre_x_mm: pose.centre_x_mm + dx,
                    centre_y_mm: pose.centre_y_mm + dy,
                    rotation_deg: pose.rotation_deg + da,
                };
                let s = template_score(img, geo, def, &p);
                if s > score + 1e-9 {
                    score = s;
                    pose = p;
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        }
    }
    (score, pose)
}

/// Centre of the insert near (x, y): the centroid of its "insert-ness" (pixel HU rescaled so
/// that the surrounding body is 0 and the insert's median is 1, not clipped, so that the noise
/// averages out) in a window of radius r + 1.5 mm, iterated from the template position. Unbiased
/// for a blurred disc, and it uses every pixel of the insert — a contrast maximum over shifted
/// discs is flat for shifts smaller than the ROI margin and follows the noise there.
pub fn centroid(img: ArrayView2<f32>, geo: &Geo, x: f64, y: f64, r: f64) -> Option<(f64, f64)> {
    let (rows, cols) = img.dim();
    let pxmax = geo.px[0].max(geo.px[1]);
    let (mut cx, mut cy) = (x, y);
    for _ in 0..3 {
        let inside = disc_median(img, geo, cx, cy, (r - 1.5 * pxmax).max(0.5 * r));
        let mut ring = Vec::new();
        for_each_in_annulus(
            rows,
            cols,
            (geo.row_of(cy), geo.col_of(cx)),
            r + 1.5 + pxmax,
            r + 3.5 + pxmax,
            geo.px,
            |rr, cc| {
                let v = img[[rr, cc]];
                if v.is_finite() {
                    ring.push(v);
                }
            },
        );
        let outside = median(&mut ring);
        let contrast = inside - outside;
        if !(contrast.is_finite() && contrast.abs() > 1e-6) {
            return None;
        }
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        let mut nan = false;
        for_each_in_annulus(
            rows,
            cols,
            (geo.row_of(cy), geo.col_of(cx)),
            0.0,
            r + 1.5,
            geo.px,
            |rr, cc| {
                let v = img[[rr, cc]];
                if !v.is_finite() {
                    nan = true;
                    return;
                }
                let w = (v as f64 - outside) / contrast;
                sw += w;
                sx += w * geo.x_of(cc as f64);
                sy += w * geo.y_of(rr as f64);
            },
        );
        if nan || sw <= 0.0 {
            return None;
        }
        let (nx, ny) = (sx / sw, sy / sw);
        let moved = (nx - cx).hypot(ny - cy);
        cx = nx;
        cy = ny;
        if moved < 0.01 {
            break;
        }
    }
    Some((cx, cy))
}

/// Normalise an angle to (-180, 180].
pub fn wrap_deg(a: f64) -> f64 {
    let mut a = a % 360.0;
    if a <= -180.0 {
        a += 360.0;
    }
    if a > 180.0 {
        a -= 360.0;
    }
    a
}
