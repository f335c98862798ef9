//! Report writers on a hand-made measurement (no engine involved): file contents, strictness of
//! the JSON, CSV columns, console text, and PNGs that decode to the promised size.

use super::writer_fixture::{fake_cirs, N, PX};
use super::*;
use crate::analysis::{
    Baseline, BaselineEntry, Detection, InsertConstancy, MaterialResult, Measurement,
    ToleranceEvaluation,
};
use std::time::SystemTime;

fn baseline_of(m: &Measurement) -> Baseline {
    Baseline {
        source: "/tmp/base.csv".into(),
        entries: m
            .inserts
            .iter()
            .map(|x| BaselineEntry {
                insert: x.insert.clone(),
                hu_mean: Some(if x.insert == "water" { 0.0 } else { x.hu_mean }),
                red: x.red,
            })
            .collect(),
    }
}

fn evaluation(
    m: &Measurement,
    b: &Baseline,
    def: &crate::phantom::PhantomDef,
) -> ToleranceEvaluation {
    crate::analysis::constancy::evaluate(m, Some(b), def)
}

fn summary_of(m: &Measurement, ev: &ToleranceEvaluation) -> Summary {
    let metadata = Metadata {
        acquisition: crate::dicom::Acquisition {
            series_description: Some("QA HU-RED".into()),
            kvp: Some(120.0),
            station_name: Some("CT01".into()),
            study_date: Some("20240312".into()),
            reconstruction_kernel: Some("B30f".into()),
            slice_thickness: Some(2.0),
            ..Default::default()
        },
        pixel_spacing: Some("0.8,0.8".into()),
        pixel_spacing_mm: Some([0.8, 0.8]),
        rows: Some(N),
        columns: Some(N),
        n_slices: Some(80),
        series_instance_uid: Some("1.2.3.4".into()),
        ..Default::default()
    };
    Summary::ok(OkParts {
        dicom_path: "/data/cirs",
        metadata,
        measurement: m,
        evaluation: ev,
        warnings: m.warnings.clone(),
        timings: None,
        started_at: SystemTime::now(),
    })
}

fn out_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Keep the PNGs for a look when HU_RED_KEEP_PLOTS names a folder.
fn keep(path: &std::path::Path) {
    if let Ok(dir) = std::env::var("HU_RED_KEEP_PLOTS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(
            path,
            std::path::Path::new(&dir).join(path.file_name().unwrap()),
        );
    }
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    )
}

