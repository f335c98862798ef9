//! The materials table: one row per material (the measurement joined with its constancy result
//! and its absolute check, failures first), its cells as the report writes them, and the
//! Pearson r line under it.

use crate::analysis::MaterialStatus;
use crate::report::email::{ReportData, ReportKind};
use crate::report::format::{fixed, one_line, signed, tol, window, MISSING};
use crate::report::{finite, material_check, MaterialCheck, Summary};

/// One material of the table: the measurement joined with its constancy result and its
/// absolute check.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) red: Option<f64>,
    pub(super) hu: Option<f64>,
    pub(super) sd: Option<f64>,
    pub(super) baseline: Option<f64>,
    pub(super) delta: Option<f64>,
    pub(super) tolerance: Option<f64>,
    pub(super) delta_red: Option<f64>,
    pub(super) expected: Option<f64>,
    pub(super) window: Option<[f64; 2]>,
    pub(super) within_window: Option<bool>,
    /// The kVp the window is given at (a window that does not apply at this scan's kVp is
    /// shown as information).
    pub(super) window_kvp: Option<f64>,
    /// The plausibility band at the scan's kVp.
    pub(super) band: Option<[f64; 2]>,
    pub(super) within_tolerance: Option<bool>,
    pub(super) note: Option<String>,
    /// The material's absolute check (a material only the baseline has: `Pass`, constancy
    /// fails it).
    pub(super) check: MaterialCheck,
    /// Fails constancy or an absolute check.
    pub(super) fails: bool,
}

impl Row {
    pub(super) fn constancy_fails(&self) -> bool {
        self.within_tolerance == Some(false)
    }
}

fn finite_pair(w: Option<[f64; 2]>) -> Option<[f64; 2]> {
    w.filter(|w| w.iter().all(|v| v.is_finite()))
}

pub(super) fn rows_of(s: &Summary) -> Vec<Row> {
    let per = &s.tolerance_evaluation.per_insert;
    let mut rows: Vec<Row> = s
        .inserts
        .iter()
        .map(|m| {
            let c = per.iter().find(|c| c.insert == m.insert);
            let measured = m.status == MaterialStatus::Measured;
            Row {
                name: one_line(&m.insert),
                red: m.red.and_then(finite),
                hu: finite(m.hu_mean).filter(|_| measured),
                sd: finite(m.hu_std).filter(|_| measured),
                baseline: c.and_then(|c| c.baseline_hu).and_then(finite),
                delta: c.and_then(|c| c.delta_hu).and_then(finite),
                tolerance: c.and_then(|c| finite(c.tolerance_hu)),
                delta_red: c.and_then(|c| c.delta_red_percent).and_then(finite),
                expected: finite(m.hu_expected),
                window: finite_pair(m.hu_window),
                within_window: m.within_window,
                window_kvp: m.window_kvp.and_then(finite),
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
                hu: c.hu_mean.and_then(finite),
                sd: None,
                baseline: c.baseline_hu.and_then(finite),
                delta: c.delta_hu.and_then(finite),
                tolerance: finite(c.tolerance_hu),
                delta_red: c.delta_red_percent.and_then(finite),
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
pub(super) fn constancy_phrase(r: &Row) -> String {
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

/// The materials table, ready to render.
pub(in crate::report::email) struct Table {
    pub(in crate::report::email) header: Vec<&'static str>,
    /// Right-aligned columns (numbers).
    pub(in crate::report::email) right: Vec<bool>,
    /// `(fails, cells)`, failures first.
    pub(in crate::report::email) rows: Vec<(bool, Vec<String>)>,
    /// What the failure marker means.
    pub(in crate::report::email) legend: String,
}

/// The table of `rows`: against the baseline (ΔHU, tolerance, ΔRED %) when there is one, else
/// against the phantom's definition (expected HU, plausibility band, window).
pub(super) fn table_of(rows: &[Row], with_baseline: bool) -> Table {
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

/// The line under the table: Pearson r of the HU now against the baseline's (none in an ERROR
/// report).
pub(super) fn pearson_line(d: &ReportData) -> Option<String> {
    let ev = &d.summary.tolerance_evaluation;
    (d.kind != ReportKind::Error).then(|| {
        if ev.has_baseline {
            format!(
                "Pearson r (HU now vs baseline HU): {}",
                ev.pearson_r
                    .and_then(finite)
                    .map(|r| format!("{r:.5}"))
                    .unwrap_or_else(|| MISSING.to_string())
            )
        } else {
            format!("Pearson r: {MISSING} (no baseline to compare with)")
        }
    })
}
