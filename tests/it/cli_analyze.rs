//! End-to-end tests of `hu-red analyze`: the built binary on series written by `hu-red
//! simulate`. They check the contract of issue 2: exit codes, file names, JSON keys, CSV columns,
//! strict JSON, baselines in the script's and hu-red's formats, and clear failures on bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_hu-red");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run hu-red")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hu-red simulate --phantom ID --out DIR` plus `extra`; panics with its stderr on failure.
fn simulate(dir: &Path, phantom: &str, extra: &[&str]) {
    let mut args = vec!["simulate", "--phantom", phantom, "--out", p(dir)];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        o.status.success(),
        "simulate {args:?} failed: {}",
        stderr(&o)
    );
}

/// The CIRS series the baseline tests share: rotated, shifted, on a couch, 2 mm slices.
const CIRS_ARGS: [&str; 10] = [
    "--rotation-deg",
    "12",
    "--shift-x-mm",
    "20",
    "--shift-y-mm",
    "-15",
    "--n-slices",
    "30",
    "--seed",
    "7",
];

struct Shared {
    _tmp: tempfile::TempDir,
    cirs: PathBuf,
    cirs_water35: PathBuf,
    /// The first analysis of `cirs` (no baseline): its CSV is the baseline of later runs.
    base_out: PathBuf,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let cirs = tmp.path().join("cirs");
        let mut args: Vec<&str> = CIRS_ARGS.to_vec();
        args.push("--couch");
        simulate(&cirs, "cirs062", &args);
        let cirs_water35 = tmp.path().join("cirs_water35");
        args.extend_from_slice(&["--hu-offset", "water=35"]);
        simulate(&cirs_water35, "cirs062", &args);
        let base_out = tmp.path().join("base_out");
        let o = run(&[
            "analyze",
            "--dicom",
            p(&cirs),
            "--outdir",
            p(&base_out),
            "--debug-overlay",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            stdout(&o),
            stderr(&o)
        );
        Shared {
            _tmp: tmp,
            cirs,
            cirs_water35,
            base_out,
        }
    })
}

fn read_json(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}\n{text}", path.display()));
    (text, v)
}

fn assert_strict(text: &str) {
    for bad in ["NaN", "Infinity", "nan", "inf,"] {
        assert!(!text.contains(bad), "summary contains {bad}:\n{text}");
    }
}

fn per_insert<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["tolerance_evaluation"]["per_insert"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["insert"] == name)
        .unwrap_or_else(|| panic!("no per_insert entry for {name}"))
}

/// The error line of a failed run: exactly one line starting with "hu-red: error: ".
fn error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("hu-red: error: "))
        .collect();
    assert_eq!(lines.len(), 1, "stderr:\n{err}");
    lines[0].to_string()
}

fn csv_table(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r.records().map(|x| x.unwrap()).collect();
    (header, rows)
}

