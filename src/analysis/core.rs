//! ROIs that fit what is in the hole: the homogeneous core of an insert, found from the image.
//!
//! Real inserts are not always a uniform disc that fills its hole: a dense-bone rod can be a
//! 10 mm core in a 30 mm water-equivalent sleeve, a vial has a wall, a water insert can hold an
//! air bubble at its centre. An ROI placed by the definition alone would average those together
//! and print a confident, wrong number. Here each hole is examined on the slab-mean image:
//!
//! 1. the radial profile around the hole centre is searched for an inner edge (a step between
//!    the centre and the rest of the hole that stands out of the noise);
//! 2. with an edge, the region that is the material is kept: the inner disc when it is large
//!    enough to measure (a rod, a vial's content) — unless the definition expects a material
//!    that the ring around it matches better (a central void) — else the annulus around it;
//! 3. the ROI stays at least [`EDGE_MARGIN_PX`] pixels inside every edge found;
//! 4. pixels inside the ROI that still stand out (an off-centre bubble, a streak) are excluded
//!    together with a margin around them, and counted, never averaged in;
//! 5. fewer than [`MIN_CORE_PX`] pixels left → the hole is refused with the reason.
//!
//! Pure: an image, a geometry and numbers in; a [`Core`] or a refusal out.

use super::image::median;
use super::{CoreKind, Geo};
use ndarray::ArrayView2;

/// Every ROI edge stays at least this many pixels inside every edge it was fitted to.
pub const EDGE_MARGIN_PX: f64 = 2.0;
/// A core must hold at least this many pixels on one slice to be measured.
pub const MIN_CORE_PX: usize = 20;
/// An inner edge must be at least this strong (HU) besides standing out of the noise.
const MIN_STEP_HU: f64 = 12.0;
/// ... and this many standard errors of the step.
const STEP_SIGMAS: f64 = 6.0;
/// A rod narrower than this fraction of its hole is re-centred on itself.
const RECENTRE_BELOW: f64 = 0.7;
/// Pixels farther than this many robust standard deviations from the core's median are outliers.
const OUTLIER_SIGMAS: f64 = 5.0;
/// ... and at least this far (HU): noise-free images have a zero spread.
const OUTLIER_MIN_HU: f64 = 40.0;

/// The ROI fitted inside one hole, in the full-resolution image frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Core {
    pub x: f64,
    pub y: f64,
    /// Inner radius of the ROI (0 for a disc), mm.
    pub r_in: f64,
    /// Outer radius of the ROI, mm.
    pub r_out: f64,
    pub kind: CoreKind,
    /// Radius of the inner structure found (rod, vial content, void), mm.
    pub feature_r: Option<f64>,
    /// Pixels (row, col) inside the ROI excluded as outliers (with their margin).
    pub excluded: Vec<(usize, usize)>,
    /// Pixels of the ROI on one slice, after exclusions.
    pub n_px: usize,
}

/// What the caller knows about the hole.
#[derive(Debug, Clone, Copy)]
pub struct HoleSpec {
    pub x: f64,
    pub y: f64,
    /// Radius of the hole (or detected rod), mm.
    pub radius: f64,
    /// ROI radius as a fraction of the hole radius when the insert fills its hole.
    pub fraction: f64,
    /// The HU the definition expects in this hole, when it says (layout).
    pub expected_hu: Option<f64>,
}

