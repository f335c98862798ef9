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

use super::summary::{material_check, MaterialCheck};
use super::{RunVerdict, Summary};
use crate::analysis::MaterialStatus;

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

/// Who scanned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScannerInfo {
    /// What the report calls the scanner: the `[[scanners]]` name when one matched, else the
    /// station name, else the device serial number, else the calling AE title.
    pub label: String,
    /// The identity baselines are kept under (DeviceSerialNumber, else StationName).
    pub id: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub station_name: Option<String>,
    pub device_serial: Option<String>,
    pub calling_ae: Option<String>,
}

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
    /// 0 for the run being reported when it is not stored yet (labelled "this run").
    pub run_id: i64,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Insert name → ΔHU against the baseline that run used (`None`: not measured or no
    /// baseline).
    pub delta_hu: Vec<(String, Option<f64>)>,
}

/// ΔHU of every material over the last runs of one scanner and phantom, oldest first (this
/// run last), with the tolerance of each material.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trend {
    /// Insert name → tolerance (HU), in the phantom's order.
    pub materials: Vec<(String, f64)>,
    pub runs: Vec<TrendRun>,
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

/// What a missing or non-finite number is shown as (never `NaN`).
const MISSING: &str = "–";

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
        text: render_text(&model),
        html: render_html(&model),
    }
}

// ---------------------------------------------------------------------------------------------
// The report as plain values, shared by the text and the HTML renderer.

/// How prominent a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Needs the physicist's attention (provisional baseline, other protocol, no baseline).
    Warn,
    /// For information (the run replaces an earlier one).
    Info,
}

struct Notice {
    level: Level,
    text: String,
}

struct Table {
    header: Vec<&'static str>,
    /// Right-aligned columns (numbers).
    right: Vec<bool>,
    /// `(fails, cells)`, failures first.
    rows: Vec<(bool, Vec<String>)>,
    /// What the failure marker means.
    legend: String,
}

