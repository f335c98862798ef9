//! `hu_red_PHANTOM.csv`: one row per material. The first 23 columns are the Python script's,
//! in its order (acquisition metadata, `selected_slice_index, phantom, dicom_path, insert, red,
//! hu_mean, hu_std, center_x, center_y, roi_radius_px, detected_radius_px, assignment_cost`),
//! so that the file works wherever the script's did, including as a baseline; hu-red's own
//! columns follow (new ones are only ever added at the end). Missing values are empty cells,
//! never `NaN`. Every material of the definition has a row, measured or not (a refused or
//! missing material: empty values, `material_status` and `reason` say why, `check` FAIL).
//!
//! The script's per-blob columns for a material: `center_x`/`center_y` (image column/row, px),
//! `roi_radius_px` and `detected_radius_px` (the insert's radius, px) are those of the
//! material's first ROI (a CIRS material has two, both in the summary JSON);
//! `assignment_cost` is |mean HU − expected HU|, the script's HU-proximity cost.

use super::format::{cell_fixed, cell_flag, cell_shortest};
use super::summary::{material_check, MaterialCheck};
use super::{write_atomically, ReportError, Summary};
use crate::analysis::{InsertConstancy, MaterialResult, MaterialStatus};
use crate::dicom::Acquisition;
use std::path::Path;

/// The header, in order: the acquisition's script columns ([`Acquisition::SCRIPT_COLUMNS`]),
/// then `COLUMNS_AFTER_ACQUISITION`.
pub const CSV_COLUMNS: [&str; 50] = concat(Acquisition::SCRIPT_COLUMNS, COLUMNS_AFTER_ACQUISITION);

/// The columns after the acquisition's: the rest of the script's, then hu-red's.
const COLUMNS_AFTER_ACQUISITION: [&str; 40] = [
    "PixelSpacing",
    "selected_slice_index",
    "phantom",
    "dicom_path",
    "insert",
    "red",
    "hu_mean",
    "hu_std",
    "center_x",
    "center_y",
    "roi_radius_px",
    "detected_radius_px",
    "assignment_cost",
    "hu_median",
    "n_rois",
    "n_pixels",
    "hu_expected",
    "hu_window_min",
    "hu_window_max",
    "within_window",
    "baseline_hu",
    "delta_hu",
    "tolerance_hu",
    "within_tolerance",
    "delta_red_percent",
    "series_instance_uid",
    "assignment",
    "status",
    "note",
    // issue 9: the absolute checks of each material
    "material_status",
    "reason",
    "optional",
    "plausible",
    "hu_band_min",
    "hu_band_max",
    "window_kvp",
    "copies_spread_hu",
    "check",
    "check_reason",
    "check_notes",
];

/// `a` then `b` (`N` = their lengths' sum, checked when compiled).
const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "concat: N must be A + B");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// HU values: 3 decimals (far below any measurement's precision, so a baseline made from this
/// file compares equal to the run it came from); empty when not finite.
const HU_DECIMALS: usize = 3;

/// An HU value's cell.
fn hu(v: f64) -> String {
    cell_fixed(Some(v), HU_DECIMALS)
}

/// An HU value's cell, empty when missing.
fn opt_hu(v: Option<f64>) -> String {
    cell_fixed(v, HU_DECIMALS)
}

/// The table's rows as cells (header excluded), in [`CSV_COLUMNS`] order.
pub(crate) fn csv_rows(summary: &Summary) -> Vec<Vec<String>> {
    let ctx = RowContext::of(summary);
    let per_insert = &summary.tolerance_evaluation.per_insert;
    let mut rows: Vec<Vec<String>> = summary
        .inserts
        .iter()
        .map(|m| material_row(&ctx, m, per_insert.iter().find(|c| c.insert == m.insert)))
        .collect();
    // A baseline insert the measurement has no material for still gets a row: it fails.
    rows.extend(
        per_insert
            .iter()
            .filter(|c| !summary.inserts.iter().any(|m| m.insert == c.insert))
            .map(|c| unmeasured_baseline_row(&ctx, c)),
    );
    rows
}

/// What every row of one run repeats: the run's own cells.
struct RowContext<'a> {
    summary: &'a Summary,
    /// The script's 11 acquisition metadata cells.
    meta: [String; 11],
    /// How the materials were assigned (`layout`, …), empty when unknown.
    assignment: String,
}

