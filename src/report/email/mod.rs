//! The run report as an email: the subject, the plain-text body and the HTML body. Pure: plain
//! values in, strings out (no I/O, no configuration, no database). `notify` builds the MIME
//! message from a [`RenderedReport`] plus the attachments; the worker and `hu-red report`
//! fill a [`ReportData`] from the run.
//!
//! Subject (a contract with users' mail filters):
//! `[PASS] HU–RED constancy — <scanner> — <phantom id> — <YYYY-MM-DD>`, with `[FAIL]`,
//! `[NO BASELINE]` or `[ERROR]` instead of `[PASS]`. The dashes are U+2013 (en dash, in
//! "HU–RED") and U+2014 (em dash, between the fields).
//!
//! The kind follows the run's verdict ([`super::verdict`]): never `[PASS]` without a baseline.
//!
//! This room owns the report's content and its two renderings:
//! - this file: the public API (the inputs [`ReportData`], [`ScannerInfo`], [`BaselineInfo`],
//!   [`Trend`], the output [`RenderedReport`], [`subject`], [`render`]);
//! - `model`: the report as plain values (verdict line, notices, table, sections, footer) built
//!   from a [`ReportData`], shared by both renderers; `model::materials`: the materials table
//!   (one row per material, its cells and verdict); `model::sections`: the titled sections
//!   (absolute checks, unassigned holes, what went wrong, baseline, scanner and series,
//!   phantom, warnings, attachments);
//! - `text`: the plain-text body (wrapped at 96 characters, aligned columns);
//! - `html`: the HTML body (one well-formed document, inline styles, nothing external).
//!
//! Numbers, missing values and dates are written by `report::format`.

mod html;
mod model;
mod text;

use super::{RunVerdict, Summary};
use crate::report::format::one_line;
use model::Model;

/// The verdict the subject starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Constancy passed against the baseline and every absolute check passed.
    Pass,
    /// A material outside its tolerance, or an absolute check failed (with or without a
    /// baseline).
    Fail,
    /// No baseline yet and no absolute check failed: constancy could not be judged.
    NoBaseline,
    /// The series could not be analysed.
    Error,
}

impl ReportKind {
    /// `[PASS]`, `[FAIL]`, `[NO BASELINE]` or `[ERROR]`.
    pub fn tag(self) -> &'static str {
        match self {
            ReportKind::Pass => "[PASS]",
            ReportKind::Fail => "[FAIL]",
            ReportKind::NoBaseline => "[NO BASELINE]",
            ReportKind::Error => "[ERROR]",
        }
    }
}

impl From<RunVerdict> for ReportKind {
    fn from(v: RunVerdict) -> Self {
        match v {
            RunVerdict::Pass => ReportKind::Pass,
            RunVerdict::Fail => ReportKind::Fail,
            RunVerdict::NoBaseline => ReportKind::NoBaseline,
            RunVerdict::Error => ReportKind::Error,
        }
    }
}

/// Who scanned: the run's scanner identity (one type, [`crate::identity::ScannerIdentity`]).
pub type ScannerInfo = crate::identity::ScannerIdentity;

/// The baseline a run was evaluated against.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineInfo {
    pub id: i64,
    /// Where it came from: `run 12`, `import /path/file.csv`.
    pub source: String,
    /// Date it was set, `YYYY-MM-DD`.
    pub created: String,
    /// Set automatically from the first run of this scanner, phantom and protocol and not yet
    /// confirmed by a physicist: every report says so, prominently.
    pub provisional: bool,
    /// The baseline's protocol, human readable (e.g. `120 kV, B30f, 2 mm`).
    pub protocol: String,
    /// Set when the run's protocol differs from the baseline's (the closest baseline was
    /// used): what differs, e.g. `kVp 100 (baseline 120)`.
    pub protocol_differs: Option<String>,
}

/// One earlier (or this) run in the trend: ΔHU per material.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRun {
    /// 0 for the run being reported when it is not stored yet.
    pub run_id: i64,
    /// The run being reported (highlighted).
    pub this_run: bool,
    /// When its series was acquired (else analysed): unix ms of that wall-clock time read as
    /// UTC. The plot orders and places the runs by it (see [`crate::report::timeline`]).
    pub at_ms: i64,
    /// The baseline it was evaluated against.
    pub baseline_id: Option<i64>,
    /// Insert name → ΔHU against the baseline that run used (`None`: not measured or no
    /// baseline).
    pub delta_hu: Vec<(String, Option<f64>)>,
}

/// A baseline runs of the trend were evaluated against: its run is drawn at ΔHU 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendBaseline {
    pub id: i64,
    /// The run it was taken from (`None`: imported).
    pub run_id: Option<i64>,
    /// That run's acquisition (else analysis) time, unix ms (as [`TrendRun::at_ms`]).
    pub run_at_ms: Option<i64>,
}

/// ΔHU of every material over the last runs of one scanner and phantom (in any order: the plot
/// orders them by acquisition), with the tolerance of each material and the baselines the runs
/// used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trend {
    /// Insert name → tolerance (HU), in the phantom's order.
    pub materials: Vec<(String, f64)>,
    pub runs: Vec<TrendRun>,
    pub baselines: Vec<TrendBaseline>,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct ReportData<'a> {
    pub run_id: i64,
    pub kind: ReportKind,
    pub scanner: ScannerInfo,
    /// The run's protocol, human readable (e.g. `120 kV, B30f, 2 mm`), empty when unknown.
    pub protocol: String,
    /// Scan date (StudyDate), else the run's date: `YYYY-MM-DD`.
    pub date: String,
    /// The run's summary: materials with constancy, pose, slices, Pearson r, metadata,
    /// warnings; for an ERROR report, `summary.error` and what was known.
    pub summary: &'a Summary,
    /// `None`: no baseline yet (the body says "no baseline").
    pub baseline: Option<BaselineInfo>,
    /// This run was made the provisional baseline of its scanner, phantom and protocol
    /// (`qa.auto_baseline`): the report says how to confirm it.
    pub provisional_from_this_run: bool,
    /// The series was amended (instances arrived after an earlier analysis).
    pub amended: bool,
    /// File names attached to the message, listed in the body.
    pub attachments: Vec<String>,
    /// For ERROR reports, what to check (from the failure's stage and reason).
    pub hints: Vec<String>,
}

/// The rendered report.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedReport {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The subject line (see the module doc): `[FAIL] HU–RED constancy — CT-SIM-1 — cirs062 —
/// 2026-11-25`. CR, LF and every other control character in an interpolated value become a
/// space, so no value can start a new mail header.
pub fn subject(d: &ReportData) -> String {
    let label = one_line(&d.scanner.label);
    let label = if label.is_empty() {
        "unknown scanner".to_string()
    } else {
        label
    };
    let phantom = one_line(&d.summary.phantom.id);
    let phantom = if phantom.is_empty() {
        super::UNKNOWN_PHANTOM.to_string()
    } else {
        phantom
    };
    let date = one_line(&d.date);
    let date = if date.is_empty() {
        "unknown date".to_string()
    } else {
        date
    };
    format!(
        "{} HU\u{2013}RED constancy \u{2014} {label} \u{2014} {phantom} \u{2014} {date}",
        d.kind.tag()
    )
}

/// Subject, plain-text body and HTML body of the report.
pub fn render(d: &ReportData) -> RenderedReport {
    let model = Model::build(d);
    RenderedReport {
        subject: model.subject.clone(),
        text: text::render(&model),
        html: html::render(&model),
    }
}

#[cfg(test)]
mod tests;
