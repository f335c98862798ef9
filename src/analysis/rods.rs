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

use super::body::Body;
use super::image::{components, erode, fill_holes, for_each_in_annulus, median, open, Mask};
use super::{FoundBy, Geo};
use ndarray::{Array2, ArrayView2};
use std::f64::consts::PI;

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

/// Body level and noise of an image.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    /// Median HU of the body interior.
    pub level: f64,
    /// Pixel noise: 1.4826 × MAD, HU.
    pub sigma: f64,
    /// Noise correlation: variance of 2 × 2 block means × 4 / σ² (1 for white noise).
    pub n_corr: f64,
}

impl Noise {
    fn of(img: ArrayView2<f32>, mask: &Mask) -> Option<Noise> {
        let (level, sigma) = body_level(img, mask);
        if !level.is_finite() {
            return None;
        }
        let (rows, cols) = img.dim();
        let mut dev: Vec<f32> = Vec::new();
        for r in (0..rows.saturating_sub(1)).step_by(2) {
            for c in (0..cols.saturating_sub(1)).step_by(2) {
                let px = [(r, c), (r + 1, c), (r, c + 1), (r + 1, c + 1)];
                if px.iter().all(|&ix| mask[ix] && img[ix].is_finite()) {
                    let m = px.iter().map(|&ix| img[ix] as f64).sum::<f64>() / 4.0;
                    dev.push((m - level).abs() as f32);
                }
            }
        }
        let sb = 1.4826 * median(&mut dev);
        let n_corr = if sigma > 0.0 && sb.is_finite() {
            (4.0 * sb * sb / (sigma * sigma)).clamp(1.0, 4.0)
        } else {
            1.0
        };
        Some(Noise {
            level,
            sigma,
            n_corr,
        })
    }
}

/// Robust body HU and noise: median and 1.4826 × MAD of the body pixels.
pub fn body_level(img: ArrayView2<f32>, mask: &Mask) -> (f64, f64) {
    let mut v: Vec<f32> = img
        .iter()
        .zip(mask.iter())
        .filter(|(x, m)| **m && x.is_finite())
        .map(|(x, _)| *x)
        .collect();
    let med = median(&mut v);
    let mut dev: Vec<f32> = v.iter().map(|x| (*x as f64 - med).abs() as f32).collect();
    let mad = median(&mut dev);
    (med, 1.4826 * mad)
}

/// Block mean of `img` by `f` × `f` pixels (NaN only where a block has no finite value), and its
/// geometry in the same image frame.
pub fn reduce(img: ArrayView2<f32>, geo: &Geo, f: usize) -> (Array2<f32>, Geo) {
    let f = f.max(1);
    let (rows, cols) = img.dim();
    let (rr, rc) = ((rows / f).max(1), (cols / f).max(1));
    let mut out = Array2::<f32>::from_elem((rr, rc), f32::NAN);
    for r in 0..rr {
        for c in 0..rc {
            let (mut s, mut n) = (0.0f32, 0u32);
            for i in r * f..((r + 1) * f).min(rows) {
                for j in c * f..((c + 1) * f).min(cols) {
                    let v = img[[i, j]];
                    if v.is_finite() {
                        s += v;
                        n += 1;
                    }
                }
            }
            if n > 0 {
                out[[r, c]] = s / n as f32;
            }
        }
    }
    let half = (f as f64 - 1.0) / 2.0;
    let g = Geo {
        px: [geo.px[0] * f as f64, geo.px[1] * f as f64],
        origin: [
            geo.origin[0] + half * geo.px[0],
            geo.origin[1] + half * geo.px[1],
        ],
    };
    (out, g)
}

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