/// Fit the core of the insert in `hole` on `img` (the slab mean). `Err` says why no core large
/// enough exists.
pub fn fit(img: ArrayView2<f32>, geo: &Geo, hole: &HoleSpec) -> Result<Core, String> {
    let px = geo.px[0].max(geo.px[1]);
    let margin = EDGE_MARGIN_PX * px;
    let r_hole = hole.radius;
    let disc_r = (hole.fraction * r_hole).min(r_hole - margin);
    let profile = Profile::around(img, geo, hole.x, hole.y, r_hole);
    let step = profile.strongest_step(px, r_hole - margin - 1.0 * px);

    let (x, y, kind, r_in, r_out, feature_r) = match step {
        None => (hole.x, hole.y, CoreKind::Disc, 0.0, disc_r, None),
        Some(s) => {
            let inner_usable = area_px(s.edge - margin, 0.0, geo) >= MIN_CORE_PX;
            let ann_out = disc_r.max(s.edge + margin + px).min(r_hole - margin);
            let annulus_usable = area_px(ann_out, s.edge + margin, geo) >= MIN_CORE_PX;
            // Which region is the material: the one closer to what the definition expects;
            // without an expectation, the inner one when it can be measured (a rod or a vial
            // narrower than its hole), else the ring around a central void (a void reads
            // lower than the insert around it; a thin dense rod is refused, not replaced by
            // its sleeve).
            let inner_is_material = match hole.expected_hu {
                Some(e) => (s.inner - e).abs() <= (s.outer - e).abs(),
                None => inner_usable || s.inner > s.outer,
            };
            let too_small = |what: &str| {
                format!(
                    "no homogeneous core of {MIN_CORE_PX} pixels: the hole holds a structure of radius {:.1} mm ({:.0} HU inside, {:.0} HU around it) and {what} is too small to measure {EDGE_MARGIN_PX} pixels inside its edges at {:.2} mm pixels",
                    s.edge, s.inner, s.outer, px
                )
            };
            if inner_is_material {
                if !inner_usable {
                    return Err(too_small("the inner part (a rod narrower than its hole?)"));
                }
                // A rod much narrower than its hole need not sit in its middle: centre the
                // ROI on the rod. (An edge close to the hole's own is the hole, already placed.)
                let (cx, cy) = if s.edge < RECENTRE_BELOW * r_hole {
                    recentre(img, geo, hole.x, hole.y, s.edge, r_hole - s.edge)
                } else {
                    (hole.x, hole.y)
                };
                (cx, cy, CoreKind::Rod, 0.0, s.edge - margin, Some(s.edge))
            } else {
                if !annulus_usable {
                    return Err(too_small("the ring around it"));
                }
                (
                    hole.x,
                    hole.y,
                    CoreKind::Annulus,
                    s.edge + margin,
                    ann_out,
                    Some(s.edge),
                )
            }
        }
    };
    if r_out <= r_in || area_px(r_out, r_in, geo) < MIN_CORE_PX {
        return Err(format!(
            "no homogeneous core of {MIN_CORE_PX} pixels (ROI {:.1}…{:.1} mm at {:.2} mm pixels)",
            r_in, r_out, px
        ));
    }
    let (excluded, n_px) = outliers(img, geo, x, y, r_in, r_out, margin);
    if n_px < MIN_CORE_PX {
        return Err(format!(
            "no homogeneous core of {MIN_CORE_PX} pixels: {} of the ROI's pixels differ from the rest (voids, bubbles or streaks)",
            excluded.len()
        ));
    }
    Ok(Core {
        x,
        y,
        r_in,
        r_out,
        kind,
        feature_r,
        excluded,
        n_px,
    })
}

/// Pixels of an annulus `r_in..r_out` (mm) on this geometry.
fn area_px(r_out: f64, r_in: f64, geo: &Geo) -> usize {
    if r_out <= r_in || r_out <= 0.0 {
        return 0;
    }
    let a = std::f64::consts::PI * (r_out * r_out - r_in.max(0.0).powi(2));
    (a / (geo.px[0] * geo.px[1])).floor() as usize
}

/// Pixel values around a centre, sorted by distance.
struct Profile {
    /// (distance mm, value), finite values only, sorted by distance.
    pts: Vec<(f64, f32)>,
}

/// An inner edge: the step between the centre and the rest of the hole.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Radius of the edge (half-way between the two levels), mm.
    edge: f64,
    /// Median inside and outside the edge, HU.
    inner: f64,
    outer: f64,
}

impl Profile {
    fn around(img: ArrayView2<f32>, geo: &Geo, x: f64, y: f64, r: f64) -> Profile {
        let mut pts = Vec::new();
        let (rows, cols) = img.dim();
        let (cr, cc) = (geo.row_of(y), geo.col_of(x));
        super::image::for_each_in_annulus(rows, cols, (cr, cc), 0.0, r, geo.px, |rr, c| {
            let v = img[[rr, c]];
            if v.is_finite() {
                let d = ((rr as f64 - cr) * geo.px[0]).hypot((c as f64 - cc) * geo.px[1]);
                pts.push((d, v));
            }
        });
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        Profile { pts }
    }

    fn values(&self, lo: f64, hi: f64) -> Vec<f32> {
        let a = self.pts.partition_point(|p| p.0 < lo);
        let b = self.pts.partition_point(|p| p.0 <= hi);
        self.pts[a..b.max(a)].iter().map(|p| p.1).collect()
    }