#[test]
fn cirs_without_baseline_writes_every_file_and_exits_0() {
    let s = shared();
    let out = &s.base_out;
    for name in [
        "hu_red_cirs062.csv",
        "hu_red_cirs062_summary.json",
        "hu_red_cirs062_curve.png",
        "hu_red_cirs062_overlay.png",
    ] {
        let f = out.join(name);
        assert!(f.is_file(), "{} missing", f.display());
        assert!(std::fs::metadata(&f).unwrap().len() > 0);
    }
    // no temporary files left behind
    assert_eq!(std::fs::read_dir(out).unwrap().count(), 4);

    let (text, v) = read_json(&out.join("hu_red_cirs062_summary.json"));
    assert_strict(&text);
    assert_eq!(v["status"], "ok");
    assert!(v["error"].is_null());
    assert_eq!(v["phantom"]["id"], "cirs062");
    assert_eq!(v["phantom"]["detection"], "auto");
    let conf = v["phantom"]["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&conf));
    let inserts = v["inserts"].as_array().unwrap();
    let names: Vec<&str> = inserts
        .iter()
        .map(|i| i["insert"].as_str().unwrap())
        .collect();
    for n in [
        "lung_inhale",
        "lung_exhale",
        "adipose",
        "breast",
        "water",
        "muscle",
        "liver",
        "trabecular_bone",
        "dense_bone",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for i in inserts {
        for key in ["insert", "red", "hu_mean", "hu_std", "n_rois", "rois"] {
            assert!(i.get(key).is_some(), "inserts[].{key} missing: {i}");
        }
        let rois = i["rois"].as_array().unwrap();
        assert_eq!(rois.len() as u64, i["n_rois"].as_u64().unwrap());
        for r in rois {
            for key in [
                "hole",
                "center_x_mm",
                "center_y_mm",
                "roi_radius_mm",
                "hu_mean",
                "n_pixels",
            ] {
                assert!(r.get(key).is_some(), "rois[].{key} missing: {r}");
            }
        }
    }
    // CIRS duplicates: both copies measured
    let water = inserts.iter().find(|i| i["insert"] == "water").unwrap();
    assert_eq!(water["n_rois"], 1);
    let muscle = inserts.iter().find(|i| i["insert"] == "muscle").unwrap();
    assert_eq!(muscle["n_rois"], 2);
    let te = &v["tolerance_evaluation"];
    assert_eq!(te["has_baseline"], false);
    assert!(te["pass"].is_null());
    assert!(te["pearson_r"].is_null());
    assert_eq!(te["per_insert"], serde_json::json!([]));
    // no baseline, no absolute failure: NO BASELINE (exit 0), never PASS
    assert_eq!(v["verdict"], "NO BASELINE");
    assert_eq!(v["absolute_pass"], true);
    assert_eq!(v["checks"]["pass"], true);
    assert!(v["unassigned"].is_array());
    let outputs = &v["outputs"];
    for (key, name) in [
        ("csv", "hu_red_cirs062.csv"),
        ("curve_png", "hu_red_cirs062_curve.png"),
        ("overlay_png", "hu_red_cirs062_overlay.png"),
        ("summary_json", "hu_red_cirs062_summary.json"),
    ] {
        let path = outputs[key]
            .as_str()
            .unwrap_or_else(|| panic!("outputs.{key}"));
        assert!(path.ends_with(name), "outputs.{key} = {path}");
    }
    assert!(v["warnings"].is_array());
    let pose = &v["pose"];
    assert!(
        (pose["rotation_deg"].as_f64().unwrap() - 12.0).abs() < 1.5,
        "{pose}"
    );
    assert!(!v["slices"]["indices"].as_array().unwrap().is_empty());
    let md = &v["metadata"];
    for key in [
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
        "SeriesInstanceUID",
    ] {
        assert!(md.get(key).is_some(), "metadata.{key} missing: {md}");
    }
    assert_eq!(md["KVP"], 120.0);
    assert_eq!(md["PixelSpacing"], "0.8,0.8");
    assert_eq!(md["selected_slice_index"], v["slices"]["centre_index"]);
    assert!(v["curve"]["points"].as_array().unwrap().len() >= 9);
    assert_eq!(v["hu_red_version"], env!("CARGO_PKG_VERSION"));

    let (header, rows) = csv_table(&out.join("hu_red_cirs062.csv"));
    let script_cols = [
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
    ];
    // the script's 23 columns first, in its order: hu-red's CSV is a superset
    assert_eq!(&header[..script_cols.len()], &script_cols[..]);
    for col in [
        "hu_median",
        "n_rois",
        "baseline_hu",
        "delta_hu",
        "tolerance_hu",
        "within_tolerance",
    ] {
        assert!(header.iter().any(|h| h == col), "{col} not in {header:?}");
    }
    assert_eq!(rows.len(), inserts.len());
    let csv_text = std::fs::read_to_string(out.join("hu_red_cirs062.csv")).unwrap();
    assert!(!csv_text.to_lowercase().contains("nan"));
    let hu_col = header.iter().position(|h| h == "hu_mean").unwrap();
    let ins_col = header.iter().position(|h| h == "insert").unwrap();
    for (row, ins) in rows.iter().zip(inserts) {
        assert_eq!(&row[ins_col], ins["insert"].as_str().unwrap());
        let csv_hu: f64 = row[hu_col].parse().unwrap();
        assert!((csv_hu - ins["hu_mean"].as_f64().unwrap()).abs() < 0.001);
    }

    for png in ["hu_red_cirs062_curve.png", "hu_red_cirs062_overlay.png"] {
        let b = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
        assert!(w >= 800, "{png} is {w} px wide");
    }
}

#[test]
fn console_summary_on_stdout_logs_on_stderr() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(tmp.path()),
        "--no-plot",
        "-v",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Phantom:   cirs062"), "{out}");
    assert!(out.contains("Slices:"), "{out}");
    assert!(out.contains("Pose:"), "{out}");
    assert!(out.contains("Baseline comparison: none"), "{out}");
    assert!(out.contains("\nVerdict: NO BASELINE ("), "{out}");
    assert!(!out.contains("Verdict: PASS"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("water ") && l.contains(" ± ")),
        "{out}"
    );
    // -v: info logs on stderr, none on stdout
    assert!(stderr(&o).contains("INFO"), "{}", stderr(&o));
    assert!(!out.contains("INFO"));
    // --no-plot: no curve, and the summary says so
    assert!(!tmp.path().join("hu_red_cirs062_curve.png").exists());
    let (_, v) = read_json(&tmp.path().join("hu_red_cirs062_summary.json"));
    assert!(v["outputs"]["curve_png"].is_null());
    assert!(v["outputs"]["overlay_png"].is_null());
    assert!(v["outputs"]["csv"].is_string());
}

#[test]
fn baseline_from_the_same_run_passes_with_zero_delta() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let base = s.base_out.join("hu_red_cirs062.csv");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(tmp.path()),
        "--baseline",
        p(&base),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let (text, v) = read_json(&tmp.path().join("hu_red_cirs062_summary.json"));
    assert_strict(&text);
    let te = &v["tolerance_evaluation"];
    assert_eq!(te["has_baseline"], true);
    assert_eq!(te["pass"], true);
    assert!((te["pearson_r"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    let per = te["per_insert"].as_array().unwrap();
    assert_eq!(per.len(), 9);
    for c in per {
        for key in [
            "insert",
            "baseline_hu",
            "hu_mean",
            "delta_hu",
            "tolerance_hu",
            "within_tolerance",
        ] {
            assert!(c.get(key).is_some(), "per_insert[].{key} missing: {c}");
        }
        assert!(c["delta_hu"].as_f64().unwrap().abs() <= 0.001, "{c}");
        assert_eq!(c["within_tolerance"], true);
    }
    assert_eq!(per_insert(&v, "water")["tolerance_hu"], 30.0);
    assert_eq!(per_insert(&v, "dense_bone")["tolerance_hu"], 50.0);
    let out = stdout(&o);
    assert!(
        out.contains("Baseline comparison: PASS | Pearson r = 1.00000"),
        "{out}"
    );
}

#[test]
fn water_shifted_35_hu_fails_naming_water_only() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let base = s.base_out.join("hu_red_cirs062.csv");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs_water35),
        "--outdir",
        p(tmp.path()),
        "--baseline",
        p(&base),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let (_, v) = read_json(&tmp.path().join("hu_red_cirs062_summary.json"));
    assert_eq!(v["status"], "ok");
    let te = &v["tolerance_evaluation"];
    assert_eq!(te["pass"], false);
    let failing: Vec<&str> = te["per_insert"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["within_tolerance"] == false)
        .map(|c| c["insert"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["water"]);
    let d = per_insert(&v, "water")["delta_hu"].as_f64().unwrap();
    assert!((d - 35.0).abs() < 3.0, "water ΔHU {d}");
    let out = stdout(&o);
    assert!(
        out.contains("Baseline comparison: FAIL | Pearson r = "),
        "{out}"
    );
    let fail_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(fail_lines.len(), 1, "{out}");
    assert!(
        fail_lines[0].starts_with("- water: ΔHU=3") && fail_lines[0].ends_with("(tol ±30)"),
        "{out}"
    );
    // the CSV says the same
    let (header, rows) = csv_table(&tmp.path().join("hu_red_cirs062.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for r in &rows {
        let expect = if &r[col("insert")] == "water" {
            "false"
        } else {
            "true"
        };
        assert_eq!(&r[col("within_tolerance")], expect, "{r:?}");
    }
}

#[test]
fn baseline_in_the_scripts_csv_format() {
    // tests/fixtures/script_baseline.csv: the script's 23 columns, liver = NaN (unmatched),
    // kernel B30f (the simulation's is STANDARD).
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(tmp.path()),
        "--baseline",
        p(&fixture("script_baseline.csv")),
    ]);
    // liver has no baseline value: it fails, as in the script
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let (_, v) = read_json(&tmp.path().join("hu_red_cirs062_summary.json"));
    let te = &v["tolerance_evaluation"];
    assert_eq!(te["pass"], false);
    assert!(te["baseline_source"]
        .as_str()
        .unwrap()
        .ends_with("script_baseline.csv"));
    assert_eq!(per_insert(&v, "water")["baseline_hu"], 2.1);
    assert_eq!(per_insert(&v, "dense_bone")["baseline_hu"], 982.4);
    let liver = per_insert(&v, "liver");
    assert!(liver["baseline_hu"].is_null());
    assert!(liver["delta_hu"].is_null());
    assert_eq!(liver["within_tolerance"], false);
    let failing: Vec<&str> = te["per_insert"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["within_tolerance"] == false)
        .map(|c| c["insert"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["liver"]);
    // the protocol differs from the baseline's: a warning says so
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("kernel STANDARD (baseline B30f)"),
        "{warnings}"
    );
    // and the scanner: a warning of its own, compared by identity
    assert!(
        warnings.contains("manufacturer hu-red (baseline SIEMENS)"),
        "{warnings}"
    );
    let out = stdout(&o);
    assert!(out.contains("- liver: "), "{out}");
}

#[test]
fn site_config_in_the_scripts_format() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(tmp.path()),
        "--config",
        p(&fixture("script_config.json")),
        "--baseline",
        p(&s.base_out.join("hu_red_cirs062.csv")),
        "--no-plot",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let (_, v) = read_json(&tmp.path().join("hu_red_cirs062_summary.json"));
    // tolerances_hu and the phantom's inserts come from the file
    assert_eq!(per_insert(&v, "water")["tolerance_hu"], 25.0);
    assert_eq!(per_insert(&v, "liver")["tolerance_hu"], 35.0);
    let lung = v["inserts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["insert"] == "lung_inhale")
        .unwrap();
    assert_eq!(lung["red"], 0.195);
    // roi_radius_fraction 0.6 of the 15 mm insert radius
    let r = lung["rois"][0]["roi_radius_mm"].as_f64().unwrap();
    assert!((r - 9.0).abs() < 1e-6, "ROI radius {r}");
}

#[test]
fn catphan_forced_and_easycube_auto() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = tmp.path().join("cat");
    simulate(
        &cat,
        "catphan_ctp404",
        &["--rotation-deg", "-20", "--n-slices", "60"],
    );
    let out = tmp.path().join("out_cat");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&cat),
        "--outdir",
        p(&out),
        "--phantom",
        "catphan_ctp404",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // the family id (simulated as its first variant, forced in analyze): the variant is
    // identified among the Catphans only (so the detection is "forced") and names every output
    let (_, v) = read_json(&out.join("hu_red_catphan_504_summary.json"));
    assert_eq!(v["phantom"]["id"], "catphan_504");
    assert_eq!(v["phantom"]["family"], "catphan_ctp404");
    assert_eq!(v["phantom"]["detection"], "forced");
    assert!(out.join("hu_red_catphan_504.csv").is_file());
    assert!(out.join("hu_red_catphan_504_curve.png").is_file());
    let names: Vec<&str> = v["inserts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["insert"].as_str().unwrap())
        .collect();
    for n in [
        "air",
        "pmp",
        "ldpe",
        "polystyrene",
        "acrylic",
        "delrin",
        "teflon",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }

    let cube = tmp.path().join("cube");
    simulate(
        &cube,
        "easycube",
        &["--rotation-deg", "15", "--n-slices", "20"],
    );
    let out = tmp.path().join("out_cube");
    let o = run(&["analyze", "--dicom", p(&cube), "--outdir", p(&out)]);
    let (_, v) = read_json(&out.join("hu_red_easycube_summary.json"));
    assert_eq!(v["status"], "ok", "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(v["phantom"]["id"], "easycube");
    assert_eq!(v["phantom"]["detection"], "auto");
    // No baseline: every rod is measured (the water rods, with no contrast to the
    // water-equivalent body, where the rod pattern puts them), so the verdict is NO BASELINE
    // with exit 0; never PASS without a baseline.
    let not_measured: Vec<&str> = v["inserts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] != "measured")
        .map(|i| i["insert"].as_str().unwrap())
        .collect();
    assert!(not_measured.is_empty(), "not measured: {not_measured:?}");
    for n in ["lung", "adipose", "water", "muscle", "bone"] {
        assert!(
            v["inserts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["insert"] == n && i["status"] == "measured"),
            "{n} missing: {}",
            v["inserts"]
        );
    }
    assert_eq!(v["absolute_pass"], true, "{}", v["checks"]);
    assert_eq!(v["verdict"], "NO BASELINE");
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("NO BASELINE"), "{}", stdout(&o));

    // a baseline of another phantom: constancy fails and a warning says why
    let out = tmp.path().join("out_cube_vs_cat");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&cube),
        "--outdir",
        p(&out),
        "--no-plot",
        "--baseline",
        p(&tmp.path().join("out_cat/hu_red_catphan_504.csv")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let (_, v) = read_json(&out.join("hu_red_easycube_summary.json"));
    assert_eq!(v["tolerance_evaluation"]["pass"], false);
    assert!(
        v["warnings"]
            .to_string()
            .contains("measured on phantom 'catphan_504'"),
        "{}",
        v["warnings"]
    );
}

/// Without a baseline, an absolute check that fails (a Catphan material outside the
/// manufacturer's window at the kVp the window is given at) is a FAIL: exit 1, named.
#[test]
fn absolute_failure_without_baseline_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = tmp.path().join("cat");
    simulate(
        &cat,
        "catphan_ctp404",
        &[
            "--n-slices",
            "30",
            "--kvp",
            "120",
            "--hu-offset",
            "delrin=60",
        ],
    );
    let out = tmp.path().join("out");
    let o = run(&["analyze", "--dicom", p(&cat), "--outdir", p(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Baseline comparison: none"), "{text}");
    assert!(text.contains("Absolute checks: FAIL"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("- ") && l.contains("delrin")),
        "{text}"
    );
    assert!(text.contains("\nVerdict: FAIL\n"), "{text}");
    let summary = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_summary.json"))
        .expect("a summary JSON");
    let (_, v) = read_json(&summary);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["verdict"], "FAIL");
    assert_eq!(v["absolute_pass"], false);
    assert_eq!(v["tolerance_evaluation"]["has_baseline"], false);
    let delrin = v["inserts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["insert"] == "delrin")
        .unwrap();
    assert_eq!(delrin["within_window"], false, "{delrin}");
    // the CSV says which check failed
    let csv = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .expect("a CSV");
    let (header, rows) = csv_table(&csv);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let row = rows.iter().find(|r| &r[col("insert")] == "delrin").unwrap();
    assert_eq!(&row[col("check")], "FAIL");
    assert!(row[col("check_reason")].contains("window"), "{row:?}");
}

#[test]
fn series_selection_by_uid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("two");
    let uid_a = "2.25.1111";
    let uid_b = "2.25.2222";
    simulate(
        &dir.join("a"),
        "cirs062",
        &["--series-uid", uid_a, "--n-slices", "30", "--seed", "3"],
    );
    simulate(
        &dir.join("b"),
        "cirs062",
        &["--series-uid", uid_b, "--n-slices", "20", "--seed", "4"],
    );
    let out = tmp.path().join("out");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&dir),
        "--outdir",
        p(&out),
        "--series",
        uid_b,
        "--no-plot",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let (_, v) = read_json(&out.join("hu_red_cirs062_summary.json"));
    assert_eq!(v["metadata"]["SeriesInstanceUID"], uid_b);
    // without --series: the series with the most slices, and a warning naming the other
    let out2 = tmp.path().join("out2");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&dir),
        "--outdir",
        p(&out2),
        "--no-plot",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, v) = read_json(&out2.join("hu_red_cirs062_summary.json"));
    assert_eq!(v["metadata"]["SeriesInstanceUID"], uid_a);
    assert!(
        v["warnings"].to_string().contains(uid_b),
        "{}",
        v["warnings"]
    );
    // an unknown UID: exit 2, naming it
    let out3 = tmp.path().join("out3");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&dir),
        "--outdir",
        p(&out3),
        "--series",
        "2.25.999",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(error_line(&o).contains("2.25.999"), "{}", stderr(&o));
}

