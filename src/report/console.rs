//! The short human summary printed by `hu-red analyze` (returned as a string: library code does
//! not print).

use super::format::{fixed, plural, signed, tol, window, MISSING};
use super::summary::{material_check, MaterialCheck, Metadata, PhantomSummary};
use super::{RunVerdict, Status, Summary};
use crate::analysis::{
    AssignmentMethod, Detection, InsertConstancy, MaterialResult, MaterialStatus, SlicesUsed,
};
use std::fmt::Write;

/// Pad `s` to `w` characters (by char count, so "Δ", "±" and "–" line up).
fn pad(s: &str, w: usize, right: bool) -> String {
    let n = s.chars().count();
    let fill = " ".repeat(w.saturating_sub(n));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// The verdict line(s) in the script's words: `Baseline comparison: PASS | Pearson r = 0.99987`,
/// or FAIL followed by one `- insert: ΔHU=35.2 (tol ±30)` line per failing insert.
pub fn verdict_lines(summary: &Summary) -> Vec<String> {
    let ev = &summary.tolerance_evaluation;
    if !ev.has_baseline {
        return vec!["Baseline comparison: none (no baseline given)".to_string()];
    }
    let r = fixed(ev.pearson_r, 5);
    let word = match ev.pass {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "NOT EVALUATED",
    };
    let mut out = vec![format!("Baseline comparison: {word} | Pearson r = {r}")];
    for c in ev.per_insert.iter().filter(|c| !c.within_tolerance) {
        let line = match c.delta_hu.filter(|d| d.is_finite()) {
            Some(d) => format!(
                "- {}: ΔHU={} (tol ±{})",
                c.insert,
                fixed(Some(d), 1),
                tol(c.tolerance_hu)
            ),
            None => format!(
                "- {}: {} (tol ±{})",
                c.insert,
                c.note.as_deref().unwrap_or("no value to compare"),
                tol(c.tolerance_hu)
            ),
        };
        out.push(line);
    }
    out
}

/// The absolute checks and the run's verdict: `Absolute checks: PASS (checked: …)` or `FAIL`
/// followed by one `- failure` line each, the information lines, the holes not in the phantom
/// definition, then `Verdict: PASS | FAIL | NO BASELINE`.
pub fn absolute_lines(summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if summary.status == Status::Error {
        return out;
    }
    let checked = summary
        .checks
        .as_ref()
        .map(|c| c.checked.join("; "))
        .unwrap_or_default();
    let failures = summary.absolute_failures();
    if failures.is_empty() {
        out.push(if checked.is_empty() {
            "Absolute checks: none failed (the analysis recorded no check it could make)"
                .to_string()
        } else {
            format!("Absolute checks: PASS (checked: {checked})")
        });
    } else {
        out.push(if checked.is_empty() {
            "Absolute checks: FAIL".to_string()
        } else {
            format!("Absolute checks: FAIL (checked: {checked})")
        });
        out.extend(failures.iter().map(|f| format!("- {f}")));
    }
    let info = summary.info_lines(true);
    if !info.is_empty() {
        out.push("Information (fails nothing):".to_string());
        out.extend(info.iter().map(|i| format!("  - {i}")));
    }
    if !summary.unassigned.is_empty() {
        out.push("Holes not in the phantom definition (information, fails nothing):".to_string());
        for u in &summary.unassigned {
            let ring = u
                .ring
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let layout = u
                .layout_material
                .as_deref()
                .map(|m| format!(", layout: {m}"))
                .unwrap_or_default();
            out.push(format!(
                "  - {}{ring} at x {} mm, y {} mm: {} ± {} HU ({} px{layout}): {}",
                u.hole,
                fixed(Some(u.center_x_mm), 1),
                fixed(Some(u.center_y_mm), 1),
                fixed(Some(u.hu_mean), 1),
                fixed(Some(u.hu_std), 1),
                u.n_pixels,
                u.note
            ));
        }
    }
    out.push(match summary.verdict {
        RunVerdict::NoBaseline => "Verdict: NO BASELINE (no absolute check failed; constancy \
                                   needs a baseline: --baseline FILE, e.g. this run's CSV)"
            .to_string(),
        v => format!("Verdict: {}", v.label()),
    });
    out
}

/// The console summary of a run.
pub fn console_summary(summary: &Summary) -> String {
    let mut s = String::new();
    let _ = write_summary(&mut s, summary);
    s
}

/// The whole summary: the header lines, the table, the verdicts, the windows, the warnings and
/// the files (an error summary: the error, the warnings and the files).
fn write_summary(s: &mut String, summary: &Summary) -> std::fmt::Result {
    if summary.status == Status::Error {
        writeln!(
            s,
            "Analysis failed: {}",
            summary.error.as_deref().unwrap_or("unknown error")
        )?;
        write_warnings(s, summary)?;
        return write_outputs(s, summary);
    }
    write_header(s, summary)?;
    writeln!(s)?;
    write_table(s, summary)?;
    writeln!(s)?;
    for line in verdict_lines(summary)
        .into_iter()
        .chain(absolute_lines(summary))
    {
        writeln!(s, "{line}")?;
    }
    if let Some(line) = windows_line(summary) {
        writeln!(s, "{line}")?;
    }
    write_warnings(s, summary)?;
    write_outputs(s, summary)
}

/// The lines above the table: series, phantom, slices, pose and how the materials were
/// assigned (each only when known).
fn write_header(s: &mut String, summary: &Summary) -> std::fmt::Result {
    writeln!(s, "Series:    {}", series_text(&summary.metadata))?;
    writeln!(s, "Phantom:   {}", phantom_text(&summary.phantom))?;
    if let Some(sl) = &summary.slices {
        writeln!(s, "Slices:    {}", slices_text(sl))?;
    }
    if let Some(p) = &summary.pose {
        writeln!(
            s,
            "Pose:      centre x {} mm, y {} mm; rotation {}°",
            signed(Some(p.centre_x_mm), 1),
            signed(Some(p.centre_y_mm), 1),
            signed(Some(p.rotation_deg), 1)
        )?;
    }
    if let Some(a) = summary.assignment {
        writeln!(s, "Materials: {}", assignment_text(a))?;
    }
    Ok(())
}

/// The series in one line: `"description" · 120 kV · kernel B30f · 64 slices 512×512 · pixel
/// 0.488 mm · slice 2 mm` (what is known of it).
fn series_text(md: &Metadata) -> String {
    let mut series = Vec::new();
    if let Some(d) = md
        .acquisition
        .series_description
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        series.push(format!("\"{d}\""));
    }
    if let Some(kv) = md.acquisition.kvp {
        series.push(format!("{} kV", tol(kv)));
    }
    if let Some(k) = md
        .acquisition
        .reconstruction_kernel
        .as_deref()
        .filter(|k| !k.is_empty())
    {
        series.push(format!("kernel {k}"));
    }
    if let (Some(n), Some(r), Some(c)) = (md.n_slices, md.rows, md.columns) {
        series.push(format!("{n} slices {c}×{r}"));
    }
    if let Some(ps) = md.pixel_spacing_mm {
        series.push(format!("pixel {} mm", fixed(Some(ps[1]), 3)));
    }
    if let Some(t) = md.acquisition.slice_thickness {
        series.push(format!("slice {} mm", tol(t)));
    }
    series.join(" · ")
}