    /// The strongest significant step between a central disc and the ring around it, with the
    /// edge between 1.5 pixels from the centre and `r_max`: the least-squares change point of
    /// the values sorted by distance (unbiased for a blurred step), accepted when the two
    /// levels (medians, 1.5 pixels away from the edge on each side) differ by at least
    /// [`MIN_STEP_HU`] and [`STEP_SIGMAS`] standard errors.
    fn strongest_step(&self, px: f64, r_max: f64) -> Option<Step> {
        let gap = 1.5 * px;
        let n = self.pts.partition_point(|p| p.0 <= r_max + gap);
        if n < 2 * MIN_CORE_PX {
            return None;
        }
        let pts = &self.pts[..n];
        let total: f64 = pts.iter().map(|p| p.1 as f64).sum();
        let mut sum_in = 0.0;
        let mut best: Option<(f64, usize)> = None;
        for k in 1..n {
            sum_in += pts[k - 1].1 as f64;
            let r = pts[k - 1].0;
            if r < 1.5 * px || r > r_max || pts[k].0 == r {
                continue;
            }
            let (ni, no) = (k as f64, (n - k) as f64);
            let d = sum_in / ni - (total - sum_in) / no;
            let t = d * d * ni * no / (ni + no);
            if best.is_none_or(|b| t > b.0) {
                best = Some((t, k));
            }
        }
        let (_, k) = best?;
        let rho = 0.5 * (pts[k - 1].0 + pts[k].0);
        let mut inner = self.values(0.0, rho - gap);
        let mut outer = self.values(rho + gap, r_max + gap);
        if inner.len() < 5 || outer.len() < 5 {
            return None;
        }
        let noise = robust_sigma(pts, r_max + gap);
        let (mi, mo) = (median(&mut inner), median(&mut outer));
        let se = 1.25 * noise * (1.0 / inner.len() as f64 + 1.0 / outer.len() as f64).sqrt();
        let d = (mi - mo).abs();
        if d < MIN_STEP_HU || d < STEP_SIGMAS * se {
            return None;
        }
        let s = Step {
            edge: rho,
            inner: mi,
            outer: mo,
        };
        Some(Step {
            edge: self.crossing(s, px).unwrap_or(rho),
            ..s
        })
    }

    /// Where the profile crosses half-way between the two levels, near the step's first guess:
    /// the edge of a blurred disc.
    fn crossing(&self, s: Step, px: f64) -> Option<f64> {
        let mid = 0.5 * (s.inner + s.outer);
        let bin = 0.5 * px;
        let lo = (s.edge - 3.0 * px).max(0.0);
        let hi = s.edge + 3.0 * px;
        let mut prev: Option<(f64, f64)> = None;
        let mut r = lo;
        while r < hi {
            let mut v = self.values(r, r + bin);
            if !v.is_empty() {
                let m = median(&mut v) - mid;
                let c = r + 0.5 * bin;
                if let Some((pc, pm)) = prev {
                    if pm == 0.0 || (pm < 0.0) != (m < 0.0) {
                        // Linear interpolation between the two bin centres.
                        let t = if (m - pm).abs() > 1e-9 {
                            pm / (pm - m)
                        } else {
                            0.5
                        };
                        return Some(pc + t * (c - pc));
                    }
                }
                prev = Some((c, m));
            }
            r += bin;
        }
        None
    }
}

/// Robust pixel noise of the hole: 1.4826 × the median absolute deviation of each value from the
/// median of its 1-pixel-wide ring (so that a step does not count as noise).
fn robust_sigma(pts: &[(f64, f32)], r_max: f64) -> f64 {
    let mut dev: Vec<f32> = Vec::with_capacity(pts.len());
    let mut i = 0;
    while i < pts.len() && pts[i].0 <= r_max {
        let r0 = pts[i].0;
        let mut j = i;
        while j < pts.len() && pts[j].0 < r0 + 1.0 {
            j += 1;
        }
        let mut ring: Vec<f32> = pts[i..j].iter().map(|p| p.1).collect();
        let m = median(&mut ring) as f32;
        dev.extend(pts[i..j].iter().map(|p| (p.1 - m).abs()));
        i = j;
    }
    let mad = median(&mut dev);
    if mad.is_finite() {
        1.4826 * mad
    } else {
        0.0
    }
}

