//! The run summary: one value that the JSON file, the console text and (later) the service's
//! store are made from. JSON keys are a contract (issue 2, `hu-red analyze`).

use super::{finite, time::utc_timestamp};
use crate::analysis::{
    AssignmentMethod, Candidate, Curve, Detection, MaterialResult, Measurement, Plan, Pose,
    SlicesUsed, ToleranceEvaluation,
};
use crate::pipeline::Timings;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// Acquisition metadata: the script's 11 DICOM fields under the script's names, the script's
/// `selected_slice_index`, `phantom` and `dicom_path`, then hu-red's additions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    #[serde(rename = "SeriesDescription")]
    pub series_description: Option<String>,
    #[serde(rename = "ProtocolName")]
    pub protocol_name: Option<String>,
    #[serde(rename = "KVP")]
    pub kvp: Option<f64>,
    #[serde(rename = "Manufacturer")]
    pub manufacturer: Option<String>,
    #[serde(rename = "ManufacturerModelName")]
    pub manufacturer_model_name: Option<String>,
    #[serde(rename = "StationName")]
    pub station_name: Option<String>,
    #[serde(rename = "StudyDate")]
    pub study_date: Option<String>,
    #[serde(rename = "StudyTime")]
    pub study_time: Option<String>,
    #[serde(rename = "SliceThickness")]
    pub slice_thickness: Option<f64>,
    /// From ConvolutionKernel, as the script names it.
    #[serde(rename = "ReconstructionKernel")]
    pub reconstruction_kernel: Option<String>,
    /// Row and column spacing joined by "," (the script's form).
    #[serde(rename = "PixelSpacing")]
    pub pixel_spacing: Option<String>,
    /// Series index of the centre slice of the measured slab.
    pub selected_slice_index: Option<usize>,
    pub phantom: String,
    pub dicom_path: String,
    #[serde(rename = "SeriesInstanceUID")]
    pub series_instance_uid: Option<String>,
    #[serde(rename = "StudyInstanceUID")]
    pub study_instance_uid: Option<String>,
    #[serde(rename = "SOPClassUID")]
    pub sop_class_uid: Option<String>,
    #[serde(rename = "Modality")]
    pub modality: Option<String>,
    #[serde(rename = "SeriesNumber")]
    pub series_number: Option<i64>,
    #[serde(rename = "DeviceSerialNumber")]
    pub device_serial_number: Option<String>,
    #[serde(rename = "Rows")]
    pub rows: Option<usize>,
    #[serde(rename = "Columns")]
    pub columns: Option<usize>,
    #[serde(rename = "TransferSyntaxUID")]
    pub transfer_syntax_uid: Option<String>,
    /// Number of slices in the series.
    pub n_slices: Option<usize>,
    /// `[row, column]` spacing, mm.
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

impl Metadata {
    /// Metadata of a loaded series (the caller sets `phantom`, `dicom_path` and
    /// `selected_slice_index`).
    pub fn from_series(meta: &crate::dicom::SeriesMeta) -> Self {
        let ps = meta.pixel_spacing;
        let ps_ok = ps.iter().all(|v| v.is_finite() && *v > 0.0);
        Metadata {
            series_description: meta.series_description.clone(),
            protocol_name: meta.protocol_name.clone(),
            kvp: meta.kvp.and_then(finite),
            manufacturer: meta.manufacturer.clone(),
            manufacturer_model_name: meta.manufacturer_model_name.clone(),
            station_name: meta.station_name.clone(),
            study_date: meta.study_date.clone(),
            study_time: meta.study_time.clone(),
            slice_thickness: meta.slice_thickness.and_then(finite),
            reconstruction_kernel: meta.reconstruction_kernel.clone(),
            pixel_spacing: ps_ok.then(|| format!("{},{}", ps[0], ps[1])),
            selected_slice_index: None,
            phantom: String::new(),
            dicom_path: String::new(),
            series_instance_uid: Some(meta.series_instance_uid.clone()),
            study_instance_uid: Some(meta.study_instance_uid.clone()),
            sop_class_uid: Some(meta.sop_class_uid.clone()),
            modality: Some(meta.modality.clone()),
            series_number: meta.series_number,
            device_serial_number: meta.device_serial_number.clone(),
            rows: Some(meta.rows),
            columns: Some(meta.columns),
            transfer_syntax_uid: Some(meta.transfer_syntax.clone()),
            n_slices: Some(meta.n_slices),
            pixel_spacing_mm: ps_ok.then_some(ps),
        }
    }

    /// The 11 script columns as CSV cells (missing = empty), in the script's order.
    pub fn script_cells(&self) -> [String; 11] {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let n = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        [
            s(&self.series_description),
            s(&self.protocol_name),
            n(self.kvp),
            s(&self.manufacturer),
            s(&self.manufacturer_model_name),
            s(&self.station_name),
            s(&self.study_date),
            s(&self.study_time),
            n(self.slice_thickness),
            s(&self.reconstruction_kernel),
            s(&self.pixel_spacing),
        ]
    }

    /// The script's column name → value (non-empty only), for comparing protocols with a
    /// baseline file (see `baseline::BaselineProtocol::differences`).
    pub fn protocol_fields(&self) -> BTreeMap<String, String> {
        crate::baseline::METADATA_COLUMNS
            .iter()
            .zip(self.script_cells())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

/// Which phantom, and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomSummary {
    /// The id used in the file names (`unknown` when auto-detection did not get that far).
    pub id: String,
    pub name: Option<String>,
    pub detection: Detection,
    pub confidence: Option<f64>,
    pub candidates: Vec<Candidate>,
}

/// Paths of the files written (`null` = not written).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub csv: Option<String>,
    pub summary_json: Option<String>,
    pub curve_png: Option<String>,
    pub overlay_png: Option<String>,
}

