//! The typed values going into and coming out of the store.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// Pool settings for [`super::Store::connect_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (`database.max_connections`). SQLite in-memory databases always use 1.
    pub max_connections: u32,
    /// How long a SQLite writer waits for another writer (PRAGMA busy_timeout).
    pub busy_timeout: Duration,
    /// How long to wait for a free connection (and for the first connection at start).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        })
    }
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value for a stored text, `None` when unknown.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Life cycle of a series: receiving → stable → analysing → done | failed | not_analysed.
    /// A new instance sends any state back to receiving (see [`super::Store::record_instance`]).
    SeriesState {
        /// Instances are arriving; becomes stable after `series.stable_seconds` of silence.
        Receiving = "receiving",
        /// Complete; waiting for a worker.
        Stable = "stable",
        /// A worker is analysing it (back to stable after a crash: `reset_interrupted`).
        Analysing = "analysing",
        /// Analysed (the last run has status ok).
        Done = "done",
        /// The last run could not analyse it (status failed or error); the run says why.
        Failed = "failed",
        /// Nothing to analyse (no CT image instance): kept, not analysed.
        NotAnalysed = "not_analysed",
    }
}

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

text_enum! {
    /// Delivery state of an outbox message (issue 4).
    OutboxState {
        /// Waiting for its (next) attempt at `next_attempt_at`.
        Pending = "pending",
        /// Claimed by a sender (back to pending at start if the sender died).
        Sending = "sending",
        /// Accepted by the mail server (or written by the file transport).
        Sent = "sent",
        /// Given up after `mail.max_attempts` failures (dead-lettered; `hu-red runs` lists it).
        Dead = "dead",
    }
}

text_enum! {
    /// Why an outbox message exists.
    OutboxKind {
        /// The report of a run (exactly one per run).
        Report = "report",
        /// An explicit `hu-red report --run ID --resend`.
        Resend = "resend",
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

/// A stored instance as the SCP records it (contract of issue 3): one type,
/// [`crate::scp::InstanceRecord`].
pub type NewInstance = crate::scp::InstanceRecord;

/// What [`super::Store::record_instance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordOutcome {
    /// The series did not exist before.
    pub new_series: bool,
    /// The series had been analysed (done/failed/not_analysed) or was being analysed; it is back
    /// to receiving and marked amended.
    pub reopened: bool,
    /// The SOP Instance UID was already stored: its row was replaced.
    pub replaced: bool,
}

/// A series row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesRow {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub state: SeriesState,
    /// Unix milliseconds of the last state change.
    pub state_changed_at: i64,
    pub first_received_at: i64,
    pub last_received_at: i64,
    pub n_instances: i64,
    /// Instances arrived after the series had been analysed (stays set).
    pub amended: bool,
    /// Calling AE title of the association that sent the last instance.
    pub calling_ae: Option<String>,
    pub station_name: Option<String>,
    pub modality: Option<String>,
    pub description: Option<String>,
    /// At least one instance is a CT image the engine can analyse.
    pub analysable: bool,
    pub last_run_id: Option<i64>,
    /// What the last run analysed (see [`Fingerprint`]).
    pub analysed_instance_count: Option<i64>,
    pub analysed_fingerprint: Option<String>,
}

impl SeriesRow {
    /// The fingerprint of the instance set analysed last, if any.
    pub fn analysed(&self) -> Option<Fingerprint> {
        Some(Fingerprint {
            n_instances: self.analysed_instance_count?,
            digest: self.analysed_fingerprint.clone()?,
        })
    }
}

/// An instance row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRow {
    /// What was recorded (see [`NewInstance`]).
    #[serde(flatten)]
    pub instance: NewInstance,
    /// Unix milliseconds of the last reception.
    pub received_at: i64,
    /// How many times this SOP instance was received (re-sends replace the row).
    pub times_received: i64,
}

impl std::ops::Deref for InstanceRow {
    type Target = NewInstance;
    fn deref(&self) -> &NewInstance {
        &self.instance
    }
}