/// Centre of a disc of radius `r` inside the hole, within `reach` (at most 4 mm) of the hole
/// centre: where the disc's contrast to the ring around it is highest.
fn recentre(img: ArrayView2<f32>, geo: &Geo, x: f64, y: f64, r: f64, reach: f64) -> (f64, f64) {
    let c0 = super::template::contrast_at(img, geo, x, y, r);
    if c0.contrast <= 0.0 {
        return (x, y);
    }
    // Coarse-to-fine pattern search of the disc position maximising its contrast to the ring
    // around it (cheaper than a full grid; enough for one disc).
    let fine = 0.25 * geo.px[0].min(geo.px[1]);
    let reach = reach.clamp(0.0, 4.0);
    let (mut bx, mut by, mut bc) = (x, y, c0.contrast);
    let mut s = 4.0 * fine;
    while s >= fine - 1e-12 {
        let mut improved = true;
        while improved {
            improved = false;
            let (cx, cy) = (bx, by);
            for (dx, dy) in [(s, 0.0), (-s, 0.0), (0.0, s), (0.0, -s)] {
                let (nx, ny) = (cx + dx, cy + dy);
                if (nx - x).hypot(ny - y) > reach + 1e-9 {
                    continue;
                }
                let c = super::template::contrast_at(img, geo, nx, ny, r).contrast;
                if c > bc + 1e-9 {
                    (bx, by, bc) = (nx, ny, c);
                    improved = true;
                }
            }
        }
        s /= 2.0;
    }
    (bx, by)
}

