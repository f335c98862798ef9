//! Retention (issue 11): which series lose their instance files, and the purge itself, against
//! real databases (a SQLite file, and PostgreSQL when `HURED_TEST_POSTGRES_URL` is set: a schema
//! per test) and, end to end, the real `hu-red` binary with DCMTK's `storescu` as the sender.
//!
//! Ages: a test makes a series old by moving its `last_received_at` back in the database (the
//! `backdate` helper, explicit in each test); the files keep their real modification time, which
//! is what a real old series has too (older than the purge's start).

use std::fs;
use std::path::Path;
use std::time::Duration;

use hu_red::store::{
    now_ms, Fingerprint, NewInstance, NewRun, PurgeCutoffs, PurgeReason, RunStatus, SeriesState,
    Store, Verdict,
};

use crate::common_db::{postgres_kind, Kind};
use crate::common_service::*;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Patient data put into the "patient" series: must appear in no log, listing or result.
const PATIENT_NAME: &str = "DOE^JANE";
const PATIENT_ID: &str = "PID-4711";

both!(
    migration_backfills_phantom_recognised,
    selection_by_class_age_and_state,
    purge_transaction_is_compare_and_set,
    purge_removes_unrecognised_series_files_and_keeps_its_run,
    service_purges_at_start_and_completes_an_interrupted_purge,
);

// ------------------------------------------------------------------ helpers

/// Moves the series' last reception `ms` back in time (see the module note).
fn backdate(h: &Harness, uid: &str, ms: i64) {
    let sql = "UPDATE series SET last_received_at = last_received_at - $1 \
               WHERE series_instance_uid = $2";
    let n = h.rt.block_on(async {
        match &h.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&h.url).await.unwrap();
                let r = sqlx::query(sql).bind(ms).bind(uid).execute(&pool).await;
                pool.close().await;
                r.unwrap().rows_affected()
            }
            Kind::Postgres(_) => {
                let pool = sqlx::PgPool::connect(&h.url).await.unwrap();
                let r = sqlx::query(sql).bind(ms).bind(uid).execute(&pool).await;
                pool.close().await;
                r.unwrap().rows_affected()
            }
        }
    });
    assert_eq!(n, 1, "backdating series {uid}");
}

/// `hu-red ARGS` with the test's env plus `extra`; asserts success, returns its stdout.
fn cli_ok(h: &Harness, extra: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = hured(h.root());
    for (k, v) in h.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let o = cmd.args(args).output().expect("run hu-red");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "hu-red {args:?} failed:\n{text}");
    assert_no_patient_data(&format!("hu-red {args:?}"), &text);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The series' folder under data_dir and the files in it.
