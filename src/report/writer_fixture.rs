//! A hand-made CIRS-like measurement and the image it came from, for the report writers'
//! tests (no engine involved).

use crate::analysis::{
    AssignmentMethod, Candidate, Curve, CurvePoint, Detection, HuStack, MaterialResult,
    Measurement, Pose, RoiMeasurement, SlicesUsed,
};
use crate::phantom::PhantomSet;
use ndarray::Array3;

/// Pixel size of the fake image, mm.
pub(super) const PX: f64 = 0.8;
/// Rows and columns of the fake image.
pub(super) const N: usize = 512;

/// A CIRS-like measurement at a given pose, with the image it came from.
pub(crate) fn fake_cirs(shift_water: f64) -> (Measurement, HuStack, crate::phantom::PhantomDef) {
    let set = PhantomSet::builtin();
    let def = set.get("cirs062").unwrap().clone();
    let pose = Pose {
        centre_x_mm: N as f64 * PX / 2.0 + 12.0,
        centre_y_mm: N as f64 * PX / 2.0 - 8.0,
        rotation_deg: 7.5,
    };
    let rois = fake_rois(&def, &pose, shift_water);
    let slab = fake_slab(&def, &pose, &rois);
    let inserts = fake_materials(&def, &rois);
    let curve = Curve::from_points(
        inserts
            .iter()
            .filter_map(|m| {
                Some(CurvePoint {
                    insert: m.insert.clone(),
                    hu: m.hu_mean,
                    red: m.red?,
                })
            })
            .collect(),
    );
    let m = Measurement {
        phantom_id: def.id.clone(),
        phantom_name: def.name.clone(),
        detection: Detection::Auto,
        confidence: 0.93,
        candidates: vec![Candidate {
            id: def.id.clone(),
            score: 0.93,
            reason: "17 holes fit".into(),
        }],
        pose,
        slices: SlicesUsed {
            centre_index: 41,
            indices: vec![40, 41, 42],
            z_mm: vec![-2.0, 0.0, 2.0],
            slab_mm: 5.0,
            thickness_mm: 2.0,
        },
        assignment: AssignmentMethod::Layout,
        inserts,
        curve,
        absolute_pass: true,
        warnings: vec!["a test warning".into()],
        family: None,
        kvp: Some(120.0),
        unassigned: vec![],
        // what the engine reports for this measurement (absolute_pass == checks.pass)
        checks: crate::analysis::AbsoluteChecks {
            pass: true,
            curve_monotonic: true,
            checked: vec!["monotone HU–RED curve".into()],
            ..Default::default()
        },
    };
    (m, slab, def)
}

/// One ROI per hole of the layout at `pose`, at its material's expected HU (outer ring +6 HU,
/// water `shift_water` more).
fn fake_rois(
    def: &crate::phantom::PhantomDef,
    pose: &Pose,
    shift_water: f64,
) -> Vec<RoiMeasurement> {
    let (s, c) = pose.rotation_deg.to_radians().sin_cos();
    let place = |x: f64, y: f64| {
        (
            pose.centre_x_mm + x * c - y * s,
            pose.centre_y_mm + x * s + y * c,
        )
    };
    let mut rois = Vec::new();
    for hole in &def.holes {
        let Some(mat) = def.layout.get(&hole.id) else {
            continue;
        };
        let m = def.material(mat).unwrap();
        let (x, y) = place(hole.x_mm, hole.y_mm);
        let ring_shift = if hole.ring.as_deref() == Some("outer") {
            6.0
        } else {
            0.0
        };
        let hu = m.hu_expected + ring_shift + if mat == "water" { shift_water } else { 0.0 };
        rois.push(RoiMeasurement {
            hole: hole.id.clone(),
            ring: hole.ring.clone(),
            insert: mat.clone(),
            center_x_mm: x,
            center_y_mm: y,
            center_col_px: x / PX,
            center_row_px: y / PX,
            roi_radius_mm: hole.radius_mm * def.roi_radius_fraction,
            roi_radius_px: hole.radius_mm * def.roi_radius_fraction / PX,
            insert_radius_mm: hole.radius_mm,
            hu_mean: hu,
            hu_std: 10.0,
            hu_median: hu,
            n_pixels: 500,
            n_slices: 5,
            refine_shift_mm: 0.1,
            contrast_hu: (hu - def.body_hu).abs(),
            ..Default::default()
        });
    }
    rois
}

/// The image: 3 slices of an elliptical body at `pose`, the inserts at their ROIs' HU, NaN
/// outside a reconstruction circle.
fn fake_slab(def: &crate::phantom::PhantomDef, pose: &Pose, rois: &[RoiMeasurement]) -> HuStack {
    let (s, c) = pose.rotation_deg.to_radians().sin_cos();
    let mut hu = Array3::<f32>::from_elem((3, N, N), -1000.0);
    let (w, h) = def.outline.size_mm();
    for r in 0..N {
        for col in 0..N {
            let (x, y) = (col as f64 * PX, r as f64 * PX);
            let rc = ((x - N as f64 * PX / 2.0).powi(2) + (y - N as f64 * PX / 2.0).powi(2)).sqrt();
            let (dx, dy) = (x - pose.centre_x_mm, y - pose.centre_y_mm);
            let (px, py) = (dx * c + dy * s, -dx * s + dy * c);
            let mut v = if (px / (w / 2.0)).powi(2) + (py / (h / 2.0)).powi(2) <= 1.0 {
                def.body_hu as f32
            } else {
                -1000.0
            };
            for roi in rois {
                let d = ((x - roi.center_x_mm).powi(2) + (y - roi.center_y_mm).powi(2)).sqrt();
                if d <= roi.insert_radius_mm {
                    v = roi.hu_mean as f32;
                }
            }
            if rc > N as f64 * PX / 2.0 {
                v = f32::NAN;
            }
            for k in 0..3 {
                hu[[k, r, col]] = v;
            }
        }
    }
    HuStack {
        hu,
        pixel_mm: [PX, PX],
        origin_mm: [0.0, 0.0],
        z_mm: vec![-2.0, 0.0, 2.0],
        series_index: vec![40, 41, 42],
        thickness_mm: 2.0,
        factor: 1,
    }
}

/// One measured material per expected material of `def`, averaging its ROIs.
fn fake_materials(
    def: &crate::phantom::PhantomDef,
    rois: &[RoiMeasurement],
) -> Vec<MaterialResult> {
    let mut inserts: Vec<MaterialResult> = Vec::new();
    for m in def.expected_materials() {
        let rs: Vec<RoiMeasurement> = rois
            .iter()
            .filter(|r| r.insert == m.name)
            .cloned()
            .collect();
        let mean = rs.iter().map(|r| r.hu_mean).sum::<f64>() / rs.len() as f64;
        inserts.push(MaterialResult {
            insert: m.name.clone(),
            red: m.red,
            hu_mean: mean,
            hu_std: 10.0,
            hu_median: mean,
            n_rois: rs.len(),
            n_pixels: 500 * rs.len(),
            hu_expected: m.hu_expected,
            hu_window: m.hu_window,
            within_window: m.hu_window.map(|w| mean >= w[0] && mean <= w[1]),
            check_pass: true,
            rois: rs,
            ..Default::default()
        });
    }
    inserts
}
