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

use super::summary::{material_check, MaterialCheck};
use super::{write_atomically, ReportError, Summary};
use crate::analysis::{InsertConstancy, MaterialResult};
use std::path::Path;

/// The header, in order.
pub const CSV_COLUMNS: [&str; 50] = [
    "SeriesDescription",
    "ProtocolName",
    "KVP",
    "Manufacturer",
    "ManufacturerModelName",
    "StationName",
    "StudyDate",
    "StudyTime",
    "SliceThickness",
    "ReconstructionKernel",
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

/// HU values: 3 decimals (far below any measurement's precision, so a baseline made from this
/// file compares equal to the run it came from); empty when not finite.
fn hu(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        String::new()
    }
}

fn opt_hu(v: Option<f64>) -> String {
    v.map(hu).unwrap_or_default()
}

/// Plain numbers (RED, tolerances) as given: Rust's shortest round-trip form.
fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

fn flag(v: Option<bool>) -> String {
    v.map(|b| b.to_string()).unwrap_or_default()
}

/// The table's rows as cells (header excluded), in [`CSV_COLUMNS`] order.
pub(crate) fn csv_rows(summary: &Summary) -> Vec<Vec<String>> {
    let meta = summary.metadata.script_cells();
    let per_insert = &summary.tolerance_evaluation.per_insert;
    let constancy = |name: &str| per_insert.iter().find(|c| c.insert == name);
    let assignment = summary
        .assignment
        .and_then(|a| serde_json::to_value(a).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let common = |row: &mut Vec<String>| {
        row.extend(meta.iter().cloned());
        row.push(
            summary
                .metadata
                .selected_slice_index
                .map(|i| i.to_string())
                .unwrap_or_default(),
        );
        row.push(summary.phantom.id.clone());
        row.push(summary.dicom_path.clone());
    };
    let tail = |row: &mut Vec<String>, c: Option<&InsertConstancy>| {
        row.push(opt_hu(c.and_then(|c| c.baseline_hu)));
        row.push(opt_hu(c.and_then(|c| c.delta_hu)));
        row.push(num(c.map(|c| c.tolerance_hu)));
        row.push(flag(c.map(|c| c.within_tolerance)));
        row.push(
            c.and_then(|c| c.delta_red_percent)
                .filter(|v| v.is_finite())
                .map(|v| format!("{v:.3}"))
                .unwrap_or_default(),
        );
        row.push(
            summary
                .metadata
                .series_instance_uid
                .clone()
                .unwrap_or_default(),
        );
        row.push(assignment.clone());
    };
    let mut rows = Vec::new();
    for m in &summary.inserts {
        let MaterialResult {
            insert,
            red,
            hu_mean,
            hu_std,
            hu_median,
            n_rois,
            n_pixels,
            hu_expected,
            hu_window,
            within_window,
            ..
        } = m;
        let c = constancy(insert);
        let mut row = Vec::with_capacity(CSV_COLUMNS.len());
        common(&mut row);
        row.push(insert.clone());
        row.push(num(*red));
        row.push(hu(*hu_mean));
        row.push(hu(*hu_std));
        let first = m.rois.first();
        let px = |v: Option<f64>| {
            v.filter(|x| x.is_finite())
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default()
        };
        row.push(px(first.map(|r| r.center_col_px)));
        row.push(px(first.map(|r| r.center_row_px)));
        row.push(px(first.map(|r| r.roi_radius_px)));
        row.push(px(first.and_then(|r| {
            (r.roi_radius_mm > 0.0).then(|| r.roi_radius_px / r.roi_radius_mm * r.insert_radius_mm)
        })));
        row.push(hu((hu_mean - hu_expected).abs()));
        row.push(hu(*hu_median));
        row.push(n_rois.to_string());
        row.push(n_pixels.to_string());
        row.push(hu(*hu_expected));
        row.push(opt_hu(hu_window.map(|w| w[0])));
        row.push(opt_hu(hu_window.map(|w| w[1])));
        row.push(flag(*within_window));
        tail(&mut row, c);
        let check = material_check(m);
        let status = if check == MaterialCheck::NotPresent {
            "not present"
        } else if !hu_mean.is_finite() || m.status != crate::analysis::MaterialStatus::Measured {
            "not measured"
        } else if c.is_some_and(|c| !c.within_tolerance) {
            "out of tolerance"
        } else if *within_window == Some(false) {
            "outside manufacturer window"
        } else if matches!(check, MaterialCheck::Fail(_)) {
            "absolute check failed"
        } else {
            "ok"
        };
        row.push(status.to_string());
        row.push(c.and_then(|c| c.note.clone()).unwrap_or_default());
        // the absolute checks
        row.push(
            serde_json::to_value(m.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
        row.push(m.reason.clone().unwrap_or_default());
        row.push(m.optional.to_string());
        row.push(flag(m.plausible));
        row.push(opt_hu(m.hu_band.map(|b| b[0])));
        row.push(opt_hu(m.hu_band.map(|b| b[1])));
        row.push(num(m.window_kvp));
        row.push(opt_hu(m.copies_spread_hu));
        let (verdict, why) = match check {
            MaterialCheck::Pass => ("pass", String::new()),
            MaterialCheck::NotPresent => ("not present", String::new()),
            MaterialCheck::Fail(why) => ("FAIL", why),
        };
        row.push(verdict.to_string());
        row.push(why);
        row.push(m.check_notes.join("; "));
        rows.push(row);
    }
    // A baseline insert the measurement has no material for still gets a row: it fails.
    for c in per_insert {
        if summary.inserts.iter().any(|m| m.insert == c.insert) {
            continue;
        }
        let mut row = Vec::with_capacity(CSV_COLUMNS.len());
        common(&mut row);
        row.push(c.insert.clone());
        row.extend(std::iter::repeat_n(String::new(), 15));
        tail(&mut row, Some(c));
        row.push("not measured".to_string());
        row.push(c.note.clone().unwrap_or_default());
        // not a material of this phantom's result: no absolute check (constancy fails it)
        row.extend(std::iter::repeat_n(
            String::new(),
            CSV_COLUMNS.len() - row.len(),
        ));
        rows.push(row);
    }
    rows
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