fn stored_files(h: &Harness, s: &Series) -> Vec<String> {
    let dir = h.data_dir().join(&s.study).join(&s.uid);
    match fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn instance_rows(h: &Harness, uid: &str) -> usize {
    h.rt.block_on(h.store().series_instances(uid))
        .unwrap()
        .len()
}

fn with_patient(p: &mut hu_red::simulate::SimParams) {
    p.patient_name = PATIENT_NAME.into();
    p.patient_id = PATIENT_ID.into();
}

fn assert_no_patient_data(what: &str, text: &str) {
    for needle in [PATIENT_NAME, PATIENT_ID, "DOE"] {
        assert!(
            !text.contains(needle),
            "{what} contains {needle:?}:\n{text}"
        );
    }
}

// ------------------------------------------------------------------ the store's selection

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const STUDY: &str = "1.2.826.0.1.3680043.8.498.7";

fn uid(n: u32) -> String {
    format!("{STUDY}.{n}")
}

fn inst(series: &str, n: u32, sop_class: &str) -> NewInstance {
    let sop = format!("{series}.{n}");
    NewInstance {
        sop_instance_uid: sop.clone(),
        sop_class_uid: sop_class.to_string(),
        series_instance_uid: series.to_string(),
        study_instance_uid: STUDY.to_string(),
        transfer_syntax: "1.2.840.10008.1.2.1".to_string(),
        rel_path: format!("{STUDY}/{series}/{sop}.dcm"),
        size_bytes: 1000 + i64::from(n),
        calling_ae: "CT01".to_string(),
        called_ae: "HURED_QA".to_string(),
        peer: "127.0.0.1:40000".to_string(),
        modality: Some(if sop_class == CT { "CT" } else { "MR" }.to_string()),
        station_name: Some("CTSIM1".to_string()),
        series_description: None,
        analysable: sop_class == CT,
    }
}

/// `n` instances of a new series received at `at` (unix ms).
async fn receive(store: &Store, series: &str, n: u32, sop_class: &str, at: i64) {
    for k in 1..=n {
        store
            .record_instance_at(&inst(series, k, sop_class), at)
            .await
            .unwrap();
    }
}

/// A series received at `at` and analysed into a run of `status` (recognised or not).
async fn analysed(
    store: &Store,
    series: &str,
    at: i64,
    status: RunStatus,
    recognised: Option<bool>,
) {
    receive(store, series, 3, CT, at).await;
    for (from, to) in [
        (SeriesState::Receiving, SeriesState::Stable),
        (SeriesState::Stable, SeriesState::Analysing),
    ] {
        assert!(store.claim_series(series, from, to).await.unwrap());
    }
    let fp = store.series_fingerprint(series).await.unwrap();
    let verdict = if status == RunStatus::Ok {
        Verdict::None
    } else {
        Verdict::Error
    };
    let mut run = NewRun::new(series, status, verdict, fp, at, at + 1);
    run.phantom_recognised = recognised;
    let id = store.insert_run(&run).await.unwrap();
    let back = store.get_run_row(id).await.unwrap().unwrap();
    assert_eq!(back.phantom_recognised, recognised, "stored and read back");
}

/// Which series are selected, in order, with their reasons.
async fn selected(store: &Store, cutoffs: PurgeCutoffs) -> Vec<(String, PurgeReason)> {
    store
        .purge_candidates(cutoffs)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.series_instance_uid, c.reason))
        .collect()
}

/// Every class and state: unrecognised series (no CT image; a run without a phantom) after
/// their age, phantom series (a recognised phantom; hu-red's own error) only under their own
/// cutoff, and never a series still received, queued or analysed, nor a young one.
fn selection_by_class_age_and_state(kind: Kind) {
    let h = Harness::new(kind);
    let store = h.store().clone();
    h.rt.block_on(async move {
        let now = now_ms();
        let old = now - 2 * DAY_MS;
        let (mr, patient, phantom, open, stable, busy, internal, young) = (
            uid(1),
            uid(2),
            uid(3),
            uid(4),
            uid(5),
            uid(6),
            uid(7),
            uid(8),
        );
        receive(&store, &mr, 2, MR, old).await;
        let fp = store.series_fingerprint(&mr).await.unwrap();
        assert!(store
            .finish_series(
                &mr,
                SeriesState::Receiving,
                SeriesState::NotAnalysed,
                Some(&fp)
            )
            .await
            .unwrap());
        analysed(&store, &patient, old + 1, RunStatus::Failed, Some(false)).await;
        analysed(&store, &phantom, old + 2, RunStatus::Ok, Some(true)).await;
        analysed(&store, &internal, old + 3, RunStatus::Error, None).await;
        receive(&store, &open, 1, CT, old).await; // still receiving
        receive(&store, &stable, 1, CT, old).await;
        assert!(store
            .claim_series(&stable, SeriesState::Receiving, SeriesState::Stable)
            .await
            .unwrap());
        receive(&store, &busy, 1, CT, old).await;
        for (from, to) in [
            (SeriesState::Receiving, SeriesState::Stable),
            (SeriesState::Stable, SeriesState::Analysing),
        ] {
            assert!(store.claim_series(&busy, from, to).await.unwrap());
        }
        receive(&store, &young, 1, MR, now - 60_000).await;
        let fp = store.series_fingerprint(&young).await.unwrap();
        assert!(store
            .finish_series(
                &young,
                SeriesState::Receiving,
                SeriesState::NotAnalysed,
                Some(&fp)
            )
            .await
            .unwrap());

        let hour_ago = Some(now - HOUR_MS);
        let unrecognised = PurgeCutoffs {
            unrecognised: hour_ago,
            phantom: None,
        };
        assert_eq!(
            selected(&store, unrecognised).await,
            vec![
                (mr.clone(), PurgeReason::NoCtImage),
                (patient.clone(), PurgeReason::NoPhantom)
            ]
        );
        let c = store.purge_candidates(unrecognised).await.unwrap();
        assert_eq!((c[0].instances, c[0].bytes), (2, 1001 + 1002));
        assert_eq!(c[0].station_name.as_deref(), Some("CTSIM1"));
        assert_eq!(c[0].last_received_at, old);
        assert_eq!((c[1].state, c[1].instances), (SeriesState::Failed, 3));
        let phantoms = PurgeCutoffs {
            unrecognised: None,
            phantom: hour_ago,
        };
        assert_eq!(
            selected(&store, phantoms).await,
            vec![
                (phantom.clone(), PurgeReason::Phantom),
                (internal.clone(), PurgeReason::Phantom)
            ]
        );
        let both = PurgeCutoffs {
            unrecognised: hour_ago,
            phantom: hour_ago,
        };
        assert_eq!(selected(&store, both).await.len(), 4);
        // the age is the series' last reception: three days is older than any of them
        let three_days = PurgeCutoffs {
            unrecognised: Some(now - 3 * DAY_MS),
            phantom: Some(now - 3 * DAY_MS),
        };
        assert!(selected(&store, three_days).await.is_empty());
        assert!(selected(&store, PurgeCutoffs::default()).await.is_empty());
        // a cutoff of "now" takes the young one too, never the open, stable or busy ones
        let now_cut = PurgeCutoffs {
            unrecognised: Some(now),
            phantom: Some(now),
        };
        let all: Vec<String> = selected(&store, now_cut)
            .await
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert!(all.contains(&young));
        for never in [&open, &stable, &busy] {
            assert!(!all.contains(never), "{never} must never be selected");
        }
    });
}