enum Body {
    /// `key: value` lines.
    Fields(Vec<(&'static str, String)>),
    /// A bullet list.
    Bullets(Vec<String>),
    /// Paragraphs.
    Paragraphs(Vec<String>),
}

struct Section {
    title: &'static str,
    body: Body,
}

struct Model {
    subject: String,
    kind: ReportKind,
    verdict: String,
    /// `HU–RED constancy — scanner — phantom — date — run N`.
    context: String,
    notices: Vec<Notice>,
    table: Option<Table>,
    pearson: Option<String>,
    sections: Vec<Section>,
    footer: Vec<(String, String)>,
    generated_by: String,
}

/// One material of the table: the measurement joined with its constancy result and its
/// absolute check.
struct Row {
    name: String,
    red: Option<f64>,
    hu: Option<f64>,
    sd: Option<f64>,
    baseline: Option<f64>,
    delta: Option<f64>,
    tolerance: Option<f64>,
    delta_red: Option<f64>,
    expected: Option<f64>,
    window: Option<[f64; 2]>,
    within_window: Option<bool>,
    /// The kVp the window is given at (a window that does not apply at this scan's kVp is
    /// shown as information).
    window_kvp: Option<f64>,
    /// The plausibility band at the scan's kVp.
    band: Option<[f64; 2]>,
    within_tolerance: Option<bool>,
    note: Option<String>,
    /// The material's absolute check (a material only the baseline has: `Pass`, constancy
    /// fails it).
    check: MaterialCheck,
    /// Fails constancy or an absolute check.
    fails: bool,
}

impl Row {
    fn constancy_fails(&self) -> bool {
        self.within_tolerance == Some(false)
    }
}

fn finite_pair(w: Option<[f64; 2]>) -> Option<[f64; 2]> {
    w.filter(|w| w.iter().all(|v| v.is_finite()))
}

fn rows_of(s: &Summary) -> Vec<Row> {
    let per = &s.tolerance_evaluation.per_insert;
    let mut rows: Vec<Row> = s
        .inserts
        .iter()
        .map(|m| {
            let c = per.iter().find(|c| c.insert == m.insert);
            let measured = m.status == MaterialStatus::Measured;
            Row {
                name: one_line(&m.insert),
                red: m.red.and_then(super::finite),
                hu: super::finite(m.hu_mean).filter(|_| measured),
                sd: super::finite(m.hu_std).filter(|_| measured),
                baseline: c.and_then(|c| c.baseline_hu).and_then(super::finite),
                delta: c.and_then(|c| c.delta_hu).and_then(super::finite),
                tolerance: c.and_then(|c| super::finite(c.tolerance_hu)),
                delta_red: c.and_then(|c| c.delta_red_percent).and_then(super::finite),
                expected: super::finite(m.hu_expected),
                window: finite_pair(m.hu_window),
                within_window: m.within_window,
                window_kvp: m.window_kvp.and_then(super::finite),
                band: finite_pair(m.hu_band),
                within_tolerance: c.map(|c| c.within_tolerance),
                note: c.and_then(|c| c.note.as_deref()).map(one_line),
                check: match material_check(m) {
                    MaterialCheck::Fail(why) => MaterialCheck::Fail(one_line(&why)),
                    other => other,
                },
                fails: false,
            }
        })
        .collect();
    // materials the baseline has and this run did not measure
    for c in per {
        if !s.inserts.iter().any(|m| m.insert == c.insert) {
            rows.push(Row {
                name: one_line(&c.insert),
                red: None,
                hu: c.hu_mean.and_then(super::finite),
                sd: None,
                baseline: c.baseline_hu.and_then(super::finite),
                delta: c.delta_hu.and_then(super::finite),
                tolerance: super::finite(c.tolerance_hu),
                delta_red: c.delta_red_percent.and_then(super::finite),
                expected: None,
                window: None,
                within_window: None,
                window_kvp: None,
                band: None,
                within_tolerance: Some(c.within_tolerance),
                note: c.note.as_deref().map(one_line),
                check: MaterialCheck::Pass,
                fails: false,
            });
        }
    }
    for r in &mut rows {
        r.fails = r.constancy_fails() || matches!(r.check, MaterialCheck::Fail(_));
    }
    // failures first, otherwise the summary's order (a stable sort keeps it)
    rows.sort_by_key(|r| !r.fails);
    rows
}

/// How a material that fails constancy is named in the verdict line.
fn constancy_phrase(r: &Row) -> String {
    let tol = r
        .tolerance
        .map(|t| format!(" (tolerance ±{} HU)", tol(t)))
        .unwrap_or_default();
    match r.delta {
        Some(d) => format!("{} {} HU{tol}", r.name, signed(Some(d), 1)),
        None => format!(
            "{}: {}{tol}",
            r.name,
            r.note.as_deref().unwrap_or("no value to compare")
        ),
    }
}

/// The verdict cell of a material.
fn verdict_cell(r: &Row, with_baseline: bool) -> String {
    if with_baseline && r.constancy_fails() {
        return match r.note.as_deref() {
            Some(n) => format!("FAIL: {n}"),
            None => "FAIL".to_string(),
        };
    }
    match &r.check {
        MaterialCheck::Fail(why) => format!("FAIL: {why}"),
        MaterialCheck::NotPresent => "not present".to_string(),
        MaterialCheck::Pass if !with_baseline => "PASS".to_string(),
        MaterialCheck::Pass => match r.within_tolerance {
            Some(true) => "PASS".to_string(),
            Some(false) => "FAIL".to_string(),
            None => MISSING.to_string(),
        },
    }
}

/// The window cell: the window where it applies at this kVp, else `lo … hi @120 kV (info)`.
fn window_cell(r: &Row) -> String {
    match (r.window, r.within_window) {
        (Some(w), Some(_)) => window(w),
        (Some(w), None) => match r.window_kvp {
            Some(k) => format!("{} @{} kV (info)", window(w), tol(k)),
            None => format!("{} (info)", window(w)),
        },
        (None, _) => MISSING.to_string(),
    }
}

impl Model {
    fn build(d: &ReportData) -> Model {
        let s = d.summary;
        let ev = &s.tolerance_evaluation;
        let md = &s.metadata;
        let run = d.run_id;
        let with_baseline = ev.has_baseline;
        let rows = rows_of(s);
        let absolute_failures: Vec<String> = if d.kind == ReportKind::Error {
            Vec::new()
        } else {
            s.absolute_failures().iter().map(|f| one_line(f)).collect()
        };
        let checked: Vec<String> = s
            .checks
            .as_ref()
            .map(|c| c.checked.iter().map(|x| one_line(x)).collect())
            .unwrap_or_default();
        let how_to_baseline = if d.provisional_from_this_run {
            format!(
                "this run is now the PROVISIONAL baseline (qa.auto_baseline): confirm it with \
                 hu-red baseline set --run {run}"
            )
        } else {
            format!("set one with: hu-red baseline set --run {run}")
        };

        let verdict = match d.kind {
            ReportKind::Error => format!(
                "ERROR: the series could not be analysed: {}",
                s.error
                    .as_deref()
                    .map(one_line)
                    .unwrap_or_else(|| "unknown error".to_string())
            ),
            ReportKind::Pass if with_baseline => {
                let n = rows
                    .iter()
                    .filter(|r| r.check != MaterialCheck::NotPresent)
                    .count();
                format!(
                    "PASS: all {n} material{} within tolerance of the baseline",
                    plural(n)
                )
            }
            ReportKind::Pass | ReportKind::NoBaseline => {
                let what = if checked.is_empty() {
                    "no absolute check failed (the analysis recorded no check it could make \
                     at this kVp)"
                        .to_string()
                } else {
                    format!("absolute checks passed: {}", checked.join("; "))
                };
                format!("NO BASELINE: {what}. Constancy needs a baseline: {how_to_baseline}")
            }
            ReportKind::Fail => {
                // constancy failures first; a material without a value to compare is named
                // by its absolute failure (which says why) when it has one
                let mut failed: Vec<String> = rows
                    .iter()
                    .filter(|r| r.constancy_fails())
                    .filter(|r| r.delta.is_some() || !matches!(r.check, MaterialCheck::Fail(_)))
                    .map(constancy_phrase)
                    .collect();
                failed.extend(absolute_failures.iter().cloned());
                if failed.is_empty() {
                    "FAIL: see the materials below".to_string()
                } else {
                    format!("FAIL: {}", failed.join("; "))
                }
            }
        };

        let label = {
            let l = one_line(&d.scanner.label);
            if l.is_empty() {
                "unknown scanner".to_string()
            } else {
                l
            }
        };
        let context = format!(
            "HU\u{2013}RED constancy \u{2014} {label} \u{2014} {} \u{2014} {} \u{2014} run {run}",
            one_line(&s.phantom.id),
            one_line(&d.date)
        );

        // prominent notices
        let mut notices = Vec::new();
        if d.kind != ReportKind::Error {
            match &d.baseline {
                None if !with_baseline => notices.push(Notice {
                    level: Level::Warn,
                    text: if d.provisional_from_this_run {
                        format!(
                            "No baseline for this scanner, phantom and protocol yet: only the \
                             absolute checks were applied. This run is now the PROVISIONAL \
                             baseline (qa.auto_baseline); confirm it with hu-red baseline set \
                             --run {run}"
                        )
                    } else if d.kind == ReportKind::Fail {
                        format!(
                            "No baseline for this scanner, phantom and protocol yet: only the \
                             absolute checks were applied, and one failed (above): resolve it \
                             before making a run the baseline. Set one with: hu-red baseline \
                             set --run {run}"
                        )
                    } else {
                        format!(
                            "No baseline for this scanner, phantom and protocol yet: only the \
                             absolute checks were applied. Set one with: hu-red baseline set \
                             --run {run}"
                        )
                    },
                }),
                Some(b) => {
                    if b.provisional {
                        let source = one_line(&b.source);
                        let from_run = source
                            .strip_prefix("run ")
                            .and_then(|n| n.trim().parse::<i64>().ok());
                        let confirm = from_run.unwrap_or(run);
                        notices.push(Notice {
                            level: Level::Warn,
                            text: format!(
                                "Baseline is PROVISIONAL (set automatically from {source}); \
                                 confirm it with hu-red baseline set --run {confirm}"
                            ),
                        });
                    }
                    if let Some(diff) = b.protocol_differs.as_deref() {
                        let base_protocol = one_line(&b.protocol);
                        let base_protocol = if base_protocol.is_empty() {
                            String::new()
                        } else {
                            format!(", {base_protocol}")
                        };
                        notices.push(Notice {
                            level: Level::Warn,
                            text: format!(
                                "Protocol differs from the baseline's: this run was evaluated \
                                 against the closest baseline (baseline {}{base_protocol}). \
                                 What differs: {}",
                                b.id,
                                one_line(diff)
                            ),
                        });
                    }
                }
                None => {}
            }
        }
        if d.amended {
            notices.push(Notice {
                level: Level::Info,
                text: "Amended: instances of this series arrived after an earlier analysis; \
                       this run replaces it."
                    .to_string(),
            });
        }

        let mut sections = Vec::new();
        if d.kind != ReportKind::Error {
            // what the absolute checks did: checked, failed, information
            let mut lines = Vec::new();
            lines.push(if checked.is_empty() {
                "Checked: none recorded by the analysis".to_string()
            } else {
                format!("Checked: {}", checked.join("; "))
            });
            for f in &absolute_failures {
                lines.push(format!("FAIL: {f}"));
            }
            // the unassigned holes have their own section below
            for i in s.info_lines(true) {
                lines.push(format!("Information: {}", one_line(&i)));
            }
            sections.push(Section {
                title: "Absolute checks",
                body: Body::Bullets(lines),
            });
            if !s.unassigned.is_empty() {
                sections.push(Section {
                    title: "Holes not in the phantom definition",
                    body: Body::Bullets(s.unassigned.iter().map(unassigned_line).collect()),
                });
            }
        }
        if d.kind == ReportKind::Error {
            sections.push(Section {
                title: "What went wrong",
                body: Body::Paragraphs(vec![s
                    .error
                    .as_deref()
                    .map(one_line)
                    .unwrap_or_else(|| "unknown error".to_string())]),
            });
            let mut seen: Vec<(&'static str, String)> = Vec::new();
            push_opt(&mut seen, "Series", md.series_description.as_deref());
            push_opt(&mut seen, "Station", md.station_name.as_deref());
            push_opt(&mut seen, "Modality", md.modality.as_deref());
            seen.push((
                "Slices",
                md.n_slices
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| MISSING.to_string()),
            ));
            if let (Some(r), Some(c)) = (md.rows, md.columns) {
                seen.push(("Image size", format!("{c} × {r} pixels")));
            }
            if let Some(ps) = md.pixel_spacing_mm {
                seen.push((
                    "Pixel spacing",
                    format!("{} × {} mm", fixed(Some(ps[1]), 3), fixed(Some(ps[0]), 3)),
                ));
            }
            if let Some(t) = md.slice_thickness.and_then(super::finite) {
                seen.push(("Slice thickness", format!("{} mm", tol(t))));
            }
            if s.phantom.detection == crate::analysis::Detection::Forced {
                seen.push(("Phantom (forced)", one_line(&s.phantom.id)));
            }
            seen.push((
                "Phantom candidates",
                if s.phantom.candidates.is_empty() {
                    "none".to_string()
                } else {
                    s.phantom
                        .candidates
                        .iter()
                        .map(|c| {
                            format!(
                                "{} (score {}: {})",
                                one_line(&c.id),
                                fixed(Some(c.score), 2),
                                one_line(&c.reason)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            ));
            sections.push(Section {
                title: "What was seen",
                body: Body::Fields(seen),
            });
            if !d.hints.is_empty() {
                sections.push(Section {
                    title: "What to check",
                    body: Body::Bullets(d.hints.iter().map(|h| one_line(h)).collect()),
                });
            }
        }

        let table = (d.kind != ReportKind::Error || !rows.is_empty())
            .then(|| table_of(&rows, with_baseline));
        let pearson = (d.kind != ReportKind::Error).then(|| {
            if with_baseline {
                format!(
                    "Pearson r (HU now vs baseline HU): {}",
                    ev.pearson_r
                        .and_then(super::finite)
                        .map(|r| format!("{r:.5}"))
                        .unwrap_or_else(|| MISSING.to_string())
                )
            } else {
                format!("Pearson r: {MISSING} (no baseline to compare with)")
            }
        });

        // the baseline
        if d.kind != ReportKind::Error {
            let mut f: Vec<(&'static str, String)> = Vec::new();
            match &d.baseline {
                Some(b) => {
                    f.push((
                        "Baseline",
                        format!(
                            "{} (from {}, set {}){}",
                            b.id,
                            one_line(&b.source),
                            one_line(&b.created),
                            if b.provisional {
                                ", PROVISIONAL"
                            } else {
                                ", confirmed"
                            }
                        ),
                    ));
                    push_opt(&mut f, "Baseline protocol", Some(&b.protocol));
                    push_opt(&mut f, "Protocol differs", b.protocol_differs.as_deref());
                }
                None => match ev.baseline_source.as_deref() {
                    Some(src) if with_baseline => f.push(("Baseline", one_line(src))),
                    _ => f.push(("Baseline", "no baseline".to_string())),
                },
            }
            sections.push(Section {
                title: "Baseline",
                body: Body::Fields(f),
            });
        }

        // scanner and series
        let sc = &d.scanner;
        let mut f: Vec<(&'static str, String)> = vec![("Scanner", label.clone())];
        push_opt(
            &mut f,
            "Manufacturer",
            sc.manufacturer.as_deref().or(md.manufacturer.as_deref()),
        );
        push_opt(
            &mut f,
            "Model",
            sc.model
                .as_deref()
                .or(md.manufacturer_model_name.as_deref()),
        );
        push_opt(
            &mut f,
            "Station",
            sc.station_name.as_deref().or(md.station_name.as_deref()),
        );
        push_opt(
            &mut f,
            "Serial number",
            sc.device_serial
                .as_deref()
                .or(md.device_serial_number.as_deref()),
        );
        push_opt(&mut f, "Calling AE", sc.calling_ae.as_deref());
        let protocol = one_line(&d.protocol);
        f.push((
            "Protocol",
            if protocol.is_empty() {
                "unknown".to_string()
            } else {
                protocol
            },
        ));
        push_opt(&mut f, "Series", md.series_description.as_deref());
        push_opt(&mut f, "Series UID", md.series_instance_uid.as_deref());
        let date = md
            .study_date
            .as_deref()
            .map(dicom_date)
            .unwrap_or_else(|| one_line(&d.date));
        let time = md
            .study_time
            .as_deref()
            .map(dicom_time)
            .filter(|t| !t.is_empty());
        f.push((
            "Study date",
            match time {
                Some(t) => format!("{date} {t}"),
                None => date,
            },
        ));
        f.push(("Run", run.to_string()));
        sections.push(Section {
            title: "Scanner and series",
            body: Body::Fields(f),
        });

        // phantom, pose, slices
        let ph = &s.phantom;
        let mut f: Vec<(&'static str, String)> = Vec::new();
        if d.kind != ReportKind::Error || ph.id != super::UNKNOWN_PHANTOM {
            let name = ph
                .name
                .as_deref()
                .map(|n| format!(" ({})", one_line(n)))
                .unwrap_or_default();
            let how = match ph.detection {
                crate::analysis::Detection::Auto => "detected automatically",
                crate::analysis::Detection::Forced => "forced",
            };
            let conf = ph
                .confidence
                .and_then(super::finite)
                .map(|c| format!(", confidence {c:.2}"))
                .unwrap_or_default();
            f.push((
                "Phantom",
                format!("{}{name}, {how}{conf}", one_line(&ph.id)),
            ));
        }
        if let Some(p) = &s.pose {
            f.push((
                "Pose",
                format!(
                    "centre x {} mm, y {} mm, rotation {}°",
                    fixed(Some(p.centre_x_mm), 1),
                    fixed(Some(p.centre_y_mm), 1),
                    signed(Some(p.rotation_deg), 1)
                ),
            ));
        }
        if let Some(sl) = &s.slices {
            let z: Vec<f64> = sl.z_mm.iter().copied().filter(|z| z.is_finite()).collect();
            let z = if z.is_empty() {
                String::new()
            } else {
                let (lo, hi) = z
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                format!(", z {} … {} mm", fixed(Some(lo), 1), fixed(Some(hi), 1))
            };
            let slab = super::finite(sl.slab_mm)
                .map(|v| format!(", {} mm slab", tol(v)))
                .unwrap_or_default();
            f.push((
                "Slices used",
                format!(
                    "centre index {}, {} slice{}{slab}{z}",
                    sl.centre_index,
                    sl.indices.len(),
                    plural(sl.indices.len())
                ),
            ));
        }
        if !f.is_empty() {
            sections.push(Section {
                title: "Phantom",
                body: Body::Fields(f),
            });
        }

        if !s.warnings.is_empty() {
            sections.push(Section {
                title: "Warnings",
                body: Body::Bullets(s.warnings.iter().map(|w| one_line(w)).collect()),
            });
        }
        if !d.attachments.is_empty() {
            sections.push(Section {
                title: "Attachments",
                body: Body::Bullets(d.attachments.iter().map(|a| one_line(a)).collect()),
            });
        }

        let footer = vec![
            (
                "Re-run: send the series to hu-red again, for example".to_string(),
                "hu-red send --to HOST:PORT --aet AE DIR".to_string(),
            ),
            (
                "Send this report again".to_string(),
                format!("hu-red report --run {run} --resend"),
            ),
            if d.kind == ReportKind::Error {
                (
                    "Re-baseline from a run that was analysed (its run id)".to_string(),
                    "hu-red baseline set --run RUN".to_string(),
                )
            } else {
                (
                    "Make this run the baseline (re-baseline)".to_string(),
                    format!("hu-red baseline set --run {run}"),
                )
            },
        ];

        Model {
            subject: subject(d),
            kind: d.kind,
            verdict,
            context,
            notices,
            table,
            pearson,
            sections,
            footer,
            generated_by: format!("Generated by hu-red {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

fn table_of(rows: &[Row], with_baseline: bool) -> Table {
    if with_baseline {
        Table {
            header: vec![
                "Material",
                "RED",
                "HU now",
                "SD",
                "Baseline HU",
                "ΔHU",
                "Tolerance",
                "ΔRED %",
                "Verdict",
            ],
            right: vec![false, true, true, true, true, true, true, true, false],
            rows: rows
                .iter()
                .map(|r| {
                    (
                        r.fails,
                        vec![
                            r.name.clone(),
                            fixed(r.red, 3),
                            fixed(r.hu, 1),
                            fixed(r.sd, 1),
                            fixed(r.baseline, 1),
                            signed(r.delta, 1),
                            r.tolerance
                                .map(|t| format!("±{}", tol(t)))
                                .unwrap_or_else(|| MISSING.to_string()),
                            signed(r.delta_red, 2),
                            verdict_cell(r, true),
                        ],
                    )
                })
                .collect(),
            legend: "Failures (outside tolerance, or failing an absolute check) are listed first."
                .to_string(),
        }
    } else {
        Table {
            header: vec![
                "Material",
                "RED",
                "HU now",
                "SD",
                "Expected HU",
                "Plausible band",
                "Window",
                "Verdict",
            ],
            right: vec![false, true, true, true, true, true, true, false],
            rows: rows
                .iter()
                .map(|r| {
                    (
                        r.fails,
                        vec![
                            r.name.clone(),
                            fixed(r.red, 3),
                            fixed(r.hu, 1),
                            fixed(r.sd, 1),
                            fixed(r.expected, 1),
                            r.band
                                .map(|[lo, hi]| {
                                    format!("{} … {}", fixed(Some(lo), 0), fixed(Some(hi), 0))
                                })
                                .unwrap_or_else(|| MISSING.to_string()),
                            window_cell(r),
                            verdict_cell(r, false),
                        ],
                    )
                })
                .collect(),
            legend: "Failures (an absolute check: not measured, outside the plausibility band \
                     or the window at this kVp, copies that disagree) are listed first. A \
                     window marked (info) is given at another kVp and judges nothing."
                .to_string(),
        }
    }
}

/// One hole whose content fits no material: hole, position, HU ± SD, note.
fn unassigned_line(u: &crate::analysis::UnassignedHole) -> String {
    let ring = u
        .ring
        .as_deref()
        .map(one_line)
        .filter(|r| !r.is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let layout = u
        .layout_material
        .as_deref()
        .map(one_line)
        .filter(|m| !m.is_empty())
        .map(|m| format!(", the layout's {m}"))
        .unwrap_or_default();
    let note = one_line(&u.note);
    let note = if note.is_empty() {
        "not in the phantom definition".to_string()
    } else {
        note
    };
    format!(
        "{}{ring} at x {} mm, y {} mm: {} ± {} HU ({} pixels{layout}): {note} (information \
         only: fails nothing, pooled into no material)",
        one_line(&u.hole),
        fixed(Some(u.center_x_mm), 1),
        fixed(Some(u.center_y_mm), 1),
        fixed(Some(u.hu_mean), 1),
        fixed(Some(u.hu_std), 1),
        u.n_pixels
    )
}

// ---------------------------------------------------------------------------------------------
// Plain text.

/// Longest text line aimed at (wrapped at word boundaries where possible).
const TEXT_WIDTH: usize = 96;

fn render_text(m: &Model) -> String {
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    for l in wrap(&m.verdict, TEXT_WIDTH) {
        line(&l);
    }
    line(&"=".repeat(m.verdict.chars().count().min(TEXT_WIDTH)));
    for l in wrap(&m.context, TEXT_WIDTH) {
        line(&l);
    }
    if !m.notices.is_empty() {
        line("");
        for n in &m.notices {
            let mark = match n.level {
                Level::Warn => "!! ",
                Level::Info => "-- ",
            };
            for (i, l) in wrap(&n.text, TEXT_WIDTH - 3).into_iter().enumerate() {
                line(&format!("{}{l}", if i == 0 { mark } else { "   " }));
            }
        }
    }
    let mut sections = m.sections.iter().peekable();
    // ERROR reports lead with what went wrong; the others with the table
    if m.kind == ReportKind::Error {
        while let Some(s) = sections.next_if(|s| {
            matches!(
                s.title,
                "What went wrong" | "What was seen" | "What to check"
            )
        }) {
            text_section(&mut line, s);
        }
    }
    if let Some(t) = &m.table {
        line("");
        line("Materials");
        line("---------");
        text_table(&mut line, t);
    }
    if let Some(p) = &m.pearson {
        line("");
        line(p);
    }
    for s in sections {
        text_section(&mut line, s);
    }
    line("");
    line("How to re-run or re-baseline");
    line("----------------------------");
    for (what, cmd) in &m.footer {
        for l in wrap(&format!("{what}:"), TEXT_WIDTH) {
            line(&l);
        }
        line(&format!("    {cmd}"));
    }
    line("");
    line(&m.generated_by);
    out
}

fn text_section(line: &mut impl FnMut(&str), s: &Section) {
    line("");
    line(s.title);
    line(&"-".repeat(s.title.chars().count()));
    match &s.body {
        Body::Fields(fields) => {
            let w = fields
                .iter()
                .map(|(k, _)| k.chars().count() + 1)
                .max()
                .unwrap_or(0);
            for (k, v) in fields {
                let key = pad(&format!("{k}:"), w, false);
                let indent = " ".repeat(w + 1);
                let width = TEXT_WIDTH.saturating_sub(w + 1).max(40);
                for (i, l) in wrap(v, width).into_iter().enumerate() {
                    if i == 0 {
                        line(&format!("{key} {l}"));
                    } else {
                        line(&format!("{indent}{l}"));
                    }
                }
            }
        }
        Body::Bullets(items) => {
            for item in items {
                for (i, l) in wrap(item, TEXT_WIDTH - 2).into_iter().enumerate() {
                    line(&format!("{}{l}", if i == 0 { "- " } else { "  " }));
                }
            }
        }
        Body::Paragraphs(ps) => {
            for p in ps {
                for l in wrap(p, TEXT_WIDTH) {
                    line(&l);
                }
            }
        }
    }
}

fn text_table(line: &mut impl FnMut(&str), t: &Table) {
    let mut widths: Vec<usize> = t.header.iter().map(|h| h.chars().count()).collect();
    for (_, cells) in &t.rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |mark: &str, cells: &[String]| -> String {
        let mut s = String::from(mark);
        for (i, w) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&pad(cell, *w, t.right.get(i).copied().unwrap_or(false)));
        }
        s.trim_end().to_string()
    };
    let header: Vec<String> = t.header.iter().map(|h| h.to_string()).collect();
    line(&fmt_row("   ", &header));
    if t.rows.is_empty() {
        line("   (no material was measured)");
        return;
    }
    for (fails, cells) in &t.rows {
        line(&fmt_row(if *fails { "!! " } else { "   " }, cells));
    }
    if t.rows.iter().any(|(f, _)| *f) {
        for (i, l) in wrap(&format!("!! = failure. {}", t.legend), TEXT_WIDTH)
            .into_iter()
            .enumerate()
        {
            line(&if i == 0 { l } else { format!("   {l}") });
        }
    }
}

/// Greedy word wrap to `width` characters (a longer word stays whole on its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Pad to `w` characters (by char count, so "Δ", "±" and "–" line up).
fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(s.chars().count()));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

// ---------------------------------------------------------------------------------------------
// HTML: a complete, XML-well-formed document with inline styles, no links, no external
// resources.

const FONT_CSS: &str = "font-family:Arial,Helvetica,sans-serif";
const FAIL_ROW_CSS: &str = "background:#fde0e0;color:#8b0000;font-weight:bold";
const CELL_CSS: &str = "padding:4px 8px;border-bottom:1px solid #dddddd";

fn render_html(m: &Model) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/>");
    h.push_str(&format!("<title>{}</title>", esc(&m.subject)));
    h.push_str(
        "<style>table{border-collapse:collapse}td,th{padding:4px 8px}\
         code{font-family:Consolas,Menlo,monospace}</style></head>\n",
    );
    h.push_str(&format!(
        "<body style=\"margin:0;padding:16px;{FONT_CSS};font-size:14px;color:#222222;\
         background:#ffffff\">\n<div style=\"max-width:960px\">\n"
    ));
    let (bg, fg) = match m.kind {
        ReportKind::Pass => ("#2e7d32", "#ffffff"),
        ReportKind::Fail => ("#c62828", "#ffffff"),
        ReportKind::NoBaseline => ("#1f5f99", "#ffffff"),
        ReportKind::Error => ("#f0a000", "#222222"),
    };
    h.push_str(&format!(
        "<div style=\"background:{bg};color:{fg};padding:12px 16px;font-size:18px;\
         font-weight:bold;border-radius:4px\">{}</div>\n",
        esc(&m.verdict)
    ));
    h.push_str(&format!(
        "<p style=\"color:#555555;margin:6px 0 12px 0\">{}</p>\n",
        esc(&m.context)
    ));
    for n in &m.notices {
        let style = match n.level {
            Level::Warn => {
                "background:#fff3cd;border-left:6px solid #e0a000;padding:8px 12px;\
                 margin:8px 0;font-weight:bold"
            }
            Level::Info => {
                "background:#e8f0fe;border-left:6px solid #4a78c2;padding:8px 12px;margin:8px 0"
            }
        };
        h.push_str(&format!("<p style=\"{style}\">{}</p>\n", esc(&n.text)));
    }
    let mut sections = m.sections.iter().peekable();
    if m.kind == ReportKind::Error {
        while let Some(s) = sections.next_if(|s| {
            matches!(
                s.title,
                "What went wrong" | "What was seen" | "What to check"
            )
        }) {
            html_section(&mut h, s);
        }
    }
    if let Some(t) = &m.table {
        h.push_str(&heading("Materials"));
        html_table(&mut h, t);
    }
    if let Some(p) = &m.pearson {
        h.push_str(&format!("<p>{}</p>\n", esc(p)));
    }
    for s in sections {
        html_section(&mut h, s);
    }
    h.push_str(&heading("How to re-run or re-baseline"));
    h.push_str("<ul style=\"margin:4px 0;padding-left:20px\">\n");
    for (what, cmd) in &m.footer {
        h.push_str(&format!(
            "<li>{}: <code style=\"background:#f2f2f2;padding:1px 4px\">{}</code></li>\n",
            esc(what),
            esc(cmd)
        ));
    }
    h.push_str("</ul>\n");
    h.push_str(&format!(
        "<p style=\"color:#777777;font-size:12px;margin-top:16px\">{}</p>\n",
        esc(&m.generated_by)
    ));
    h.push_str("</div>\n</body>\n</html>\n");
    h
}

fn heading(title: &str) -> String {
    format!(
        "<h2 style=\"font-size:16px;margin:20px 0 6px 0;border-bottom:1px solid #cccccc\">{}</h2>\n",
        esc(title)
    )
}

fn html_section(h: &mut String, s: &Section) {
    h.push_str(&heading(s.title));
    match &s.body {
        Body::Fields(fields) => {
            h.push_str("<table style=\"border-collapse:collapse\">\n");
            for (k, v) in fields {
                h.push_str(&format!(
                    "<tr><td style=\"padding:2px 12px 2px 0;color:#555555;vertical-align:top;\
                     white-space:nowrap\">{}</td><td style=\"padding:2px 0\">{}</td></tr>\n",
                    esc(k),
                    esc(v)
                ));
            }
            h.push_str("</table>\n");
        }
        Body::Bullets(items) => {
            h.push_str("<ul style=\"margin:4px 0;padding-left:20px\">\n");
            for item in items {
                h.push_str(&format!("<li>{}</li>\n", esc(item)));
            }
            h.push_str("</ul>\n");
        }
        Body::Paragraphs(ps) => {
            for p in ps {
                h.push_str(&format!("<p style=\"margin:4px 0\">{}</p>\n", esc(p)));
            }
        }
    }
}

fn html_table(h: &mut String, t: &Table) {
    h.push_str("<table style=\"border-collapse:collapse;font-size:13px\">\n<thead><tr>");
    for (i, head) in t.header.iter().enumerate() {
        let align = if t.right.get(i).copied().unwrap_or(false) {
            "right"
        } else {
            "left"
        };
        h.push_str(&format!(
            "<th style=\"{CELL_CSS};text-align:{align};background:#f2f2f2\">{}</th>",
            esc(head)
        ));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    if t.rows.is_empty() {
        h.push_str(&format!(
            "<tr><td style=\"{CELL_CSS}\" colspan=\"{}\">no material was measured</td></tr>\n",
            t.header.len()
        ));
    }
    for (fails, cells) in &t.rows {
        if *fails {
            h.push_str(&format!("<tr style=\"{FAIL_ROW_CSS}\">"));
        } else {
            h.push_str("<tr>");
        }
        for (i, cell) in cells.iter().enumerate() {
            let align = if t.right.get(i).copied().unwrap_or(false) {
                "right"
            } else {
                "left"
            };
            h.push_str(&format!(
                "<td style=\"{CELL_CSS};text-align:{align};white-space:nowrap\">{}</td>",
                esc(cell)
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    if t.rows.iter().any(|(f, _)| *f) {
        h.push_str(&format!(
            "<p style=\"font-size:12px;color:#555555;margin:4px 0\">{}</p>\n",
            esc(&t.legend)
        ));
    }
}

/// Escape text for HTML element content and quoted attribute values; control characters
/// (which XML forbids) become spaces.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Values.

/// A value on one line: control characters (CR, LF, tab, …) and runs of white space become
/// one space; trimmed.
fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn push_opt(fields: &mut Vec<(&'static str, String)>, key: &'static str, v: Option<&str>) {
    if let Some(v) = v.map(one_line).filter(|v| !v.is_empty()) {
        fields.push((key, v));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `v` with `decimals` decimals, `–` when missing or not finite.
fn fixed(v: Option<f64>, decimals: usize) -> String {
    match v.filter(|v| v.is_finite()) {
        Some(v) => {
            let unit = 10f64.powi(decimals as i32);
            // no "-0.0"
            let v = if (v * unit).round() == 0.0 { 0.0 } else { v };
            format!("{v:.decimals$}")
        }
        None => MISSING.to_string(),
    }
}

/// `v` signed (`+3.2`, `-1.0`, `+0.0`), `–` when missing or not finite.
fn signed(v: Option<f64>, decimals: usize) -> String {
    match v.filter(|v| v.is_finite()) {
        Some(v) => {
            let unit = 10f64.powi(decimals as i32);
            let v = if (v * unit).round() == 0.0 { 0.0 } else { v };
            format!("{v:+.decimals$}")
        }
        None => MISSING.to_string(),
    }
}

/// A tolerance or thickness as written in a config: `4`, `42.5`.
fn tol(v: f64) -> String {
    if !v.is_finite() {
        MISSING.to_string()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn window(w: [f64; 2]) -> String {
    format!("{} … {}", tol(w[0]), tol(w[1]))
}

/// `20261125` → `2026-11-25` (anything else as given).
fn dicom_date(s: &str) -> String {
    let s = one_line(s);
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &s[0..4], &s[4..6], &s[6..8])
    } else {
        s
    }
}

/// `102233.123` → `10:22:33` (anything else as given).
fn dicom_time(s: &str) -> String {
    let s = one_line(s);
    let digits = s.split('.').next().unwrap_or("");
    if digits.len() >= 4 && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let mut out = format!("{}:{}", &digits[0..2], &digits[2..4]);
        if digits.len() == 6 {
            out.push(':');
            out.push_str(&digits[4..6]);
        }
        out
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{
        AbsoluteChecks, AssignmentMethod, Candidate, Curve, CurvePoint, Detection, InsertConstancy,
        MaterialResult, MaterialStatus, Measurement, Plan, Pose, RoiMeasurement, SlicesUsed,
        ToleranceEvaluation, UnassignedHole,
    };
    use crate::report::{Metadata, OkParts};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// When every fixture run started: 2026-11-25T10:22:33Z (never "now", so a rendered
    /// report depends on its inputs only).
    fn started_at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_602_153)
    }

    /// (name, RED, HU now, expected HU, absolute window)
    type Mat = (&'static str, f64, f64, f64, Option<[f64; 2]>);

    const MATERIALS: [Mat; 5] = [
        ("lung_inhale", 0.190, -803.0, -800.0, None),
        ("adipose", 0.952, -91.0, -90.0, Some([-120.0, -60.0])),
        ("water", 1.000, 35.2, 0.0, Some([-10.0, 10.0])),
        ("liver", 1.052, 56.0, 55.0, None),
        ("bone_200", 1.117, 241.0, 240.0, Some([200.0, 280.0])),
    ];

    fn measurement(mats: &[Mat]) -> Measurement {
        let inserts: Vec<MaterialResult> = mats
            .iter()
            .map(|&(name, red, hu, expected, window)| MaterialResult {
                insert: name.into(),
                red: Some(red),
                hu_mean: hu,
                hu_std: 9.5,
                hu_median: hu,
                n_rois: 1,
                n_pixels: 400,
                hu_expected: expected,
                hu_window: window,
                within_window: window.map(|w| hu >= w[0] && hu <= w[1]),
                rois: vec![],
                check_pass: true,
                ..Default::default()
            })
            .collect();
        let curve = Curve::from_points(
            inserts
                .iter()
                .map(|m| CurvePoint {
                    insert: m.insert.clone(),
                    hu: m.hu_mean,
                    red: m.red.unwrap_or(1.0),
                })
                .collect(),
        );
        let absolute_pass = inserts.iter().all(|m| m.within_window != Some(false));
        Measurement {
            phantom_id: "cirs062".into(),
            phantom_name: "CIRS 062M".into(),
            detection: Detection::Auto,
            confidence: 0.93,
            candidates: vec![],
            pose: Pose {
                centre_x_mm: 12.04,
                centre_y_mm: -8.0,
                rotation_deg: 7.5,
            },
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
            absolute_pass,
            warnings: vec![],
            family: None,
            kvp: Some(120.0),
            unassigned: vec![],
            checks: AbsoluteChecks {
                pass: absolute_pass,
                curve_monotonic: true,
                ..Default::default()
            },
        }
    }

    /// Constancy with every baseline HU = the expected HU and a tolerance of 4 HU.
    fn constancy(m: &Measurement) -> ToleranceEvaluation {
        let per: Vec<InsertConstancy> = m
            .inserts
            .iter()
            .map(|x| {
                let d = x.hu_mean - x.hu_expected;
                InsertConstancy {
                    insert: x.insert.clone(),
                    baseline_hu: Some(x.hu_expected),
                    hu_mean: Some(x.hu_mean),
                    delta_hu: Some(d),
                    tolerance_hu: 4.0,
                    within_tolerance: d.abs() <= 4.0,
                    delta_red_percent: Some(d / 10.0),
                    note: None,
                }
            })
            .collect();
        let pairs: Vec<(f64, f64)> = per
            .iter()
            .filter_map(|p| Some((p.hu_mean?, p.baseline_hu?)))
            .collect();
        ToleranceEvaluation {
            has_baseline: true,
            pass: Some(per.iter().all(|p| p.within_tolerance)),
            pearson_r: crate::analysis::constancy::pearson(&pairs),
            baseline_source: Some("run 12".into()),
            per_insert: per,
        }
    }

    fn no_constancy() -> ToleranceEvaluation {
        ToleranceEvaluation {
            has_baseline: false,
            pass: None,
            pearson_r: None,
            baseline_source: None,
            per_insert: vec![],
        }
    }

    fn metadata() -> Metadata {
        Metadata {
            series_description: Some("QA HU-RED 120kV".into()),
            kvp: Some(120.0),
            manufacturer: Some("SIEMENS".into()),
            station_name: Some("CTSIM1".into()),
            study_date: Some("20261125".into()),
            study_time: Some("102233.500".into()),
            series_instance_uid: Some("1.2.826.0.1.3680043.2.1125.1".into()),
            modality: Some("CT".into()),
            n_slices: Some(120),
            rows: Some(512),
            columns: Some(512),
            ..Default::default()
        }
    }

    fn summary(m: &Measurement, ev: &ToleranceEvaluation) -> Summary {
        Summary::ok(OkParts {
            dicom_path: "/var/lib/hu-red/incoming/1.2.3",
            metadata: metadata(),
            measurement: m,
            evaluation: ev,
            warnings: vec!["the bone_800 insert was not found".into()],
            timings: None,
            started_at: started_at(),
        })
    }

    fn error_summary() -> Summary {
        let plan = Plan {
            phantom_id: "catphan_ctp404".into(),
            detection: Detection::Auto,
            confidence: 0.31,
            candidates: vec![
                Candidate {
                    id: "catphan_ctp404".into(),
                    score: 0.31,
                    reason: "3 of 8 holes fit".into(),
                },
                Candidate {
                    id: "cirs062".into(),
                    score: 0.12,
                    reason: "outline too small".into(),
                },
            ],
            pose: Pose {
                centre_x_mm: 1.0,
                centre_y_mm: 2.0,
                rotation_deg: 0.0,
            },
            centre_index: 60,
            slab_indices: vec![59, 60, 61],
            insert_z_range_mm: (-10.0, 10.0),
            warnings: vec![],
        };
        Summary::error(
            "/var/lib/hu-red/incoming/1.2.3",
            crate::report::UNKNOWN_PHANTOM,
            Detection::Auto,
            "no known phantom matched (best: catphan_ctp404, score 0.31)".into(),
            Some(metadata()),
            Some(&plan),
            None,
            vec![],
            started_at(),
        )
    }

    fn scanner(label: &str) -> ScannerInfo {
        ScannerInfo {
            label: label.into(),
            id: "SN4711".into(),
            manufacturer: Some("SIEMENS".into()),
            model: Some("SOMATOM go.Open Pro".into()),
            station_name: Some("CTSIM1".into()),
            device_serial: Some("SN4711".into()),
            calling_ae: Some("CTSIM1_AE".into()),
        }
    }

    fn baseline() -> BaselineInfo {
        BaselineInfo {
            id: 7,
            source: "run 12".into(),
            created: "2026-01-03".into(),
            provisional: false,
            protocol: "120 kV, B30f, 2 mm".into(),
            protocol_differs: None,
        }
    }

    fn data<'a>(s: &'a Summary, kind: ReportKind, b: Option<BaselineInfo>) -> ReportData<'a> {
        ReportData {
            run_id: 42,
            kind,
            scanner: scanner("CT-SIM-1"),
            protocol: "120 kV, B30f, 2 mm".into(),
            date: "2026-11-25".into(),
            summary: s,
            baseline: b,
            provisional_from_this_run: false,
            amended: false,
            attachments: vec![
                "hu_red_cirs062.csv".into(),
                "hu_red_cirs062_trend.png".into(),
            ],
            hints: vec![],
        }
    }

    /// Walk the whole document as XML: every tag closed and matched, one `html` root.
    fn assert_well_formed(html: &str) {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(html);
        let mut depth: i64 = 0;
        let mut roots = 0;
        let mut saw_doctype = false;
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::DocType(_)) => saw_doctype = true,
                Ok(Event::Start(e)) => {
                    if depth == 0 {
                        roots += 1;
                        assert_eq!(e.name().as_ref(), b"html");
                    }
                    depth += 1;
                }
                Ok(Event::End(_)) => {
                    depth -= 1;
                    assert!(depth >= 0, "unbalanced end tag");
                }
                Ok(_) => {}
                Err(e) => panic!(
                    "not well-formed at {}: {e}\n{html}",
                    reader.buffer_position()
                ),
            }
        }
        assert!(saw_doctype, "no <!DOCTYPE html>");
        assert_eq!(depth, 0, "unclosed elements");
        assert_eq!(roots, 1, "one root element");
    }

    fn assert_clean(r: &RenderedReport) {
        for body in [&r.text, &r.html] {
            assert!(!body.contains("NaN"), "{body}");
            assert!(!body.to_lowercase().contains("inf "), "{body}");
        }
        assert!(!r.html.contains("<a ") && !r.html.contains("<a>"), "a link");
        assert!(!r.html.contains("href") && !r.html.contains("src="));
        assert!(!r.html.contains("http"), "an external resource");
        assert!(r.html.starts_with("<!DOCTYPE html>"));
        assert!(r.html.contains("<meta charset=\"utf-8\"/>"));
        assert!(r
            .html
            .contains(&format!("<title>{}</title>", esc(&r.subject))));
        assert_well_formed(&r.html);
    }

    /// The data rows of the text table: from the header line to the first empty line.
    fn text_table_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|l| !l.trim_start().starts_with("Material "))
            .take_while(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn subject_is_exact_for_pass_fail_and_error() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        assert_eq!(
            subject(&data(&s, ReportKind::Fail, Some(baseline()))),
            "[FAIL] HU\u{2013}RED constancy \u{2014} CT-SIM-1 \u{2014} cirs062 \u{2014} 2026-11-25"
        );
        assert_eq!(
            subject(&data(&s, ReportKind::Pass, Some(baseline()))),
            "[PASS] HU–RED constancy — CT-SIM-1 — cirs062 — 2026-11-25"
        );
        let e = error_summary();
        let sub = subject(&data(&e, ReportKind::Error, None));
        assert_eq!(
            sub,
            "[ERROR] HU–RED constancy — CT-SIM-1 — unknown — 2026-11-25"
        );
        assert_eq!(sub.matches('\u{2014}').count(), 3);
        assert_eq!(sub.matches('\u{2013}').count(), 1);
        assert_eq!(render(&data(&e, ReportKind::Error, None)).subject, sub);
    }

    #[test]
    fn subject_strips_line_breaks_and_names_an_unknown_scanner() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let mut d = data(&s, ReportKind::Pass, Some(baseline()));
        d.scanner.label = "CT\r\nBcc: someone@example.org\n".into();
        d.date = "2026-11-25\r\n".into();
        let sub = subject(&d);
        assert!(!sub.contains('\r') && !sub.contains('\n'), "{sub:?}");
        assert_eq!(
            sub,
            "[PASS] HU–RED constancy — CT Bcc: someone@example.org — cirs062 — 2026-11-25"
        );
        d.scanner.label = String::new();
        assert_eq!(
            subject(&d),
            "[PASS] HU–RED constancy — unknown scanner — cirs062 — 2026-11-25"
        );
        d.scanner.label = " \r\n ".into();
        assert!(subject(&d).contains("— unknown scanner —"));
    }

    #[test]
    fn fail_names_only_the_drifted_material_and_lists_it_first() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        assert_clean(&r);
        let first = r.text.lines().next().unwrap_or_default();
        // constancy first, then the absolute check the same material fails at this kVp
        assert_eq!(
            first,
            "FAIL: water +35.2 HU (tolerance ±4 HU); water 35.2 HU outside the window -10 … 10 HU"
        );
        for (name, ..) in MATERIALS.iter().filter(|m| m.0 != "water") {
            assert!(!first.contains(name), "{first}");
        }
        // text: the failure is the first row, marked; the others follow in the summary's order
        let rows = text_table_lines(&r.text);
        assert!(rows[0].contains("Baseline HU") && rows[0].contains("ΔRED %"));
        assert!(rows[1].starts_with("!! water"), "{rows:?}");
        let rest: Vec<&str> = rows[2..]
            .iter()
            .filter(|l| !l.starts_with("!! ="))
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(rest, ["lung_inhale", "adipose", "liver", "bone_200"]);
        assert_eq!(
            rows.iter()
                .filter(|l| l.starts_with("!! ") && !l.starts_with("!! ="))
                .count(),
            1
        );
        // the numbers: HU 1 decimal, ΔHU signed, RED 3 decimals, ΔRED % 2 decimals
        let water: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(
            water,
            ["!!", "water", "1.000", "35.2", "9.5", "0.0", "+35.2", "±4", "+3.52", "FAIL"]
        );
        let lung: Vec<&str> = rows[2].split_whitespace().collect();
        assert_eq!(lung[4..8], ["-800.0", "-3.0", "±4", "-0.30"]);
        assert!(r.text.contains("Pearson r (HU now vs baseline HU): 0.99"));
        // HTML: the first body row is water, highlighted; no other row is
        let tbody = &r.html[r.html.find("<tbody>").unwrap_or(0)..];
        let first_row = tbody.split("</tr>").next().unwrap_or_default();
        assert!(
            first_row.contains(FAIL_ROW_CSS) && first_row.contains(">water<"),
            "{first_row}"
        );
        assert_eq!(r.html.matches(FAIL_ROW_CSS).count(), 1);
        assert!(r.html.contains("background:#c62828"), "red FAIL banner");
        assert!(r.html.contains(
            ">FAIL: water +35.2 HU (tolerance ±4 HU); water 35.2 HU outside the window -10 … 10 \
             HU</div>"
        ));
    }

    #[test]
    fn several_failures_keep_their_order_ahead_of_the_rest() {
        let mut mats = MATERIALS;
        mats[0].2 = -830.0; // lung -30
        let m = measurement(&mats);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        let rows = text_table_lines(&r.text);
        let names: Vec<&str> = rows[1..6]
            .iter()
            .map(|l| {
                l.trim_start_matches("!! ")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(
            names,
            ["lung_inhale", "water", "adipose", "liver", "bone_200"]
        );
        assert_eq!(
            one_line(r.text.split("\n=").next().unwrap_or_default()),
            "FAIL: lung_inhale -30.0 HU (tolerance ±4 HU); water +35.2 HU (tolerance ±4 HU); \
             water 35.2 HU outside the window -10 … 10 HU"
        );
        assert_eq!(r.html.matches(FAIL_ROW_CSS).count(), 2);
    }

    #[test]
    fn pass_report_has_the_metadata_pose_slices_attachments_and_footer() {
        let mut mats = MATERIALS;
        mats[2].2 = 1.0;
        let m = measurement(&mats);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let r = render(&data(&s, ReportKind::Pass, Some(baseline())));
        assert_clean(&r);
        assert_eq!(
            r.text.lines().next().unwrap_or_default(),
            "PASS: all 5 materials within tolerance of the baseline"
        );
        assert!(r.html.contains("background:#2e7d32"), "green PASS banner");
        assert!(!r.html.contains(FAIL_ROW_CSS));
        for want in [
            "CT-SIM-1",
            "SIEMENS",
            "SOMATOM go.Open Pro",
            "CTSIM1",
            "SN4711",
            "CTSIM1_AE",
            "120 kV, B30f, 2 mm",
            "QA HU-RED 120kV",
            "1.2.826.0.1.3680043.2.1125.1",
            "2026-11-25 10:22:33",
            "centre x 12.0 mm, y -8.0 mm, rotation +7.5°",
            "centre index 41, 3 slices, 5 mm slab, z -2.0 … 2.0 mm",
            "cirs062 (CIRS 062M), detected automatically, confidence 0.93",
            "the bone_800 insert was not found",
            "hu_red_cirs062.csv",
            "hu_red_cirs062_trend.png",
            "hu-red send --to HOST:PORT --aet AE DIR",
            "hu-red report --run 42 --resend",
            "hu-red baseline set --run 42",
            concat!("Generated by hu-red ", env!("CARGO_PKG_VERSION")),
        ] {
            assert!(r.text.contains(want), "text lacks {want:?}\n{}", r.text);
            assert!(
                r.html.contains(&esc(want)),
                "html lacks {want:?}\n{}",
                r.html
            );
        }
        assert!(r.text.contains("Run:") && r.text.contains(" 42"));
        assert!(!r.text.contains("PROVISIONAL") && !r.text.contains("No baseline"));
        // a monospace client: lines short, table columns aligned
        for l in r.text.lines() {
            assert!(l.chars().count() <= 100, "{l}");
        }
        let rows = text_table_lines(&r.text);
        let at = rows[0].find("Verdict").unwrap_or(0);
        assert!(at > 0);
        let at_chars = rows[0][..at].chars().count();
        for row in &rows[1..] {
            let cell: String = row.chars().skip(at_chars).take(4).collect();
            assert_eq!(cell, "PASS", "{row}");
        }
    }

    #[test]
    fn no_baseline_with_a_window_failure_is_a_fail_naming_it() {
        let m = measurement(&MATERIALS);
        let s = summary(&m, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::Fail, "a window failed, no baseline");
        let r = render(&data(&s, s.verdict.into(), None));
        assert_clean(&r);
        assert!(r.subject.starts_with("[FAIL] HU–RED constancy — "));
        let msg = "No baseline for this scanner, phantom and protocol yet: only the absolute \
                   checks were applied, and one failed (above): resolve it before making a run \
                   the baseline. Set one with: hu-red baseline set --run 42";
        assert!(
            r.text.contains("!! No baseline for this scanner"),
            "{}",
            r.text
        );
        assert!(one_line(&r.text).contains(msg), "{}", r.text);
        assert!(r.html.contains(msg));
        assert!(r.text.contains("no baseline"));
        let rows = text_table_lines(&r.text);
        for col in ["Expected HU", "Plausible band", "Window", "Verdict"] {
            assert!(rows[0].contains(col), "{col}: {rows:?}");
        }
        assert!(!rows[0].contains("Baseline HU"));
        assert!(rows[1].starts_with("!! water"), "{rows:?}");
        assert!(
            rows[1].contains("-10 … 10")
                && rows[1].ends_with("FAIL: 35.2 HU outside the window -10 … 10 HU"),
            "{rows:?}"
        );
        // lung_inhale: no window, no band in this fixture, passes
        assert!(rows[2].starts_with("   lung_inhale"), "{rows:?}");
        assert!(rows[2].ends_with("PASS"), "{rows:?}");
        assert_eq!(
            r.text.lines().next().unwrap_or_default(),
            "FAIL: water 35.2 HU outside the window -10 … 10 HU"
        );
        assert!(r
            .text
            .contains("- FAIL: water 35.2 HU outside the window -10 … 10 HU"));
        assert!(!r.html.contains("Baseline HU"));
        assert_eq!(r.html.matches(FAIL_ROW_CSS).count(), 1);
    }

    #[test]
    fn first_scan_without_failure_is_no_baseline_saying_what_was_checked() {
        let mut mats = MATERIALS;
        mats[2].2 = 1.0;
        let mut m = measurement(&mats);
        m.checks.checked = vec![
            "monotone HU–RED curve".into(),
            "5 materials within their plausibility bands at 120 kV".into(),
            "CIRS windows (120 kV)".into(),
        ];
        let s = summary(&m, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::NoBaseline);
        let d = data(&s, s.verdict.into(), None);
        assert_eq!(d.kind, ReportKind::NoBaseline);
        let r = render(&d);
        assert_clean(&r);
        assert_eq!(
            r.subject,
            "[NO BASELINE] HU\u{2013}RED constancy \u{2014} CT-SIM-1 \u{2014} cirs062 \u{2014} \
             2026-11-25"
        );
        assert_eq!(r.subject.matches('\u{2014}').count(), 3);
        assert!(!r.subject.contains("[PASS]"));
        let verdict = "NO BASELINE: absolute checks passed: monotone HU–RED curve; 5 materials \
                       within their plausibility bands at 120 kV; CIRS windows (120 kV). \
                       Constancy needs a baseline: set one with: hu-red baseline set --run 42";
        assert!(one_line(&r.text).starts_with(verdict), "{}", r.text);
        assert!(r.html.contains(&esc(verdict)), "{}", r.html);
        assert!(
            !r.text.contains("PASS:"),
            "no PASS verdict without a baseline"
        );
        // a neutral banner, not the green PASS one
        assert!(r.html.contains("background:#1f5f99"));
        assert!(!r.html.contains("background:#2e7d32"));
        assert!(!r.html.contains(FAIL_ROW_CSS));
        assert!(r.text.contains("Absolute checks\n---------------"));
        assert!(r
            .text
            .contains("- Checked: monotone HU–RED curve; 5 materials"));
        assert!(r
            .text
            .contains("No baseline for this scanner, phantom and protocol yet"));
        assert!(!r.text.contains("PROVISIONAL"));

        // qa.auto_baseline made this run the provisional baseline: the report says how to
        // confirm it, the subject stays NO BASELINE
        let mut d = data(&s, ReportKind::NoBaseline, None);
        d.provisional_from_this_run = true;
        let r = render(&d);
        assert_clean(&r);
        assert!(r.subject.starts_with("[NO BASELINE] "));
        assert!(one_line(&r.text).contains(
            "Constancy needs a baseline: this run is now the PROVISIONAL baseline \
             (qa.auto_baseline): confirm it with hu-red baseline set --run 42"
        ));
        assert!(one_line(&r.text).contains(
            "!! No baseline for this scanner, phantom and protocol yet: only the absolute \
             checks were applied. This run is now the PROVISIONAL baseline (qa.auto_baseline); \
             confirm it with hu-red baseline set --run 42"
        ));

        // no check recorded by the analysis: said so, never "passed"
        let mut m = measurement(&mats);
        m.checks.checked.clear();
        let s = summary(&m, &no_constancy());
        let r = render(&data(&s, s.verdict.into(), None));
        assert!(
            one_line(&r.text).starts_with(
                "NO BASELINE: no absolute check failed (the analysis recorded no check it could \
                 make at this kVp)."
            ),
            "{}",
            r.text
        );
        assert!(r.text.contains("- Checked: none recorded by the analysis"));
    }

    const WINDOW_NOTE: &str = "window 200 … 280 HU is given at 120 kV; this scan is at 100 kV: \
                               information only (241 HU is inside it)";

    /// A CIRS whose dense bone rods were refused, an optional material not there, copies of
    /// a material that disagree, an unassigned hole, a window given at another kVp.
    fn first_scan_with_absolute_failures() -> Measurement {
        let mut mats = MATERIALS;
        mats[2].2 = 1.0;
        let mut m = measurement(&mats);
        m.kvp = Some(100.0);
        // bone_200: the window is given at 120 kV, this scan is 100 kV: information only
        m.inserts[4].within_window = None;
        m.inserts[4].window_kvp = Some(120.0);
        m.inserts[4].hu_band = Some([140.0, 340.0]);
        m.inserts[4].plausible = Some(true);
        // the engine's note does not name the material; the report does
        m.inserts[4].check_notes = vec![WINDOW_NOTE.into()];
        // liver: two copies that disagree
        m.inserts[3].n_rois = 2;
        m.inserts[3].rois = vec![
            RoiMeasurement {
                hole: "inner_90".into(),
                insert: "liver".into(),
                hu_mean: 40.0,
                ..Default::default()
            },
            RoiMeasurement {
                hole: "outer_270".into(),
                insert: "liver".into(),
                hu_mean: 72.0,
                ..Default::default()
            },
        ];
        m.inserts[3].copies_spread_hu = Some(32.0);
        m.inserts[3].copies_consistent = Some(false);
        m.inserts[3].check_pass = false;
        // dense_bone: refused
        m.inserts.push(MaterialResult {
            insert: "dense_bone".into(),
            red: Some(1.512),
            hu_mean: f64::NAN,
            hu_std: f64::NAN,
            hu_median: f64::NAN,
            hu_expected: 1145.0,
            status: MaterialStatus::Refused,
            reason: Some(
                "no homogeneous core in holes inner_135, outer_315 (rods too thin for the ROI)"
                    .into(),
            ),
            check_pass: false,
            ..Default::default()
        });
        // an optional vial that is empty
        m.inserts.push(MaterialResult {
            insert: "water_vial".into(),
            red: Some(1.0),
            hu_mean: f64::NAN,
            hu_std: f64::NAN,
            hu_median: f64::NAN,
            status: MaterialStatus::Missing,
            optional: true,
            check_pass: true,
            ..Default::default()
        });
        m.unassigned = vec![UnassignedHole {
            hole: "outer_45".into(),
            ring: Some("outer".into()),
            center_x_mm: 61.3,
            center_y_mm: -61.0,
            hu_mean: -998.4,
            hu_std: 6.1,
            n_pixels: 350,
            layout_material: Some("lung_exhale".into()),
            note: "not in the phantom definition: empty hole? another bone rod?".into(),
        }];
        m.absolute_pass = false;
        m.checks = AbsoluteChecks {
            pass: false,
            curve_monotonic: true,
            checked: vec![
                "monotone HU–RED curve".into(),
                "5 materials within their plausibility bands at 100 kV".into(),
            ],
            failures: vec![
                "dense_bone not measured: no homogeneous core in holes inner_135, outer_315 \
                 (rods too thin for the ROI)"
                    .into(),
                "copies of liver disagree: 40 vs 72 HU".into(),
            ],
            info: vec![
                WINDOW_NOTE.into(),
                "water_vial not present (optional)".into(),
                "hole outer_45 at (61.3, -61.0) mm reads -998 ± 6 HU: not in the phantom \
                 definition (empty hole?)"
                    .into(),
            ],
        };
        m
    }

    #[test]
    fn absolute_failures_without_baseline_fail_and_name_each() {
        let m = first_scan_with_absolute_failures();
        let s = summary(&m, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::Fail);
        let r = render(&data(&s, s.verdict.into(), None));
        assert_clean(&r);
        assert!(r
            .subject
            .starts_with("[FAIL] HU–RED constancy — CT-SIM-1 — cirs062"));
        // the verdict line: the engine's failures, in its words, nothing else
        let first = one_line(r.text.split("\n=").next().unwrap_or_default());
        assert_eq!(
            first,
            "FAIL: dense_bone not measured: no homogeneous core in holes inner_135, outer_315 \
             (rods too thin for the ROI); copies of liver disagree: 40 vs 72 HU"
        );
        let rows = text_table_lines(&r.text);
        // the refused material is a row: values –, FAIL with the reason
        let dense = rows
            .iter()
            .find(|l| l.contains("dense_bone"))
            .copied()
            .unwrap_or("");
        assert!(dense.starts_with("!! dense_bone"), "{rows:?}");
        let cells: Vec<&str> = dense.split_whitespace().collect();
        assert_eq!(cells[2..6], ["1.512", "–", "–", "1145.0"], "{dense}");
        assert!(
            dense.ends_with(
                "FAIL: not measured: no homogeneous core in holes inner_135, outer_315 (rods \
                 too thin for the ROI)"
            ),
            "{dense}"
        );
        let liver = rows
            .iter()
            .find(|l| l.contains("liver"))
            .copied()
            .unwrap_or("");
        assert!(liver.starts_with("!! liver"), "{liver}");
        assert!(
            liver.ends_with("FAIL: copies disagree: 40 vs 72 HU"),
            "{liver}"
        );
        // the optional material: a row, "not present", not a failure
        let vial = rows
            .iter()
            .find(|l| l.contains("water_vial"))
            .copied()
            .unwrap_or("");
        assert!(vial.starts_with("   water_vial"), "{vial}");
        assert!(vial.ends_with("not present"), "{vial}");
        assert!(!vial.contains("FAIL"));
        // the window given at another kVp: information, the material passes
        let bone = rows
            .iter()
            .find(|l| l.contains("bone_200"))
            .copied()
            .unwrap_or("");
        assert!(bone.starts_with("   bone_200"), "{bone}");
        assert!(bone.contains("140 … 340"), "the plausibility band: {bone}");
        assert!(bone.contains("200 … 280 @120 kV (info)"), "{bone}");
        assert!(bone.ends_with("PASS"), "{bone}");
        assert!(r.html.contains("200 … 280 @120 kV (info)"));
        // failures first: dense_bone and liver (in the summary's order), then the rest
        assert!(rows[1].starts_with("!! liver") && rows[2].starts_with("!! dense_bone"));
        assert_eq!(r.html.matches(FAIL_ROW_CSS).count(), 2);
        // the absolute checks section: checked, failed, information
        for want in [
            "- Checked: monotone HU–RED curve; 5 materials within their plausibility bands at \
             100 kV",
            "- FAIL: copies of liver disagree: 40 vs 72 HU",
            "- Information: bone_200: window 200 … 280 HU is given at 120 kV; this scan is at \
             100 kV: information only (241 HU is inside it)",
            "- Information: water_vial not present (optional)",
        ] {
            assert!(one_line(&r.text).contains(want), "{want}\n{}", r.text);
        }
        // the hole is in its own section, not repeated as information
        assert!(
            !r.text.contains("- Information: hole outer_45"),
            "{}",
            r.text
        );
        // the holes not in the definition: information
        let sec = r
            .text
            .split("Holes not in the phantom definition\n")
            .nth(1)
            .unwrap_or_default();
        assert!(
            one_line(sec).starts_with(
                "----------------------------------- - outer_45 (outer) at x 61.3 mm, y -61.0 \
                 mm: -998.4 ± 6.1 HU (350 pixels, the layout's lung_exhale): not in the phantom \
                 definition: empty hole? another bone rod? (information only: fails nothing, \
                 pooled into no material)"
            ),
            "{sec}"
        );
        assert!(r.html.contains(">Holes not in the phantom definition</h2>"));
        assert!(r.html.contains("<li>outer_45 (outer) at x 61.3 mm"));
        // the unassigned hole fails nothing: without the two failures the run is NO BASELINE
        let mut ok = first_scan_with_absolute_failures();
        ok.inserts.retain(|x| x.insert != "dense_bone");
        ok.inserts[3].copies_consistent = Some(true);
        ok.inserts[3].check_pass = true;
        ok.checks.failures.clear();
        ok.checks.pass = true;
        ok.absolute_pass = true;
        let s = summary(&ok, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::NoBaseline);
        let r = render(&data(&s, s.verdict.into(), None));
        assert_clean(&r);
        assert!(r.subject.starts_with("[NO BASELINE] "));
        assert!(r.text.contains("Holes not in the phantom definition"));
        assert!(!r.text.contains("!! liver") && !r.text.contains("!! water_vial"));
    }

    #[test]
    fn a_failure_the_engine_did_not_list_still_fails_and_is_named() {
        // checks.pass says yes, but a non-optional material was not measured: never a
        // silent gap
        let mut mats = MATERIALS;
        mats[2].2 = 1.0;
        let mut m = measurement(&mats);
        m.inserts[3].status = MaterialStatus::Missing;
        m.inserts[3].hu_mean = f64::NAN;
        m.inserts[3].reason = Some("no hole holds it".into());
        let s = summary(&m, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::Fail);
        assert_eq!(s.absolute_pass, Some(false));
        let r = render(&data(&s, s.verdict.into(), None));
        assert!(
            r.text
                .starts_with("FAIL: liver not found: no hole holds it\n"),
            "{}",
            r.text
        );
        // a non-monotone curve the engine did not fail
        let mut m = measurement(&mats);
        m.checks.curve_monotonic = false;
        let s = summary(&m, &no_constancy());
        assert_eq!(s.verdict, RunVerdict::Fail);
        let r = render(&data(&s, s.verdict.into(), None));
        assert!(r.text.starts_with("FAIL: HU–RED curve not monotone"));
    }

    #[test]
    fn with_a_baseline_an_absolute_failure_fails_even_when_constancy_passes() {
        let mut mats = MATERIALS;
        mats[2].2 = 1.0;
        let mut m = first_scan_with_absolute_failures();
        m.inserts.retain(|x| x.insert != "water_vial");
        let mut ev = constancy(&measurement(&mats));
        // the refused material has no value to compare: constancy fails it too
        ev.per_insert.push(InsertConstancy {
            insert: "dense_bone".into(),
            baseline_hu: Some(1150.0),
            hu_mean: None,
            delta_hu: None,
            tolerance_hu: 50.0,
            within_tolerance: false,
            delta_red_percent: None,
            note: Some("not measured in this run".into()),
        });
        ev.pass = Some(false);
        let s = summary(&m, &ev);
        assert_eq!(s.verdict, RunVerdict::Fail);
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        assert_clean(&r);
        let first = one_line(r.text.split("\n=").next().unwrap_or_default());
        // dense_bone is named once, with the reason (not "not measured in this run")
        assert_eq!(
            first,
            "FAIL: dense_bone not measured: no homogeneous core in holes inner_135, outer_315 \
             (rods too thin for the ROI); copies of liver disagree: 40 vs 72 HU"
        );
        let rows = text_table_lines(&r.text);
        let liver = rows
            .iter()
            .find(|l| l.contains("liver"))
            .copied()
            .unwrap_or("");
        // liver is within tolerance of the baseline, but its copies disagree
        assert!(liver.starts_with("!! liver"), "{liver}");
        assert!(
            liver.ends_with("FAIL: copies disagree: 40 vs 72 HU"),
            "{liver}"
        );
        let dense = rows
            .iter()
            .find(|l| l.contains("dense_bone"))
            .copied()
            .unwrap_or("");
        assert!(dense.ends_with("FAIL: not measured in this run"), "{dense}");

        // constancy passes, an absolute check fails: FAIL
        let mut m = measurement(&mats);
        m.inserts[3].copies_consistent = Some(false);
        m.inserts[3].copies_spread_hu = Some(30.0);
        let ev = constancy(&measurement(&mats));
        assert_eq!(ev.pass, Some(true));
        let s = summary(&m, &ev);
        assert_eq!(s.verdict, RunVerdict::Fail);
        let r = render(&data(&s, s.verdict.into(), Some(baseline())));
        assert_eq!(
            r.text.lines().next().unwrap_or_default(),
            "FAIL: liver copies disagree by 30 HU"
        );
        assert!(r.subject.starts_with("[FAIL] "));
    }

    #[test]
    fn provisional_protocol_differs_and_amended_are_prominent() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let mut b = baseline();
        b.provisional = true;
        b.protocol_differs = Some("kVp 100 (baseline 120)".into());
        let mut d = data(&s, ReportKind::Fail, Some(b));
        d.amended = true;
        let r = render(&d);
        assert_clean(&r);
        let prov = "Baseline is PROVISIONAL (set automatically from run 12); confirm it with \
                    hu-red baseline set --run 12";
        assert!(
            one_line(&r.text).contains(&format!("!! {prov}")),
            "{}",
            r.text
        );
        assert!(r.html.contains(&esc(prov)));
        assert!(one_line(&r.text).contains(
            "evaluated against the closest baseline (baseline 7, 120 kV, B30f, 2 mm). \
             What differs: kVp 100 (baseline 120)"
        ));
        assert!(r.html.contains("What differs: kVp 100 (baseline 120)"));
        assert!(one_line(&r.text).contains(
            "instances of this series arrived after an earlier analysis; this run replaces it"
        ));
        // the notices come before the table
        let notice = r.text.find("PROVISIONAL").unwrap_or(usize::MAX);
        let table = r.text.find("Materials\n").unwrap_or(0);
        assert!(notice < table);
        // the warning notices are styled, in the HTML too
        assert!(r.html.contains("border-left:6px solid #e0a000"));

        // a confirmed baseline from a file: no provisional line, no protocol line
        let mut b = baseline();
        b.source = "import /srv/base.csv".into();
        let r = render(&data(&s, ReportKind::Fail, Some(b)));
        assert!(!r.text.contains("PROVISIONAL") && !r.text.contains("closest baseline"));
        assert!(r
            .text
            .contains("7 (from import /srv/base.csv, set 2026-01-03), confirmed"));
    }

    #[test]
    fn html_escapes_and_text_keeps_raw_values() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let s = summary(&m, &ev);
        let mut d = data(&s, ReportKind::Fail, Some(baseline()));
        d.scanner.label = "CT <1> & \"A\"".into();
        d.protocol = "it's <b>bold</b>".into();
        d.attachments.push("x</li><script>y</script>".into());
        let r = render(&d);
        assert_clean(&r);
        assert!(
            r.html.contains("CT &lt;1&gt; &amp; &quot;A&quot;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("CT <1>") && !r.html.contains("<script>"));
        assert!(r.html.contains("it&#39;s &lt;b&gt;bold&lt;/b&gt;"));
        assert!(!r.html.contains("<b>"));
        assert!(r.text.contains("CT <1> & \"A\""));
        assert!(r.text.contains("it's <b>bold</b>"));
        assert!(r.subject.contains("CT <1> & \"A\""));
        assert_eq!(esc("&<>\"'\u{7}x"), "&amp;&lt;&gt;&quot;&#39; x");
    }

    #[test]
    fn nan_values_are_shown_as_dashes() {
        let m = {
            let mut m = measurement(&MATERIALS);
            m.inserts[1].hu_std = f64::NAN;
            m.inserts[3].hu_mean = f64::NAN;
            m.inserts[4].red = Some(f64::INFINITY);
            m
        };
        let mut ev = constancy(&m);
        ev.pearson_r = Some(f64::NAN);
        ev.per_insert[3].delta_hu = None;
        ev.per_insert[3].hu_mean = None;
        ev.per_insert[3].within_tolerance = false;
        ev.per_insert[3].note = Some("not measured".into());
        ev.per_insert[0].delta_red_percent = Some(f64::NAN);
        ev.per_insert[2].tolerance_hu = f64::NAN;
        let mut s = summary(&m, &ev);
        s.pose = Some(Pose {
            centre_x_mm: f64::NAN,
            centre_y_mm: 1.0,
            rotation_deg: f64::INFINITY,
        });
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        assert_clean(&r);
        assert!(!r.text.contains("inf") && !r.html.contains("inf"));
        assert!(r.text.contains("Pearson r (HU now vs baseline HU): –"));
        let rows = text_table_lines(&r.text);
        let liver = rows
            .iter()
            .find(|l| l.contains("liver"))
            .copied()
            .unwrap_or("");
        assert!(liver.starts_with("!! liver"), "{rows:?}");
        assert!(liver.contains("FAIL: not measured"), "{liver}");
        // named by its absolute failure (not measured), once
        let first = one_line(r.text.split("\n=").next().unwrap_or_default());
        assert!(first.contains("liver not measured"), "{first}");
        assert_eq!(first.matches("liver").count(), 1, "{first}");
        // the material without a tolerance is not named with one
        assert!(r.text.contains("centre x – mm, y 1.0 mm, rotation –°"));
    }

    #[test]
    fn error_report_says_what_went_wrong_what_was_seen_and_what_to_check() {
        let s = error_summary();
        let mut d = data(&s, ReportKind::Error, None);
        d.hints = vec![
            "Is the phantom fully inside the field of view?".into(),
            "Was the right phantom configured for this scanner?".into(),
        ];
        d.attachments = vec!["hu_red_unknown_preview.png".into()];
        let r = render(&d);
        assert_clean(&r);
        let first = r.text.lines().next().unwrap_or_default();
        assert!(first.starts_with("ERROR: the series could not be analysed: no known phantom"));
        assert!(r.html.contains("background:#f0a000"), "amber ERROR banner");
        for want in [
            "What went wrong",
            "no known phantom matched (best: catphan_ctp404, score 0.31)",
            "What was seen",
            "QA HU-RED 120kV",
            "CTSIM1",
            "Modality:",
            "CT",
            "Slices:",
            "120",
            "512 × 512 pixels",
            "catphan_ctp404 (score 0.31: 3 of 8 holes fit)",
            "cirs062 (score 0.12: outline too small)",
            "What to check",
            "- Is the phantom fully inside the field of view?",
            "- Was the right phantom configured for this scanner?",
            "hu_red_unknown_preview.png",
            "hu-red report --run 42 --resend",
            "hu-red baseline set --run RUN",
            "Generated by hu-red",
        ] {
            assert!(
                one_line(&r.text).contains(want) || r.text.contains(want),
                "text lacks {want:?}\n{}",
                r.text
            );
        }
        assert!(r
            .html
            .contains("<li>Is the phantom fully inside the field of view?</li>"));
        // a failed run cannot become the baseline
        assert!(!r.text.contains("hu-red baseline set --run 42"));
        // no materials table, no baseline talk in an ERROR report
        assert!(!r.text.contains("Baseline HU") && !r.text.contains("Pearson"));
        assert!(!r.text.contains("No baseline for this scanner"));
        // the plan's pose is shown when the planner got that far
        assert!(r.text.contains("centre x 1.0 mm, y 2.0 mm, rotation +0.0°"));
        for l in r.text.lines() {
            assert!(l.chars().count() <= 100, "{l}");
        }
    }

    #[test]
    fn long_values_are_wrapped_in_the_text_part() {
        let m = measurement(&MATERIALS);
        let ev = constancy(&m);
        let mut s = summary(&m, &ev);
        s.warnings = vec!["word ".repeat(60)];
        let r = render(&data(&s, ReportKind::Fail, Some(baseline())));
        for l in r.text.lines() {
            assert!(l.chars().count() <= 100, "{l}");
        }
        assert_eq!(r.text.matches("word").count(), 60);
    }

    #[test]
    fn value_helpers() {
        assert_eq!(signed(Some(-0.04), 1), "+0.0");
        assert_eq!(signed(Some(-1.0), 1), "-1.0");
        assert_eq!(signed(Some(3.25), 2), "+3.25");
        assert_eq!(signed(None, 1), "–");
        assert_eq!(fixed(Some(f64::NAN), 1), "–");
        assert_eq!(fixed(Some(0.19), 3), "0.190");
        assert_eq!(tol(4.0), "4");
        assert_eq!(tol(42.5), "42.5");
        assert_eq!(dicom_date("20261125"), "2026-11-25");
        assert_eq!(dicom_date("2026.11.25"), "2026.11.25");
        assert_eq!(dicom_time("0930"), "09:30");
        assert_eq!(dicom_time("102233.500"), "10:22:33");
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(one_line(" a\r\n\tb  c "), "a b c");
    }

    mod golden;
}
