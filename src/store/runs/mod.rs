//! The runs table and its children: a run's columns ([`RunColumns`]), what is stored
//! ([`NewRun`]: the row, its materials, ROIs and a provisional baseline, in one transaction —
//! `insert.rs`) and what is read back ([`RunRow`], [`RunDetail`] — `read.rs`).

use serde::Serialize;
use std::fmt;

use super::{Fingerprint, NewBaseline, SeriesState};

text_enum! {
    /// Outcome of a run.
    RunStatus {
        /// The analysis completed (verdict PASS, FAIL or NONE).
        Ok = "ok",
        /// The series could not be analysed (no phantom found, unreadable images, ...).
        Failed = "failed",
        /// hu-red itself failed (results could not be written, internal error).
        Error = "error",
    }
}

text_enum! {
    /// The verdict a run reports.
    Verdict {
        /// Constancy against a baseline and every absolute check passed.
        Pass = "PASS",
        /// Constancy or an absolute check failed.
        Fail = "FAIL",
        /// The run did not produce a verdict because of an error.
        Error = "ERROR",
        /// Measured, no absolute check failed, but no baseline to judge constancy against
        /// (shown as `NO BASELINE`, see [`Verdict::label`]).
        None = "NONE",
    }
}

impl Verdict {
    /// What users read (`hu-red runs`, reports, the log): the stored text, except `NONE`, which
    /// reads `NO BASELINE` (measured, no absolute check failed, nothing to compare with yet).
    pub fn label(self) -> &'static str {
        match self {
            Verdict::None => "NO BASELINE",
            other => other.as_str(),
        }
    }
}

impl RunStatus {
    /// The state a series ends in after a run with this status.
    pub fn series_state(self) -> SeriesState {
        match self {
            RunStatus::Ok => SeriesState::Done,
            RunStatus::Failed | RunStatus::Error => SeriesState::Failed,
        }
    }
}

/// One analysed material of a run (plain values; see `convert` for building it from the engine's
/// `MaterialResult` and `InsertConstancy`). Non-finite numbers are stored as NULL.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NewMaterialResult {
    pub insert: String,
    pub red: Option<f64>,
    pub hu_mean: f64,
    pub hu_std: f64,
    pub hu_median: f64,
    pub n_rois: i64,
    pub n_pixels: i64,
    pub hu_expected: Option<f64>,
    pub hu_window: Option<[f64; 2]>,
    pub within_window: Option<bool>,
    pub baseline_hu: Option<f64>,
    pub delta_hu: Option<f64>,
    pub tolerance_hu: Option<f64>,
    pub within_tolerance: Option<bool>,
    pub delta_red_percent: Option<f64>,
    pub note: Option<String>,
}

/// One ROI of a run (plain values of the engine's `RoiMeasurement`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NewRoiMeasurement {
    pub hole: String,
    pub ring: Option<String>,
    pub insert: String,
    pub center_x_mm: f64,
    pub center_y_mm: f64,
    pub center_col_px: f64,
    pub center_row_px: f64,
    pub roi_radius_mm: f64,
    pub roi_radius_px: f64,
    pub insert_radius_mm: f64,
    pub hu_mean: f64,
    pub hu_std: f64,
    pub hu_median: f64,
    pub n_pixels: i64,
    pub n_slices: i64,
    pub refine_shift_mm: f64,
    pub contrast_hu: f64,
}

/// Who scanned and how: the identity columns of a run (from the series' headers).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunIdentity {
    /// DeviceSerialNumber, else StationName (the key baselines are kept under).
    pub scanner_id: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub station_name: Option<String>,
    pub device_serial: Option<String>,
    pub calling_ae: Option<String>,
    /// The protocol key baselines are matched on (see `identity::Protocol::key`).
    pub protocol_key: Option<String>,
    pub kvp: Option<f64>,
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    /// StudyDate as YYYY-MM-DD.
    pub study_date: Option<String>,
    /// When the series was acquired (`dicom::Acquisition::acquired_at_ms`: the acquisition's,
    /// else the series', else the study's date and time), unix ms of that wall-clock time read
    /// as UTC; `None`: unknown. Trends are ordered by it (else by `finished_at`).
    pub acquired_at: Option<i64>,
}

