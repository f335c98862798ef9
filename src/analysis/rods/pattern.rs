//! Step 2 of the rod detection: the pattern the blind rods sit on, generically a ring round the
//! body centre (several distances: several rings; the centre a site when there is room) or a grid
//! aligned with the outline, least-squares fitted; its sites, each with the blind rod on it.

use super::{Rod, MAX_RING_SITES, MIN_BLIND, MIN_GAP_MM};
use std::f64::consts::PI;

/// One site of a pattern.
#[derive(Debug, Clone)]
pub(super) struct Site {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) label: String,
    /// Index of the blind rod on it.
    pub(super) rod: Option<usize>,
    /// The rod was not fitted with the pattern but lies near this site (a low-contrast rod seen
    /// only in part): it is measured at the site.
    pub(super) snapped: bool,
}

/// A pattern fitted to blind rods.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) description: String,
    pub(super) sites: Vec<Site>,
    pub(super) max_residual: f64,
    pub(super) is_ring: bool,
    /// For rings: the fitted rings (to test the sites between their rods).
    rings: Vec<RingFit>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RingFit {
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
pub(super) fn ring_candidates(
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
pub(super) fn subdivide(c: &Candidate, mult: usize, r_med: f64) -> Option<Candidate> {
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
pub(super) fn grid_candidate(
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