/// Outliers inside the ROI: pixels of the slab mean farther than max(5σ, 40 HU) from the ROI's
/// median, with a margin of `margin` mm around each. Returns the excluded pixels and the number
/// of pixels left.
fn outliers(
    img: ArrayView2<f32>,
    geo: &Geo,
    x: f64,
    y: f64,
    r_in: f64,
    r_out: f64,
    margin: f64,
) -> (Vec<(usize, usize)>, usize) {
    let (rows, cols) = img.dim();
    let centre = (geo.row_of(y), geo.col_of(x));
    let mut px: Vec<(usize, usize, f32)> = Vec::new();
    super::image::for_each_in_annulus(rows, cols, centre, r_in, r_out, geo.px, |r, c| {
        px.push((r, c, img[[r, c]]))
    });
    let mut vals: Vec<f32> = px.iter().map(|p| p.2).filter(|v| v.is_finite()).collect();
    let med = median(&mut vals);
    let mut dev: Vec<f32> = px
        .iter()
        .filter(|p| p.2.is_finite())
        .map(|p| (p.2 as f64 - med).abs() as f32)
        .collect();
    let sigma = 1.4826 * median(&mut dev);
    let thr = (OUTLIER_SIGMAS * sigma).max(OUTLIER_MIN_HU);
    let bad: Vec<(usize, usize)> = px
        .iter()
        .filter(|p| p.2.is_finite() && (p.2 as f64 - med).abs() > thr)
        .map(|p| (p.0, p.1))
        .collect();
    if bad.is_empty() {
        return (Vec::new(), px.len());
    }
    // Grow each outlier by the margin (the edge of a void is blurred like any edge).
    let reach_r = (margin / geo.px[0]).ceil() as isize;
    let reach_c = (margin / geo.px[1]).ceil() as isize;
    let in_roi: std::collections::HashSet<(usize, usize)> = px.iter().map(|p| (p.0, p.1)).collect();
    let mut excluded: std::collections::BTreeSet<(usize, usize)> = Default::default();
    for (r, c) in bad {
        for dr in -reach_r..=reach_r {
            for dc in -reach_c..=reach_c {
                let d = (dr as f64 * geo.px[0]).hypot(dc as f64 * geo.px[1]);
                if d > margin + 1e-9 {
                    continue;
                }
                let (rr, cc) = (r as isize + dr, c as isize + dc);
                if rr < 0 || cc < 0 {
                    continue;
                }
                let p = (rr as usize, cc as usize);
                if in_roi.contains(&p) {
                    excluded.insert(p);
                }
            }
        }
    }
    let n_left = px.len() - excluded.len();
    (excluded.into_iter().collect(), n_left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    const PX: f64 = 0.5;

    fn geo() -> Geo {
        Geo {
            px: [PX, PX],
            origin: [0.0, 0.0],
        }
    }

    /// A 200×200 image at 0.5 mm: body `body`, a hole of radius `r` at (50, 50) mm filled by
    /// `f(distance)`; deterministic pseudo-noise of `sigma`.
    fn image(r: f64, body: f32, sigma: f32, f: impl Fn(f64) -> f32) -> Array2<f32> {
        let mut state: u64 = 12345;
        Array2::from_shape_fn((200, 200), |(row, col)| {
            let d = ((row as f64 * PX) - 50.0).hypot((col as f64 * PX) - 50.0);
            // xorshift → approximately normal (sum of 4 uniforms)
            let mut n = 0.0f32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                n += (state % 10_000) as f32 / 10_000.0 - 0.5;
            }
            let noise = n * sigma * (3.0f32).sqrt();
            (if d <= r { f(d) } else { body }) + noise
        })
    }

    fn spec(r: f64, expected: Option<f64>) -> HoleSpec {
        HoleSpec {
            x: 50.0,
            y: 50.0,
            radius: r,
            fraction: 0.65,
            expected_hu: expected,
        }
    }

    fn mean_of(img: &Array2<f32>, c: &Core) -> f64 {
        let g = geo();
        let mut s = 0.0;
        let mut n = 0;
        let ex: std::collections::HashSet<_> = c.excluded.iter().copied().collect();
        super::super::image::for_each_in_annulus(
            200,
            200,
            (g.row_of(c.y), g.col_of(c.x)),
            c.r_in,
            c.r_out,
            g.px,
            |r, cc| {
                if !ex.contains(&(r, cc)) {
                    s += img[[r, cc]] as f64;
                    n += 1;
                }
            },
        );
        s / n as f64
    }

    #[test]
    fn uniform_insert_gives_the_fractional_disc() {
        let img = image(15.0, 0.0, 5.0, |_| 50.0);
        let c = fit(img.view(), &geo(), &spec(15.0, Some(55.0))).unwrap();
        assert_eq!(c.kind, CoreKind::Disc);
        assert!((c.r_out - 9.75).abs() < 1e-9, "{c:?}");
        assert!(c.excluded.is_empty());
        assert!((mean_of(&img, &c) - 50.0).abs() < 1.0);
    }

    #[test]
    fn rod_in_a_sleeve_is_measured_in_the_rod() {
        let img = image(15.0, 0.0, 10.0, |d| if d <= 5.0 { 1145.0 } else { 0.0 });
        let c = fit(img.view(), &geo(), &spec(15.0, Some(950.0))).unwrap();
        assert_eq!(c.kind, CoreKind::Rod, "{c:?}");
        let edge = c.feature_r.unwrap();
        assert!((edge - 5.0).abs() < 0.3, "edge {edge}");
        assert!(c.r_out <= 5.0 - 2.0 * PX + 0.3);
        assert!((mean_of(&img, &c) - 1145.0).abs() < 3.0);
    }

    #[test]
    fn central_void_is_left_out_of_an_annulus() {
        let img = image(15.0, 0.0, 10.0, |d| if d <= 1.5 { -1000.0 } else { 12.0 });
        let c = fit(img.view(), &geo(), &spec(15.0, Some(0.0))).unwrap();
        assert_eq!(c.kind, CoreKind::Annulus, "{c:?}");
        assert!(c.r_in >= 1.5 + 2.0 * PX - 0.3, "{c:?}");
        assert!(
            (mean_of(&img, &c) - 12.0).abs() < 1.5,
            "{}",
            mean_of(&img, &c)
        );
    }

    #[test]
    fn off_centre_bubble_is_excluded_and_counted() {
        let img = image(15.0, 0.0, 5.0, |_| 12.0);
        let mut img = img;
        // A 1 mm bubble 4 mm right of the centre.
        for ((r, c), v) in img.indexed_iter_mut() {
            let d = ((r as f64 * PX) - 50.0).hypot((c as f64 * PX) - 54.0);
            if d <= 1.0 {
                *v = -1000.0;
            }
        }
        let c = fit(img.view(), &geo(), &spec(15.0, Some(0.0))).unwrap();
        assert!(!c.excluded.is_empty());
        assert!((mean_of(&img, &c) - 12.0).abs() < 1.0);
    }

    #[test]
    fn too_thin_a_rod_is_refused() {
        // A 1.5 mm radius rod: with the 2-pixel margin at 1 mm pixels nothing is left.
        let g = Geo {
            px: [1.0, 1.0],
            origin: [0.0, 0.0],
        };
        let img = Array2::from_shape_fn((100, 100), |(r, c)| {
            let d = (r as f64 - 50.0).hypot(c as f64 - 50.0);
            if d <= 2.5 {
                1200.0
            } else {
                0.0
            }
        });
        let s = HoleSpec {
            x: 50.0,
            y: 50.0,
            radius: 15.0,
            fraction: 0.65,
            expected_hu: Some(1200.0),
        };
        let e = fit(img.view(), &g, &s).unwrap_err();
        assert!(
            e.contains("no homogeneous core") && e.contains("inner part"),
            "{e}"
        );
        // Without an expectation a thin dense rod is refused too (never its sleeve instead).
        let e = fit(
            img.view(),
            &g,
            &HoleSpec {
                expected_hu: None,
                ..s
            },
        )
        .unwrap_err();
        assert!(e.contains("inner part"), "{e}");
    }
}
