//! Rod detection for phantoms without a published layout (Easy Cube): circular objects inside
//! the body that differ from the body material.

use super::body::Body;
use super::image::{components, erode, fill_holes, median, open, Mask};
use super::Geo;
use ndarray::{Array2, ArrayView2};

#[derive(Debug, Clone, Copy)]
pub struct Rod {
    /// Centre in the image frame, mm.
    pub x_mm: f64,
    pub y_mm: f64,
    /// Radius of the detected disc, mm (area-equivalent).
    pub radius_mm: f64,
}

/// Smallest and largest rod radius considered, mm.
const MIN_R_MM: f64 = 4.0;
const MAX_R_MM: f64 = 30.0;

/// Robust body HU and noise: median and 1.4826 × MAD of the body pixels.
pub fn body_level(img: ArrayView2<f32>, mask: &Mask) -> (f64, f64) {
    let mut v: Vec<f32> = img
        .indexed_iter()
        .filter(|(ix, x)| mask[*ix] && x.is_finite())
        .map(|(_, x)| *x)
        .collect();
    let med = median(&mut v);
    let mut dev: Vec<f32> = v.iter().map(|x| (*x as f64 - med).abs() as f32).collect();
    let mad = median(&mut dev);
    (med, 1.4826 * mad)
}

/// Detect rods inside `body` on `img` (a slice or a slab mean).
pub fn detect(img: ArrayView2<f32>, body: &Body, geo: &Geo) -> Vec<Rod> {
    let pxmin = geo.px[0].min(geo.px[1]);
    let k_edge = (4.0 / pxmin).round().clamp(1.0, 255.0) as u8;
    let inner = erode(&body.mask, k_edge);
    let (level, noise) = body_level(img, &inner);
    if !level.is_finite() {
        return vec![];
    }
    let thr = (4.0 * noise).max(30.0) as f32;
    let lvl = level as f32;
    let raw: Mask = Array2::from_shape_fn(img.dim(), |ix| {
        inner[ix] && img[ix].is_finite() && (img[ix] - lvl).abs() > thr
    });
    // Close small breaks of thin rings (air gaps round a water rod), fill, drop speckle.
    let filled = fill_holes(&raw);
    let k_open = (1.5 / pxmin).round().clamp(1.0, 255.0) as u8;
    let cleaned = open(&filled, k_open);
    let (labels, counts) = components(&cleaned);
    let mut rods = Vec::new();
    for (label, &n) in counts.iter().enumerate().skip(1) {
        if n == 0 {
            continue;
        }
        let area = n as f64 * geo.px[0] * geo.px[1];
        let r = (area / std::f64::consts::PI).sqrt();
        if !(MIN_R_MM..=MAX_R_MM).contains(&r) {
            continue;
        }
        let (mut sr, mut sc) = (0.0, 0.0);
        for ((rr, cc), l) in labels.indexed_iter() {
            if *l as usize == label {
                sr += rr as f64;
                sc += cc as f64;
            }
        }
        let (cr, ccol) = (sr / n as f64, sc / n as f64);
        let mut rmax: f64 = 0.0;
        for ((rr, cc), l) in labels.indexed_iter() {
            if *l as usize == label {
                let dy = (rr as f64 - cr) * geo.px[0];
                let dx = (cc as f64 - ccol) * geo.px[1];
                rmax = rmax.max((dx * dx + dy * dy).sqrt());
            }
        }
        // A disc has rmax ≈ r; elongated or ragged shapes are not rods.
        if rmax > 1.35 * r + pxmin {
            continue;
        }
        rods.push(Rod {
            x_mm: geo.x_of(ccol),
            y_mm: geo.y_of(cr),
            radius_mm: r,
        });
    }
    rods
}
