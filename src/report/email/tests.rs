//! Shared builders of the email tests: a CIRS-like measurement with five materials, its
//! constancy against a baseline at the expected HU, summaries (analysed and failed), scanner,
//! baseline and report data, all with fixed dates; and the checks every rendered report must
//! pass (clean values, no external resource, well-formed HTML). The tests themselves sit next to
//! the code (`text`, `html`, `report::format`) or, for whole reports, in `tests/` by concern.

use super::html::{esc, FAIL_ROW_CSS};
use super::*;
use crate::analysis::{
    AbsoluteChecks, AssignmentMethod, Candidate, Curve, CurvePoint, Detection, InsertConstancy,
    MaterialResult, MaterialStatus, Measurement, Plan, Pose, RoiMeasurement, SlicesUsed,
    ToleranceEvaluation, UnassignedHole,
};
use crate::report::format::one_line;
use crate::report::{Metadata, OkParts};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When every fixture run started: 2026-11-25T10:22:33Z (never "now", so a rendered
/// report depends on its inputs only).
pub(super) fn started_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_602_153)
}

/// (name, RED, HU now, expected HU, absolute window)
pub(super) type Mat = (&'static str, f64, f64, f64, Option<[f64; 2]>);

pub(super) const MATERIALS: [Mat; 5] = [
    ("lung_inhale", 0.190, -803.0, -800.0, None),
    ("adipose", 0.952, -91.0, -90.0, Some([-120.0, -60.0])),
    ("water", 1.000, 35.2, 0.0, Some([-10.0, 10.0])),
    ("liver", 1.052, 56.0, 55.0, None),
    ("bone_200", 1.117, 241.0, 240.0, Some([200.0, 280.0])),
];

pub(super) fn measurement(mats: &[Mat]) -> Measurement {
    let inserts: Vec<MaterialResult> = mats
        .iter()
        .map(|&(name, red, hu, expected, window)| MaterialResult {
            insert: name.into(),
            red: Some(red),
            hu_mean: hu,
            hu_std: 9.5,
            hu_median: hu,
            n_rois: 1,
            n_pixels: 400,
            hu_expected: expected,
            hu_window: window,
            within_window: window.map(|w| hu >= w[0] && hu <= w[1]),
            rois: vec![],
            check_pass: true,
            ..Default::default()
        })
        .collect();
    let curve = Curve::from_points(
        inserts
            .iter()
            .map(|m| CurvePoint {
                insert: m.insert.clone(),
                hu: m.hu_mean,
                red: m.red.unwrap_or(1.0),
            })
            .collect(),
    );
    let absolute_pass = inserts.iter().all(|m| m.within_window != Some(false));
    Measurement {
        phantom_id: "cirs062".into(),
        phantom_name: "CIRS 062M".into(),
        detection: Detection::Auto,
        confidence: 0.93,
        candidates: vec![],
        pose: Pose {
            centre_x_mm: 12.04,
            centre_y_mm: -8.0,
            rotation_deg: 7.5,
        },
        slices: SlicesUsed {
            centre_index: 41,
            indices: vec![40, 41, 42],
            z_mm: vec![-2.0, 0.0, 2.0],
            slab_mm: 5.0,
            thickness_mm: 2.0,
        },
        assignment: AssignmentMethod::Layout,
        inserts,
        curve,
        absolute_pass,
        warnings: vec![],
        family: None,
        kvp: Some(120.0),
        unassigned: vec![],
        checks: AbsoluteChecks {
            pass: absolute_pass,
            curve_monotonic: true,
            ..Default::default()
        },
    }
}

/// Constancy with every baseline HU = the expected HU and a tolerance of 4 HU.
pub(super) fn constancy(m: &Measurement) -> ToleranceEvaluation {
    let per: Vec<InsertConstancy> = m
        .inserts
        .iter()
        .map(|x| {
            let d = x.hu_mean - x.hu_expected;
            InsertConstancy {
                insert: x.insert.clone(),
                baseline_hu: Some(x.hu_expected),
                hu_mean: Some(x.hu_mean),
                delta_hu: Some(d),
                tolerance_hu: 4.0,
                within_tolerance: d.abs() <= 4.0,
                delta_red_percent: Some(d / 10.0),
                note: None,
            }
        })
        .collect();
    let pairs: Vec<(f64, f64)> = per
        .iter()
        .filter_map(|p| Some((p.hu_mean?, p.baseline_hu?)))
        .collect();
    ToleranceEvaluation {
        has_baseline: true,
        pass: Some(per.iter().all(|p| p.within_tolerance)),
        pearson_r: crate::analysis::constancy::pearson(&pairs),
        baseline_source: Some("run 12".into()),
        per_insert: per,
    }
}

pub(super) fn no_constancy() -> ToleranceEvaluation {
    ToleranceEvaluation {
        has_baseline: false,
        pass: None,
        pearson_r: None,
        baseline_source: None,
        per_insert: vec![],
    }
}

pub(super) fn metadata() -> Metadata {
    Metadata {
        acquisition: crate::dicom::Acquisition {
            series_description: Some("QA HU-RED 120kV".into()),
            kvp: Some(120.0),
            manufacturer: Some("SIEMENS".into()),
            station_name: Some("CTSIM1".into()),
            study_date: Some("20261125".into()),
            study_time: Some("102233.500".into()),
            ..Default::default()
        },
        series_instance_uid: Some("1.2.826.0.1.3680043.2.1125.1".into()),
        modality: Some("CT".into()),
        n_slices: Some(120),
        rows: Some(512),
        columns: Some(512),
        ..Default::default()
    }
}

pub(super) fn summary(m: &Measurement, ev: &ToleranceEvaluation) -> Summary {
    Summary::ok(OkParts {
        dicom_path: "/var/lib/hu-red/incoming/1.2.3",
        metadata: metadata(),
        measurement: m,
        evaluation: ev,
        warnings: vec!["the bone_800 insert was not found".into()],
        timings: None,
        started_at: started_at(),
    })
}

pub(super) fn error_summary() -> Summary {
    let plan = Plan {
        phantom_id: "catphan_ctp404".into(),
        detection: Detection::Auto,
        confidence: 0.31,
        candidates: vec![
            Candidate {
                id: "catphan_ctp404".into(),
                score: 0.31,
                reason: "3 of 8 holes fit".into(),
            },
            Candidate {
                id: "cirs062".into(),
                score: 0.12,
                reason: "outline too small".into(),
            },
        ],
        pose: Pose {
            centre_x_mm: 1.0,
            centre_y_mm: 2.0,
            rotation_deg: 0.0,
        },
        centre_index: 60,
        slab_indices: vec![59, 60, 61],
        insert_z_range_mm: (-10.0, 10.0),
        warnings: vec![],
    };
    Summary::error(
        "/var/lib/hu-red/incoming/1.2.3",
        crate::report::UNKNOWN_PHANTOM,
        Detection::Auto,
        "no known phantom matched (best: catphan_ctp404, score 0.31)".into(),
        Some(metadata()),
        Some(&plan),
        None,
        vec![],
        started_at(),
    )
}

pub(super) fn scanner(label: &str) -> ScannerInfo {
    ScannerInfo {
        label: label.into(),
        id: "SN4711".into(),
        manufacturer: Some("SIEMENS".into()),
        model: Some("SOMATOM go.Open Pro".into()),
        station_name: Some("CTSIM1".into()),
        device_serial: Some("SN4711".into()),
        calling_ae: Some("CTSIM1_AE".into()),
    }
}

pub(super) fn baseline() -> BaselineInfo {
    BaselineInfo {
        id: 7,
        source: "run 12".into(),
        created: "2026-01-03".into(),
        provisional: false,
        protocol: "120 kV, B30f, 2 mm".into(),
        protocol_differs: None,
    }
}

pub(super) fn data<'a>(
    s: &'a Summary,
    kind: ReportKind,
    b: Option<BaselineInfo>,
) -> ReportData<'a> {
    ReportData {
        run_id: 42,
        kind,
        scanner: scanner("CT-SIM-1"),
        protocol: "120 kV, B30f, 2 mm".into(),
        date: "2026-11-25".into(),
        summary: s,
        baseline: b,
        provisional_from_this_run: false,
        amended: false,
        attachments: vec![
            "hu_red_cirs062.csv".into(),
            "hu_red_cirs062_trend.png".into(),
        ],
        hints: vec![],
    }
}