impl<'a> RowContext<'a> {
    /// The cells of `summary` that every row repeats.
    fn of(summary: &'a Summary) -> Self {
        RowContext {
            summary,
            meta: summary.metadata.script_cells(),
            assignment: summary
                .assignment
                .and_then(|a| serde_json::to_value(a).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }

    /// The first cells of a row: acquisition metadata, `selected_slice_index`, `phantom`,
    /// `dicom_path`.
    fn push_run(&self, row: &mut Vec<String>) {
        let summary = self.summary;
        row.extend(self.meta.iter().cloned());
        row.push(
            summary
                .metadata
                .selected_slice_index
                .map(|i| i.to_string())
                .unwrap_or_default(),
        );
        row.push(summary.phantom.id.clone());
        row.push(summary.dicom_path.clone());
    }

    /// `baseline_hu` … `delta_red_percent` of an insert's constancy `c` (empty without one),
    /// then `series_instance_uid` and `assignment`.
    fn push_constancy(&self, row: &mut Vec<String>, c: Option<&InsertConstancy>) {
        row.push(opt_hu(c.and_then(|c| c.baseline_hu)));
        row.push(opt_hu(c.and_then(|c| c.delta_hu)));
        row.push(cell_shortest(c.map(|c| c.tolerance_hu)));
        row.push(cell_flag(c.map(|c| c.within_tolerance)));
        row.push(cell_fixed(c.and_then(|c| c.delta_red_percent), 3));
        row.push(
            self.summary
                .metadata
                .series_instance_uid
                .clone()
                .unwrap_or_default(),
        );
        row.push(self.assignment.clone());
    }
}

/// The row of a material of this run, `c` its constancy against the baseline (if any).
fn material_row(ctx: &RowContext, m: &MaterialResult, c: Option<&InsertConstancy>) -> Vec<String> {
    let mut row = Vec::with_capacity(CSV_COLUMNS.len());
    ctx.push_run(&mut row);
    row.push(m.insert.clone());
    row.push(cell_shortest(m.red));
    row.push(hu(m.hu_mean));
    row.push(hu(m.hu_std));
    push_first_roi(&mut row, m);
    row.push(hu((m.hu_mean - m.hu_expected).abs()));
    row.push(hu(m.hu_median));
    row.push(m.n_rois.to_string());
    row.push(m.n_pixels.to_string());
    row.push(hu(m.hu_expected));
    row.push(opt_hu(m.hu_window.map(|w| w[0])));
    row.push(opt_hu(m.hu_window.map(|w| w[1])));
    row.push(cell_flag(m.within_window));
    ctx.push_constancy(&mut row, c);
    let check = material_check(m);
    row.push(status(m, &check, c).to_string());
    row.push(c.and_then(|c| c.note.clone()).unwrap_or_default());
    push_absolute_check(&mut row, m, check);
    row
}

/// The script's per-blob cells, of the material's first ROI (px, 2 decimals): `center_x`,
/// `center_y`, `roi_radius_px`, `detected_radius_px`.
fn push_first_roi(row: &mut Vec<String>, m: &MaterialResult) {
    let first = m.rois.first();
    let px = |v: Option<f64>| cell_fixed(v, 2);
    row.push(px(first.map(|r| r.center_col_px)));
    row.push(px(first.map(|r| r.center_row_px)));
    row.push(px(first.map(|r| r.roi_radius_px)));
    row.push(px(first.and_then(|r| {
        (r.roi_radius_mm > 0.0).then(|| r.roi_radius_px / r.roi_radius_mm * r.insert_radius_mm)
    })));
}

/// The `status` cell: the first of not present, not measured, out of tolerance, outside the
/// manufacturer window, absolute check failed; else `ok`.
fn status(m: &MaterialResult, check: &MaterialCheck, c: Option<&InsertConstancy>) -> &'static str {
    if *check == MaterialCheck::NotPresent {
        "not present"
    } else if !m.hu_mean.is_finite() || m.status != MaterialStatus::Measured {
        "not measured"
    } else if c.is_some_and(|c| !c.within_tolerance) {
        "out of tolerance"
    } else if m.within_window == Some(false) {
        "outside manufacturer window"
    } else if matches!(check, MaterialCheck::Fail(_)) {
        "absolute check failed"
    } else {
        "ok"
    }
}

/// The absolute-check cells (issue 9): `material_status` … `check_notes`.
fn push_absolute_check(row: &mut Vec<String>, m: &MaterialResult, check: MaterialCheck) {
    row.push(
        serde_json::to_value(m.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    );
    row.push(m.reason.clone().unwrap_or_default());
    row.push(m.optional.to_string());
    row.push(cell_flag(m.plausible));
    row.push(opt_hu(m.hu_band.map(|b| b[0])));
    row.push(opt_hu(m.hu_band.map(|b| b[1])));
    row.push(cell_shortest(m.window_kvp));
    row.push(opt_hu(m.copies_spread_hu));
    let (verdict, why) = match check {
        MaterialCheck::Pass => ("pass", String::new()),
        MaterialCheck::NotPresent => ("not present", String::new()),
        MaterialCheck::Fail(why) => ("FAIL", why),
    };
    row.push(verdict.to_string());
    row.push(why);
    row.push(m.check_notes.join("; "));
}

/// The row of a baseline insert this run has no material for: empty values, `not measured`.
fn unmeasured_baseline_row(ctx: &RowContext, c: &InsertConstancy) -> Vec<String> {
    let mut row = Vec::with_capacity(CSV_COLUMNS.len());
    ctx.push_run(&mut row);
    row.push(c.insert.clone());
    row.extend(std::iter::repeat_n(String::new(), 15));
    ctx.push_constancy(&mut row, Some(c));
    row.push("not measured".to_string());
    row.push(c.note.clone().unwrap_or_default());
    // not a material of this phantom's result: no absolute check (constancy fails it)
    row.extend(std::iter::repeat_n(
        String::new(),
        CSV_COLUMNS.len() - row.len(),
    ));
    row
}

/// Write the CSV table of `summary` to `path`.
pub fn write_csv(summary: &Summary, path: &Path) -> Result<(), ReportError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let err = |e: csv::Error| super::ReportError::other(path, e);
    w.write_record(CSV_COLUMNS).map_err(err)?;
    for row in csv_rows(summary) {
        debug_assert_eq!(row.len(), CSV_COLUMNS.len());
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| super::ReportError::other(path, e))?;
    write_atomically(path, &bytes)
}
