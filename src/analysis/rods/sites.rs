//! Steps 3–5 of the rod detection: each candidate pattern's empty sites tested by a matched
//! filter (finer rings tried for rods between the ones found), the pattern chosen, and the rods
//! it places (by contrast, or by the pattern when it is certain).

use super::super::image::{for_each_in_annulus, median, Mask};
use super::super::{FoundBy, Geo};
use super::blind::Noise;
use super::pattern::{grid_candidate, ring_candidates, subdivide, Candidate};
use super::{
    Found, PatternInfo, Rod, K_SIGMA, MIN_BLIND, MIN_CONTRAST_HU, RADIUS_SPREAD, TOL_MM, TOL_PX,
};
use ndarray::ArrayView2;
use std::f64::consts::PI;

/// Steps 2–5: infer the pattern of the blind rods, test and complete its empty sites.
pub(super) fn complete(
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
    let Some((similar, r_med)) = similar_rods(&out.rods) else {
        return out;
    };
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
    let ctx = Sites {
        img,
        body,
        geo,
        noise,
        rods: &out.rods,
        r_med,
        tol,
    };
    let evaluated: Vec<Evaluated> = cands
        .into_iter()
        .map(|cand| ctx.evaluate_with_finer(cand))
        .collect();
    let Some(best) = choose(evaluated) else {
        return out;
    };
    place(&mut out, &best, n_blind, r_med);
    out
}

/// The blind rods of the pattern's size (radius within [`RADIUS_SPREAD`] of the median) and
/// their median radius; `None` when fewer than [`MIN_BLIND`]. Only they are fitted (a
/// low-contrast rod thresholded in part is smaller, its centroid off: it is matched to its site
/// afterwards).
fn similar_rods(rods: &[Rod]) -> Option<(Vec<usize>, f64)> {
    let mut radii: Vec<f32> = rods.iter().map(|r| r.radius_mm as f32).collect();
    let r_med = median(&mut radii);
    let similar: Vec<usize> = (0..rods.len())
        .filter(|&i| (rods[i].radius_mm - r_med).abs() <= RADIUS_SPREAD * r_med)
        .collect();
    if similar.len() < MIN_BLIND {
        return None;
    }
    let mut radii: Vec<f32> = similar.iter().map(|&i| rods[i].radius_mm as f32).collect();
    let r_med = median(&mut radii);
    Some((similar, r_med))
}

/// A candidate pattern after its empty sites were tested.
struct Evaluated {
    cand: Candidate,
    /// Per site: the matched filter's (Δ, accepted) when the site has no blind rod.
    tests: Vec<Option<(f64, bool)>>,
    by_contrast: usize,
    certain: bool,
}

/// What the evaluation of a candidate's sites looks at.
struct Sites<'a> {
    img: ArrayView2<'a, f32>,
    body: &'a Mask,
    geo: &'a Geo,
    noise: &'a Noise,
    /// The blind rods.
    rods: &'a [Rod],
    r_med: f64,
    tol: f64,
}

impl Sites<'_> {
    /// Can a rod sit at (x, y): inside the body, overlapping no rod but the pattern's `members`?
    fn clear(&self, x: f64, y: f64, members: &[usize]) -> bool {
        inside(self.body, self.geo, x, y, self.r_med)
            && self.rods.iter().enumerate().all(|(i, r)| {
                members.contains(&i) || (r.x_mm - x).hypot(r.y_mm - y) >= r.radius_mm + self.r_med
            })
    }

    /// Snap unfitted rods to empty sites, drop impossible sites, matched filter on the empty
    /// ones; how many sites hold a rod found by contrast, and whether the pattern is certain.
    fn evaluate(&self, mut cand: Candidate) -> Evaluated {
        let (img, geo, noise, r_med, tol) = (self.img, self.geo, self.noise, self.r_med, self.tol);
        let mut members: Vec<usize> = cand.sites.iter().filter_map(|s| s.rod).collect();
        // A rod seen blind but not fitted (a low-contrast rod thresholded in part, its centroid
        // off) that lies near an empty site is that site's rod, measured at the site.
        for s in cand.sites.iter_mut().filter(|s| s.rod.is_none()) {
            let near = (0..self.rods.len())
                .filter(|i| !members.contains(i))
                .map(|i| (i, (self.rods[i].x_mm - s.x).hypot(self.rods[i].y_mm - s.y)))
                .filter(|(_, d)| *d < r_med)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = near {
                s.rod = Some(i);
                s.snapped = true;
                members.push(i);
            }
        }
        cand.sites
            .retain(|s| s.rod.is_some() || self.clear(s.x, s.y, &members));
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
    }

    /// [`Self::evaluate`]; for a ring, rods between the ones found (n' = 2n, 3n, …) count only
    /// when one of the new sites shows contrast; the first multiple with such a rod is adopted.
    fn evaluate_with_finer(&self, cand: Candidate) -> Evaluated {
        let (r_med, tol) = (self.r_med, self.tol);
        let base = cand.clone();
        let mut ev = self.evaluate(cand);
        if base.is_ring {
            let old: Vec<(f64, f64)> = base.sites.iter().map(|s| (s.x, s.y)).collect();
            let mut mult = 2;
            while let Some(finer) = subdivide(&base, mult, r_med) {
                let e2 = self.evaluate(finer);
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
        ev
    }
}

/// The pattern kept: the certain one, then the one whose sites hold most rods found by
/// contrast, then the one with fewer sites, then a ring.
fn choose(evaluated: Vec<Evaluated>) -> Option<Evaluated> {
    evaluated.into_iter().max_by(|a, b| {
        let fa = a.by_contrast as f64 / a.cand.sites.len().max(1) as f64;
        let fb = b.by_contrast as f64 / b.cand.sites.len().max(1) as f64;
        a.certain
            .cmp(&b.certain)
            .then(fa.total_cmp(&fb))
            .then(b.cand.sites.len().cmp(&a.cand.sites.len()))
            .then(a.cand.is_ring.cmp(&b.cand.is_ring))
    })
}

/// The rods of the chosen pattern into `out`: blind rods get their site (snapped ones move to
/// it), empty sites get a rod found by contrast or, for a certain pattern, by the pattern; other
/// pieces of a rod already on a site are dropped.
fn place(out: &mut Found, best: &Evaluated, n_blind: usize, r_med: f64) {
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
