//! The subject line: a contract with users' mail filters.

use super::*;

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