/// A failed run: exit 2, one error line on stderr containing every `needles`, and the error
/// summary `summary_name` with status "error" carrying the same message.
fn assert_fails(args: &[&str], outdir: &Path, summary_name: &str, needles: &[&str]) -> Value {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "args {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    let line = error_line(&o);
    for n in needles {
        assert!(
            line.to_lowercase().contains(&n.to_lowercase()),
            "'{n}' not in: {line}"
        );
    }
    let (text, v) = read_json(&outdir.join(summary_name));
    assert_strict(&text);
    assert_eq!(v["status"], "error");
    let msg = v["error"].as_str().unwrap();
    assert!(line.ends_with(msg), "{line} vs {msg}");
    for key in [
        "phantom",
        "inserts",
        "tolerance_evaluation",
        "outputs",
        "warnings",
    ] {
        assert!(v.get(key).is_some(), "{key} missing from the error summary");
    }
    assert_eq!(v["inserts"], serde_json::json!([]));
    assert!(v["outputs"]["csv"].is_null());
    // nothing but the summary is written
    let files: Vec<String> = std::fs::read_dir(outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, [summary_name.to_string()], "{files:?}");
    v
}

#[test]
fn empty_folder_exits_2_with_error_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tmp.path().join("out");
    let v = assert_fails(
        &["analyze", "--dicom", p(&empty), "--outdir", p(&out)],
        &out,
        "hu_red_unknown_summary.json",
        &["empty", p(&empty)],
    );
    assert_eq!(v["phantom"]["id"], "unknown");
    assert_eq!(v["phantom"]["detection"], "auto");
}