/// `cirs062 (CIRS 062M) — auto-detected, confidence 0.93`.
fn phantom_text(ph: &PhantomSummary) -> String {
    let how = match ph.detection {
        Detection::Auto => "auto-detected",
        Detection::Forced => "forced",
    };
    let conf = ph
        .confidence
        .map(|c| format!(", confidence {}", fixed(Some(c), 2)))
        .unwrap_or_default();
    format!(
        "{} ({}) — {how}{conf}",
        ph.id,
        ph.name.as_deref().unwrap_or("?")
    )
}

/// `indices 31–33 (3 slices, z -2.5 … 2.5 mm; slab 5 mm), centre index 32`.
fn slices_text(sl: &SlicesUsed) -> String {
    let range = match (sl.indices.first(), sl.indices.last()) {
        (Some(a), Some(b)) if a != b => format!("indices {a}–{b}"),
        (Some(a), _) => format!("index {a}"),
        _ => "none".to_string(),
    };
    let z = match (sl.z_mm.first(), sl.z_mm.last()) {
        (Some(a), Some(b)) => format!(", z {} … {} mm", fixed(Some(*a), 1), fixed(Some(*b), 1)),
        _ => String::new(),
    };
    format!(
        "{range} ({} slice{}{z}; slab {} mm), centre index {}",
        sl.indices.len(),
        plural(sl.indices.len()),
        tol(sl.slab_mm),
        sl.centre_index
    )
}