/// Identifies the set of instances of a series: their count and the SHA-256 of their sorted
/// SOP Instance UIDs. Two equal fingerprints mean the same instances (DICOM gives changed pixel
/// data a new SOP Instance UID), so restart recovery and re-sends can tell "already analysed this
/// exact set" from "amended".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Fingerprint {
    pub n_instances: i64,
    /// Lower-case hex SHA-256.
    pub digest: String,
}

impl Fingerprint {
    /// The fingerprint of these SOP Instance UIDs (order and duplicates do not matter).
    pub fn of_uids<'a>(uids: impl IntoIterator<Item = &'a str>) -> Fingerprint {
        let mut v: Vec<&str> = uids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        let mut h = Sha256::new();
        for uid in &v {
            h.update(uid.as_bytes());
            h.update(b"\n");
        }
        let digest = h
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Fingerprint {
            n_instances: v.len() as i64,
            digest,
        }
    }

    /// The fingerprint of these instance rows (e.g. what a worker is about to analyse).
    pub fn of(instances: &[InstanceRow]) -> Fingerprint {
        Self::of_uids(instances.iter().map(|i| i.sop_instance_uid.as_str()))
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

/// A report email to queue (with its run, in the same transaction, or as a re-send).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOutboxMessage {
    pub kind: OutboxKind,
    /// At least one address.
    pub recipients: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// The Message-ID without angle brackets (unique: a run's report has one, each re-send its
    /// own), e.g. `run-42.3f9c1a2b@hospital.example`.
    pub message_id: String,
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
}

/// A baseline to store: reference HU per material for one scanner, phantom and protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewBaseline {
    pub scanner_id: String,
    pub scanner_label: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub phantom_id: String,
    pub protocol_key: String,
    pub kvp: Option<f64>,
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    /// "run 12", "import FILE".
    pub source: String,
    /// The run it was taken from (for `baseline set --run` and auto baselines). `None` while
    /// inserted with its run: [`super::Store::insert_run`] fills it in.
    pub run_id: Option<i64>,
    /// Set automatically (`qa.auto_baseline`), not yet confirmed by a physicist.
    pub provisional: bool,
    pub note: Option<String>,
    pub entries: Vec<NewBaselineEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewBaselineEntry {
    pub insert: String,
    /// `None`: listed without a usable value (the material then fails constancy).
    pub hu_mean: Option<f64>,
    pub red: Option<f64>,
}

/// A stored baseline with its entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineRow {
    pub id: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    /// `None`: the active baseline of its scanner, phantom and protocol.
    pub superseded_at: Option<i64>,
    pub superseded_by: Option<i64>,
    /// What was stored (see [`NewBaseline`]).
    #[serde(flatten)]
    pub baseline: NewBaseline,
}

impl std::ops::Deref for BaselineRow {
    type Target = NewBaseline;
    fn deref(&self) -> &NewBaseline {
        &self.baseline
    }
}

impl BaselineRow {
    pub fn is_active(&self) -> bool {
        self.superseded_at.is_none()
    }
}

/// One earlier run's ΔHU per material (the trend of a scanner and phantom).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRow {
    pub run_id: i64,
    pub finished_at: i64,
    pub study_date: Option<String>,
    /// Insert name → ΔHU (`None`: not measured or no baseline), tolerance.
    pub materials: Vec<(String, Option<f64>, Option<f64>)>,
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

/// A stored outbox message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub run_id: i64,
    pub kind: OutboxKind,
    pub recipients: Vec<String>,
    pub subject: String,
    #[serde(skip)]
    pub text_body: String,
    #[serde(skip)]
    pub html_body: String,
    pub message_id: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// A run with its materials and ROIs, in the order they were given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunRow,
    pub materials: Vec<MaterialRow>,
    pub rois: Vec<RoiRow>,
}

/// A stored scanner entry (see [`super::Store::sync_scanners`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScannerRow {
    pub name: String,
    pub calling_ae: Option<String>,
    pub station_name: Option<String>,
    pub phantom: Option<String>,
    pub recipients: Vec<String>,
    pub updated_at: i64,
}
