//! Text from DICOM headers is data, never markup: a series whose SeriesDescription is
//! `<script>alert(1)</script>` and whose StationName is `<b>CT</b>` (made by `hu-red simulate`,
//! sent with storescu) shows escaped on every page, and raw nowhere.

use super::*;
use crate::common_db::{postgres_kind, Kind};

both!(dicom_header_text_is_escaped_on_every_page);

const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const STATION: &str = "<b>CT</b>";
const STATION_ESCAPED: &str = "&lt;b&gt;CT&lt;/b&gt;";

/// `hu-red simulate` of a small CIRS series with the hostile texts; (files, series UID).
fn hostile_series(h: &Harness) -> (Vec<std::path::PathBuf>, String) {
    let dir = h.root().join("hostile");
    let out = hured(h.root())
        .args([
            "simulate",
            "--phantom",
            "cirs062",
            "--matrix",
            "128",
            "--pixel-mm",
            "2.8",
            "--n-slices",
            "12",
            "--slice-thickness-mm",
            "5",
            "--seed",
            "33",
            "--series-description",
            SCRIPT,
            "--station-name",
            STATION,
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hu-red simulate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let uid = truth["series_uid"]
        .as_str()
        .expect("series_uid")
        .to_string();
    let files = dicom_files(&dir);
    assert_eq!(files.len(), 12);
    (files, uid)
}

fn dicom_header_text_is_escaped_on_every_page(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(1);
    let (files, uid) = hostile_series(&h);
    send(&server, &files, &[]);
    h.wait_finished(&server, &uid, 12);
    let series = h.series(&uid).unwrap();
    assert_eq!(
        series.description.as_deref(),
        Some(SCRIPT),
        "stored as sent"
    );
    assert_eq!(series.station_name.as_deref(), Some(STATION));
    let id = h.runs_of(&uid)[0].id;
    add_user(&h, PHYSICIST, "physicist");
    let web = Web::new(&h, &server);
    let s = web.login(PHYSICIST);
    // the scanner's label (the StationName) shows on /baselines once it has a baseline
    let r = web.post(
        &format!("/runs/{id}/baseline"),
        &[("csrf", &s.csrf)],
        &s.cookie,
    );
    assert_eq!(r.status, 303, "{}", r.body);

    // where each value is shown (escaped); /trends only must not show them raw
    let pages: [(String, &[&str]); 5] = [
        ("/".into(), &[STATION_ESCAPED]),
        (format!("/runs/{id}"), &[STATION_ESCAPED, SCRIPT_ESCAPED]),
        ("/series".into(), &[STATION_ESCAPED, SCRIPT_ESCAPED]),
        ("/baselines".into(), &[STATION_ESCAPED]),
        ("/trends".into(), &[]),
    ];
    for (page, shown) in &pages {
        let r = web.get(page, &s.cookie);
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        assert!(
            r.content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("text/html")),
            "{page}: {:?}",
            r.content_type
        );
        for raw in ["<script>alert(1)", "<script", "<b>CT", "</b>"] {
            assert!(
                !r.body.contains(raw),
                "{page} shows {raw:?} raw:\n{}",
                r.body
            );
        }
        for escaped in *shown {
            assert!(
                r.body.contains(escaped),
                "{page} shows {escaped}:\n{}",
                r.body
            );
        }
    }
    // the run page embeds the stored report email (hu-red's own HTML, its values escaped
    // when it was rendered): it is there, and the loop above found nothing raw in it
    let run_page = web.get(&format!("/runs/{id}"), &s.cookie);
    assert!(run_page.body.contains("Report email"), "{}", run_page.body);
    // the JSON API carries the text as data
    let api = web.get(&format!("/api/runs/{id}"), &s.cookie);
    assert!(api
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("json")));
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["run"]["scanner"], STATION, "{v}");
}
