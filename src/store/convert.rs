//! Building the store's plain values from the engine's results (`crate::analysis::types`) and
//! from a run's scanner identity and protocol (`crate::identity`), and back: a stored baseline
//! as the engine's [`crate::analysis::Baseline`] and as a protocol. The analysis never imports
//! the store; the store reads the analysis' output types.

use super::{
    BaselineRow, NewBaselineEntry, NewMaterialResult, NewRoiMeasurement, NewRun, RunIdentity,
};
use crate::analysis::{
    InsertConstancy, MaterialResult, Measurement, RoiMeasurement, ToleranceEvaluation,
};
use crate::identity::{self, Protocol, ProtocolField, ScannerIdentity};

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

impl NewBaselineEntry {
    /// A measured material as a baseline entry (a non-finite mean is stored as missing).
    pub fn from_material(m: &MaterialResult) -> NewBaselineEntry {
        NewBaselineEntry {
            insert: m.insert.clone(),
            hu_mean: Some(m.hu_mean).filter(|v| v.is_finite()),
            red: m.red,
        }
    }
}

impl From<&NewMaterialResult> for NewBaselineEntry {
    /// A stored run's material as a baseline entry (`baseline set --run`), by the same rule.
    fn from(m: &NewMaterialResult) -> Self {
        NewBaselineEntry {
            insert: m.insert.clone(),
            hu_mean: Some(m.hu_mean).filter(|v| v.is_finite()),
            red: m.red,
        }
    }
}

impl From<&crate::analysis::BaselineEntry> for NewBaselineEntry {
    fn from(e: &crate::analysis::BaselineEntry) -> Self {
        NewBaselineEntry {
            insert: e.insert.clone(),
            hu_mean: e.hu_mean,
            red: e.red,
        }
    }
}

impl BaselineRow {
    /// The stored baseline as the engine's baseline, named `baseline #ID (SOURCE)`.
    pub fn to_engine(&self) -> crate::analysis::Baseline {
        crate::analysis::Baseline {
            source: format!("baseline #{} ({})", self.id, self.source),
            entries: self
                .entries
                .iter()
                .map(|e| crate::analysis::BaselineEntry {
                    insert: e.insert.clone(),
                    hu_mean: e.hu_mean,
                    red: e.red,
                })
                .collect(),
        }
    }

    /// The protocol the baseline was measured with.
    pub fn protocol(&self) -> Protocol {
        Protocol {
            kvp: self.kvp,
            kernel: self.kernel.clone(),
            slice_thickness_mm: self.slice_thickness_mm,
        }
    }
}

impl identity::Candidate for BaselineRow {
    fn protocol(&self) -> Protocol {
        BaselineRow::protocol(self)
    }
    fn protocol_key(&self) -> &str {
        &self.protocol_key
    }
    fn id(&self) -> i64 {
        self.id
    }
}

impl RunIdentity {
    /// A run's scanner identity and protocol as stored (the protocol key over `fields`;
    /// `study_date` as `YYYY-MM-DD`; `acquired_at` see [`RunIdentity::acquired_at`]).
    pub fn of(
        identity: &ScannerIdentity,
        protocol: &Protocol,
        fields: &[ProtocolField],
        study_date: Option<String>,
        acquired_at: Option<i64>,
    ) -> RunIdentity {
        RunIdentity {
            scanner_id: Some(identity.id.clone()),
            manufacturer: identity.manufacturer.clone(),
            model: identity.model.clone(),
            station_name: identity.station_name.clone(),
            device_serial: identity.device_serial.clone(),
            calling_ae: identity.calling_ae.clone(),
            protocol_key: Some(protocol.key(fields)),
            kvp: protocol.kvp,
            kernel: protocol.kernel.clone(),
            slice_thickness_mm: protocol.slice_thickness_mm,
            study_date,
            acquired_at,
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