/// The run summary (`hu_red_PHANTOM_summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub status: Status,
    pub error: Option<String>,
    pub hu_red_version: String,
    pub started_at: String,
    pub finished_at: String,
    pub dicom_path: String,
    pub phantom: PhantomSummary,
    pub metadata: Metadata,
    pub pose: Option<Pose>,
    pub slices: Option<SlicesUsed>,
    pub assignment: Option<AssignmentMethod>,
    /// Every manufacturer absolute HU window passed (`null` when not analysed).
    pub absolute_pass: Option<bool>,
    pub inserts: Vec<MaterialResult>,
    pub curve: Option<Curve>,
    pub tolerance_evaluation: ToleranceEvaluation,
    pub outputs: Outputs,
    pub warnings: Vec<String>,
    /// How to read the result (the script's summary has a `note` too).
    pub note: String,
    pub timings_ms: Option<Timings>,
}

/// The `note` of every summary.
pub const NOTE: &str = "HU values are ROI means averaged over the slab of slices listed under \
'slices'; constancy: delta_hu = hu_mean - baseline_hu per insert, pass = every insert within its \
tolerance (a missing value fails); delta_red_percent = the RED error a planning system still \
using the baseline curve makes on today's HU.";

/// What a summary of a successful analysis is made of.
pub struct OkParts<'a> {
    pub dicom_path: &'a str,
    pub metadata: Metadata,
    pub measurement: &'a Measurement,
    pub evaluation: &'a ToleranceEvaluation,
    pub warnings: Vec<String>,
    pub timings: Option<Timings>,
    pub started_at: SystemTime,
}

impl Summary {
    /// The summary of a successful analysis. `outputs` starts empty: the writer fills it.
    pub fn ok(p: OkParts<'_>) -> Self {
        let m = p.measurement;
        let mut metadata = p.metadata;
        metadata.phantom = m.phantom_id.clone();
        metadata.dicom_path = p.dicom_path.to_string();
        metadata.selected_slice_index = Some(m.slices.centre_index);
        Summary {
            status: Status::Ok,
            error: None,
            hu_red_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: utc_timestamp(p.started_at),
            finished_at: utc_timestamp(SystemTime::now()),
            dicom_path: p.dicom_path.to_string(),
            phantom: PhantomSummary {
                id: m.phantom_id.clone(),
                name: Some(m.phantom_name.clone()),
                detection: m.detection,
                confidence: finite(m.confidence),
                candidates: m.candidates.clone(),
            },
            metadata,
            pose: Some(m.pose),
            slices: Some(m.slices.clone()),
            assignment: Some(m.assignment),
            absolute_pass: Some(m.absolute_pass),
            inserts: m.inserts.clone(),
            curve: Some(m.curve.clone()),
            tolerance_evaluation: p.evaluation.clone(),
            outputs: Outputs::default(),
            warnings: p.warnings,
            note: NOTE.to_string(),
            timings_ms: p.timings,
        }
    }

    /// The summary of a run that could not analyse. `phantom_id` is the forced phantom or
    /// [`super::UNKNOWN_PHANTOM`]; `plan`, when the planner got that far, adds its candidates and
    /// pose; `baseline_source` is the baseline that was given, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn error(
        dicom_path: &str,
        phantom_id: &str,
        detection: Detection,
        error: String,
        metadata: Option<Metadata>,
        plan: Option<&Plan>,
        baseline_source: Option<String>,
        warnings: Vec<String>,
        started_at: SystemTime,
    ) -> Self {
        let mut metadata = metadata.unwrap_or_default();
        metadata.phantom = phantom_id.to_string();
        metadata.dicom_path = dicom_path.to_string();
        metadata.selected_slice_index = plan.map(|p| p.centre_index);
        Summary {
            status: Status::Error,
            error: Some(error),
            hu_red_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: utc_timestamp(started_at),
            finished_at: utc_timestamp(SystemTime::now()),
            dicom_path: dicom_path.to_string(),
            phantom: PhantomSummary {
                id: phantom_id.to_string(),
                name: None,
                detection,
                confidence: plan
                    .filter(|p| p.phantom_id == phantom_id)
                    .and_then(|p| finite(p.confidence)),
                candidates: plan.map(|p| p.candidates.clone()).unwrap_or_default(),
            },
            metadata,
            pose: plan.map(|p| p.pose),
            slices: None,
            assignment: None,
            absolute_pass: None,
            inserts: Vec::new(),
            curve: None,
            tolerance_evaluation: ToleranceEvaluation {
                has_baseline: baseline_source.is_some(),
                pass: None,
                pearson_r: None,
                baseline_source,
                per_insert: Vec::new(),
            },
            outputs: Outputs::default(),
            warnings,
            note: NOTE.to_string(),
            timings_ms: None,
        }
    }

    /// Strict, pretty JSON in the struct's key order: serde_json writes every non-finite
    /// float as `null` (checked by the tests), so no `NaN` token can appear.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"status\": \"error\", \"error\": {}}}",
                serde_json::Value::String(format!("cannot serialise the summary: {e}"))
            )
        }) + "\n"
    }

    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({
                "status": "error",
                "error": format!("cannot serialise the summary: {e}"),
            })
        })
    }

    /// Overall verdict for the exit code: `Some(false)` when a baseline was compared and
    /// failed.
    pub fn constancy_pass(&self) -> Option<bool> {
        if self.tolerance_evaluation.has_baseline {
            self.tolerance_evaluation.pass
        } else {
            None
        }
    }
}