/// How the materials were assigned to the holes, in words.
fn assignment_text(a: AssignmentMethod) -> &'static str {
    match a {
        AssignmentMethod::Layout => "by the phantom's layout",
        AssignmentMethod::Reassigned => "REASSIGNED by measured HU (the layout did not fit)",
        AssignmentMethod::Detection => "detected rods, assigned by HU",
        AssignmentMethod::ByHu => {
            "no layout: every plug assigned by HU (give the layout in the site phantom file)"
        }
    }
}

/// `Manufacturer HU windows: all within` or `… OUTSIDE for water 35.0 HU (window -7…7)`;
/// `None` when no window applies at this scan's kVp.
fn windows_line(summary: &Summary) -> Option<String> {
    if !summary.inserts.iter().any(|m| m.within_window.is_some()) {
        return None;
    }
    let outside: Vec<String> = summary
        .inserts
        .iter()
        .filter(|m| m.within_window == Some(false))
        .map(|m| match m.hu_window {
            Some([lo, hi]) => format!(
                "{} {} HU (window {}…{})",
                m.insert,
                fixed(Some(m.hu_mean), 1),
                tol(lo),
                tol(hi)
            ),
            None => m.insert.clone(),
        })
        .collect();
    Some(if outside.is_empty() {
        "Manufacturer HU windows: all within".to_string()
    } else {
        format!(
            "Manufacturer HU windows: OUTSIDE for {}",
            outside.join("; ")
        )
    })
}

/// Which columns the table has.
#[derive(Clone, Copy)]
struct Columns {
    /// Width of the insert column.
    name_w: usize,
    /// Baseline, ΔHU, tol, ΔRED% and verdict (a baseline was given).
    baseline: bool,
    /// The manufacturer window (a material has one).
    window: bool,
}

/// The table: a header, one row per material, then one per baseline insert this run has no
/// material for.
fn write_table(s: &mut String, summary: &Summary) -> std::fmt::Result {
    let ev = &summary.tolerance_evaluation;
    let cols = Columns {
        name_w: summary
            .inserts
            .iter()
            .map(|m| m.insert.chars().count())
            .chain(ev.per_insert.iter().map(|c| c.insert.chars().count()))
            .chain([6])
            .max()
            .unwrap_or(6),
        baseline: ev.has_baseline,
        window: summary.inserts.iter().any(|m| m.hu_window.is_some()),
    };
    writeln!(s, "{}", table_header(cols).trim_end())?;
    for m in &summary.inserts {
        let c = ev.per_insert.iter().find(|c| c.insert == m.insert);
        writeln!(s, "{}", material_row(m, c, cols).trim_end())?;
    }
    if cols.baseline {
        // baseline inserts this run has no material for (they fail)
        for c in ev
            .per_insert
            .iter()
            .filter(|c| !summary.inserts.iter().any(|m| m.insert == c.insert))
        {
            writeln!(s, "{}", unmeasured_baseline_row(c, cols.name_w))?;
        }
    }
    Ok(())
}

/// The table's header line (not trimmed).
fn table_header(cols: Columns) -> String {
    let mut header = format!(
        "{}  {}  {}  {}  {}",
        pad("insert", cols.name_w, false),
        pad("RED", 6, true),
        pad("HU mean ± std", 17, true),
        pad("ROIs", 4, true),
        pad("pixels", 6, true)
    );
    if cols.baseline {
        header += &format!(
            "  {}  {}  {}  {}  {}",
            pad("baseline", 8, true),
            pad("ΔHU", 7, true),
            pad("tol", 4, true),
            pad("ΔRED%", 6, true),
            pad("verdict", 7, false)
        );
    }
    if cols.window {
        header += &format!("  {}", pad("manufacturer window", 27, false));
    }
    header + "  check"
}