#[test]
fn summary_json_is_strict_and_has_the_contract_keys() {
    let (mut m, _, def) = fake_cirs(35.0);
    // a NaN must never reach the file
    m.inserts[0].hu_std = f64::NAN;
    m.inserts[0].rois[0].contrast_hu = f64::INFINITY;
    let b = baseline_of(&m);
    let ev = evaluation(&m, &b, &def);
    let s = summary_of(&m, &ev);
    let text = s.to_json_string();
    assert!(
        !text.contains("NaN") && !text.contains("Infinity"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "ok");
    assert!(v["error"].is_null());
    assert_eq!(v["phantom"]["id"], "cirs062");
    assert_eq!(v["phantom"]["detection"], "auto");
    assert_eq!(v["phantom"]["confidence"], 0.93);
    let ins = v["inserts"].as_array().unwrap();
    assert_eq!(ins.len(), 9);
    for key in ["insert", "red", "hu_mean", "hu_std", "n_rois", "rois"] {
        assert!(ins[0].get(key).is_some(), "inserts[].{key}");
    }
    assert!(ins[0]["hu_std"].is_null());
    let te = &v["tolerance_evaluation"];
    assert_eq!(te["has_baseline"], true);
    assert_eq!(te["pass"], false);
    assert!(te["pearson_r"].as_f64().unwrap() > 0.99);
    let water = te["per_insert"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["insert"] == "water")
        .unwrap();
    for key in [
        "insert",
        "baseline_hu",
        "hu_mean",
        "delta_hu",
        "tolerance_hu",
        "within_tolerance",
        "delta_red_percent",
    ] {
        assert!(water.get(key).is_some(), "per_insert[].{key}");
    }
    assert_eq!(water["within_tolerance"], false);
    assert_eq!(water["delta_hu"], 35.0);
    for key in ["csv", "curve_png", "overlay_png"] {
        assert!(v["outputs"].get(key).is_some(), "outputs.{key}");
    }
    assert!(v["warnings"].is_array());
    for key in [
        "pose",
        "slices",
        "metadata",
        "curve",
        "hu_red_version",
        "started_at",
        "finished_at",
        "note",
    ] {
        assert!(!v[key].is_null(), "{key}");
    }
    assert_eq!(v["metadata"]["KVP"], 120.0);
    assert_eq!(v["metadata"]["selected_slice_index"], 41);
    assert_eq!(v["metadata"]["phantom"], "cirs062");
}

#[test]
fn error_summary_shape() {
    let s = Summary::error(
        "/data/empty",
        UNKNOWN_PHANTOM,
        Detection::Auto,
        "no DICOM files in /data/empty".into(),
        None,
        None,
        Some("/tmp/base.csv".into()),
        vec![],
        SystemTime::now(),
    );
    let v: serde_json::Value = serde_json::from_str(&s.to_json_string()).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"], "no DICOM files in /data/empty");
    assert_eq!(v["phantom"]["id"], "unknown");
    assert!(v["phantom"]["confidence"].is_null());
    assert_eq!(v["inserts"], serde_json::json!([]));
    assert_eq!(v["tolerance_evaluation"]["has_baseline"], true);
    assert!(v["tolerance_evaluation"]["pass"].is_null());
    assert!(v["outputs"]["csv"].is_null());
    assert_eq!(v["metadata"]["dicom_path"], "/data/empty");
}

#[test]
fn csv_has_script_columns_first_and_no_nan() {
    let (mut m, _, def) = fake_cirs(35.0);
    m.inserts[1].hu_mean = f64::NAN;
    let b = baseline_of(&m);
    let ev = evaluation(&m, &b, &def);
    let s = summary_of(&m, &ev);
    let dir = out_dir();
    let path = dir.path().join(csv_file_name("cirs062"));
    write_csv(&s, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.to_lowercase().contains("nan"), "{text}");
    let mut r = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    // the acquisition's script columns, then PixelSpacing
    assert_eq!(
        &header[..10],
        &crate::dicom::Acquisition::SCRIPT_COLUMNS[..]
    );
    assert_eq!(header[10], "PixelSpacing");
    // the script's 23 columns first, in its order (the fixture's header is the script's)
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/script_baseline.csv"),
    )
    .unwrap();
    let script_header: Vec<&str> = script.lines().next().unwrap().split(',').collect();
    assert_eq!(script_header.len(), 23);
    assert_eq!(&header[..23], &script_header[..]);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 9);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let water = rows.iter().find(|r| &r[col("insert")] == "water").unwrap();
    assert_eq!(&water[col("KVP")], "120");
    assert_eq!(&water[col("PixelSpacing")], "0.8,0.8");
    assert_eq!(&water[col("delta_hu")], "35.000");
    assert_eq!(&water[col("within_tolerance")], "false");
    assert_eq!(&water[col("tolerance_hu")], "30");
    assert_eq!(&water[col("ProtocolName")], "");
    // the script's blob columns: the ROI's centre and radii in pixels, |mean − expected|
    let roi = &m.inserts.iter().find(|x| x.insert == "water").unwrap().rois[0];
    assert_eq!(&water[col("center_x")], format!("{:.2}", roi.center_col_px));
    assert_eq!(&water[col("center_y")], format!("{:.2}", roi.center_row_px));
    assert_eq!(
        &water[col("roi_radius_px")],
        format!("{:.2}", roi.roi_radius_px)
    );
    assert_eq!(
        &water[col("detected_radius_px")],
        format!("{:.2}", 15.0 / PX)
    );
    assert_eq!(&water[col("assignment_cost")], "35.000");
    let lung_exhale = &rows[1];
    assert_eq!(&lung_exhale[col("hu_mean")], "");
    assert_eq!(&lung_exhale[col("status")], "not measured");
    // the file is itself a valid baseline, equal to what was measured
    let back = crate::baseline::read_baseline(&path).unwrap();
    let w = back
        .baseline
        .entries
        .iter()
        .find(|e| e.insert == "water")
        .unwrap();
    assert_eq!(w.hu_mean, Some(35.0));
    assert_eq!(w.red, Some(1.0));
    assert_eq!(back.protocol.acquisition.kvp, Some(120.0));
    // the whole acquisition reads back as written (the serial number is no script column)
    assert_eq!(back.protocol.acquisition, s.metadata.acquisition);
    assert_eq!(back.protocol.pixel_spacing.as_deref(), Some("0.8,0.8"));
}

