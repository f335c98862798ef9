//! Rods of a phantom without a published layout (Easy Cube): found by their contrast to the
//! body, then completed from the pattern they sit on.
//!
//! # The rule
//!
//! 1. **Contrast, blind.** Pixels of the body interior (≥ 4 mm inside its edge) that differ from
//!    the body level (median) by more than max(4σ, 30 HU) (σ = 1.4826 × MAD of the body pixels)
//!    are grouped (enclosed gaps filled, speckle opened away); round groups of 4–30 mm radius are
//!    rods, their radius taken where the edge crosses half the rod's contrast. Water (≈ 0 HU) or
//!    muscle (≈ +50 HU) in a water-equivalent body is not (or only in part) seen this way at
//!    20 HU noise.
//! 2. **Pattern.** From at least [`MIN_BLIND`] such rods of one size (radius within 15 % of the
//!    median) the arrangement is inferred, generically:
//!    - **ring**: rods at one distance from the body centre whose angles are multiples of 360°/n
//!      (the smallest n that fits; n limited so that neighbouring rods do not overlap); several
//!      distances make several rings. The common centre is a site as well when the innermost ring
//!      leaves room for a rod there (the simulated Easy Cube: a ring + a centre rod);
//!    - **grid**: rods on a lattice aligned with the outline (per axis the largest spacing that
//!      fits, at least a rod diameter), the sites being the nodes of the block the rods span.
//!
//!    A pattern is least-squares fitted to its rods and kept when every rod lies within
//!    max(1.5 mm, 0.75 px) of its site. A rod seen blind but not fitted (a low-contrast rod
//!    thresholded in part: smaller, its centroid off) whose centre lies within a rod radius of an
//!    empty site is that site's rod, measured at the site; other pieces there are the same rod.
//!    Sites outside the body, or overlapping another rod, are dropped.
//! 3. **Matched filter at each empty site**: the mean of a disc of the rods' radius (less one
//!    pixel, at least 1 mm) against the median of a ring 1–3 mm outside it, on the slab mean. A rod
//!    is found there by **contrast** when |Δ| > max([`K_SIGMA`] σ_Δ, [`MIN_CONTRAST_HU`]), σ_Δ
//!    being the noise of that difference (pixel σ × √n_corr × √(1/N_disc + π/2 / N_ring), n_corr
//!    from the variance of 2 × 2 block means). For a ring, the sites of n' = 2n, 3n, … are tested
//!    the same way (rods between the ones found) and adopted only when one of them shows contrast.
//! 4. **Certain pattern**: when rods found by contrast (blind or matched filter) occupy more than
//!    half of the pattern's sites, its remaining sites are rods too and are measured where the
//!    pattern puts them, even at zero contrast (found by **pattern**): a water rod in a
//!    water-equivalent body is real and measurable, and its ROI is placed by geometry, known from
//!    the other rods, not by the image. If a phantom has no rod at such a site, the ROI reads the
//!    body there; the result says which rods were found by pattern.
//! 5. Otherwise the empty sites are not measured. Of several patterns that fit, the certain one,
//!    then the one whose sites hold most rods, then the one with fewer sites (a ring on a tie)
//!    wins. No rod is ever placed where no site of a pattern is.
//!
//! # Where
//!
//! - this file: the entry [`find`] and what it returns;
//! - `blind`: step 1 (body level and noise, rods by contrast, the block-mean reduction);
//! - `pattern`: step 2 (ring and grid candidates fitted by least squares);
//! - `sites`: steps 3–5 (matched filter at the empty sites, the choice of a pattern, completion).

mod blind;
mod pattern;
mod sites;

pub use blind::reduce;

use super::body::Body;
use super::image::{erode, Mask};
use super::{FoundBy, Geo};
use blind::{detect_blind, Noise};
use ndarray::ArrayView2;
use sites::complete;

#[derive(Debug, Clone)]
pub struct Rod {
    /// Centre in the image frame, mm.
    pub x_mm: f64,
    pub y_mm: f64,
    /// Radius of the detected disc, mm (area-equivalent; for rods found at a pattern site, the
    /// median radius of the rods of the pattern).
    pub radius_mm: f64,
    pub found_by: FoundBy,
    /// Disc mean − ring median at the site (matched filter), HU; NaN for rods found blind.
    pub contrast_hu: f64,
    /// Where the rod sits in the pattern ("ring 50 mm, site 3/5", "centre", "grid row 1,
    /// column 2").
    pub site: Option<String>,
}

/// Smallest and largest rod radius considered, mm.
const MIN_R_MM: f64 = 4.0;
const MAX_R_MM: f64 = 30.0;
/// Rods found blind needed before a pattern is inferred.
pub const MIN_BLIND: usize = 3;
/// Matched-filter acceptance: this many standard deviations of the disc − ring difference...
pub const K_SIGMA: f64 = 5.0;
/// ... and at least this contrast, HU.
pub const MIN_CONTRAST_HU: f64 = 10.0;
/// Fit tolerance of a rod to its site: max(this, `TOL_PX` pixels), mm.
const TOL_MM: f64 = 1.5;
const TOL_PX: f64 = 0.75;
/// Rods fitted to a pattern have radii within this fraction of the median.
const RADIUS_SPREAD: f64 = 0.15;
/// Clearance between neighbouring rods of a pattern, mm.
const MIN_GAP_MM: f64 = 1.0;
/// Largest number of sites on one ring.
const MAX_RING_SITES: usize = 24;