/// Walk the whole document as XML: every tag closed and matched, one `html` root.
pub(super) fn assert_well_formed(html: &str) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(html);
    let mut depth: i64 = 0;
    let mut roots = 0;
    let mut saw_doctype = false;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::DocType(_)) => saw_doctype = true,
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    roots += 1;
                    assert_eq!(e.name().as_ref(), b"html");
                }
                depth += 1;
            }
            Ok(Event::End(_)) => {
                depth -= 1;
                assert!(depth >= 0, "unbalanced end tag");
            }
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at {}: {e}\n{html}",
                reader.buffer_position()
            ),
        }
    }
    assert!(saw_doctype, "no <!DOCTYPE html>");
    assert_eq!(depth, 0, "unclosed elements");
    assert_eq!(roots, 1, "one root element");
}

pub(super) fn assert_clean(r: &RenderedReport) {
    for body in [&r.text, &r.html] {
        assert!(!body.contains("NaN"), "{body}");
        assert!(!body.to_lowercase().contains("inf "), "{body}");
    }
    assert!(!r.html.contains("<a ") && !r.html.contains("<a>"), "a link");
    assert!(!r.html.contains("href") && !r.html.contains("src="));
    assert!(!r.html.contains("http"), "an external resource");
    assert!(r.html.starts_with("<!DOCTYPE html>"));
    assert!(r.html.contains("<meta charset=\"utf-8\"/>"));
    assert!(r
        .html
        .contains(&format!("<title>{}</title>", esc(&r.subject))));
    assert_well_formed(&r.html);
}

