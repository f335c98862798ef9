//! The short human summary printed by `hu-red analyze` (returned as a string: library code does
//! not print).

use super::summary::{material_check, MaterialCheck};
use super::{RunVerdict, Status, Summary};
use crate::analysis::{Detection, MaterialStatus};
use std::fmt::Write;

fn signed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        // no "-0.0": a value that rounds to zero is shown as +0.0
        let unit = 10f64.powi(decimals as i32);
        let v = if (v * unit).round() == 0.0 { 0.0 } else { v };
        format!("{v:+.decimals$}")
    } else {
        "—".to_string()
    }
}

fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "—".to_string()
    }
}

/// A tolerance as the script prints it: `30`, `42.5`.
fn tol(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Pad `s` to `w` characters (by char count, so "Δ" and "—" line up).
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
    let r = ev
        .pearson_r
        .filter(|r| r.is_finite())
        .map(|r| format!("{r:.5}"))
        .unwrap_or_else(|| "n/a".to_string());
    let word = match ev.pass {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "NOT EVALUATED",
    };
    let mut out = vec![format!("Baseline comparison: {word} | Pearson r = {r}")];
    for c in ev.per_insert.iter().filter(|c| !c.within_tolerance) {
        let line = match c.delta_hu.filter(|d| d.is_finite()) {
            Some(d) => format!("- {}: ΔHU={d:.1} (tol ±{})", c.insert, tol(c.tolerance_hu)),
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
                fixed(u.center_x_mm, 1),
                fixed(u.center_y_mm, 1),
                fixed(u.hu_mean, 1),
                fixed(u.hu_std, 1),
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
    let md = &summary.metadata;
    let mut series = Vec::new();
    if let Some(d) = md.series_description.as_deref().filter(|d| !d.is_empty()) {
        series.push(format!("\"{d}\""));
    }
    if let Some(kv) = md.kvp {
        series.push(format!("{kv} kV"));
    }
    if let Some(k) = md
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
        series.push(format!("pixel {:.3} mm", ps[1]));
    }
    if let Some(t) = md.slice_thickness {
        series.push(format!("slice {t} mm"));
    }
    writeln!(s, "Series:    {}", series.join(" · "))?;
    let ph = &summary.phantom;
    let how = match ph.detection {
        Detection::Auto => "auto-detected",
        Detection::Forced => "forced",
    };
    let conf = ph
        .confidence
        .map(|c| format!(", confidence {c:.2}"))
        .unwrap_or_default();
    writeln!(
        s,
        "Phantom:   {} ({}) — {how}{conf}",
        ph.id,
        ph.name.as_deref().unwrap_or("?")
    )?;
    if let Some(sl) = &summary.slices {
        let range = match (sl.indices.first(), sl.indices.last()) {
            (Some(a), Some(b)) if a != b => format!("indices {a}–{b}"),
            (Some(a), _) => format!("index {a}"),
            _ => "none".to_string(),
        };
        let z = match (sl.z_mm.first(), sl.z_mm.last()) {
            (Some(a), Some(b)) => format!(", z {a:.1} … {b:.1} mm"),
            _ => String::new(),
        };
        writeln!(
            s,
            "Slices:    {range} ({} slice{}{z}; slab {} mm), centre index {}",
            sl.indices.len(),
            if sl.indices.len() == 1 { "" } else { "s" },
            tol(sl.slab_mm),
            sl.centre_index
        )?;
    }
    if let Some(p) = &summary.pose {
        writeln!(
            s,
            "Pose:      centre x {} mm, y {} mm; rotation {}°",
            signed(p.centre_x_mm, 1),
            signed(p.centre_y_mm, 1),
            signed(p.rotation_deg, 1)
        )?;
    }
    if let Some(a) = summary.assignment {
        let text = match a {
            crate::analysis::AssignmentMethod::Layout => "by the phantom's layout",
            crate::analysis::AssignmentMethod::Reassigned => {
                "REASSIGNED by measured HU (the layout did not fit)"
            }
            crate::analysis::AssignmentMethod::Detection => "detected rods, assigned by HU",
            crate::analysis::AssignmentMethod::ByHu => {
                "no layout: every plug assigned by HU (give the layout in the site phantom file)"
            }
        };
        writeln!(s, "Materials: {text}")?;
    }
    writeln!(s)?;
    write_table(s, summary)?;
    writeln!(s)?;
    for line in verdict_lines(summary) {
        writeln!(s, "{line}")?;
    }
    for line in absolute_lines(summary) {
        writeln!(s, "{line}")?;
    }
    let outside: Vec<String> = summary
        .inserts
        .iter()
        .filter(|m| m.within_window == Some(false))
        .map(|m| match m.hu_window {
            Some([lo, hi]) => format!("{} {} HU (window {lo}…{hi})", m.insert, fixed(m.hu_mean, 1)),
            None => m.insert.clone(),
        })
        .collect();
    if summary.inserts.iter().any(|m| m.within_window.is_some()) {
        if outside.is_empty() {
            writeln!(s, "Manufacturer HU windows: all within")?;
        } else {
            writeln!(
                s,
                "Manufacturer HU windows: OUTSIDE for {}",
                outside.join("; ")
            )?;
        }
    }
    write_warnings(s, summary)?;
    write_outputs(s, summary)
}

fn write_table(s: &mut String, summary: &Summary) -> std::fmt::Result {
    let ev = &summary.tolerance_evaluation;
    let with_baseline = ev.has_baseline;
    let with_window = summary.inserts.iter().any(|m| m.hu_window.is_some());
    let name_w = summary
        .inserts
        .iter()
        .map(|m| m.insert.chars().count())
        .chain(ev.per_insert.iter().map(|c| c.insert.chars().count()))
        .chain([6])
        .max()
        .unwrap_or(6);
    let mut header = format!(
        "{}  {}  {}  {}  {}",
        pad("insert", name_w, false),
        pad("RED", 6, true),
        pad("HU mean ± std", 17, true),
        pad("ROIs", 4, true),
        pad("pixels", 6, true)
    );
    if with_baseline {
        header += &format!(
            "  {}  {}  {}  {}  {}",
            pad("baseline", 8, true),
            pad("ΔHU", 7, true),
            pad("tol", 4, true),
            pad("ΔRED%", 6, true),
            pad("verdict", 7, false)
        );
    }
    if with_window {
        header += &format!("  {}", pad("manufacturer window", 27, false));
    }
    header += "  check";
    writeln!(s, "{}", header.trim_end())?;
    for m in &summary.inserts {
        let red = m
            .red
            .map(|r| format!("{r:.3}"))
            .unwrap_or_else(|| "—".into());
        let check = material_check(m);
        let hu = if m.hu_mean.is_finite() && m.status == MaterialStatus::Measured {
            format!("{:.1} ± {:.1}", m.hu_mean, m.hu_std)
        } else if check == MaterialCheck::NotPresent {
            "not present".to_string()
        } else {
            "not measured".to_string()
        };
        let mut line = format!(
            "{}  {}  {}  {}  {}",
            pad(&m.insert, name_w, false),
            pad(&red, 6, true),
            pad(&hu, 17, true),
            pad(&m.n_rois.to_string(), 4, true),
            pad(&m.n_pixels.to_string(), 6, true)
        );
        if with_baseline {
            let c = ev.per_insert.iter().find(|c| c.insert == m.insert);
            let (b, d, t, r, v) = match c {
                Some(c) => (
                    c.baseline_hu.map(|b| fixed(b, 1)).unwrap_or("—".into()),
                    c.delta_hu.map(|d| signed(d, 1)).unwrap_or("—".into()),
                    format!("±{}", tol(c.tolerance_hu)),
                    c.delta_red_percent
                        .map(|r| signed(r, 2))
                        .unwrap_or("—".into()),
                    if c.within_tolerance { "pass" } else { "FAIL" }.to_string(),
                ),
                None => (
                    "—".into(),
                    "—".into(),
                    "".into(),
                    "—".into(),
                    "not in baseline".into(),
                ),
            };
            line += &format!(
                "  {}  {}  {}  {}  {}",
                pad(&b, 8, true),
                pad(&d, 7, true),
                pad(&t, 4, true),
                pad(&r, 6, true),
                pad(&v, 7, false)
            );
        }
        if with_window {
            let w = match (m.hu_window, m.within_window) {
                (Some([lo, hi]), Some(ok)) => {
                    format!("{:<4} {lo} … {hi}", if ok { "ok" } else { "OUT" })
                }
                // given at another kVp: information only
                (Some([lo, hi]), None) => match m.window_kvp.filter(|k| k.is_finite()) {
                    Some(k) => format!("info {lo} … {hi} @{} kV", tol(k)),
                    None => format!("info {lo} … {hi}"),
                },
                _ => String::new(),
            };
            line += &format!("  {}", pad(&w, 27, false));
        }
        let check = match check {
            MaterialCheck::Pass => "ok".to_string(),
            MaterialCheck::NotPresent => "not present (optional)".to_string(),
            MaterialCheck::Fail(why) => format!("FAIL: {why}"),
        };
        line += &format!("  {check}");
        writeln!(s, "{}", line.trim_end())?;
    }
    if with_baseline {
        // baseline inserts this run has no material for (they fail)
        for c in ev
            .per_insert
            .iter()
            .filter(|c| !summary.inserts.iter().any(|m| m.insert == c.insert))
        {
            writeln!(
                s,
                "{}  {}  {}  {}  {}  {}  {}  {}  {}  {}",
                pad(&c.insert, name_w, false),
                pad("—", 6, true),
                pad("not measured", 17, true),
                pad("0", 4, true),
                pad("—", 6, true),
                pad(
                    &c.baseline_hu.map(|b| fixed(b, 1)).unwrap_or("—".into()),
                    8,
                    true
                ),
                pad("—", 7, true),
                pad(&format!("±{}", tol(c.tolerance_hu)), 4, true),
                pad("—", 6, true),
                if c.within_tolerance { "pass" } else { "FAIL" }
            )?;
        }
    }
    Ok(())
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