#[test]
fn console_summary_has_table_and_script_verdict() {
    let (m, _, def) = fake_cirs(35.0);
    let b = baseline_of(&m);
    let ev = evaluation(&m, &b, &def);
    let s = summary_of(&m, &ev);
    let text = console_summary(&s);
    assert!(text.contains("Phantom:   cirs062"), "{text}");
    assert!(text.contains("confidence 0.93"), "{text}");
    assert!(text.contains("centre index 41"), "{text}");
    assert!(text.contains("rotation +7.5°"), "{text}");
    assert!(
        text.contains("Baseline comparison: FAIL | Pearson r = "),
        "{text}"
    );
    assert!(text.contains("- water: ΔHU=35.0 (tol ±30)"), "{text}");
    assert_eq!(text.matches("\n- ").count(), 1, "{text}");
    assert!(text.contains("a test warning"), "{text}");
    let line = text.lines().find(|l| l.starts_with("water ")).unwrap();
    assert!(
        line.contains("35.0 ± 10.0") && line.contains("FAIL"),
        "{line}"
    );

    let b = Baseline {
        entries: b
            .entries
            .iter()
            .map(|e| BaselineEntry {
                hu_mean: if e.insert == "water" {
                    Some(35.0)
                } else {
                    e.hu_mean
                },
                ..e.clone()
            })
            .collect(),
        ..b
    };
    let ev = evaluation(&m, &b, &def);
    let text = console_summary(&summary_of(&m, &ev));
    assert!(
        text.contains("Baseline comparison: PASS | Pearson r = 1.00000"),
        "{text}"
    );
    let none = ToleranceEvaluation {
        has_baseline: false,
        pass: None,
        pearson_r: None,
        baseline_source: None,
        per_insert: vec![],
    };
    let text = console_summary(&summary_of(&m, &none));
    assert!(text.contains("Baseline comparison: none"), "{text}");
}

/// Issue 10: the console writes a missing value as the other reports do (`–`, never `—` or
/// `NaN`) and a value that rounds to zero without a minus sign.
#[test]
fn console_missing_values_and_zero_as_in_every_report() {
    let (m, _, def) = fake_cirs(0.0);
    let mut b = baseline_of(&m);
    let near = m.inserts[1].insert.clone();
    b.entries[1].hu_mean = Some(m.inserts[1].hu_mean + 0.04);
    let dropped = b.entries.remove(2).insert;
    b.entries.push(BaselineEntry {
        insert: "ghost".into(),
        hu_mean: Some(12.0),
        red: Some(1.0),
    });
    let mut ev = evaluation(&m, &b, &def);
    ev.pearson_r = None;
    // a material the evaluation has no entry for
    let unevaluated = m.inserts[3].insert.clone();
    ev.per_insert.retain(|c| c.insert != unevaluated);
    let text = console_summary(&summary_of(&m, &ev));
    // (the em dash is left only as a separator: `Phantom:   id (name) — auto-detected`)
    assert!(
        !text.contains("NaN") && text.matches('—').count() == 1,
        "{text}"
    );
    assert!(text.contains("| Pearson r = –\n"), "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name} in {text}"))
            .to_string()
    };
    let line = row(&near);
    assert!(
        line.split_whitespace().any(|cell| cell == "+0.0")
            && !line.split_whitespace().any(|cell| cell == "-0.0"),
        "ΔHU of -0.04 is +0.0: {line}"
    );
    let line = row(&dropped);
    assert!(
        line.contains(" FAIL ") && line.matches('–').count() == 3,
        "baseline, ΔHU and ΔRED% missing: {line}"
    );
    let line = row(&unevaluated);
    assert!(
        line.contains(" not in baseline") && line.matches('–').count() == 3,
        "{line}"
    );
    let line = row("ghost");
    assert!(
        line.contains("not measured") && line.contains(" 12.0 ") && line.ends_with("FAIL"),
        "{line}"
    );
    assert_eq!(
        line.matches('–').count(),
        4,
        "RED, pixels, ΔHU, ΔRED%: {line}"
    );
}

#[test]
fn missing_baseline_value_fails_with_a_reason() {
    let (m, _, def) = fake_cirs(0.0);
    let mut b = baseline_of(&m);
    b.entries[2].hu_mean = None;
    let ev = evaluation(&m, &b, &def);
    let s = summary_of(&m, &ev);
    let c: &InsertConstancy = &ev.per_insert[2];
    assert!(!c.within_tolerance);
    let lines = console::verdict_lines(&s);
    assert!(
        lines[0].starts_with("Baseline comparison: FAIL"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("- {}:", c.insert))),
        "{lines:?}"
    );
}