#[test]
fn only_non_dicom_files_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("notes");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("readme.txt"), "not an image").unwrap();
    std::fs::write(dir.join("scan.dcm"), vec![0u8; 300]).unwrap();
    let out = tmp.path().join("out");
    // a forced phantom names the summary
    let v = assert_fails(
        &[
            "analyze",
            "--dicom",
            p(&dir),
            "--outdir",
            p(&out),
            "--phantom",
            "cirs062",
        ],
        &out,
        "hu_red_cirs062_summary.json",
        &["no DICOM files"],
    );
    assert_eq!(v["phantom"]["id"], "cirs062");
    assert_eq!(v["phantom"]["detection"], "forced");
}

#[test]
fn missing_dicom_path_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_fails(
        &[
            "analyze",
            "--dicom",
            "/nonexistent/series",
            "--outdir",
            p(&out),
        ],
        &out,
        "hu_red_unknown_summary.json",
        &["/nonexistent/series"],
    );
}

#[test]
fn baseline_without_the_needed_columns_exits_2_before_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad_baseline.csv");
    std::fs::write(&bad, "material,mean_hu\nwater,0\n").unwrap();
    let out = tmp.path().join("out");
    // the DICOM path does not even exist: the baseline is checked first
    let v = assert_fails(
        &[
            "analyze",
            "--dicom",
            "/nonexistent",
            "--outdir",
            p(&out),
            "--baseline",
            p(&bad),
        ],
        &out,
        "hu_red_unknown_summary.json",
        &[p(&bad), "'insert' and 'hu_mean'", "'material', 'mean_hu'"],
    );
    assert_eq!(v["tolerance_evaluation"]["has_baseline"], true);
    assert!(v["tolerance_evaluation"]["pass"].is_null());
}

