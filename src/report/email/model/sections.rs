//! The titled sections of the report, one builder per section: what the absolute checks did,
//! the holes not in the phantom definition, what went wrong / was seen / to check (ERROR
//! reports), the baseline, the scanner and series, the phantom (pose, slices), the warnings
//! and the attachments.

use crate::analysis::{Detection, SlicesUsed, UnassignedHole};
use crate::report::email::{ReportData, ReportKind};
use crate::report::format::{
    dicom_date, dicom_time, fixed, one_line, plural, signed, tol, MISSING,
};
use crate::report::{finite, Summary, UNKNOWN_PHANTOM};

/// What a section holds.
pub(in crate::report::email) enum Body {
    /// `key: value` lines.
    Fields(Vec<(&'static str, String)>),
    /// A bullet list.
    Bullets(Vec<String>),
    /// Paragraphs.
    Paragraphs(Vec<String>),
}

/// A titled part of the report.
pub(in crate::report::email) struct Section {
    pub(in crate::report::email) title: &'static str,
    pub(in crate::report::email) body: Body,
}

/// Why the series could not be analysed, on one line.
pub(super) fn error_text(s: &Summary) -> String {
    s.error
        .as_deref()
        .map(one_line)
        .unwrap_or_else(|| "unknown error".to_string())
}

/// What the absolute checks did (checked, failed, information), then the holes not in the
/// phantom definition when there are any.
pub(super) fn absolute_checks(
    s: &Summary,
    checked: &[String],
    failures: &[String],
) -> Vec<Section> {
    let mut lines = Vec::new();
    lines.push(if checked.is_empty() {
        "Checked: none recorded by the analysis".to_string()
    } else {
        format!("Checked: {}", checked.join("; "))
    });
    for f in failures {
        lines.push(format!("FAIL: {f}"));
    }
    // the unassigned holes have their own section below
    for i in s.info_lines(true) {
        lines.push(format!("Information: {}", one_line(&i)));
    }
    let mut sections = vec![Section {
        title: "Absolute checks",
        body: Body::Bullets(lines),
    }];
    if !s.unassigned.is_empty() {
        sections.push(Section {
            title: "Holes not in the phantom definition",
            body: Body::Bullets(s.unassigned.iter().map(unassigned_line).collect()),
        });
    }
    sections
}

/// One hole whose content fits no material: hole, position, HU ± SD, note.
fn unassigned_line(u: &UnassignedHole) -> String {
    let ring = u
        .ring
        .as_deref()
        .map(one_line)
        .filter(|r| !r.is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let layout = u
        .layout_material
        .as_deref()
        .map(one_line)
        .filter(|m| !m.is_empty())
        .map(|m| format!(", the layout's {m}"))
        .unwrap_or_default();
    let note = one_line(&u.note);
    let note = if note.is_empty() {
        "not in the phantom definition".to_string()
    } else {
        note
    };
    format!(
        "{}{ring} at x {} mm, y {} mm: {} ± {} HU ({} pixels{layout}): {note} (information \
         only: fails nothing, pooled into no material)",
        one_line(&u.hole),
        fixed(Some(u.center_x_mm), 1),
        fixed(Some(u.center_y_mm), 1),
        fixed(Some(u.hu_mean), 1),
        fixed(Some(u.hu_std), 1),
        u.n_pixels
    )
}

/// An ERROR report's sections: what went wrong, what was seen, what to check.
pub(super) fn error(d: &ReportData) -> Vec<Section> {
    let mut sections = vec![
        Section {
            title: "What went wrong",
            body: Body::Paragraphs(vec![error_text(d.summary)]),
        },
        Section {
            title: "What was seen",
            body: Body::Fields(seen_fields(d.summary)),
        },
    ];
    if !d.hints.is_empty() {
        sections.push(Section {
            title: "What to check",
            body: Body::Bullets(d.hints.iter().map(|h| one_line(h)).collect()),
        });
    }
    sections
}

/// What was known of a series that could not be analysed: the series, its images, the
/// phantom candidates.
fn seen_fields(s: &Summary) -> Vec<(&'static str, String)> {
    let md = &s.metadata;
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    push_opt(
        &mut seen,
        "Series",
        md.acquisition.series_description.as_deref(),
    );
    push_opt(&mut seen, "Station", md.acquisition.station_name.as_deref());
    push_opt(&mut seen, "Modality", md.modality.as_deref());
    seen.push((
        "Slices",
        md.n_slices
            .map(|n| n.to_string())
            .unwrap_or_else(|| MISSING.to_string()),
    ));
    if let (Some(r), Some(c)) = (md.rows, md.columns) {
        seen.push(("Image size", format!("{c} × {r} pixels")));
    }
    if let Some(ps) = md.pixel_spacing_mm {
        seen.push((
            "Pixel spacing",
            format!("{} × {} mm", fixed(Some(ps[1]), 3), fixed(Some(ps[0]), 3)),
        ));
    }
    if let Some(t) = md.acquisition.slice_thickness.and_then(finite) {
        seen.push(("Slice thickness", format!("{} mm", tol(t))));
    }
    if s.phantom.detection == Detection::Forced {
        seen.push(("Phantom (forced)", one_line(&s.phantom.id)));
    }
    seen.push((
        "Phantom candidates",
        if s.phantom.candidates.is_empty() {
            "none".to_string()
        } else {
            s.phantom
                .candidates
                .iter()
                .map(|c| {
                    format!(
                        "{} (score {}: {})",
                        one_line(&c.id),
                        fixed(Some(c.score), 2),
                        one_line(&c.reason)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    ));
    seen
}

/// The baseline the run was evaluated against, or that there is none.
pub(super) fn baseline(d: &ReportData) -> Section {
    let ev = &d.summary.tolerance_evaluation;
    let mut f: Vec<(&'static str, String)> = Vec::new();
    match &d.baseline {
        Some(b) => {
            f.push((
                "Baseline",
                format!(
                    "{} (from {}, set {}){}",
                    b.id,
                    one_line(&b.source),
                    one_line(&b.created),
                    if b.provisional {
                        ", PROVISIONAL"
                    } else {
                        ", confirmed"
                    }
                ),
            ));
            push_opt(&mut f, "Baseline protocol", Some(&b.protocol));
            push_opt(&mut f, "Protocol differs", b.protocol_differs.as_deref());
        }
        None => match ev.baseline_source.as_deref() {
            Some(src) if ev.has_baseline => f.push(("Baseline", one_line(src))),
            _ => f.push(("Baseline", "no baseline".to_string())),
        },
    }
    Section {
        title: "Baseline",
        body: Body::Fields(f),
    }
}

/// Who scanned what: the scanner (from the configuration, else the headers), the protocol,
/// the series, the study date and the run.
pub(super) fn scanner_and_series(d: &ReportData, label: &str) -> Section {
    let md = &d.summary.metadata;
    let sc = &d.scanner;
    let mut f: Vec<(&'static str, String)> = vec![("Scanner", label.to_string())];
    push_opt(
        &mut f,
        "Manufacturer",
        sc.manufacturer
            .as_deref()
            .or(md.acquisition.manufacturer.as_deref()),
    );
    push_opt(
        &mut f,
        "Model",
        sc.model
            .as_deref()
            .or(md.acquisition.manufacturer_model_name.as_deref()),
    );
    push_opt(
        &mut f,
        "Station",
        sc.station_name
            .as_deref()
            .or(md.acquisition.station_name.as_deref()),
    );
    push_opt(
        &mut f,
        "Serial number",
        sc.device_serial
            .as_deref()
            .or(md.acquisition.device_serial_number.as_deref()),
    );
    push_opt(&mut f, "Calling AE", sc.calling_ae.as_deref());
    let protocol = one_line(&d.protocol);
    f.push((
        "Protocol",
        if protocol.is_empty() {
            "unknown".to_string()
        } else {
            protocol
        },
    ));
    push_opt(
        &mut f,
        "Series",
        md.acquisition.series_description.as_deref(),
    );
    push_opt(&mut f, "Series UID", md.series_instance_uid.as_deref());
    let date = md
        .acquisition
        .study_date
        .as_deref()
        .map(dicom_date)
        .unwrap_or_else(|| one_line(&d.date));
    let time = md
        .acquisition
        .study_time
        .as_deref()
        .map(dicom_time)
        .filter(|t| !t.is_empty());
    f.push((
        "Study date",
        match time {
            Some(t) => format!("{date} {t}"),
            None => date,
        },
    ));
    f.push(("Run", d.run_id.to_string()));
    Section {
        title: "Scanner and series",
        body: Body::Fields(f),
    }
}

/// The phantom (how it was identified), its pose and the slices used; none when nothing of
/// that is known.
pub(super) fn phantom(d: &ReportData) -> Option<Section> {
    let s = d.summary;
    let ph = &s.phantom;
    let mut f: Vec<(&'static str, String)> = Vec::new();
    if d.kind != ReportKind::Error || ph.id != UNKNOWN_PHANTOM {
        let name = ph
            .name
            .as_deref()
            .map(|n| format!(" ({})", one_line(n)))
            .unwrap_or_default();
        let how = match ph.detection {
            Detection::Auto => "detected automatically",
            Detection::Forced => "forced",
        };
        let conf = ph
            .confidence
            .and_then(finite)
            .map(|c| format!(", confidence {c:.2}"))
            .unwrap_or_default();
        f.push((
            "Phantom",
            format!("{}{name}, {how}{conf}", one_line(&ph.id)),
        ));
    }
    if let Some(p) = &s.pose {
        f.push((
            "Pose",
            format!(
                "centre x {} mm, y {} mm, rotation {}°",
                fixed(Some(p.centre_x_mm), 1),
                fixed(Some(p.centre_y_mm), 1),
                signed(Some(p.rotation_deg), 1)
            ),
        ));
    }
    if let Some(sl) = &s.slices {
        f.push(("Slices used", slices_used(sl)));
    }
    (!f.is_empty()).then_some(Section {
        title: "Phantom",
        body: Body::Fields(f),
    })
}

/// `centre index 41, 3 slices, 5 mm slab, z -2.0 … 2.0 mm`.
fn slices_used(sl: &SlicesUsed) -> String {
    let z: Vec<f64> = sl.z_mm.iter().copied().filter(|z| z.is_finite()).collect();
    let z = if z.is_empty() {
        String::new()
    } else {
        let (lo, hi) = z
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        format!(", z {} … {} mm", fixed(Some(lo), 1), fixed(Some(hi), 1))
    };
    let slab = finite(sl.slab_mm)
        .map(|v| format!(", {} mm slab", tol(v)))
        .unwrap_or_default();
    format!(
        "centre index {}, {} slice{}{slab}{z}",
        sl.centre_index,
        sl.indices.len(),
        plural(sl.indices.len())
    )
}

/// The analysis's warnings and the files attached to the message, when there are any.
pub(super) fn warnings_and_attachments(d: &ReportData) -> Vec<Section> {
    let mut sections = Vec::new();
    if !d.summary.warnings.is_empty() {
        sections.push(Section {
            title: "Warnings",
            body: Body::Bullets(d.summary.warnings.iter().map(|w| one_line(w)).collect()),
        });
    }
    if !d.attachments.is_empty() {
        sections.push(Section {
            title: "Attachments",
            body: Body::Bullets(d.attachments.iter().map(|a| one_line(a)).collect()),
        });
    }
    sections
}

/// Add `key: v` when `v` is set and not blank (on one line).
fn push_opt(fields: &mut Vec<(&'static str, String)>, key: &'static str, v: Option<&str>) {
    if let Some(v) = v.map(one_line).filter(|v| !v.is_empty()) {
        fields.push((key, v));
    }
}