/// What [`find`] saw.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Every rod: those found blind first (in label order), then the pattern's.
    pub rods: Vec<Rod>,
    /// Rods found blind (by contrast, before the pattern).
    pub blind: usize,
    /// The pattern the rods sit on, if one fits.
    pub pattern: Option<PatternInfo>,
}

/// The pattern chosen, for messages.
#[derive(Debug, Clone)]
pub struct PatternInfo {
    /// "ring of 5 rods (radius 50.0 mm) + centre".
    pub description: String,
    pub sites: usize,
    /// Sites holding a rod found by contrast (blind or matched filter).
    pub by_contrast: usize,
    /// More than half of the sites hold a rod found by contrast: the others are measured too.
    pub certain: bool,
    /// Largest distance of a blind rod from its fitted site, mm.
    pub max_residual_mm: f64,
}

/// Find the rods inside `body` on `img` (a slice or a slab mean): blind by contrast, then
/// completed from their pattern (see the module doc). `centre` is the body centre (mm) to try
/// rings around; `rotation_deg` the outline's rotation (grid axes).
pub fn find(
    img: ArrayView2<f32>,
    body: &Body,
    geo: &Geo,
    centre: (f64, f64),
    rotation_deg: f64,
) -> Found {
    // Work on the body's bounding box (plus a margin for the morphology): the air around the
    // phantom is most of the image.
    let Some((r0, r1, c0, c1)) = bounding_box(&body.mask, 3) else {
        return Found::default();
    };
    let img = img.slice(ndarray::s![r0..r1, c0..c1]);
    let mask: Mask = body.mask.slice(ndarray::s![r0..r1, c0..c1]).to_owned();
    let geo = &Geo {
        px: geo.px,
        origin: [
            geo.origin[0] + r0 as f64 * geo.px[0],
            geo.origin[1] + c0 as f64 * geo.px[1],
        ],
    };
    let pxmin = geo.px[0].min(geo.px[1]);
    let k_edge = (4.0 / pxmin).round().clamp(1.0, 255.0) as u8;
    let inner = erode(&mask, k_edge);
    let Some(noise) = Noise::of(img, &inner) else {
        return Found::default();
    };
    let blind = detect_blind(img, &inner, &noise, geo);
    complete(img, &mask, geo, &noise, blind, centre, rotation_deg)
}

