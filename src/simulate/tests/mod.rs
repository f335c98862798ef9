//! Tests of the simulator, by topic; the helpers they share are here.

use super::*;
use crate::phantom::PhantomSet;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

mod dicom_output;
mod hole_checks;
mod hole_contents;
mod images;

/// The built-in definition `id`.
fn def(id: &str) -> PhantomDef {
    PhantomSet::builtin().get(id).unwrap().clone()
}

/// Small, fast series: 2.5 mm pixels over a 400 mm field.
fn small() -> SimParams {
    SimParams {
        pixel_mm: 2.5,
        matrix: 160,
        n_slices: 5,
        ..SimParams::default()
    }
}

/// Element `tag` of `obj` as a number.
fn f64_of(obj: &InMemDicomObject, tag: dicom_core::Tag) -> f64 {
    obj.element(tag).unwrap().value().to_float64().unwrap()
}

/// Element `tag` of `obj` as an integer.
fn int_of(obj: &InMemDicomObject, tag: dicom_core::Tag) -> i64 {
    obj.element(tag).unwrap().value().to_int::<i64>().unwrap()
}

/// Decode one object's pixels to HU by hand (raw words, PixelRepresentation, rescale); padding
/// → NaN. Also returns the raw stored values.
fn decode(obj: &InMemDicomObject) -> (Vec<f64>, Vec<i32>) {
    let signed = int_of(obj, tags::PIXEL_REPRESENTATION) == 1;
    let slope = f64_of(obj, tags::RESCALE_SLOPE);
    let intercept = f64_of(obj, tags::RESCALE_INTERCEPT);
    let pad = obj
        .get(tags::PIXEL_PADDING_VALUE)
        .map(|e| e.value().to_int::<i32>().unwrap());
    let bytes = obj
        .element(tags::PIXEL_DATA)
        .unwrap()
        .value()
        .to_bytes()
        .unwrap()
        .into_owned();
    let raw: Vec<i32> = bytes
        .chunks_exact(2)
        .map(|b| {
            let w = u16::from_le_bytes([b[0], b[1]]);
            if signed {
                w as i16 as i32
            } else {
                w as i32
            }
        })
        .collect();
    let hu = raw
        .iter()
        .map(|&s| {
            if Some(s) == pad {
                f64::NAN
            } else {
                s as f64 * slope + intercept
            }
        })
        .collect();
    (hu, raw)
}

/// Mean and count of the pixels whose centre lies within `r` mm of (x, y).
fn disc_mean(hu: &[f64], truth: &Truth, x: f64, y: f64, r: f64) -> (f64, usize) {
    let (mut s, mut n) = (0.0, 0usize);
    for row in 0..truth.rows {
        for col in 0..truth.cols {
            let dx = col as f64 * truth.pixel_mm - x;
            let dy = row as f64 * truth.pixel_mm - y;
            if dx * dx + dy * dy <= r * r {
                s += hu[row * truth.cols + col];
                n += 1;
            }
        }
    }
    (s / n as f64, n)
}

/// The pixel nearest to (x, y) mm.
fn value_at(hu: &[f64], truth: &Truth, x: f64, y: f64) -> f64 {
    let col = (x / truth.pixel_mm).round() as usize;
    let row = (y / truth.pixel_mm).round() as usize;
    hu[row * truth.cols + col]
}

/// HU as stored with the default storage (intercept −1024, slope 1) and decoded again.
fn q(v: f64) -> f32 {
    ((v + 1024.0).round() - 1024.0) as f32
}

/// The slice wholly in the insert region nearest to its centre.
fn central_insert_slice(truth: &Truth) -> usize {
    let zc = 0.5 * (truth.insert_z_range_mm[0] + truth.insert_z_range_mm[1]);
    truth
        .slices
        .iter()
        .filter(|s| s.insert_fraction >= 1.0)
        .min_by(|a, b| (a.z_mm - zc).abs().total_cmp(&(b.z_mm - zc).abs()))
        .expect("a slice fully in the insert region")
        .index
}

// ---- exact pixels and the rings of a hole (per-hole contents of issue 9, every definition) ----

/// Noise- and blur-free series at 0.4 mm pixels: pixel values are exact away from edges.
fn exact(matrix: usize) -> SimParams {
    SimParams {
        pixel_mm: 0.4,
        matrix,
        n_slices: 3,
        noise_sigma_hu: 0.0,
        blur_mm: 0.0,
        catphan_modules: false,
        ..SimParams::default()
    }
}

/// The central slice of the insert region as HU.
fn central_hu(stack: &HuStack, t: &Truth) -> Vec<f64> {
    stack
        .hu
        .index_axis(ndarray::Axis(0), central_insert_slice(t))
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// Values of the pixels lying wholly (the whole pixel square) between radii `r0` and `r1` of the
/// hole's centre.
fn ring_values(hu: &[f64], t: &Truth, h: &TruthHole, r0: f64, r1: f64) -> Vec<f64> {
    let hd = t.pixel_mm * std::f64::consts::FRAC_1_SQRT_2 + 1e-6;
    let mut out = Vec::new();
    for row in 0..t.rows {
        for col in 0..t.cols {
            let d = (col as f64 * t.pixel_mm - h.x_mm).hypot(row as f64 * t.pixel_mm - h.y_mm);
            if d - hd >= r0 && d + hd <= r1 {
                out.push(hu[row * t.cols + col]);
            }
        }
    }
    out
}

/// Every pixel wholly between `r0` and `r1` reads `want` (stored and decoded), and there are some.
fn assert_ring(hu: &[f64], t: &Truth, h: &TruthHole, r0: f64, r1: f64, want: f64) {
    let v = ring_values(hu, t, h, r0, r1);
    assert!(
        v.len() >= 4,
        "{}: only {} pixels in {r0}..{r1}",
        h.hole,
        v.len()
    );
    for x in &v {
        assert_eq!(*x, q(want) as f64, "{} at {r0}..{r1} mm", h.hole);
    }
}

/// `p` with these per-hole contents.
fn with_holes(p: SimParams, holes: &[(&str, HoleContent)]) -> SimParams {
    SimParams {
        holes: holes
            .iter()
            .map(|(k, c)| (k.to_string(), c.clone()))
            .collect(),
        ..p
    }
}