/// Step 1: rods that differ from the body beyond the noise.
fn detect_blind(img: ArrayView2<f32>, inner: &Mask, noise: &Noise, geo: &Geo) -> Vec<Rod> {
    let pxmin = geo.px[0].min(geo.px[1]);
    let thr = (4.0 * noise.sigma).max(30.0) as f32;
    let lvl = noise.level as f32;
    let mut raw: Mask = Array2::from_elem(img.dim(), false);
    ndarray::Zip::from(&mut raw)
        .and(img)
        .and(inner)
        .for_each(|o, &v, &m| *o = m && v.is_finite() && (v - lvl).abs() > thr);
    // Close small breaks of thin rings (air gaps round a water rod), fill, drop speckle.
    let filled = fill_holes(&raw);
    let k_open = (1.5 / pxmin).round().clamp(1.0, 255.0) as u8;
    let cleaned = open(&filled, k_open);
    let (labels, counts) = components(&cleaned);
    // Per-label sums in one pass over the image, then the farthest pixel of each label.
    let nl = counts.len();
    let (mut sr, mut sc) = (vec![0.0f64; nl], vec![0.0f64; nl]);
    for ((r, c), &l) in labels.indexed_iter() {
        if l > 0 {
            sr[l as usize] += r as f64;
            sc[l as usize] += c as f64;
        }
    }
    let area_px = geo.px[0] * geo.px[1];
    let keep: Vec<bool> = counts
        .iter()
        .map(|&n| {
            let r = (n as f64 * area_px / PI).sqrt();
            n > 0 && (MIN_R_MM..=MAX_R_MM).contains(&r)
        })
        .collect();
    let centre: Vec<(f64, f64)> = (0..nl)
        .map(|l| {
            let n = counts[l].max(1) as f64;
            (sr[l] / n, sc[l] / n)
        })
        .collect();
    // The farthest pixel of each label, and its contrast: the mean of (value − level) within
    // half its radius of the centroid.
    let r_area: Vec<f64> = counts
        .iter()
        .map(|&n| (n as f64 * area_px / PI).sqrt())
        .collect();
    let mut rmax2 = vec![0.0f64; nl];
    let (mut csum, mut cn) = (vec![0.0f64; nl], vec![0usize; nl]);
    for ((r, c), &l) in labels.indexed_iter() {
        let l = l as usize;
        if l > 0 && keep[l] {
            let dy = (r as f64 - centre[l].0) * geo.px[0];
            let dx = (c as f64 - centre[l].1) * geo.px[1];
            let d2 = dx * dx + dy * dy;
            rmax2[l] = rmax2[l].max(d2);
            let v = img[[r, c]];
            if d2 <= 0.25 * r_area[l] * r_area[l] && v.is_finite() {
                csum[l] += v as f64 - noise.level;
                cn[l] += 1;
            }
        }
    }
    // The radius where the rod's edge crosses half its contrast (the threshold above sits near
    // the body level: a blurred edge makes that area too large). Rods whose centre does not
    // stand out (a water rod seen by the air gap round it) keep the area of their outline.
    let half: Vec<f64> = (0..nl)
        .map(|l| {
            if cn[l] > 0 {
                0.5 * csum[l] / cn[l] as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut n_half = vec![0usize; nl];
    for ((r, c), &l) in labels.indexed_iter() {
        let l = l as usize;
        if l > 0 && keep[l] && half[l].abs() > thr as f64 {
            let d = img[[r, c]] as f64 - noise.level;
            if d * half[l].signum() > half[l].abs() {
                n_half[l] += 1;
            }
        }
    }
    let mut rods = Vec::new();
    for l in 1..nl {
        if !keep[l] {
            continue;
        }
        let r = r_area[l];
        // A disc has rmax ≈ r; elongated or ragged shapes are not rods.
        if rmax2[l].sqrt() > 1.35 * r + pxmin {
            continue;
        }
        let r_half = (n_half[l] as f64 * area_px / PI).sqrt();
        rods.push(Rod {
            x_mm: geo.x_of(centre[l].1),
            y_mm: geo.y_of(centre[l].0),
            radius_mm: if half[l].abs() > thr as f64 && r_half >= MIN_R_MM {
                r_half
            } else {
                r
            },
            found_by: FoundBy::Contrast,
            contrast_hu: f64::NAN,
            site: None,
        });
    }
    rods
}

/// One site of a pattern.
#[derive(Debug, Clone)]
struct Site {
    x: f64,
    y: f64,
    label: String,
    /// Index of the blind rod on it.
    rod: Option<usize>,
    /// The rod was not fitted with the pattern but lies near this site (a low-contrast rod seen
    /// only in part): it is measured at the site.
    snapped: bool,
}

/// A pattern fitted to blind rods.
#[derive(Debug, Clone)]
struct Candidate {
    description: String,
    sites: Vec<Site>,
    max_residual: f64,
    is_ring: bool,
    /// For rings: the fitted rings (to test the sites between their rods).
    rings: Vec<RingFit>,
}

#[derive(Debug, Clone, Copy)]
struct RingFit {
    cx: f64,
    cy: f64,
    /// Site k sits at angle `phase + 2πk/n` and distance `radius` from the centre.
    radius: f64,
    phase: f64,
    n: usize,
}

impl RingFit {
    fn site(&self, k: usize) -> (f64, f64) {
        let a = self.phase + 2.0 * PI * k as f64 / self.n as f64;
        (
            self.cx + self.radius * a.cos(),
            self.cy + self.radius * a.sin(),
        )
    }
}

/// Steps 2–5: infer the pattern of the blind rods, test and complete its empty sites.
fn complete(
    img: ArrayView2<f32>,
    body: &Mask,
    geo: &Geo,
    noise: &Noise,
    blind: Vec<Rod>,
    centre: (f64, f64),
    rotation_deg: f64,
) -> Found {
    let n_blind = blind.len();
    let mut out = Found {
        rods: blind,
        blind: n_blind,
        pattern: None,
    };
    if n_blind < MIN_BLIND {
        return out;
    }
    let pxmax = geo.px[0].max(geo.px[1]);
    let tol = TOL_MM.max(TOL_PX * pxmax);
    let mut radii: Vec<f32> = out.rods.iter().map(|r| r.radius_mm as f32).collect();
    let r_med = median(&mut radii);
    // Rods of the pattern's size only are fitted (a low-contrast rod thresholded in part is
    // smaller, its centroid off: it is matched to its site afterwards).
    let similar: Vec<usize> = (0..n_blind)
        .filter(|&i| (out.rods[i].radius_mm - r_med).abs() <= RADIUS_SPREAD * r_med)
        .collect();
    if similar.len() < MIN_BLIND {
        return out;
    }
    let mut radii: Vec<f32> = similar
        .iter()
        .map(|&i| out.rods[i].radius_mm as f32)
        .collect();
    let r_med = median(&mut radii);
    let mut cands: Vec<Candidate> = ring_candidates(&out.rods, &similar, centre, r_med, tol)
        .into_iter()
        .collect();
    cands.extend(grid_candidate(
        &out.rods,
        &similar,
        centre,
        rotation_deg,
        r_med,
        tol,
    ));
    // Evaluate each: drop impossible sites, matched filter on the empty ones.
    struct Evaluated {
        cand: Candidate,
        /// Per site: the matched filter's (Δ, accepted) when the site has no blind rod.
        tests: Vec<Option<(f64, bool)>>,
        by_contrast: usize,
        certain: bool,
    }
    let clear = |x: f64, y: f64, members: &[usize]| -> bool {
        inside(body, geo, x, y, r_med)
            && out.rods.iter().enumerate().all(|(i, r)| {
                members.contains(&i) || (r.x_mm - x).hypot(r.y_mm - y) >= r.radius_mm + r_med
            })
    };
    let evaluate = |mut cand: Candidate| -> Evaluated {
        let mut members: Vec<usize> = cand.sites.iter().filter_map(|s| s.rod).collect();
        // A rod seen blind but not fitted (a low-contrast rod thresholded in part, its centroid
        // off) that lies near an empty site is that site's rod, measured at the site.
        for s in cand.sites.iter_mut().filter(|s| s.rod.is_none()) {
            let near = (0..out.rods.len())
                .filter(|i| !members.contains(i))
                .map(|i| (i, (out.rods[i].x_mm - s.x).hypot(out.rods[i].y_mm - s.y)))
                .filter(|(_, d)| *d < r_med)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = near {
                s.rod = Some(i);
                s.snapped = true;
                members.push(i);
            }
        }
        cand.sites
            .retain(|s| s.rod.is_some() || clear(s.x, s.y, &members));
        let tests: Vec<Option<(f64, bool)>> = cand
            .sites
            .iter()
            .map(|s| {
                if s.rod.is_some() {
                    return None;
                }
                matched_filter(img, geo, noise, s.x, s.y, r_med)
                    .map(|(d, sd)| (d, d.abs() > (K_SIGMA * sd).max(MIN_CONTRAST_HU)))
            })
            .collect();
        let by_contrast = cand
            .sites
            .iter()
            .zip(&tests)
            .filter(|(s, t)| s.rod.is_some() || t.is_some_and(|t| t.1))
            .count();
        let blind_members = cand
            .sites
            .iter()
            .filter(|s| s.rod.is_some() && !s.snapped)
            .count();
        let certain = blind_members >= MIN_BLIND
            && 2 * by_contrast > cand.sites.len()
            && cand.max_residual <= tol;
        Evaluated {
            cand,
            tests,
            by_contrast,
            certain,
        }
    };
    let mut evaluated: Vec<Evaluated> = Vec::new();
    for cand in cands {
        let base = cand.clone();
        let mut ev = evaluate(cand);
        // Rings: rods between the ones found (n' = 2n, 3n, …) count only when one of the new
        // sites shows contrast; the first multiple with such a rod is adopted.
        if base.is_ring {
            let old: Vec<(f64, f64)> = base.sites.iter().map(|s| (s.x, s.y)).collect();
            let mut mult = 2;
            while let Some(finer) = subdivide(&base, mult, r_med) {
                let e2 = evaluate(finer);
                let new_hit = e2.cand.sites.iter().zip(&e2.tests).any(|(s, t)| {
                    t.is_some_and(|t| t.1) && old.iter().all(|o| (o.0 - s.x).hypot(o.1 - s.y) > tol)
                });
                if new_hit {
                    ev = e2;
                    break;
                }
                mult += 1;
            }
        }
        evaluated.push(ev);
    }
    let best = evaluated.into_iter().max_by(|a, b| {
        let fa = a.by_contrast as f64 / a.cand.sites.len().max(1) as f64;
        let fb = b.by_contrast as f64 / b.cand.sites.len().max(1) as f64;
        a.certain
            .cmp(&b.certain)
            .then(fa.total_cmp(&fb))
            .then(b.cand.sites.len().cmp(&a.cand.sites.len()))
            .then(a.cand.is_ring.cmp(&b.cand.is_ring))
    });
    let Some(best) = best else { return out };
    // Other pieces of a rod already on a site (a low-contrast rod thresholded in several parts)
    // are that rod, not rods of their own.
    let on_site: Vec<usize> = best.cand.sites.iter().filter_map(|s| s.rod).collect();
    let piece: Vec<bool> = (0..n_blind)
        .map(|i| {
            !on_site.contains(&i)
                && best
                    .cand
                    .sites
                    .iter()
                    .any(|s| (out.rods[i].x_mm - s.x).hypot(out.rods[i].y_mm - s.y) < r_med)
        })
        .collect();
    for (s, t) in best.cand.sites.iter().zip(&best.tests) {
        match (s.rod, t) {
            (Some(i), _) => {
                let r = &mut out.rods[i];
                r.site = Some(s.label.clone());
                if s.snapped {
                    (r.x_mm, r.y_mm, r.radius_mm) = (s.x, s.y, r_med);
                }
            }
            (None, Some((d, true))) => out.rods.push(Rod {
                x_mm: s.x,
                y_mm: s.y,
                radius_mm: r_med,
                found_by: FoundBy::Contrast,
                contrast_hu: *d,
                site: Some(s.label.clone()),
            }),
            (None, t) if best.certain => out.rods.push(Rod {
                x_mm: s.x,
                y_mm: s.y,
                radius_mm: r_med,
                found_by: FoundBy::Pattern,
                contrast_hu: t.map_or(f64::NAN, |t| t.0),
                site: Some(s.label.clone()),
            }),
            _ => {}
        }
    }
    let mut k = 0;
    out.rods.retain(|_| {
        k += 1;
        k > n_blind || !piece[k - 1]
    });
    out.blind -= piece.iter().filter(|p| **p).count();
    out.pattern = Some(PatternInfo {
        description: best.cand.description.clone(),
        sites: best.cand.sites.len(),
        by_contrast: best.by_contrast,
        certain: best.certain,
        max_residual_mm: best.cand.max_residual,
    });
    out
}

/// Is a disc of radius `r` at (x, y) inside the body (its centre and 12 points of its edge)?
fn inside(body: &Mask, geo: &Geo, x: f64, y: f64, r: f64) -> bool {
    let (rows, cols) = body.dim();
    let at = |x: f64, y: f64| {
        let (rr, cc) = (geo.row_of(y).round(), geo.col_of(x).round());
        rr >= 0.0
            && cc >= 0.0
            && (rr as usize) < rows
            && (cc as usize) < cols
            && body[[rr as usize, cc as usize]]
    };
    at(x, y)
        && (0..12).all(|k| {
            let a = k as f64 * PI / 6.0;
            at(x + r * a.cos(), y + r * a.sin())
        })
}

/// Disc mean − ring median at (x, y) for a rod of radius `r`, and the noise of that difference.
/// `None` when the disc reaches outside the data.
fn matched_filter(
    img: ArrayView2<f32>,
    geo: &Geo,
    noise: &Noise,
    x: f64,
    y: f64,
    r: f64,
) -> Option<(f64, f64)> {
    let pxmax = geo.px[0].max(geo.px[1]);
    let m = pxmax.max(1.0);
    let (rows, cols) = img.dim();
    let centre = (geo.row_of(y), geo.col_of(x));
    let (mut sum, mut nd, mut bad) = (0.0f64, 0usize, 0usize);
    let outside = for_each_in_annulus(
        rows,
        cols,
        centre,
        0.0,
        (r - m).max(0.5 * r),
        geo.px,
        |rr, cc| {
            let v = img[[rr, cc]];
            if v.is_finite() {
                sum += v as f64;
                nd += 1;
            } else {
                bad += 1;
            }
        },
    );
    let mut ring: Vec<f32> = Vec::new();
    for_each_in_annulus(
        rows,
        cols,
        centre,
        r + m,
        r + m + (2.0f64).max(2.0 * pxmax),
        geo.px,
        |rr, cc| {
            let v = img[[rr, cc]];
            if v.is_finite() {
                ring.push(v);
            }
        },
    );
    if outside + bad > 0 || nd < 5 || ring.len() < 10 {
        return None;
    }
    let nr = ring.len() as f64;
    let d = sum / nd as f64 - median(&mut ring);
    let sd = noise.sigma * noise.n_corr.sqrt() * (1.0 / nd as f64 + 0.5 * PI / nr).sqrt();
    Some((d, sd))
}

/// Solve the 4 × 4 system `a x = b` (Gaussian elimination, partial pivoting).
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let piv = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col];
        for row in col + 1..4 {
            let f = a[row][col] / pivot_row[col];
            for (v, p) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 4];
    for row in (0..4).rev() {
        let s: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Least-squares ring through `members` (rod index, site k) plus an optional centre rod:
/// unknowns (cx, cy, a, b) with site k at c + rot(2πk/n)·(a, b). Returns the fit and the
/// largest residual, mm.
fn fit_ring(
    rods: &[Rod],
    members: &[(usize, usize)],
    centre_rod: Option<usize>,
    n: usize,
) -> Option<(RingFit, f64)> {
    let mut ata = [[0.0f64; 4]; 4];
    let mut atb = [0.0f64; 4];
    let mut add = |row: [f64; 4], v: f64| {
        for i in 0..4 {
            for j in 0..4 {
                ata[i][j] += row[i] * row[j];
            }
            atb[i] += row[i] * v;
        }
    };
    for &(i, k) in members {
        let (s, c) = (2.0 * PI * k as f64 / n as f64).sin_cos();
        add([1.0, 0.0, c, -s], rods[i].x_mm);
        add([0.0, 1.0, s, c], rods[i].y_mm);
    }
    if let Some(i) = centre_rod {
        add([1.0, 0.0, 0.0, 0.0], rods[i].x_mm);
        add([0.0, 1.0, 0.0, 0.0], rods[i].y_mm);
    }
    let [cx, cy, a, b] = solve4(ata, atb)?;
    let fit = RingFit {
        cx,
        cy,
        radius: a.hypot(b),
        phase: b.atan2(a),
        n,
    };
    let mut worst: f64 = 0.0;
    for &(i, k) in members {
        let (x, y) = fit.site(k);
        worst = worst.max((rods[i].x_mm - x).hypot(rods[i].y_mm - y));
    }
    if let Some(i) = centre_rod {
        worst = worst.max((rods[i].x_mm - cx).hypot(rods[i].y_mm - cy));
    }
    Some((fit, worst))
}

/// Largest number of rods of radius `r` on a ring of radius `big_r` without overlap.
fn max_sites(big_r: f64, r: f64) -> usize {
    (3..=MAX_RING_SITES)
        .take_while(|&n| 2.0 * big_r * (PI / n as f64).sin() >= 2.0 * r + MIN_GAP_MM)
        .last()
        .unwrap_or(0)
}

/// Rings around `centre`: rods grouped by their distance from it, each group of ≥ 3 fitted
/// with the smallest n that puts every rod on its own site.
fn ring_candidates(
    rods: &[Rod],
    similar: &[usize],
    centre: (f64, f64),
    r_med: f64,
    tol: f64,
) -> Option<Candidate> {
    let dist = |i: usize| (rods[i].x_mm - centre.0).hypot(rods[i].y_mm - centre.1);
    let centre_rod = similar
        .iter()
        .copied()
        .filter(|&i| dist(i) < 0.5 * r_med)
        .min_by(|&a, &b| dist(a).total_cmp(&dist(b)));
    let mut outer: Vec<usize> = similar
        .iter()
        .copied()
        .filter(|&i| Some(i) != centre_rod)
        .collect();
    outer.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)));
    // Groups of similar distance (the body centre may be off the ring's by a little).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &i in &outer {
        match groups.last_mut() {
            Some(g) if dist(i) - dist(g[g.len() - 1]) <= 2.0 * tol => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    // Per ring: the fit, its rods (rod index, site), the largest residual.
    type Fitted = (RingFit, Vec<(usize, usize)>, f64);
    let mut rings: Vec<Fitted> = Vec::new();
    for g in groups.iter().filter(|g| g.len() >= MIN_BLIND) {
        let big_r = g.iter().map(|&i| dist(i)).sum::<f64>() / g.len() as f64;
        let theta: Vec<f64> = g
            .iter()
            .map(|&i| (rods[i].y_mm - centre.1).atan2(rods[i].x_mm - centre.0))
            .collect();
        for n in g.len()..=max_sites(big_r, r_med) {
            let nf = n as f64;
            let (s, c) = theta.iter().fold((0.0, 0.0), |(s, c), t| {
                (s + (nf * t).sin(), c + (nf * t).cos())
            });
            let phase = s.atan2(c) / nf;
            let ks: Vec<usize> = theta
                .iter()
                .map(|t| {
                    ((nf * (t - phase) / (2.0 * PI)).round() as i64).rem_euclid(n as i64) as usize
                })
                .collect();
            let mut sorted = ks.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != ks.len() {
                continue;
            }
            let members: Vec<(usize, usize)> = g.iter().copied().zip(ks).collect();
            if let Some((fit, worst)) = fit_ring(rods, &members, centre_rod, n) {
                if worst <= tol {
                    rings.push((fit, members, worst));
                    break;
                }
            }
        }
    }
    if rings.is_empty() {
        return None;
    }
    let mut sites = Vec::new();
    let mut parts = Vec::new();
    for (fit, members, _) in &rings {
        for k in 0..fit.n {
            let (x, y) = fit.site(k);
            sites.push(Site {
                x,
                y,
                label: format!("ring {:.0} mm, site {}/{}", fit.radius, k + 1, fit.n),
                rod: members.iter().find(|m| m.1 == k).map(|m| m.0),
                snapped: false,
            });
        }
        parts.push(format!(
            "a ring of {} rods (radius {:.1} mm)",
            fit.n, fit.radius
        ));
    }
    let (cx, cy) = {
        let n = rings.len() as f64;
        (
            rings.iter().map(|r| r.0.cx).sum::<f64>() / n,
            rings.iter().map(|r| r.0.cy).sum::<f64>() / n,
        )
    };
    let innermost = rings
        .iter()
        .map(|r| r.0.radius)
        .fold(f64::INFINITY, f64::min);
    let mut worst = rings.iter().map(|r| r.2).fold(0.0, f64::max);
    if innermost >= 2.0 * r_med + MIN_GAP_MM {
        if let Some(i) = centre_rod {
            worst = worst.max((rods[i].x_mm - cx).hypot(rods[i].y_mm - cy));
        }
        sites.push(Site {
            x: cx,
            y: cy,
            label: "centre".into(),
            rod: centre_rod,
            snapped: false,
        });
        parts.push("a centre rod".into());
    }
    Some(Candidate {
        description: parts.join(" + "),
        sites,
        max_residual: worst,
        is_ring: true,
        rings: rings.iter().map(|r| r.0).collect(),
    })
}

/// The ring candidate with `mult` times as many sites per ring (same centre, radius, phase).
fn subdivide(c: &Candidate, mult: usize, r_med: f64) -> Option<Candidate> {
    let base: Vec<RingFit> = c.rings.clone();
    let mut rings = Vec::new();
    for f in &base {
        let n = f.n * mult;
        if n > max_sites(f.radius, r_med) {
            return None;
        }
        rings.push(RingFit { n, ..*f });
    }
    let mut sites: Vec<Site> = Vec::new();
    for (f, old) in rings.iter().zip(&base) {
        for k in 0..f.n {
            let (x, y) = f.site(k);
            // Sites of the coarser ring keep their rod.
            let rod = if k % mult == 0 {
                c.sites
                    .iter()
                    .find(|s| {
                        let (ox, oy) = old.site(k / mult);
                        (s.x - ox).hypot(s.y - oy) < 1e-6
                    })
                    .and_then(|s| s.rod)
            } else {
                None
            };
            sites.push(Site {
                x,
                y,
                label: format!("ring {:.0} mm, site {}/{}", f.radius, k + 1, f.n),
                rod,
                snapped: false,
            });
        }
    }
    sites.extend(c.sites.iter().filter(|s| s.label == "centre").cloned());
    let mut parts: Vec<String> = rings
        .iter()
        .map(|f| format!("a ring of {} rods (radius {:.1} mm)", f.n, f.radius))
        .collect();
    if sites.iter().any(|s| s.label == "centre") {
        parts.push("a centre rod".into());
    }
    Some(Candidate {
        description: parts.join(" + "),
        sites,
        max_residual: c.max_residual,
        is_ring: true,
        rings,
    })
}

/// Positions `t` on a line of sites `offset + j·spacing`: the largest spacing ≥ `min_spacing`
/// that puts every value within `tol` of a site (each on its own site not required here).
/// Returns (offset, spacing, indices); spacing 0 when all values coincide.
fn lattice_1d(t: &[f64], min_spacing: f64, tol: f64) -> Option<(f64, f64, Vec<i64>)> {
    let lo = t.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if hi - lo <= tol {
        let m = t.iter().sum::<f64>() / t.len() as f64;
        return Some((m, 0.0, vec![0; t.len()]));
    }
    let mut spacings: Vec<f64> = Vec::new();
    for (i, a) in t.iter().enumerate() {
        for b in &t[i + 1..] {
            let d = (a - b).abs();
            if d > tol {
                for k in 1..=8 {
                    let s = d / k as f64;
                    if s >= min_spacing {
                        spacings.push(s);
                    }
                }
            }
        }
    }
    spacings.sort_by(|a, b| b.total_cmp(a));
    for s in spacings {
        let j: Vec<i64> = t.iter().map(|v| ((v - lo) / s).round() as i64).collect();
        // Least-squares offset and spacing for these indices.
        let n = t.len() as f64;
        let (mj, mt) = (j.iter().sum::<i64>() as f64 / n, t.iter().sum::<f64>() / n);
        let sjj: f64 = j.iter().map(|&k| (k as f64 - mj).powi(2)).sum();
        if sjj <= 0.0 {
            continue;
        }
        let sjt: f64 = j
            .iter()
            .zip(t)
            .map(|(&k, v)| (k as f64 - mj) * (v - mt))
            .sum();
        let sp = sjt / sjj;
        let off = mt - sp * mj;
        if sp >= min_spacing - tol
            && j.iter()
                .zip(t)
                .all(|(&k, v)| (off + k as f64 * sp - v).abs() <= tol)
        {
            return Some((off, sp, j));
        }
    }
    None
}

/// A grid aligned with the outline (`rotation_deg`, modulo 90°) through the rods: the nodes of
/// the block they span.
fn grid_candidate(
    rods: &[Rod],
    similar: &[usize],
    centre: (f64, f64),
    rotation_deg: f64,
    r_med: f64,
    tol: f64,
) -> Option<Candidate> {
    let (s, c) = rotation_deg.to_radians().sin_cos();
    // Lattice coordinates: the image frame rotated back by the outline's rotation.
    let uv: Vec<(f64, f64)> = similar
        .iter()
        .map(|&i| {
            let (dx, dy) = (rods[i].x_mm - centre.0, rods[i].y_mm - centre.1);
            (dx * c + dy * s, -dx * s + dy * c)
        })
        .collect();
    let min_spacing = 2.0 * r_med + MIN_GAP_MM;
    let us: Vec<f64> = uv.iter().map(|p| p.0).collect();
    let vs: Vec<f64> = uv.iter().map(|p| p.1).collect();
    let (u0, su, ju) = lattice_1d(&us, min_spacing, tol)?;
    let (v0, sv, jv) = lattice_1d(&vs, min_spacing, tol)?;
    let nodes: Vec<(i64, i64)> = ju.iter().copied().zip(jv.iter().copied()).collect();
    let mut uniq = nodes.clone();
    uniq.sort_unstable();
    uniq.dedup();
    if uniq.len() != nodes.len() {
        return None;
    }
    let (ju_lo, ju_hi) = (*ju.iter().min()?, *ju.iter().max()?);
    let (jv_lo, jv_hi) = (*jv.iter().min()?, *jv.iter().max()?);
    let to_xy = |a: i64, b: i64| {
        let (u, v) = (u0 + a as f64 * su, v0 + b as f64 * sv);
        (centre.0 + u * c - v * s, centre.1 + u * s + v * c)
    };
    let mut worst: f64 = 0.0;
    for (k, &i) in similar.iter().enumerate() {
        let (x, y) = to_xy(nodes[k].0, nodes[k].1);
        worst = worst.max((rods[i].x_mm - x).hypot(rods[i].y_mm - y));
    }
    let mut sites = Vec::new();
    for b in jv_lo..=jv_hi {
        for a in ju_lo..=ju_hi {
            let (x, y) = to_xy(a, b);
            let rod = nodes.iter().position(|&n| n == (a, b)).map(|k| similar[k]);
            sites.push(Site {
                x,
                y,
                label: format!("grid row {}, column {}", b - jv_lo + 1, a - ju_lo + 1),
                rod,
                snapped: false,
            });
        }
    }
    Some(Candidate {
        description: format!(
            "a grid of {} × {} rods (spacing {:.1} × {:.1} mm)",
            jv_hi - jv_lo + 1,
            ju_hi - ju_lo + 1,
            sv,
            su
        ),
        sites,
        max_residual: worst,
        is_ring: false,
        rings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::body::segment;
    use super::*;

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