/// The purge's transaction deletes the rows and marks the series only if the series is as it
/// was selected; a purged series is not selected again; an instance received later re-opens it
/// with a fresh count.
fn purge_transaction_is_compare_and_set(kind: Kind) {
    let h = Harness::new(kind);
    let store = h.store().clone();
    h.rt.block_on(async move {
        let old = now_ms() - 2 * DAY_MS;
        let cutoffs = PurgeCutoffs {
            unrecognised: Some(now_ms() - HOUR_MS),
            phantom: None,
        };
        let (a, b) = (uid(11), uid(12));
        for s in [&a, &b] {
            receive(&store, s, 3, MR, old).await;
            let fp = store.series_fingerprint(s).await.unwrap();
            assert!(store
                .finish_series(
                    s,
                    SeriesState::Receiving,
                    SeriesState::NotAnalysed,
                    Some(&fp)
                )
                .await
                .unwrap());
        }
        let list = store.purge_candidates(cutoffs).await.unwrap();
        assert_eq!(list.len(), 2);
        // `a` receives an instance after it was selected: its purge does nothing
        store
            .record_instance_at(&inst(&a, 9, MR), now_ms())
            .await
            .unwrap();
        assert_eq!(store.purge_series_instances(&list[0]).await.unwrap(), None);
        assert_eq!(store.series_instances(&a).await.unwrap().len(), 4);
        assert_eq!(
            store
                .get_series(&a)
                .await
                .unwrap()
                .unwrap()
                .instances_purged_at,
            None
        );
        // `b` is purged: its rows are returned and deleted, the series is marked
        let rows = store
            .purge_series_instances(&list[1])
            .await
            .unwrap()
            .expect("purged");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].rel_path, format!("{STUDY}/{b}/{b}.1.dcm"));
        assert_eq!(rows[0].size_bytes, 1001);
        assert!(store.series_instances(&b).await.unwrap().is_empty());
        let row = store.get_series(&b).await.unwrap().unwrap();
        assert!(row.instances_purged_at.is_some());
        assert_eq!((row.state, row.n_instances), (SeriesState::NotAnalysed, 3));
        assert_eq!(
            store.purge_series_instances(&list[1]).await.unwrap(),
            None,
            "once"
        );
        assert!(store.purge_candidates(cutoffs).await.unwrap().is_empty());
        let purged = store.purged_series().await.unwrap();
        assert_eq!(purged.len(), 1);
        assert_eq!(purged[0].series_instance_uid, b);
        // `b` is sent again: its instances are back, counted afresh, the mark cleared
        store
            .record_instance_at(&inst(&b, 1, MR), now_ms())
            .await
            .unwrap();
        let row = store.get_series(&b).await.unwrap().unwrap();
        assert_eq!(row.instances_purged_at, None);
        assert_eq!((row.state, row.n_instances), (SeriesState::Receiving, 1));
        assert!(row.amended);
        assert!(store.purged_series().await.unwrap().is_empty());
        assert_eq!(
            Fingerprint::of(&store.series_instances(&b).await.unwrap()).n_instances,
            1
        );
    });
}

