//! How values are written in the reports: numbers with a fixed number of decimals, signed
//! differences, tolerances as a configuration writes them, the missing-value mark, DICOM dates
//! and times, plurals, and free text made safe for one line. Pure string helpers, no I/O.
//!
//! For people (console, email, plots, CLI tables): a missing or non-finite value is [`MISSING`]
//! and a value that rounds to zero is never shown as `-0.0`. For programs (the CSV, which is
//! also a baseline file): the `cell_*` functions, where a missing value is an empty cell.

/// What a missing or non-finite number is shown as (never `NaN`).
pub(crate) const MISSING: &str = "–";

/// A value on one line: control characters (CR, LF, tab, …) and runs of white space become
/// one space; trimmed.
pub(crate) fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `""` for one, `"s"` otherwise.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `v` with `decimals` decimals, `–` when missing or not finite.
pub(crate) fn fixed(v: Option<f64>, decimals: usize) -> String {
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
pub(crate) fn signed(v: Option<f64>, decimals: usize) -> String {
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
pub(crate) fn tol(v: f64) -> String {
    if !v.is_finite() {
        MISSING.to_string()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// An HU window or band as a configuration writes it: `-10 … 10`.
pub(crate) fn window(w: [f64; 2]) -> String {
    format!("{} … {}", tol(w[0]), tol(w[1]))
}

/// A DICOM date (DA) `20261125` as `2026-11-25`; `None` when it is not eight digits.
pub(crate) fn iso_date(da: &str) -> Option<String> {
    let d = da.trim();
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

/// `20261125` → `2026-11-25` (anything else as given).
pub(crate) fn dicom_date(s: &str) -> String {
    let s = one_line(s);
    iso_date(&s).unwrap_or(s)
}

/// `102233.123` → `10:22:33` (anything else as given).
pub(crate) fn dicom_time(s: &str) -> String {
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

/// `YYYY-MM-DD` → `MM-DD` (anything else as given), where the year is clear from the context
/// (the trend plot's ticks).
pub(crate) fn month_day(date: &str) -> &str {
    let b = date.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        &date[5..]
    } else {
        date
    }
}

/// A CSV cell: `v` with `decimals` decimals, empty when missing or not finite. Written as
/// Rust formats it (a program reads it back: no `–`, no rounding away of `-0`).
pub(crate) fn cell_fixed(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.decimals$}"))
        .unwrap_or_default()
}

/// A CSV cell: `v` in Rust's shortest round-trip form (`120`, `0.5`, `1.069`), empty when
/// missing or not finite.
pub(crate) fn cell_shortest(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// A CSV cell: `true` or `false`, empty when unknown.
pub(crate) fn cell_flag(v: Option<bool>) -> String {
    v.map(|b| b.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(iso_date(" 20240229 ").as_deref(), Some("2024-02-29"));
        assert_eq!(iso_date("2024022"), None);
        assert_eq!(dicom_time("0930"), "09:30");
        assert_eq!(dicom_time("102233.500"), "10:22:33");
        assert_eq!(one_line(" a\r\n\tb  c "), "a b c");
    }

    #[test]
    fn missing_and_negative_zero_for_people() {
        assert_eq!(fixed(Some(-0.04), 1), "0.0");
        assert_eq!(fixed(Some(-0.4), 0), "0");
        assert_eq!(fixed(Some(-0.06), 1), "-0.1");
        assert_eq!(fixed(None, 3), MISSING);
        assert_eq!(fixed(Some(f64::INFINITY), 1), MISSING);
        assert_eq!(signed(Some(f64::NAN), 2), MISSING);
        assert_eq!(signed(Some(0.0), 2), "+0.00");
        assert_eq!(tol(f64::NAN), MISSING);
        assert_eq!(tol(-7.0), "-7");
        assert_eq!(window([-1046.0, -986.0]), "-1046 … -986");
        assert_eq!(window([0.5, f64::NAN]), "0.5 … –");
        assert_eq!(MISSING, "\u{2013}", "an en dash, the same in every report");
    }

    #[test]
    fn dates_for_people() {
        assert_eq!(dicom_date(" 20261125\n"), "2026-11-25");
        assert_eq!(dicom_date("2026112"), "2026112");
        assert_eq!(dicom_date(""), "");
        assert_eq!(month_day("2026-11-25"), "11-25");
        assert_eq!(month_day("20261125"), "20261125");
        assert_eq!(month_day("this run"), "this run");
        assert_eq!(dicom_time("1022"), "10:22");
        assert_eq!(dicom_time("10:22"), "10:22");
    }

    #[test]
    fn csv_cells_for_programs() {
        assert_eq!(cell_fixed(Some(35.0), 3), "35.000");
        assert_eq!(cell_fixed(Some(-0.0001), 3), "-0.000");
        assert_eq!(cell_fixed(Some(f64::NAN), 3), "");
        assert_eq!(cell_fixed(None, 2), "");
        assert_eq!(cell_shortest(Some(120.0)), "120");
        assert_eq!(cell_shortest(Some(1.069)), "1.069");
        assert_eq!(cell_shortest(Some(f64::NEG_INFINITY)), "");
        assert_eq!(cell_shortest(None), "");
        assert_eq!(cell_flag(Some(false)), "false");
        assert_eq!(cell_flag(None), "");
    }
}