#[test]
fn curve_and_overlay_pngs() {
    let (m, slab, def) = fake_cirs(35.0);
    let b = baseline_of(&m);
    let ev = evaluation(&m, &b, &def);
    let s = summary_of(&m, &ev);
    let dir = out_dir();
    let curve = dir.path().join(curve_png_name("cirs062"));
    write_curve_png(&s, Some(&b), &curve).unwrap();
    keep(&curve);
    let (w, h) = png_size(&curve);
    assert!(w >= 800 && h >= 600, "{w}x{h}");
    let overlay = dir.path().join(overlay_png_name("cirs062"));
    write_overlay_png(&s, &slab, Some(&def), &overlay).unwrap();
    keep(&overlay);
    let (w, h) = png_size(&overlay);
    assert!(w >= 800 && h >= 600, "{w}x{h}");
    // no temporary files left behind
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// A first scan (no baseline) with a refused material, an optional one not present, a window
/// given at another kVp and an unassigned hole: JSON, CSV and console carry all of it.
fn first_scan_with_a_refused_material() -> Summary {
    use crate::analysis::{MaterialStatus, UnassignedHole};
    let (mut m, _, _) = fake_cirs(0.0);
    let dense = m
        .inserts
        .iter_mut()
        .find(|x| x.insert == "dense_bone")
        .unwrap();
    dense.status = MaterialStatus::Refused;
    dense.reason = Some("no homogeneous core in holes inner_135, outer_315".into());
    dense.hu_mean = f64::NAN;
    dense.hu_std = f64::NAN;
    dense.hu_median = f64::NAN;
    dense.rois.clear();
    dense.n_rois = 0;
    dense.check_pass = false;
    let water = m.inserts.iter_mut().find(|x| x.insert == "water").unwrap();
    water.hu_window = Some([-7.0, 7.0]);
    water.window_kvp = Some(120.0);
    water.within_window = None;
    water.hu_band = Some([-100.0, 100.0]);
    water.plausible = Some(true);
    m.inserts.push(MaterialResult {
        insert: "vial".into(),
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
        center_x_mm: 60.0,
        center_y_mm: -60.0,
        hu_mean: -998.0,
        hu_std: 6.0,
        n_pixels: 300,
        layout_material: None,
        note: "not in the phantom definition: empty hole?".into(),
    }];
    m.absolute_pass = false;
    m.checks.pass = false;
    m.checks.failures = vec!["dense_bone not measured: no homogeneous core".into()];
    m.checks.info = vec!["water window given at 120 kV: information only at 100 kV".into()];
    let none = ToleranceEvaluation {
        has_baseline: false,
        pass: None,
        pearson_r: None,
        baseline_source: None,
        per_insert: vec![],
    };
    summary_of(&m, &none)
}

#[test]
fn a_first_scan_with_a_refused_material_fails_everywhere_it_is_shown() {
    let s = first_scan_with_a_refused_material();
    assert_eq!(s.verdict, RunVerdict::Fail);
    assert_eq!(s.decide(), s.verdict);
    assert_eq!(s.constancy_pass(), None);
    // JSON: verdict, checks, unassigned, each material's status; strict
    let text = s.to_json_string();
    assert!(!text.contains("NaN"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["verdict"], "FAIL");
    assert_eq!(v["absolute_pass"], false);
    assert_eq!(v["checks"]["pass"], false);
    assert_eq!(
        v["checks"]["failures"][0],
        "dense_bone not measured: no homogeneous core"
    );
    assert_eq!(v["unassigned"][0]["hole"], "outer_45");
    assert_eq!(v["unassigned"][0]["hu_mean"], -998.0);
    let dense = v["inserts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["insert"] == "dense_bone")
        .unwrap();
    assert_eq!(dense["status"], "refused");
    assert!(dense["hu_mean"].is_null());
    assert_eq!(
        dense["reason"],
        "no homogeneous core in holes inner_135, outer_315"
    );
    assert!(v["phantom"].get("family").is_some());

    // CSV: one row per material of the definition, the script's columns unchanged, the new
    // ones at the end
    let dir = out_dir();
    let path = dir.path().join(csv_file_name("cirs062"));
    write_csv(&s, &path).unwrap();
    let mut r = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.len(), CSV_COLUMNS.len());
    assert_eq!(
        &header[37..39],
        ["status", "note"],
        "earlier columns keep their place"
    );
    assert_eq!(
        &header[39..],
        [
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
            "check_notes"
        ]
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 10, "9 materials + the optional vial");
    let row = |n: &str| rows.iter().find(|r| &r[col("insert")] == n).unwrap();
    let d = row("dense_bone");
    assert_eq!(&d[col("hu_mean")], "");
    assert_eq!(&d[col("status")], "not measured");
    assert_eq!(&d[col("material_status")], "refused");
    assert_eq!(
        &d[col("reason")],
        "no homogeneous core in holes inner_135, outer_315"
    );
    assert_eq!(&d[col("check")], "FAIL");
    assert_eq!(
        &d[col("check_reason")],
        "not measured: no homogeneous core in holes inner_135, outer_315"
    );
    let vial = row("vial");
    assert_eq!(&vial[col("status")], "not present");
    assert_eq!(&vial[col("check")], "not present");
    assert_eq!(&vial[col("optional")], "true");
    let w = row("water");
    assert_eq!(&w[col("check")], "pass");
    assert_eq!(
        &w[col("within_window")],
        "",
        "the window does not apply at this kVp"
    );
    assert_eq!(&w[col("window_kvp")], "120");
    assert_eq!(&w[col("plausible")], "true");
    assert_eq!(&w[col("hu_band_min")], "-100.000");
    assert_eq!(&w[col("status")], "ok");

    // console: the refused material, the window as information, the hole, the verdict
    let text = console_summary(&s);
    let line = text.lines().find(|l| l.starts_with("dense_bone ")).unwrap();
    assert!(line.contains("not measured"), "{line}");
    assert!(
        line.ends_with("FAIL: not measured: no homogeneous core in holes inner_135, outer_315"),
        "{line}"
    );
    let line = text.lines().find(|l| l.starts_with("water ")).unwrap();
    assert!(line.contains("info -7 … 7 @120 kV"), "{line}");
    assert!(line.ends_with(" ok"), "{line}");
    let line = text.lines().find(|l| l.starts_with("vial ")).unwrap();
    assert!(line.contains("not present"), "{line}");
    assert!(!line.contains("FAIL"), "{line}");
    assert!(text.contains("Baseline comparison: none (no baseline given)"));
    assert!(text.contains("Absolute checks: FAIL (checked: monotone HU–RED curve)\n- dense_bone not measured: no homogeneous core\n"), "{text}");
    assert!(text.contains("  - water window given at 120 kV: information only at 100 kV"));
    assert!(text.contains("Holes not in the phantom definition (information, fails nothing):\n  - outer_45 (outer) at x 60.0 mm, y -60.0 mm: -998.0 ± 6.0 HU (300 px): not in the phantom definition: empty hole?"), "{text}");
    assert!(text.contains("\nVerdict: FAIL\n"), "{text}");
}

#[test]
fn a_first_scan_that_passes_is_no_baseline_and_says_so() {
    let (m, _, _) = fake_cirs(0.0);
    let none = ToleranceEvaluation {
        has_baseline: false,
        pass: None,
        pearson_r: None,
        baseline_source: None,
        per_insert: vec![],
    };
    let s = summary_of(&m, &none);
    assert_eq!(s.verdict, RunVerdict::NoBaseline);
    let v: serde_json::Value = serde_json::from_str(&s.to_json_string()).unwrap();
    assert_eq!(v["verdict"], "NO BASELINE");
    assert_eq!(v["absolute_pass"], true);
    let text = console_summary(&s);
    assert!(
        text.contains("Absolute checks: PASS (checked: monotone HU–RED curve)"),
        "{text}"
    );
    assert!(
        text.contains("Verdict: NO BASELINE (no absolute check failed; constancy needs a baseline"),
        "{text}"
    );
    assert!(!text.contains("Verdict: PASS"));
    // with a baseline that matches: PASS
    let b = Baseline {
        source: "x".into(),
        entries: m
            .inserts
            .iter()
            .map(|x| BaselineEntry {
                insert: x.insert.clone(),
                hu_mean: Some(x.hu_mean),
                red: x.red,
            })
            .collect(),
    };
    let (_, _, def) = fake_cirs(0.0);
    let s = summary_of(&m, &evaluation(&m, &b, &def));
    assert_eq!(s.verdict, RunVerdict::Pass);
    assert!(console_summary(&s).contains("\nVerdict: PASS\n"));
    // an error summary
    let e = Summary::error(
        "/x",
        UNKNOWN_PHANTOM,
        Detection::Auto,
        "nothing".into(),
        None,
        None,
        None,
        vec![],
        SystemTime::now(),
    );
    assert_eq!(e.verdict, RunVerdict::Error);
    assert_eq!(e.decide(), RunVerdict::Error);
    let v: serde_json::Value = serde_json::from_str(&e.to_json_string()).unwrap();
    assert_eq!(v["verdict"], "ERROR");
    assert!(v["checks"].is_null());
    assert_eq!(v["unassigned"], serde_json::json!([]));
}