/// The columns of a run row: what [`NewRun`] stores and [`RunRow`] reads back (its id
/// apart).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunColumns {
    pub series_instance_uid: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: i64,
    pub status: RunStatus,
    pub verdict: Verdict,
    pub phantom_id: Option<String>,
    pub phantom_name: Option<String>,
    /// "template" / "detection" (the engine's `Detection`, as text).
    pub detection: Option<String>,
    pub confidence: Option<f64>,
    pub pose_centre_x_mm: Option<f64>,
    pub pose_centre_y_mm: Option<f64>,
    pub pose_rotation_deg: Option<f64>,
    /// Series index of the slab's centre slice, its slice count, thickness and z.
    pub slab_centre_index: Option<i64>,
    pub slab_n_slices: Option<i64>,
    pub slab_mm: Option<f64>,
    pub slab_centre_z_mm: Option<f64>,
    /// "layout" / "reassigned" / "detection".
    pub assignment: Option<String>,
    pub absolute_pass: Option<bool>,
    pub constancy_pass: Option<bool>,
    pub pearson_r: Option<f64>,
    pub baseline_source: Option<String>,
    pub warnings: Vec<String>,
    /// Why the run failed (status failed/error).
    pub error: Option<String>,
    /// The run's summary JSON document (same as results/<id>/ summary), as text.
    pub summary_json: Option<String>,
    /// Where the outputs are, relative to data_dir ('/' separated). `{run_id}` is replaced by
    /// the new run id, e.g. "results/{run_id}".
    pub outputs_dir: Option<String>,
    /// The series had been analysed before (copy `SeriesRow::amended` at claim time).
    pub amended: bool,
    pub scanner: Option<String>,
    pub identity: RunIdentity,
    /// The baseline it was evaluated against.
    pub baseline_id: Option<i64>,
    pub baseline_provisional: Option<bool>,
    /// E.g. that the protocol differs from the baseline's (the closest one was used).
    pub baseline_note: Option<String>,
    /// The instance set analysed (see [`Fingerprint::of`]).
    pub fingerprint: Fingerprint,
    /// Whether the analysis recognised a phantom: `Some(true)` when it was analysed or stopped
    /// after the phantom was found, `Some(false)` when no phantom was recognised (no CT image,
    /// unreadable images, nothing like a phantom: possibly a patient's series, which retention
    /// purges after `retention.unrecognised_days`), `None` when unknown (hu-red's own failure).
    pub phantom_recognised: Option<bool>,
}

/// A finished analysis of a series, stored in one transaction by
/// [`super::Store::insert_run`]: the run row, its materials and ROIs, and with
/// `qa.auto_baseline` a provisional baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewRun {
    #[serde(flatten)]
    pub columns: RunColumns,
    pub materials: Vec<NewMaterialResult>,
    pub rois: Vec<NewRoiMeasurement>,
    /// A provisional baseline made from this run (`qa.auto_baseline`), stored with it.
    pub provisional_baseline: Option<NewBaseline>,
}

impl std::ops::Deref for NewRun {
    type Target = RunColumns;
    fn deref(&self) -> &RunColumns {
        &self.columns
    }
}

impl std::ops::DerefMut for NewRun {
    fn deref_mut(&mut self) -> &mut RunColumns {
        &mut self.columns
    }
}

impl NewRun {
    /// A run with only the bookkeeping filled in: no analysis values (a failed run, or the
    /// start of one to fill field by field).
    pub fn new(
        series_instance_uid: impl Into<String>,
        status: RunStatus,
        verdict: Verdict,
        fingerprint: Fingerprint,
        started_at: i64,
        finished_at: i64,
    ) -> NewRun {
        NewRun {
            columns: RunColumns {
                series_instance_uid: series_instance_uid.into(),
                started_at,
                finished_at,
                status,
                verdict,
                phantom_id: None,
                phantom_name: None,
                detection: None,
                confidence: None,
                pose_centre_x_mm: None,
                pose_centre_y_mm: None,
                pose_rotation_deg: None,
                slab_centre_index: None,
                slab_n_slices: None,
                slab_mm: None,
                slab_centre_z_mm: None,
                assignment: None,
                absolute_pass: None,
                constancy_pass: None,
                pearson_r: None,
                baseline_source: None,
                warnings: Vec::new(),
                error: None,
                summary_json: None,
                outputs_dir: None,
                amended: false,
                scanner: None,
                identity: RunIdentity::default(),
                baseline_id: None,
                baseline_provisional: None,
                baseline_note: None,
                fingerprint,
                phantom_recognised: None,
            },
            materials: Vec::new(),
            rois: Vec::new(),
            provisional_baseline: None,
        }
    }
}

/// A run row (without its materials and ROIs; see [`RunDetail`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: i64,
    #[serde(flatten)]
    pub columns: RunColumns,
}

impl std::ops::Deref for RunRow {
    type Target = RunColumns;
    fn deref(&self) -> &RunColumns {
        &self.columns
    }
}

/// A stored material result (NULL numbers read back as NaN where the field is not optional).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaterialRow {
    pub run_id: i64,
    pub seq: i64,
    #[serde(flatten)]
    pub values: NewMaterialResult,
}

/// A stored ROI measurement (NULL numbers read back as NaN).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiRow {
    pub run_id: i64,
    pub seq: i64,
    #[serde(flatten)]
    pub values: NewRoiMeasurement,
}

/// A run with its materials and ROIs, in the order they were given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunRow,
    pub materials: Vec<MaterialRow>,
    pub rois: Vec<RoiRow>,
}

macro_rules! run_cols {
    () => {
        "id, series_instance_uid, started_at, finished_at, status, verdict, phantom_id, \
         phantom_name, detection, confidence, pose_centre_x_mm, pose_centre_y_mm, \
         pose_rotation_deg, slab_centre_index, slab_n_slices, slab_mm, slab_centre_z_mm, \
         assignment, absolute_pass, constancy_pass, pearson_r, baseline_source, warnings, error, \
         summary_json, outputs_dir, amended, scanner, instance_count, instance_fingerprint, \
         scanner_id, manufacturer, model, station_name, device_serial, calling_ae, protocol_key, \
         kvp, kernel, slice_thickness_mm, study_date, baseline_id, baseline_provisional, \
         baseline_note, phantom_recognised, acquired_at"
    };
}

mod insert;
mod read;

pub use read::{RunFacets, RunFilter, RunStatistics};

/// Placeholder in [`NewRun::outputs_dir`] replaced by the new run id.
pub const RUN_ID_PLACEHOLDER: &str = "{run_id}";