/// Runs stored before migration 0003 get `phantom_recognised` from what they recorded: an
/// analysed run recognised its phantom, a failed one did when its summary has a pose.
fn migration_backfills_phantom_recognised(kind: Kind) {
    let h = Harness::new(kind);
    let (dialect, url) = match &h.kind {
        Kind::Sqlite => ("sqlite", format!("{}?mode=rwc", h.url)),
        Kind::Postgres(_) => ("postgres", h.url.clone()),
    };
    // The database as hu-red left it before 0003: its first two migrations, as released.
    let old = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    for f in ["0001_initial.sql", "0002_baselines_reports.sql"] {
        fs::copy(dir.join(f), old.path().join(f)).unwrap();
    }
    fs::create_dir_all(h.data_dir()).unwrap();
    let series = "INSERT INTO series (series_instance_uid, study_instance_uid, state, \
                  state_changed_at, first_received_at, last_received_at) \
                  VALUES ('1.2.3', '1.2', 'failed', 1, 1, 1)";
    let run = "INSERT INTO runs (series_instance_uid, started_at, finished_at, status, verdict, \
               instance_count, instance_fingerprint, summary_json) \
               VALUES ('1.2.3', 1, 2, $1, $2, 1, 'x', $3)";
    let runs: [(&str, &str, Option<&str>); 5] = [
        ("ok", "NONE", Some("{\n  \"pose\": {\n    \"x\": 1\n  }\n}")),
        (
            "failed",
            "ERROR",
            Some("{\n  \"status\": \"error\",\n  \"pose\": null\n}"),
        ),
        (
            "failed",
            "ERROR",
            Some("{\n  \"pose\": {\n    \"x\": 1\n  }\n}"),
        ),
        ("error", "ERROR", None),
        ("failed", "ERROR", None),
    ];
    h.rt.block_on(async {
        let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
        macro_rules! fill {
            ($pool:expr) => {{
                let pool = $pool;
                migrator.run(&pool).await.unwrap();
                sqlx::query(series).execute(&pool).await.unwrap();
                for (status, verdict, summary) in runs {
                    sqlx::query(run)
                        .bind(status)
                        .bind(verdict)
                        .bind(summary)
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }};
        }
        match &h.kind {
            Kind::Sqlite => fill!(sqlx::SqlitePool::connect(&url).await.unwrap()),
            Kind::Postgres(_) => fill!(sqlx::PgPool::connect(&url).await.unwrap()),
        }
    });
    let got: Vec<Option<bool>> = h
        .runs_of("1.2.3")
        .iter()
        .map(|r| r.phantom_recognised)
        .collect();
    assert_eq!(got, vec![Some(true), Some(false), Some(true), None, None]);
}

// ------------------------------------------------------------------ end to end

/// Acceptance: a series with no CT image (secondary captures: the SCP keeps what a forwarded
/// CT study carries, it refuses MR) and a CT series with no phantom (a "patient") are purged by
/// `hu-red purge --older-than 1h` — files and folders gone, the series and the run still listed
/// and marked — while a phantom series is untouched until `retention.instances_days` says so,
/// and then keeps its run, results and report. `--dry-run` changes nothing.
fn purge_removes_unrecognised_series_files_and_keeps_its_run(kind: Kind) {
    let h = Harness::new(kind);
    let sc = small(&h.root().join("sc"), 201, 4, |p| {
        p.modality = "OT".into();
        with_patient(p);
    });
    let patient = small(&h.root().join("patient"), 202, 8, |p| {
        p.uniform = true;
        with_patient(p);
    });
    let phantom = small(&h.root().join("phantom"), 203, 12, |_| {});
    let server = h.serve(1);
    for s in [&sc, &patient, &phantom] {
        send(&server, &s.files, &[]);
    }
    for s in [&sc, &patient, &phantom] {
        h.wait_finished(&server, &s.uid, s.n());
    }
    assert_eq!(h.series(&sc.uid).unwrap().state, SeriesState::NotAnalysed);
    assert_eq!(h.series(&patient.uid).unwrap().state, SeriesState::Failed);
    let patient_run = h.runs_of(&patient.uid).pop().expect("the patient's run");
    assert_eq!(patient_run.phantom_recognised, Some(false));
    let phantom_run = h.runs_of(&phantom.uid).pop().expect("the phantom's run");
    assert_eq!(phantom_run.status, RunStatus::Ok, "{:?}", phantom_run.error);
    assert_eq!(phantom_run.phantom_recognised, Some(true));
    for s in [&sc, &patient, &phantom] {
        backdate(&h, &s.uid, 2 * HOUR_MS);
    }

    // the default (7 days) takes nothing; --dry-run lists without changing anything
    let out = cli_ok(&h, &[], &["purge", "--dry-run"]);
    assert!(out.contains("Nothing to purge"), "{out}");
    let out = cli_ok(&h, &[], &["purge", "--dry-run", "--older-than", "1h"]);
    assert!(
        out.contains(&sc.uid) && out.contains("no CT image"),
        "{out}"
    );
    assert!(
        out.contains(&patient.uid) && out.contains("no phantom recognised"),
        "{out}"
    );
    assert!(!out.contains(&phantom.uid), "{out}");
    assert!(out.contains("Would purge 2 series: 12 instances"), "{out}");
    for s in [&sc, &patient, &phantom] {
        assert_eq!(
            stored_files(&h, s).len(),
            s.files.len(),
            "dry run: files kept"
        );
        assert_eq!(
            instance_rows(&h, &s.uid),
            s.files.len(),
            "dry run: rows kept"
        );
        assert_eq!(h.series(&s.uid).unwrap().instances_purged_at, None);
    }

    let out = cli_ok(&h, &[], &["purge", "--older-than", "1h"]);
    assert!(
        out.contains("Purged the instances of 2 series: 12 files removed"),
        "{out}"
    );
    for s in [&sc, &patient] {
        assert!(stored_files(&h, s).is_empty(), "{} files left", s.uid);
        assert!(
            !h.data_dir().join(&s.study).exists(),
            "the empty folders go too"
        );
        assert_eq!(instance_rows(&h, &s.uid), 0);
        let row = h.series(&s.uid).expect("the series stays");
        assert!(row.instances_purged_at.is_some());
        assert_eq!(row.n_instances, s.n(), "what was received stays recorded");
    }
    let kept = h.runs_of(&patient.uid);
    assert_eq!(kept, vec![patient_run.clone()], "the run is kept as it was");
    let results = h
        .data_dir()
        .join(patient_run.outputs_dir.as_deref().unwrap());
    let summary = fs::read_to_string(results.join("hu_red_unknown_summary.json")).unwrap();
    assert_no_patient_data("the patient's run summary", &summary);
    assert_eq!(
        stored_files(&h, &phantom).len(),
        phantom.files.len(),
        "phantom untouched"
    );
    assert_eq!(h.series(&phantom.uid).unwrap().instances_purged_at, None);

    // listed, and saying so
    let runs = cli_ok(&h, &[], &["runs"]);
    for s in [&sc, &patient] {
        let line = runs
            .lines()
            .find(|l| l.starts_with(&s.uid))
            .unwrap_or_default();
        assert!(line.contains("instances purged"), "{}:\n{runs}", s.uid);
    }
    let run_line = runs
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} ", patient_run.id)))
        .unwrap_or_default();
    assert!(run_line.contains("instances purged"), "{runs}");
    let doc: serde_json::Value =
        serde_json::from_str(&cli_ok(&h, &[], &["runs", "--json"])).unwrap();
    let purged_at = |uid: &str| {
        doc["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["series_instance_uid"] == uid)
            .map(|s| s["instances_purged_at"].clone())
            .unwrap_or_else(|| panic!("{uid} not listed"))
    };
    assert!(purged_at(&sc.uid).is_i64() && purged_at(&patient.uid).is_i64());
    assert!(purged_at(&phantom.uid).is_null());
    assert_no_patient_data("hu-red runs --json", &doc.to_string());
    let again = cli_ok(&h, &[], &["purge", "--older-than", "1h"]);
    assert!(
        again.contains("Purged the instances of 0 series"),
        "{again}"
    );

    // instances_days: the phantom series' instances go, its run, results and report stay
    backdate(&h, &phantom.uid, 2 * DAY_MS);
    let days = [("HURED__RETENTION__INSTANCES_DAYS", "1")];
    let out = cli_ok(&h, &days, &["purge", "--dry-run"]);
    assert!(
        out.contains(&phantom.uid) && out.contains("phantom series"),
        "{out}"
    );
    let out = cli_ok(&h, &days, &["purge"]);
    assert!(
        out.contains("Purged the instances of 1 series: 12 files removed"),
        "{out}"
    );
    assert!(stored_files(&h, &phantom).is_empty());
    assert_eq!(h.runs_of(&phantom.uid), vec![phantom_run.clone()]);
    let results = h
        .data_dir()
        .join(phantom_run.outputs_dir.as_deref().unwrap());
    for f in ["hu_red_cirs062.csv", "hu_red_cirs062_summary.json"] {
        assert!(results.join(f).is_file(), "{f} kept");
    }
    let report = cli_ok(&h, &[], &["report", "--run", &phantom_run.id.to_string()]);
    assert!(report.contains("NO BASELINE"), "{report}");

    // the secondary-capture series sent again: its instances are back and no longer marked
    send(&server, &sc.files, &[]);
    let row = h.wait_finished(&server, &sc.uid, sc.n());
    assert_eq!(row.instances_purged_at, None);
    assert_eq!(row.n_instances, sc.n());
    assert_eq!(stored_files(&h, &sc).len(), sc.files.len());
    assert_no_patient_data("the service's log", &server.log_text());
}

/// The service purges at start (`retention.unrecognised_days`), and completes a purge that
/// stopped between its transaction and the removal of the files: start-up recovery does not
/// record those files again, the start-up purge removes them.
fn service_purges_at_start_and_completes_an_interrupted_purge(kind: Kind) {
    let h = Harness::new(kind);
    let a = small(&h.root().join("a"), 211, 3, |p| p.modality = "OT".into());
    let b = small(&h.root().join("b"), 212, 3, |p| p.modality = "OT".into());
    let server = h.serve(1);
    for s in [&a, &b] {
        send(&server, &s.files, &[]);
    }
    for s in [&a, &b] {
        h.wait_finished(&server, &s.uid, s.n());
    }
    drop(server); // SIGKILL
    for s in [&a, &b] {
        backdate(&h, &s.uid, 2 * DAY_MS);
    }
    // `b`'s purge stops right after its transaction: rows gone, series marked, files left
    let store = h.store().clone();
    let cutoffs = PurgeCutoffs {
        unrecognised: Some(now_ms() - DAY_MS),
        phantom: None,
    };
    let list = h.rt.block_on(store.purge_candidates(cutoffs)).unwrap();
    let cb = list
        .iter()
        .find(|c| c.series_instance_uid == b.uid)
        .unwrap();
    let rows =
        h.rt.block_on(store.purge_series_instances(cb))
            .unwrap()
            .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(stored_files(&h, &b).len(), 3, "the files are still there");

    let server = h.serve_with(1, &[("HURED__RETENTION__UNRECOGNISED_DAYS", "1")]);
    wait_until("the start-up purge", &server, || {
        (stored_files(&h, &a).is_empty() && stored_files(&h, &b).is_empty()).then_some(())
    });
    wait_until("the purge's log line", &server, || {
        server
            .log_text()
            .contains("retention purge done")
            .then_some(())
    });
    let log = server.log_text();
    assert!(
        log.contains(&a.uid) && log.contains("instances purged"),
        "{log}"
    );
    assert!(log.contains("interrupted purge"), "{log}");
    for s in [&a, &b] {
        let row = h.series(&s.uid).unwrap();
        assert_eq!(
            row.state,
            SeriesState::NotAnalysed,
            "not re-opened: {}",
            s.uid
        );
        assert!(row.instances_purged_at.is_some());
        assert!(
            !row.amended,
            "start-up recovery did not record the files again"
        );
        assert_eq!(instance_rows(&h, &s.uid), 0);
        assert!(!h.data_dir().join(&s.study).exists());
    }
    // idle afterwards: nothing else happens within a few polls
    std::thread::sleep(Duration::from_millis(500));
    assert!(h.runs_of(&b.uid).is_empty());
}
