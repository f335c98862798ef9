//! Building the store's plain values from the engine's results (`crate::analysis::types`).
//! The analysis never imports the store; the store reads the analysis' output types.

use super::{NewMaterialResult, NewRoiMeasurement, NewRun};
use crate::analysis::{
    InsertConstancy, MaterialResult, Measurement, RoiMeasurement, ToleranceEvaluation,
};

impl NewMaterialResult {
    /// A material's values, with its constancy line when a baseline was compared.
    pub fn from_analysis(m: &MaterialResult, c: Option<&InsertConstancy>) -> NewMaterialResult {
        NewMaterialResult {
            insert: m.insert.clone(),
            red: m.red,
            hu_mean: m.hu_mean,
            hu_std: m.hu_std,
            hu_median: m.hu_median,
            n_rois: m.n_rois as i64,
            n_pixels: m.n_pixels as i64,
            hu_expected: Some(m.hu_expected),
            hu_window: m.hu_window,
            within_window: m.within_window,
            baseline_hu: c.and_then(|c| c.baseline_hu),
            delta_hu: c.and_then(|c| c.delta_hu),
            tolerance_hu: c.map(|c| c.tolerance_hu),
            within_tolerance: c.map(|c| c.within_tolerance),
            delta_red_percent: c.and_then(|c| c.delta_red_percent),
            note: c.and_then(|c| c.note.clone()),
        }
    }
}

impl From<&RoiMeasurement> for NewRoiMeasurement {
    fn from(r: &RoiMeasurement) -> Self {
        NewRoiMeasurement {
            hole: r.hole.clone(),
            ring: r.ring.clone(),
            insert: r.insert.clone(),
            center_x_mm: r.center_x_mm,
            center_y_mm: r.center_y_mm,
            center_col_px: r.center_col_px,
            center_row_px: r.center_row_px,
            roi_radius_mm: r.roi_radius_mm,
            roi_radius_px: r.roi_radius_px,
            insert_radius_mm: r.insert_radius_mm,
            hu_mean: r.hu_mean,
            hu_std: r.hu_std,
            hu_median: r.hu_median,
            n_pixels: r.n_pixels as i64,
            n_slices: r.n_slices as i64,
            refine_shift_mm: r.refine_shift_mm,
            contrast_hu: r.contrast_hu,
        }
    }
}

/// The text serde gives a unit enum value ("auto", "layout", ...).
fn enum_text<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
}

impl NewRun {
    /// Fill the analysis fields from a measurement and its constancy evaluation: phantom,
    /// detection, pose, slab, assignment, absolute/constancy pass, Pearson r, baseline source,
    /// materials (with their constancy lines, matched by insert name), ROIs (material by
    /// material) and the measurement's warnings (appended). Status, verdict, error, summary and
    /// outputs stay as the caller sets them.
    pub fn fill_from_measurement(&mut self, m: &Measurement, ev: Option<&ToleranceEvaluation>) {
        self.phantom_id = Some(m.phantom_id.clone());
        self.phantom_name = Some(m.phantom_name.clone());
        self.detection = enum_text(&m.detection);
        self.confidence = Some(m.confidence);
        self.pose_centre_x_mm = Some(m.pose.centre_x_mm);
        self.pose_centre_y_mm = Some(m.pose.centre_y_mm);
        self.pose_rotation_deg = Some(m.pose.rotation_deg);
        self.slab_centre_index = Some(m.slices.centre_index as i64);
        self.slab_n_slices = Some(m.slices.indices.len() as i64);
        self.slab_mm = Some(m.slices.slab_mm);
        self.slab_centre_z_mm = m
            .slices
            .indices
            .iter()
            .position(|&i| i == m.slices.centre_index)
            .and_then(|p| m.slices.z_mm.get(p).copied());
        self.assignment = enum_text(&m.assignment);
        self.absolute_pass = Some(m.absolute_pass);
        if let Some(ev) = ev {
            self.constancy_pass = ev.pass;
            self.pearson_r = ev.pearson_r;
            self.baseline_source = ev.baseline_source.clone();
        }
        self.materials = m
            .inserts
            .iter()
            .map(|mr| {
                let c = ev.and_then(|ev| ev.per_insert.iter().find(|c| c.insert == mr.insert));
                NewMaterialResult::from_analysis(mr, c)
            })
            .collect();
        self.rois = m
            .inserts
            .iter()
            .flat_map(|mr| mr.rois.iter().map(NewRoiMeasurement::from))
            .collect();
        self.warnings.extend(m.warnings.iter().cloned());
    }
}