/// The data rows of the text table: from the header line to the first empty line.
pub(super) fn text_table_lines(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("Material "))
        .take_while(|l| !l.is_empty())
        .collect()
}

pub(super) const WINDOW_NOTE: &str =
    "window 200 … 280 HU is given at 120 kV; this scan is at 100 kV: \
                           information only (241 HU is inside it)";

/// A CIRS whose dense bone rods were refused, an optional material not there, copies of
/// a material that disagree, an unassigned hole, a window given at another kVp.
pub(super) fn first_scan_with_absolute_failures() -> Measurement {
    let mut mats = MATERIALS;
    mats[2].2 = 1.0;
    let mut m = measurement(&mats);
    m.kvp = Some(100.0);
    // bone_200: the window is given at 120 kV, this scan is 100 kV: information only
    m.inserts[4].within_window = None;
    m.inserts[4].window_kvp = Some(120.0);
    m.inserts[4].hu_band = Some([140.0, 340.0]);
    m.inserts[4].plausible = Some(true);
    // the engine's note does not name the material; the report does
    m.inserts[4].check_notes = vec![WINDOW_NOTE.into()];
    // liver: two copies that disagree
    m.inserts[3].n_rois = 2;
    m.inserts[3].rois = vec![
        RoiMeasurement {
            hole: "inner_90".into(),
            insert: "liver".into(),
            hu_mean: 40.0,
            ..Default::default()
        },
        RoiMeasurement {
            hole: "outer_270".into(),
            insert: "liver".into(),
            hu_mean: 72.0,
            ..Default::default()
        },
    ];
    m.inserts[3].copies_spread_hu = Some(32.0);
    m.inserts[3].copies_consistent = Some(false);
    m.inserts[3].check_pass = false;
    // dense_bone: refused
    m.inserts.push(MaterialResult {
        insert: "dense_bone".into(),
        red: Some(1.512),
        hu_mean: f64::NAN,
        hu_std: f64::NAN,
        hu_median: f64::NAN,
        hu_expected: 1145.0,
        status: MaterialStatus::Refused,
        reason: Some(
            "no homogeneous core in holes inner_135, outer_315 (rods too thin for the ROI)".into(),
        ),
        check_pass: false,
        ..Default::default()
    });
    // an optional vial that is empty
    m.inserts.push(MaterialResult {
        insert: "water_vial".into(),
        red: Some(1.0),
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
        center_x_mm: 61.3,
        center_y_mm: -61.0,
        hu_mean: -998.4,
        hu_std: 6.1,
        n_pixels: 350,
        layout_material: Some("lung_exhale".into()),
        note: "not in the phantom definition: empty hole? another bone rod?".into(),
    }];
    m.absolute_pass = false;
    m.checks = AbsoluteChecks {
        pass: false,
        curve_monotonic: true,
        checked: vec![
            "monotone HU–RED curve".into(),
            "5 materials within their plausibility bands at 100 kV".into(),
        ],
        failures: vec![
            "dense_bone not measured: no homogeneous core in holes inner_135, outer_315 \
             (rods too thin for the ROI)"
                .into(),
            "copies of liver disagree: 40 vs 72 HU".into(),
        ],
        info: vec![
            WINDOW_NOTE.into(),
            "water_vial not present (optional)".into(),
            "hole outer_45 at (61.3, -61.0) mm reads -998 ± 6 HU: not in the phantom \
             definition (empty hole?)"
                .into(),
        ],
    };
    m
}

mod error;
mod first_scan;
mod golden;
mod subject;
mod with_baseline;