#[test]
fn bad_config_json_exits_2_naming_the_file() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("phantoms.json");
    std::fs::write(&bad, "{\"phantoms\": {\"cirs062\": {\"inserts\": [}}").unwrap();
    let out = tmp.path().join("out");
    assert_fails(
        &[
            "analyze",
            "--dicom",
            p(&s.cirs),
            "--outdir",
            p(&out),
            "--config",
            p(&bad),
        ],
        &out,
        "hu_red_unknown_summary.json",
        &[p(&bad), "not valid JSON"],
    );
    // valid JSON with a wrong key
    std::fs::write(&bad, "{\"tolerance_hu\": {\"water\": 20}}").unwrap();
    let out = tmp.path().join("out2");
    assert_fails(
        &[
            "analyze",
            "--dicom",
            p(&s.cirs),
            "--outdir",
            p(&out),
            "--config",
            p(&bad),
        ],
        &out,
        "hu_red_unknown_summary.json",
        &[p(&bad), "tolerance_hu"],
    );
}

#[test]
fn unknown_phantom_id_exits_2() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_fails(
        &[
            "analyze",
            "--dicom",
            p(&s.cirs),
            "--outdir",
            p(&out),
            "--phantom",
            "gammex467",
        ],
        &out,
        "hu_red_gammex467_summary.json",
        &["gammex467"],
    );
}