/// A material's row (not trimmed): measured values, its constancy `c` when a baseline was
/// given, its manufacturer window and its absolute check.
fn material_row(m: &MaterialResult, c: Option<&InsertConstancy>, cols: Columns) -> String {
    let check = material_check(m);
    let hu = if m.hu_mean.is_finite() && m.status == MaterialStatus::Measured {
        format!(
            "{} ± {}",
            fixed(Some(m.hu_mean), 1),
            fixed(Some(m.hu_std), 1)
        )
    } else if check == MaterialCheck::NotPresent {
        "not present".to_string()
    } else {
        "not measured".to_string()
    };
    let mut line = format!(
        "{}  {}  {}  {}  {}",
        pad(&m.insert, cols.name_w, false),
        pad(&fixed(m.red, 3), 6, true),
        pad(&hu, 17, true),
        pad(&m.n_rois.to_string(), 4, true),
        pad(&m.n_pixels.to_string(), 6, true)
    );
    if cols.baseline {
        line += &constancy_cells(c);
    }
    if cols.window {
        line += &format!("  {}", pad(&window_cell(m), 27, false));
    }
    let check = match check {
        MaterialCheck::Pass => "ok".to_string(),
        MaterialCheck::NotPresent => "not present (optional)".to_string(),
        MaterialCheck::Fail(why) => format!("FAIL: {why}"),
    };
    line + &format!("  {check}")
}

/// A material's constancy columns: baseline, ΔHU, tol, ΔRED% and verdict (`not in baseline`
/// without an entry in the baseline).
fn constancy_cells(c: Option<&InsertConstancy>) -> String {
    let (b, d, t, r, v) = match c {
        Some(c) => (
            fixed(c.baseline_hu, 1),
            signed(c.delta_hu, 1),
            format!("±{}", tol(c.tolerance_hu)),
            signed(c.delta_red_percent, 2),
            if c.within_tolerance { "pass" } else { "FAIL" },
        ),
        None => (
            MISSING.into(),
            MISSING.into(),
            String::new(),
            MISSING.into(),
            "not in baseline",
        ),
    };
    format!(
        "  {}  {}  {}  {}  {}",
        pad(&b, 8, true),
        pad(&d, 7, true),
        pad(&t, 4, true),
        pad(&r, 6, true),
        pad(v, 7, false)
    )
}

/// The manufacturer window column: `ok -10 … 10`, `OUT  -10 … 10`, or `info -10 … 10 @120 kV`
/// for a window given at another kVp (information only); empty without a window.
fn window_cell(m: &MaterialResult) -> String {
    match (m.hu_window, m.within_window) {
        (Some(w), Some(ok)) => {
            format!("{:<4} {}", if ok { "ok" } else { "OUT" }, window(w))
        }
        // given at another kVp: information only
        (Some(w), None) => match m.window_kvp.filter(|k| k.is_finite()) {
            Some(k) => format!("info {} @{} kV", window(w), tol(k)),
            None => format!("info {}", window(w)),
        },
        _ => String::new(),
    }
}

/// The row of a baseline insert this run has no material for: not measured, and its verdict.
fn unmeasured_baseline_row(c: &InsertConstancy, name_w: usize) -> String {
    format!(
        "{}  {}  {}  {}  {}  {}  {}  {}  {}  {}",
        pad(&c.insert, name_w, false),
        pad(MISSING, 6, true),
        pad("not measured", 17, true),
        pad("0", 4, true),
        pad(MISSING, 6, true),
        pad(&fixed(c.baseline_hu, 1), 8, true),
        pad(MISSING, 7, true),
        pad(&format!("±{}", tol(c.tolerance_hu)), 4, true),
        pad(MISSING, 6, true),
        if c.within_tolerance { "pass" } else { "FAIL" }
    )
}

fn write_warnings(s: &mut String, summary: &Summary) -> std::fmt::Result {
    if !summary.warnings.is_empty() {
        writeln!(s, "Warnings:")?;
        for w in &summary.warnings {
            writeln!(s, "  - {w}")?;
        }
    }
    Ok(())
}

fn write_outputs(s: &mut String, summary: &Summary) -> std::fmt::Result {
    let o = &summary.outputs;
    let files: Vec<&String> = [&o.csv, &o.summary_json, &o.curve_png, &o.overlay_png]
        .into_iter()
        .flatten()
        .collect();
    if !files.is_empty() {
        writeln!(s, "Files:")?;
        for f in files {
            writeln!(s, "  {f}")?;
        }
    }
    Ok(())
}