/// Rows `r0..r1` and columns `c0..c1` of the set pixels of `mask`, widened by `margin` pixels
/// (within the image); `None` for an empty mask.
fn bounding_box(mask: &Mask, margin: usize) -> Option<(usize, usize, usize, usize)> {
    let (rows, cols) = mask.dim();
    let (mut r0, mut r1, mut c0, mut c1) = (usize::MAX, 0, usize::MAX, 0);
    for ((r, c), &m) in mask.indexed_iter() {
        if m {
            r0 = r0.min(r);
            r1 = r1.max(r);
            c0 = c0.min(c);
            c1 = c1.max(c);
        }
    }
    (r0 != usize::MAX).then(|| {
        (
            r0.saturating_sub(margin),
            (r1 + 1 + margin).min(rows),
            c0.saturating_sub(margin),
            (c1 + 1 + margin).min(cols),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::body::segment;
    use super::*;
    use ndarray::Array2;

    const PX: f64 = 1.0;

    fn geo() -> Geo {
        Geo {
            px: [PX, PX],
            origin: [0.0, 0.0],
        }
    }

    /// A 240 mm image: a 180 mm square body at `body_hu` centred at (120, 120), discs (x, y, r,
    /// HU), deterministic pseudo-noise of `sigma`.
    fn image(discs: &[(f64, f64, f64, f32)], body_hu: f32, sigma: f32) -> Array2<f32> {
        let mut state: u64 = 99;
        Array2::from_shape_fn((240, 240), |(row, col)| {
            let (x, y) = (col as f64 * PX, row as f64 * PX);
            let mut n = 0.0f32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                n += (state % 10_000) as f32 / 10_000.0 - 0.5;
            }
            let noise = n * sigma * (3.0f32).sqrt();
            if (x - 120.0).abs() > 90.0 || (y - 120.0).abs() > 90.0 {
                return -1000.0 + noise;
            }
            let v = discs
                .iter()
                .find(|d| (x - d.0).hypot(y - d.1) <= d.2)
                .map_or(body_hu, |d| d.3);
            v + noise
        })
    }

    fn run(img: &Array2<f32>, rot: f64) -> Found {
        let g = geo();
        let body = segment(img.view(), &g).unwrap();
        find(img.view(), &body, &g, (120.0, 120.0), rot)
    }

    /// The simulator's arrangement: 5 rods on a 50 mm ring (from −90°, 72° apart) + a centre.
    fn ring5(hus: [f32; 6], rot_deg: f64) -> Vec<(f64, f64, f64, f32)> {
        let mut v: Vec<(f64, f64, f64, f32)> = (0..5)
            .map(|k| {
                let a = (-90.0 + 72.0 * k as f64 + rot_deg).to_radians();
                (120.0 + 50.0 * a.cos(), 120.0 + 50.0 * a.sin(), 14.0, hus[k])
            })
            .collect();
        v.push((120.0, 120.0, 14.0, hus[5]));
        v
    }

    fn near(found: &Found, x: f64, y: f64) -> Option<&Rod> {
        found
            .rods
            .iter()
            .find(|r| (r.x_mm - x).hypot(r.y_mm - y) < 1.0)
    }

    #[test]
    fn ring_with_invisible_rods_is_completed() {
        // lung, adipose, water, muscle, bone on the ring, water in the centre; the noise of a
        // two-slice slab mean at 20 HU per slice.
        let discs = ring5([-750.0, -100.0, 0.0, 50.0, 800.0, 0.0], 17.0);
        let img = image(&discs, 0.0, 14.0);
        let f = run(&img, 17.0);
        assert_eq!(f.blind, 3, "{:?}", f.rods);
        let p = f.pattern.as_ref().unwrap();
        assert!(p.certain, "{p:?}");
        assert_eq!(p.sites, 6, "{p:?}");
        assert_eq!(f.rods.len(), 6, "{:?}", f.rods);
        for (k, d) in discs.iter().enumerate() {
            let r = near(&f, d.0, d.1).unwrap_or_else(|| panic!("rod {k} not found: {f:?}"));
            let want = if d.3 == 0.0 {
                FoundBy::Pattern
            } else {
                FoundBy::Contrast
            };
            assert_eq!(r.found_by, want, "rod {k}: {r:?}");
        }
    }

    #[test]
    fn too_few_rods_make_no_pattern_and_nothing_is_invented() {
        let mut discs = ring5([-750.0, 0.0, 0.0, 0.0, 800.0, 0.0], 0.0);
        discs.retain(|d| d.3 != 0.0);
        let img = image(&discs, 0.0, 14.0);
        let f = run(&img, 0.0);
        assert_eq!(f.rods.len(), 2, "{:?}", f.rods);
        assert!(f.pattern.is_none());
        // Three visible of six sites: a ring fits but is not certain; no rod at zero contrast.
        let discs = ring5([-750.0, -100.0, 0.0, 0.0, 800.0, 0.0], 0.0);
        let img = image(&discs, 0.0, 14.0);
        let f = run(&img, 0.0);
        let p = f.pattern.as_ref().unwrap();
        assert!(!p.certain, "{p:?}");
        assert_eq!(f.rods.len(), 3, "{:?}", f.rods);
    }

    #[test]
    fn scattered_rods_fit_no_pattern() {
        let discs = [
            (70.0, 60.0, 10.0, 800.0),
            (160.0, 85.0, 12.0, -700.0),
            (95.0, 170.0, 9.0, 400.0),
        ];
        let img = image(&discs, 0.0, 10.0);
        let f = run(&img, 0.0);
        assert_eq!(f.rods.len(), 3, "{:?}", f.rods);
        assert!(f.rods.iter().all(|r| r.found_by == FoundBy::Contrast));
    }

    #[test]
    fn grid_with_invisible_nodes_is_completed() {
        // A 3 × 3 grid, 50 mm apart, rotated 10° with the body; two water nodes.
        let rot: f64 = 10.0;
        let (s, c) = rot.to_radians().sin_cos();
        let hus: [f32; 9] = [800.0, -750.0, 0.0, -100.0, 300.0, 600.0, -500.0, 0.0, 200.0];
        let mut discs = Vec::new();
        for (k, hu) in hus.iter().enumerate() {
            let (u, v) = ((k % 3) as f64 * 50.0 - 50.0, (k / 3) as f64 * 50.0 - 50.0);
            discs.push((120.0 + u * c - v * s, 120.0 + u * s + v * c, 10.0, *hu));
        }
        // The body rotated too: draw it as a rotated square.
        let mut img = image(&discs, 0.0, 10.0);
        for ((row, col), v) in img.indexed_iter_mut() {
            let (dx, dy) = (col as f64 - 120.0, row as f64 - 120.0);
            let (u, w) = (dx * c + dy * s, -dx * s + dy * c);
            if u.abs() > 90.0 || w.abs() > 90.0 {
                *v = -1000.0;
            }
        }
        let f = run(&img, rot);
        let p = f.pattern.as_ref().unwrap();
        assert!(p.certain && p.sites == 9, "{p:?}");
        assert_eq!(f.rods.len(), 9, "{:?}", f.rods);
        for d in &discs {
            let r = near(&f, d.0, d.1).unwrap_or_else(|| panic!("{d:?} not found: {f:?}"));
            assert_eq!(r.found_by == FoundBy::Pattern, d.3 == 0.0, "{r:?}");
        }
    }
}