#[test]
fn uniform_cylinder_is_never_a_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("uniform");
    simulate(&dir, "cirs062", &["--uniform", "--n-slices", "20"]);
    let out = tmp.path().join("out");
    let v = assert_fails(
        &["analyze", "--dicom", p(&dir), "--outdir", p(&out)],
        &out,
        "hu_red_unknown_summary.json",
        &["no phantom recognised"],
    );
    assert!(v["tolerance_evaluation"]["pass"].is_null());
    // forced, with a baseline: still no pass
    let out = tmp.path().join("out_forced");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&dir),
        "--outdir",
        p(&out),
        "--phantom",
        "cirs062",
        "--baseline",
        p(&fixture("script_baseline.csv")),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn mr_series_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mr");
    simulate(&dir, "cirs062", &["--modality", "MR", "--n-slices", "10"]);
    let out = tmp.path().join("out");
    assert_fails(
        &["analyze", "--dicom", p(&dir), "--outdir", p(&out)],
        &out,
        "hu_red_unknown_summary.json",
        &["no CT image series"],
    );
}

#[test]
fn unwritable_outdir_exits_2_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let o = run(&[
        "analyze",
        "--dicom",
        "/nonexistent",
        "--outdir",
        p(&file.join("sub")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(error_line(&o).contains("output folder"), "{}", stderr(&o));
}

#[test]
fn outdir_is_created_and_bad_slab_is_a_usage_error() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("deep/er/out");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(&out),
        "--no-plot",
        "--slab-mm",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, v) = read_json(&out.join("hu_red_cirs062_summary.json"));
    assert_eq!(v["slices"]["slab_mm"], 3.0);
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(&out),
        "--slab-mm=0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the slab must be > 0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_and_help() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
    let o = run(&["analyze", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for flag in [
        "--dicom",
        "--outdir",
        "--phantom",
        "--config",
        "--baseline",
        "--series",
        "--slab-mm",
        "--no-plot",
        "--debug-overlay",
        "--verbose",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn files_of_an_earlier_run_do_not_survive_as_this_runs_results() {
    let s = shared();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run(&[
        "analyze",
        "--dicom",
        p(&s.cirs),
        "--outdir",
        p(&out),
        "--debug-overlay",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("hu_red_cirs062_overlay.png").is_file());
    // again without the overlay: the old overlay goes
    let o = run(&["analyze", "--dicom", p(&s.cirs), "--outdir", p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!out.join("hu_red_cirs062_overlay.png").exists());
    assert!(out.join("hu_red_cirs062_curve.png").is_file());
    // a failed forced run: the error summary replaces the results of the earlier run
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_fails(
        &[
            "analyze",
            "--dicom",
            p(&empty),
            "--outdir",
            p(&out),
            "--phantom",
            "cirs062",
        ],
        &out,
        "hu_red_cirs062_summary.json",
        &["empty"],
    );
}

#[test]
fn raw_series_without_part10_headers_gives_the_same_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--rotation-deg",
        "8",
        "--n-slices",
        "20",
        "--seed",
        "11",
        "--transfer-syntax",
        "implicit",
    ];
    let p10 = tmp.path().join("p10");
    simulate(&p10, "cirs062", &args);
    let raw = tmp.path().join("raw");
    let mut raw_args = args.to_vec();
    raw_args.push("--no-part10");
    simulate(&raw, "cirs062", &raw_args);
    assert!(raw.join("IM0001").is_file() && !raw.join("0001.dcm").exists());
    let analyse = |dicom: &Path, out: &Path| {
        let o = run(&[
            "analyze",
            "--dicom",
            p(dicom),
            "--outdir",
            p(out),
            "--no-plot",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
        read_json(&out.join("hu_red_cirs062_summary.json")).1
    };
    let a = analyse(&p10, &tmp.path().join("out_p10"));
    let b = analyse(&raw, &tmp.path().join("out_raw"));
    for key in [
        "status",
        "phantom",
        "pose",
        "slices",
        "assignment",
        "absolute_pass",
        "inserts",
        "curve",
        "tolerance_evaluation",
    ] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    let raw_warnings: Vec<&str> = b["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains("no DICOM Part-10 header"))
        .collect();
    assert_eq!(raw_warnings.len(), 1, "{}", b["warnings"]);
    for needle in [
        "20 file(s)",
        "raw implicit VR little endian",
        "IM0001",
        "export settings",
    ] {
        assert!(
            raw_warnings[0].contains(needle),
            "{needle}: {}",
            raw_warnings[0]
        );
    }
    assert!(
        !a["warnings"].to_string().contains("Part-10"),
        "{}",
        a["warnings"]
    );
}
