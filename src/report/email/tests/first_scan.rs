//! Reports without a baseline (a first scan): NO BASELINE saying what was checked, or FAIL
//! naming each absolute check that failed; refused, missing and unassigned holes.

use super::*;

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
