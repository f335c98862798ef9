//! Step 1 of the rod detection: the body's level and noise, and the rods that differ from the
//! body beyond that noise, found blind (no pattern yet); the block-mean reduction the detection
//! runs on.

use super::super::image::{components, fill_holes, median, open, Mask};
use super::super::{FoundBy, Geo};
use super::{Rod, MAX_R_MM, MIN_R_MM};
use ndarray::{Array2, ArrayView2};
use std::f64::consts::PI;

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
    pub(super) fn of(img: ArrayView2<f32>, mask: &Mask) -> Option<Noise> {
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

/// Step 1: rods that differ from the body beyond the noise.
pub(super) fn detect_blind(
    img: ArrayView2<f32>,
    inner: &Mask,
    noise: &Noise,
    geo: &Geo,
) -> Vec<Rod> {
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
