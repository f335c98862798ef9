//! The store against real databases: every test runs on SQLite (a temporary file) and on
//! PostgreSQL when `HURED_TEST_POSTGRES_URL` is set (each Postgres test in its own schema, so
//! tests run in parallel). With `CI=true`, a missing `HURED_TEST_POSTGRES_URL` fails the
//! Postgres half instead of skipping it.
//!
//! Local Postgres (as root):
//!     pg_ctlcluster 15 main start
//!     su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
//!     su postgres -c "psql -q -c 'CREATE DATABASE hured_test'"
//!     export HURED_TEST_POSTGRES_URL=postgres://postgres:postgres@127.0.0.1/hured_test

use hu_red::store::*;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::common_db;
use common_db::{create_schema, drop_schema, postgres_kind, schema_url, Kind};

/// One test database: a temporary SQLite file, or a fresh Postgres schema.
struct Db {
    kind: Kind,
    url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl Db {
    async fn new(kind: &Kind) -> Db {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // a folder that does not exist yet: connect creates it
                let path = dir.path().join("data").join("sub").join("hu-red.sqlite");
                Db {
                    kind: kind.clone(),
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                    schema: None,
                }
            }
            Kind::Postgres(base) => {
                let schema = create_schema(base).await;
                Db {
                    kind: kind.clone(),
                    url: schema_url(base, &schema),
                    _dir: None,
                    schema: Some(schema),
                }
            }
        }
    }

    async fn open(&self) -> Store {
        Store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Rows of a table, read around the store (proves what is really committed).
    async fn count(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match &self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
            Kind::Postgres(_) => {
                let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
        }
    }

    async fn finish(self) {
        if let (Kind::Postgres(base), Some(schema)) = (&self.kind, &self.schema) {
            drop_schema(base, schema).await.unwrap();
        }
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(super::Kind::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some(kind) = super::postgres_kind("tests/it/store.rs") {
                        super::$name(kind).await;
                    }
                }
            }
        )*
    };
}

both!(
    migrations_are_idempotent,
    record_instance_new_replace_reopen,
    instance_moved_to_another_series,
    series_due_respects_the_stable_age,
    claim_is_compare_and_set_under_concurrency,
    concurrent_arrivals_into_one_series,
    insert_run_stores_everything,
    insert_run_is_atomic,
    run_finishing_after_a_reopen_keeps_the_series_receiving,
    reset_interrupted_returns_analysing_to_stable,
    data_survives_a_reopen,
    fingerprints_identify_the_instance_set,
    listings_are_ordered_and_limited,
    errors_name_the_database_without_the_password,
    scanners_follow_the_configuration,
    forget_instance_recounts_its_series,
    recovery_removes_rows_whose_file_never_arrived,
    baselines_supersede_and_keep_their_history,
    family_baselines_serve_variants,
    auto_baseline_never_replaces_one,
    outbox_delivery_states,
    trend_of_a_scanner_and_phantom,
    a_year_of_monthly_runs_sent_out_of_order,
    the_dashboard_trend_of_a_protocol,
);

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const SR: &str = "1.2.840.10008.5.1.4.1.1.88.67";
const STUDY: &str = "1.2.826.0.1.3680043.8.498.1";

fn series_uid(n: u32) -> String {
    format!("1.2.826.0.1.3680043.8.498.1.{n}")
}

fn inst(series: &str, n: u32) -> NewInstance {
    let sop = format!("{series}.{n}");
    NewInstance {
        sop_instance_uid: sop.clone(),
        sop_class_uid: CT.to_string(),
        series_instance_uid: series.to_string(),
        study_instance_uid: STUDY.to_string(),
        transfer_syntax: "1.2.840.10008.1.2.1".to_string(),
        rel_path: format!("{STUDY}/{series}/{sop}.dcm"),
        size_bytes: 525_000,
        calling_ae: "CT01".to_string(),
        called_ae: "HURED_QA".to_string(),
        peer: "127.0.0.1:40000".to_string(),
        modality: Some("CT".to_string()),
        station_name: Some("CTSIM1".to_string()),
        series_description: Some("QA HU-RED".to_string()),
        analysable: true,
    }
}

/// Moves a series receiving → stable → analysing, as the series manager and a worker do.
async fn to_analysing(store: &Store, uid: &str) {
    assert!(store
        .claim_series(uid, SeriesState::Receiving, SeriesState::Stable)
        .await
        .unwrap());
    assert!(store
        .claim_series(uid, SeriesState::Stable, SeriesState::Analysing)
        .await
        .unwrap());
}

/// A sample run and the report queued with it (`None`: no report).
struct SampleRun {
    run: NewRun,
    outbox: Option<NewOutboxMessage>,
}

impl std::ops::Deref for SampleRun {
    type Target = NewRun;
    fn deref(&self) -> &NewRun {
        &self.run
    }
}

impl std::ops::DerefMut for SampleRun {
    fn deref_mut(&mut self) -> &mut NewRun {
        &mut self.run
    }
}

/// Store a sample run with its report in one transaction.
async fn insert(store: &Store, s: &SampleRun) -> Result<i64, hu_red::store::StoreError> {
    store.insert_run_with(&s.run, |_| s.outbox.clone()).await
}

fn sample_run(series: &str, fp: Fingerprint) -> SampleRun {
    let mut run = NewRun::new(series, RunStatus::Ok, Verdict::Pass, fp, 1_000, 2_500);
    run.phantom_id = Some("cirs062".into());
    run.phantom_name = Some("CIRS 062M".into());
    run.detection = Some("auto".into());
    run.confidence = Some(0.93);
    run.pose_centre_x_mm = Some(255.5);
    run.pose_centre_y_mm = Some(250.25);
    run.pose_rotation_deg = Some(-0.75);
    run.slab_centre_index = Some(32);
    run.slab_n_slices = Some(3);
    run.slab_mm = Some(5.0);
    run.slab_centre_z_mm = Some(-1.25);
    run.assignment = Some("layout".into());
    run.absolute_pass = Some(true);
    run.constancy_pass = Some(true);
    run.pearson_r = Some(0.99987);
    run.baseline_source = Some("baseline.csv".into());
    run.warnings = vec!["slice spacing irregular".into(), "ünïcode ok".into()];
    run.summary_json = Some(r#"{"status":"ok","inserts":[]}"#.into());
    run.outputs_dir = Some("results/{run_id}".into());
    run.scanner = Some("CT Sim 1".into());
    run.materials = vec![
        NewMaterialResult {
            insert: "Lung (inhale)".into(),
            red: Some(0.19),
            hu_mean: -803.25,
            hu_std: 12.5,
            hu_median: -804.0,
            n_rois: 2,
            n_pixels: 1234,
            hu_expected: Some(-800.0),
            hu_window: Some([-850.0, -750.0]),
            within_window: Some(true),
            baseline_hu: Some(-801.0),
            delta_hu: Some(-2.25),
            tolerance_hu: Some(20.0),
            within_tolerance: Some(true),
            delta_red_percent: Some(-0.2),
            note: None,
        },
        NewMaterialResult {
            insert: "Water".into(),
            red: None,
            hu_mean: 1.5,
            hu_std: f64::NAN, // stored as NULL, read back as NaN
            hu_median: 1.0,
            n_rois: 1,
            n_pixels: 600,
            hu_expected: Some(0.0),
            hu_window: None,
            within_window: None,
            baseline_hu: None,
            delta_hu: None,
            tolerance_hu: Some(20.0),
            within_tolerance: Some(false),
            delta_red_percent: None,
            note: Some("no baseline value".into()),
        },
    ];
    run.rois = vec![
        NewRoiMeasurement {
            hole: "h1".into(),
            ring: Some("inner".into()),
            insert: "Lung (inhale)".into(),
            center_x_mm: 280.0,
            center_y_mm: 250.0,
            center_col_px: 573.4,
            center_row_px: 512.0,
            roi_radius_mm: 5.0,
            roi_radius_px: 10.24,
            insert_radius_mm: 15.0,
            hu_mean: -803.0,
            hu_std: 12.0,
            hu_median: -804.0,
            n_pixels: 617,
            n_slices: 3,
            refine_shift_mm: 0.4,
            contrast_hu: 790.0,
        },
        NewRoiMeasurement {
            hole: "rod_2".into(),
            ring: None,
            insert: "Water".into(),
            hu_mean: 1.5,
            n_pixels: 600,
            n_slices: 3,
            ..Default::default()
        },
    ];
    let outbox = Some(message(
        &["physics@example.org", "qa@example.org"],
        "HU-RED QA PASS — CT Sim 1",
        &format!("m-{series}@example.org"),
    ));
    SampleRun { run, outbox }
}

fn message(to: &[&str], subject: &str, id: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        kind: OutboxKind::Report,
        recipients: to.iter().map(|s| s.to_string()).collect(),
        subject: subject.into(),
        text_body: format!("text of {subject}"),
        html_body: format!("<p>{subject}</p>"),
        message_id: id.into(),
    }
}

async fn migrations_are_idempotent(kind: Kind) {
    let db = Db::new(&kind).await;
    let a = db.open().await;
    let s = series_uid(1);
    a.record_instance(&inst(&s, 1)).await.unwrap();
    // connect twice while the first is open: migrations are applied once, no error
    let b = db.open().await;
    assert_eq!(b.get_series(&s).await.unwrap().unwrap().n_instances, 1);
    a.close().await;
    b.close().await;
    let c = db.open().await;
    assert!(c.instance_exists(&format!("{s}.1")).await.unwrap());
    assert_eq!(
        db.count("_sqlx_migrations").await,
        4,
        "0001 to 0004, once each"
    );

    let settings = c.settings().await.unwrap();
    let get = |k: &str| {
        settings
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    match kind {
        Kind::Sqlite => {
            assert_eq!(c.dialect(), Dialect::Sqlite);
            assert_eq!(get("journal_mode"), "wal");
            assert_eq!(get("synchronous"), "2", "synchronous=FULL");
            assert_eq!(get("foreign_keys"), "1");
            assert_eq!(get("busy_timeout"), "30000");
        }
        Kind::Postgres(_) => {
            assert_eq!(c.dialect(), Dialect::Postgres);
            assert!(get("search_path").contains(db.schema.as_deref().unwrap()));
            assert!(
                !c.display_url().contains(":postgres@"),
                "{}",
                c.display_url()
            );
        }
    }
    c.close().await;
    db.finish().await;
}

async fn record_instance_new_replace_reopen(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(2);

    let o = store
        .record_instance_at(&inst(&s, 1), 10_000)
        .await
        .unwrap();
    assert_eq!(
        o,
        RecordOutcome {
            new_series: true,
            reopened: false,
            replaced: false
        }
    );
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.state, SeriesState::Receiving);
    assert_eq!(row.study_instance_uid, STUDY);
    assert_eq!(
        (row.first_received_at, row.last_received_at, row.n_instances),
        (10_000, 10_000, 1)
    );
    assert!(!row.amended);
    assert!(row.analysable);
    assert_eq!(row.modality.as_deref(), Some("CT"));
    assert_eq!(row.station_name.as_deref(), Some("CTSIM1"));
    assert_eq!(row.description.as_deref(), Some("QA HU-RED"));
    assert_eq!(row.calling_ae.as_deref(), Some("CT01"));
    assert_eq!(row.last_run_id, None);

    // a second instance; blank DICOM text does not erase what is known
    let mut i2 = inst(&s, 2);
    i2.station_name = Some("   ".into());
    let o = store.record_instance_at(&i2, 11_000).await.unwrap();
    assert_eq!(o, RecordOutcome::default());
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!((row.n_instances, row.last_received_at), (2, 11_000));
    assert_eq!(row.first_received_at, 10_000);
    assert_eq!(row.station_name.as_deref(), Some("CTSIM1"));
    assert_eq!(
        store
            .get_instance(&i2.sop_instance_uid)
            .await
            .unwrap()
            .unwrap()
            .station_name,
        None
    );

    // re-sent: replaces the row, counts once
    let mut again = inst(&s, 1);
    again.transfer_syntax = "1.2.840.10008.1.2.4.70".into();
    again.size_bytes = 300_000;
    again.calling_ae = "PACS".into();
    let o = store.record_instance_at(&again, 12_000).await.unwrap();
    assert_eq!(
        o,
        RecordOutcome {
            new_series: false,
            reopened: false,
            replaced: true
        }
    );
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.n_instances, 2);
    assert_eq!(row.calling_ae.as_deref(), Some("PACS"));
    let i1 = store
        .get_instance(&again.sop_instance_uid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i1.transfer_syntax, "1.2.840.10008.1.2.4.70");
    assert_eq!(
        (i1.size_bytes, i1.times_received, i1.received_at),
        (300_000, 2, 12_000)
    );
    assert!(store
        .instance_exists(&again.sop_instance_uid)
        .await
        .unwrap());
    assert!(!store.instance_exists("1.2.3.4.5").await.unwrap());
    assert_eq!(db.count("instances").await, 2);

    // stable → receiving is not a re-open
    assert!(store
        .claim_series(&s, SeriesState::Receiving, SeriesState::Stable)
        .await
        .unwrap());
    let o = store
        .record_instance_at(&inst(&s, 3), 13_000)
        .await
        .unwrap();
    assert_eq!(o, RecordOutcome::default());
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.n_instances, row.amended),
        (SeriesState::Receiving, 3, false)
    );

    // analysed (done) → an arrival re-opens it and marks it amended
    to_analysing(&store, &s).await;
    let fp = store.series_fingerprint(&s).await.unwrap();
    let run_id = insert(&store, &sample_run(&s, fp.clone())).await.unwrap();
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.state, SeriesState::Done);
    assert_eq!(row.last_run_id, Some(run_id));
    let o = store
        .record_instance_at(&inst(&s, 4), 14_000)
        .await
        .unwrap();
    assert_eq!(
        o,
        RecordOutcome {
            new_series: false,
            reopened: true,
            replaced: false
        }
    );
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.state, SeriesState::Receiving);
    assert!(row.amended);
    assert_eq!(row.n_instances, 4);
    assert_eq!(row.last_run_id, Some(run_id), "the last run is still known");
    assert_eq!(row.analysed(), Some(fp));

    // failed and not_analysed re-open too; amended stays set
    for end in [SeriesState::Failed, SeriesState::NotAnalysed] {
        to_analysing(&store, &s).await;
        assert!(store
            .finish_series(&s, SeriesState::Analysing, end, None)
            .await
            .unwrap());
        let o = store
            .record_instance_at(&inst(&s, 1), 15_000)
            .await
            .unwrap();
        assert!(o.reopened && o.replaced && !o.new_series, "{end}: {o:?}");
        let row = store.get_series(&s).await.unwrap().unwrap();
        assert_eq!((row.state, row.amended), (SeriesState::Receiving, true));
    }

    // a series of non-CT instances is not analysable
    let s2 = series_uid(3);
    let mut sr = inst(&s2, 1);
    sr.sop_class_uid = SR.into();
    sr.modality = Some("SR".into());
    sr.analysable = false;
    assert!(store.record_instance(&sr).await.unwrap().new_series);
    let row = store.get_series(&s2).await.unwrap().unwrap();
    assert!(!row.analysable);
    assert_eq!(row.modality.as_deref(), Some("SR"));
    // one CT instance makes it analysable
    store.record_instance(&inst(&s2, 2)).await.unwrap();
    assert!(store.get_series(&s2).await.unwrap().unwrap().analysable);

    store.close().await;
    db.finish().await;
}

async fn instance_moved_to_another_series(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let (a, b) = (series_uid(10), series_uid(11));
    for n in 1..=3 {
        store.record_instance(&inst(&a, n)).await.unwrap();
    }
    let mut sr = inst(&b, 1);
    sr.analysable = false;
    store.record_instance(&sr).await.unwrap();
    // instance a.3 re-sent as part of series b
    let mut moved = inst(&a, 3);
    moved.series_instance_uid = b.clone();
    let o = store.record_instance(&moved).await.unwrap();
    assert!(o.replaced && !o.new_series);
    let ra = store.get_series(&a).await.unwrap().unwrap();
    let rb = store.get_series(&b).await.unwrap().unwrap();
    assert_eq!(ra.n_instances, 2);
    assert_eq!(rb.n_instances, 2);
    assert!(rb.analysable);
    assert_eq!(store.series_instances(&a).await.unwrap().len(), 2);
    assert_eq!(store.series_instances(&b).await.unwrap().len(), 2);
    store.close().await;
    db.finish().await;
}

async fn series_due_respects_the_stable_age(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let t0 = 1_700_000_000_000_i64;
    let (s, t) = (series_uid(20), series_uid(21));
    store.record_instance_at(&inst(&s, 1), t0).await.unwrap();
    store
        .record_instance_at(&inst(&t, 1), t0 + 5_000)
        .await
        .unwrap();
    store
        .record_instance_at(&inst(&s, 2), t0 + 10_000)
        .await
        .unwrap();
    let due = |now: i64| {
        let store = store.clone();
        async move {
            store
                .series_due(20, now)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.series_instance_uid)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(t0 + 24_999).await.is_empty());
    assert_eq!(due(t0 + 25_000).await, vec![t.clone()]);
    assert_eq!(
        due(t0 + 30_000).await,
        [t.clone(), s.clone()],
        "oldest first; the later instance restarted the clock of s"
    );
    // only receiving series are due
    assert!(store
        .claim_series(&t, SeriesState::Receiving, SeriesState::Stable)
        .await
        .unwrap());
    assert_eq!(due(t0 + 30_000).await, vec![s.clone()]);
    let stable = store.series_in_state(SeriesState::Stable).await.unwrap();
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].series_instance_uid, t);
    // a new arrival on a stable series takes it back to receiving, clock restarted
    store
        .record_instance_at(&inst(&t, 2), t0 + 40_000)
        .await
        .unwrap();
    assert_eq!(due(t0 + 59_999).await, vec![s.clone()]);
    assert_eq!(due(t0 + 60_000).await, [s.clone(), t.clone()]);
    store.close().await;
    db.finish().await;
}

async fn claim_is_compare_and_set_under_concurrency(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    for k in 0..8 {
        let s = series_uid(100 + k);
        store.record_instance(&inst(&s, 1)).await.unwrap();
        assert!(store
            .claim_series(&s, SeriesState::Receiving, SeriesState::Stable)
            .await
            .unwrap());
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .claim_series(&s, SeriesState::Stable, SeriesState::Analysing)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "series {s}: exactly one claim wins");
        assert_eq!(
            store.get_series(&s).await.unwrap().unwrap().state,
            SeriesState::Analysing
        );
    }
    // wrong source state, unknown series
    let s = series_uid(100);
    assert!(!store
        .claim_series(&s, SeriesState::Stable, SeriesState::Analysing)
        .await
        .unwrap());
    assert!(!store
        .claim_series("9.9.9", SeriesState::Receiving, SeriesState::Stable)
        .await
        .unwrap());
    store.close().await;
    db.finish().await;
}

async fn concurrent_arrivals_into_one_series(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(30);
    // 4 associations send 25 instances each (plus re-sends) of the same new series at once
    let tasks: Vec<_> = (0..4u32)
        .map(|a| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                let mut new_series = 0;
                for n in 0..25 {
                    let o = store.record_instance(&inst(&s, a * 100 + n)).await.unwrap();
                    new_series += usize::from(o.new_series);
                    if n % 10 == 0 {
                        let o = store.record_instance(&inst(&s, a * 100 + n)).await.unwrap();
                        assert!(o.replaced);
                    }
                }
                new_series
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap();
    }
    assert_eq!(created, 1, "the series is created once");
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.n_instances, 100);
    let instances = store.series_instances(&s).await.unwrap();
    assert_eq!(instances.len(), 100);
    assert_eq!(db.count("instances").await, 100);
    store.close().await;
    db.finish().await;
}

async fn insert_run_stores_everything(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(40);
    for n in 1..=3 {
        store.record_instance(&inst(&s, n)).await.unwrap();
    }
    to_analysing(&store, &s).await;
    let instances = store.series_instances(&s).await.unwrap();
    let fp = Fingerprint::of(&instances);
    let mut run = sample_run(&s, fp.clone());
    run.amended = true;
    let id = insert(&store, &run).await.unwrap();

    let detail = store.get_run(id).await.unwrap().unwrap();
    let r = &detail.run;
    assert_eq!(r.id, id);
    assert_eq!(r.series_instance_uid, s);
    assert_eq!((r.started_at, r.finished_at), (1_000, 2_500));
    assert_eq!((r.status, r.verdict), (RunStatus::Ok, Verdict::Pass));
    assert_eq!(r.phantom_id.as_deref(), Some("cirs062"));
    assert_eq!(r.phantom_name.as_deref(), Some("CIRS 062M"));
    assert_eq!(r.detection.as_deref(), Some("auto"));
    assert_eq!(r.confidence, Some(0.93));
    assert_eq!(
        (r.pose_centre_x_mm, r.pose_centre_y_mm, r.pose_rotation_deg),
        (Some(255.5), Some(250.25), Some(-0.75))
    );
    assert_eq!(
        (
            r.slab_centre_index,
            r.slab_n_slices,
            r.slab_mm,
            r.slab_centre_z_mm
        ),
        (Some(32), Some(3), Some(5.0), Some(-1.25))
    );
    assert_eq!(r.assignment.as_deref(), Some("layout"));
    assert_eq!(
        (r.absolute_pass, r.constancy_pass),
        (Some(true), Some(true))
    );
    assert_eq!(r.pearson_r, Some(0.99987));
    assert_eq!(r.baseline_source.as_deref(), Some("baseline.csv"));
    assert_eq!(r.warnings, run.warnings);
    assert_eq!(r.error, None);
    assert_eq!(r.summary_json, run.summary_json);
    assert_eq!(
        r.outputs_dir.as_deref(),
        Some(format!("results/{id}").as_str())
    );
    assert!(r.amended);
    assert_eq!(r.scanner.as_deref(), Some("CT Sim 1"));
    assert_eq!(r.fingerprint, fp);

    assert_eq!(detail.materials.len(), 2);
    assert_eq!(detail.materials[0].seq, 0);
    assert_eq!(detail.materials[0].values, run.materials[0]);
    let water = &detail.materials[1].values;
    assert_eq!(water.insert, "Water");
    assert!(water.hu_std.is_nan(), "NaN round-trips as NULL → NaN");
    assert_eq!(water.note.as_deref(), Some("no baseline value"));
    assert_eq!(water.within_tolerance, Some(false));
    assert_eq!(water.hu_window, None);
    assert_eq!(detail.rois.len(), 2);
    assert_eq!(detail.rois[0].values, run.rois[0]);
    assert_eq!(detail.rois[1].values, run.rois[1]);
    assert!(detail.rois.iter().all(|r| r.run_id == id));

    let series = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(series.state, SeriesState::Done);
    assert_eq!(series.last_run_id, Some(id));
    assert_eq!(series.analysed(), Some(fp.clone()));

    let outbox = store.outbox_for_run(id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        outbox[0].recipients,
        ["physics@example.org", "qa@example.org"]
    );
    assert_eq!(outbox[0].subject, "HU-RED QA PASS — CT Sim 1");
    assert_eq!(outbox[0].state, OutboxState::Pending);
    assert_eq!(outbox[0].attempts, 0);
    assert!(outbox[0].next_attempt_at <= now_ms());

    // a failed run of another series: series failed, no outbox, the reason kept
    let f = series_uid(41);
    store.record_instance(&inst(&f, 1)).await.unwrap();
    to_analysing(&store, &f).await;
    let mut failed = NewRun::new(
        &f,
        RunStatus::Failed,
        Verdict::Error,
        store.series_fingerprint(&f).await.unwrap(),
        3_000,
        3_100,
    );
    failed.error = Some("no phantom found in series".into());
    let fid = store.insert_run(&failed).await.unwrap();
    assert!(fid > id);
    let series = store.get_series(&f).await.unwrap().unwrap();
    assert_eq!(series.state, SeriesState::Failed);
    let d = store.get_run(fid).await.unwrap().unwrap();
    assert_eq!(d.run.error.as_deref(), Some("no phantom found in series"));
    assert_eq!(d.run.outputs_dir, None);
    assert!(d.materials.is_empty() && d.rois.is_empty());
    assert!(store.outbox_for_run(fid).await.unwrap().is_empty());
    assert!(store.get_run(fid + 1000).await.unwrap().is_none());

    let runs = store.series_runs(&s).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    store.close().await;
    db.finish().await;
}

async fn insert_run_is_atomic(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(50);
    store.record_instance(&inst(&s, 1)).await.unwrap();
    to_analysing(&store, &s).await;
    let fp = store.series_fingerprint(&s).await.unwrap();

    // The last statement of the transaction fails (an outbox message without recipients is
    // refused by the database): nothing of the run may remain.
    let mut bad = sample_run(&s, fp.clone());
    bad.outbox = Some(message(&[], "x", "x@example.org"));
    let e = insert(&store, &bad).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains(&s) && m.contains("notification"), "{m}");
    for table in ["runs", "material_results", "roi_measurements", "outbox"] {
        assert_eq!(
            db.count(table).await,
            0,
            "{table} after a failed insert_run"
        );
    }
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.state, SeriesState::Analysing);
    assert_eq!(row.last_run_id, None);
    assert_eq!(row.analysed(), None);

    // A failure in the middle (a negative pixel count violates a CHECK) rolls back too.
    let mut bad = sample_run(&s, fp.clone());
    bad.rois[1].n_pixels = -1;
    assert!(insert(&store, &bad).await.is_err());
    for table in ["runs", "material_results", "roi_measurements", "outbox"] {
        assert_eq!(
            db.count(table).await,
            0,
            "{table} after a failed insert_run"
        );
    }

    // A run of an unknown series is refused.
    let ghost = sample_run("9.8.7.6", fp.clone());
    assert!(insert(&store, &ghost).await.is_err());
    assert_eq!(db.count("runs").await, 0);

    // The same run, valid, goes in whole.
    let id = insert(&store, &sample_run(&s, fp)).await.unwrap();
    assert_eq!(db.count("runs").await, 1);
    assert_eq!(db.count("material_results").await, 2);
    assert_eq!(db.count("roi_measurements").await, 2);
    assert_eq!(db.count("outbox").await, 1);
    assert_eq!(
        store.get_series(&s).await.unwrap().unwrap().last_run_id,
        Some(id)
    );
    store.close().await;
    db.finish().await;
}

async fn run_finishing_after_a_reopen_keeps_the_series_receiving(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(60);
    store.record_instance(&inst(&s, 1)).await.unwrap();
    to_analysing(&store, &s).await;
    let analysed = store.series_instances(&s).await.unwrap();
    // an instance arrives while the worker analyses
    let o = store.record_instance(&inst(&s, 2)).await.unwrap();
    assert!(o.reopened);
    let id = insert(&store, &sample_run(&s, Fingerprint::of(&analysed)))
        .await
        .unwrap();
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(
        row.state,
        SeriesState::Receiving,
        "analysed again once stable"
    );
    assert!(row.amended);
    assert_eq!(row.last_run_id, Some(id));
    let analysed_fp = row.analysed().unwrap();
    assert_eq!(analysed_fp.n_instances, 1);
    assert_ne!(
        analysed_fp,
        store.series_fingerprint(&s).await.unwrap(),
        "the current set differs from the analysed one"
    );
    store.close().await;
    db.finish().await;
}

async fn reset_interrupted_returns_analysing_to_stable(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let (a, d, r) = (series_uid(70), series_uid(71), series_uid(72));
    for s in [&a, &d, &r] {
        store.record_instance(&inst(s, 1)).await.unwrap();
    }
    to_analysing(&store, &a).await;
    to_analysing(&store, &d).await;
    let fp = store.series_fingerprint(&d).await.unwrap();
    insert(&store, &sample_run(&d, fp)).await.unwrap();
    // crash: a new process opens the database
    store.close().await;
    drop(store);
    let store = db.open().await;
    assert_eq!(store.reset_interrupted().await.unwrap(), 1);
    let state = |uid: String| {
        let store = store.clone();
        async move { store.get_series(&uid).await.unwrap().unwrap().state }
    };
    assert_eq!(state(a.clone()).await, SeriesState::Stable);
    assert_eq!(state(d.clone()).await, SeriesState::Done);
    assert_eq!(state(r.clone()).await, SeriesState::Receiving);
    let stable: Vec<String> = store
        .series_in_state(SeriesState::Stable)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.series_instance_uid)
        .collect();
    assert_eq!(stable, vec![a.clone()]);
    assert_eq!(store.reset_interrupted().await.unwrap(), 0);
    // and it can be claimed again
    assert!(store
        .claim_series(&a, SeriesState::Stable, SeriesState::Analysing)
        .await
        .unwrap());
    store.close().await;
    db.finish().await;
}

async fn data_survives_a_reopen(kind: Kind) {
    let db = Db::new(&kind).await;
    let s = series_uid(80);
    let run_id = {
        let store = db.open().await;
        for n in 1..=5 {
            store.record_instance(&inst(&s, n)).await.unwrap();
        }
        to_analysing(&store, &s).await;
        let fp = store.series_fingerprint(&s).await.unwrap();
        let id = insert(&store, &sample_run(&s, fp)).await.unwrap();
        // no close(): the handle is simply dropped, as in a process exit
        drop(store);
        id
    };
    // a brand-new store (new pool, new connections) sees everything
    let store = db.open().await;
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.n_instances, 5);
    assert_eq!(row.state, SeriesState::Done);
    assert_eq!(row.last_run_id, Some(run_id));
    assert_eq!(store.series_instances(&s).await.unwrap().len(), 5);
    let d = store.get_run(run_id).await.unwrap().unwrap();
    assert_eq!(d.materials.len(), 2);
    assert_eq!(store.outbox_for_run(run_id).await.unwrap().len(), 1);
    if let Kind::Sqlite = kind {
        // and the file is readable by any other SQLite client right away (WAL committed)
        assert_eq!(db.count("instances").await, 5);
    }
    store.close().await;
    db.finish().await;
}

async fn fingerprints_identify_the_instance_set(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(90);
    for n in [3, 1, 2] {
        store.record_instance(&inst(&s, n)).await.unwrap();
    }
    let fp = store.series_fingerprint(&s).await.unwrap();
    let instances = store.series_instances(&s).await.unwrap();
    assert_eq!(fp, Fingerprint::of(&instances));
    assert_eq!(fp.n_instances, 3);
    let uids: BTreeSet<String> = (1..=3).map(|n| format!("{s}.{n}")).collect();
    assert_eq!(fp, Fingerprint::of_uids(uids.iter().map(String::as_str)));
    // series_instances is ordered and carries what a worker needs
    let listed: Vec<&str> = instances
        .iter()
        .map(|i| i.sop_instance_uid.as_str())
        .collect();
    assert_eq!(listed, uids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(instances
        .iter()
        .all(|i| i.analysable && i.rel_path.ends_with(".dcm")));
    // a re-send of the same instance does not change the set
    store.record_instance(&inst(&s, 2)).await.unwrap();
    assert_eq!(store.series_fingerprint(&s).await.unwrap(), fp);
    // a new instance does
    store.record_instance(&inst(&s, 4)).await.unwrap();
    let fp4 = store.series_fingerprint(&s).await.unwrap();
    assert_ne!(fp4, fp);
    assert_eq!(fp4.n_instances, 4);
    // an unknown series has the empty set
    assert_eq!(
        store.series_fingerprint("9.9").await.unwrap().n_instances,
        0
    );
    // finish_series records the fingerprint with the state
    assert!(store
        .claim_series(&s, SeriesState::Receiving, SeriesState::Analysing)
        .await
        .unwrap());
    assert!(store
        .finish_series(
            &s,
            SeriesState::Analysing,
            SeriesState::NotAnalysed,
            Some(&fp4)
        )
        .await
        .unwrap());
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.state, SeriesState::NotAnalysed);
    assert_eq!(row.analysed(), Some(fp4));
    store.close().await;
    db.finish().await;
}

async fn listings_are_ordered_and_limited(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let mut ids = Vec::new();
    for k in 0..5u32 {
        let s = series_uid(200 + k);
        store
            .record_instance_at(&inst(&s, 1), 1_000 * i64::from(k))
            .await
            .unwrap();
        to_analysing(&store, &s).await;
        let fp = store.series_fingerprint(&s).await.unwrap();
        ids.push(insert(&store, &sample_run(&s, fp)).await.unwrap());
    }
    let series = store.list_series(3).await.unwrap();
    assert_eq!(
        series
            .iter()
            .map(|r| r.series_instance_uid.clone())
            .collect::<Vec<_>>(),
        [series_uid(204), series_uid(203), series_uid(202)]
    );
    let runs = store.list_runs(2).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    assert_eq!(store.list_runs(100).await.unwrap().len(), 5);
    store.close().await;
    db.finish().await;
}

async fn errors_name_the_database_without_the_password(kind: Kind) {
    match kind {
        Kind::Sqlite => {
            // a SQLite "file" that is a folder cannot be opened
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().display());
            let e = Store::connect(&url).await.unwrap_err();
            let m = e.to_string();
            assert!(m.contains(&dir.path().display().to_string()), "{m}");
        }
        Kind::Postgres(base) => {
            // same server, wrong password
            let secret = "wrong-secret-pw";
            let rest = base.split_once("://").unwrap().1;
            let host_part = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            let url = format!("postgres://postgres:{secret}@{host_part}");
            let opts = StoreOptions {
                acquire_timeout: std::time::Duration::from_secs(5),
                ..Default::default()
            };
            let e = Store::connect_with(&url, &opts).await.unwrap_err();
            let m = format!("{e} {e:?}");
            assert!(!m.contains(secret), "{m}");
            assert!(m.contains("postgres:***@"), "{m}");
        }
    }
}

async fn scanners_follow_the_configuration(kind: Kind) {
    use hu_red::config::ScannerConfig;
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let ct = ScannerConfig {
        name: "CT Sim 1".into(),
        calling_ae: Some("CT_SIM01".into()),
        station_name: None,
        phantom: Some("cirs062".into()),
        recipients: vec!["physics@example.org".into()],
    };
    let obi = ScannerConfig {
        name: "Linac 2 OBI".into(),
        calling_ae: None,
        station_name: Some("LINAC2".into()),
        phantom: None,
        recipients: vec![],
    };
    store
        .sync_scanners(&[obi.clone(), ct.clone()])
        .await
        .unwrap();
    let rows = store.list_scanners().await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["CT Sim 1", "Linac 2 OBI"]
    );
    assert_eq!(rows[0].calling_ae.as_deref(), Some("CT_SIM01"));
    assert_eq!(rows[0].phantom.as_deref(), Some("cirs062"));
    assert_eq!(rows[0].recipients, ["physics@example.org"]);
    assert_eq!(rows[1].station_name.as_deref(), Some("LINAC2"));
    assert!(rows[1].recipients.is_empty());
    // a later configuration replaces the list
    store.sync_scanners(&[ct]).await.unwrap();
    assert_eq!(store.list_scanners().await.unwrap().len(), 1);
    store.sync_scanners(&[]).await.unwrap();
    assert!(store.list_scanners().await.unwrap().is_empty());
    store.close().await;
    db.finish().await;
}

async fn forget_instance_recounts_its_series(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(120);
    for n in 1..=3 {
        store.record_instance(&inst(&s, n)).await.unwrap();
    }
    assert!(store.forget_instance(&format!("{s}.2")).await.unwrap());
    assert!(
        !store.forget_instance(&format!("{s}.2")).await.unwrap(),
        "already gone"
    );
    let row = store.get_series(&s).await.unwrap().unwrap();
    assert_eq!(row.n_instances, 2);
    assert!(row.analysable);
    let paths: BTreeSet<String> = store
        .instance_paths()
        .await
        .unwrap()
        .into_iter()
        .map(|(sop, _)| sop)
        .collect();
    assert_eq!(
        paths,
        [format!("{s}.1"), format!("{s}.3")].into_iter().collect()
    );
    assert_eq!(db.count("instances").await, 2);
    store.close().await;
    db.finish().await;
}

/// The SCP records an instance while its file is made durable: a crash in between leaves a
/// row without a file (never acknowledged), which start-up recovery removes; more missing
/// files than could be in flight are left alone (a wrong data_dir must not empty the DB).
async fn recovery_removes_rows_whose_file_never_arrived(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let data = tempfile::tempdir().unwrap();
    let s = series_uid(121);
    for n in 1..=5 {
        let i = inst(&s, n);
        if n <= 3 {
            let path = data.path().join(&i.rel_path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"placeholder").unwrap();
        }
        store.record_instance(&i).await.unwrap();
    }
    let r = hu_red::series::recover(&store, data.path(), 16)
        .await
        .unwrap();
    assert_eq!(r.forgotten, 2);
    assert_eq!(r.recorded, 0);
    assert_eq!(store.get_series(&s).await.unwrap().unwrap().n_instances, 3);
    assert!(store
        .get_instance(&format!("{s}.4"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_instance(&format!("{s}.3"))
        .await
        .unwrap()
        .is_some());

    // 4 rows without files and at most 2 in flight: nothing is deleted
    let s2 = series_uid(122);
    for n in 1..=4 {
        store.record_instance(&inst(&s2, n)).await.unwrap();
    }
    let r = hu_red::series::recover(&store, data.path(), 2)
        .await
        .unwrap();
    assert_eq!(r.forgotten, 0);
    assert_eq!(store.get_series(&s2).await.unwrap().unwrap().n_instances, 4);
    assert_eq!(db.count("instances").await, 7);
    store.close().await;
    db.finish().await;
}

fn baseline(scanner: &str, phantom: &str, key: &str, water: f64) -> NewBaseline {
    NewBaseline {
        scanner_id: scanner.into(),
        scanner_label: Some(format!("label {scanner}")),
        manufacturer: Some("SIEMENS".into()),
        model: Some("go.Open Pro".into()),
        phantom_id: phantom.into(),
        protocol_key: key.into(),
        kvp: Some(120.0),
        kernel: Some("B30f".into()),
        slice_thickness_mm: Some(2.0),
        source: "import test.csv".into(),
        run_id: None,
        provisional: false,
        note: None,
        set_by: None,
        entries: vec![
            NewBaselineEntry {
                insert: "water".into(),
                hu_mean: Some(water),
                red: Some(1.0),
            },
            NewBaselineEntry {
                insert: "liver".into(),
                hu_mean: None,
                red: Some(1.05),
            },
        ],
    }
}

async fn baselines_supersede_and_keep_their_history(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let a = store
        .insert_baseline(&baseline("SN1", "cirs062", "k1", 1.0))
        .await
        .unwrap();
    let b = store
        .insert_baseline(&baseline("SN1", "cirs062", "k1", 2.0))
        .await
        .unwrap();
    let c = store
        .insert_baseline(&baseline("SN1", "cirs062", "k2", 3.0))
        .await
        .unwrap();
    let other = store
        .insert_baseline(&baseline("SN2", "cirs062", "k1", 4.0))
        .await
        .unwrap();
    let active = store.active_baselines("SN1", "cirs062").await.unwrap();
    let ids: BTreeSet<i64> = active.iter().map(|x| x.id).collect();
    assert_eq!(ids, [b, c].into_iter().collect());
    let old = store.get_baseline(a).await.unwrap().unwrap();
    assert_eq!(old.superseded_by, Some(b));
    assert!(old.superseded_at.is_some() && !old.is_active());
    let nb = store.get_baseline(b).await.unwrap().unwrap();
    assert_eq!(nb.entries.len(), 2);
    assert_eq!(nb.entries[0].hu_mean, Some(2.0));
    assert_eq!(
        nb.entries[1].hu_mean, None,
        "a listed material without a value"
    );
    assert!(
        nb.confirmed_at.is_some(),
        "a baseline set by hand is confirmed"
    );
    // listings: active / history, filtered by scanner id or label
    let shown = store
        .list_baselines(&BaselineFilter {
            scanner: Some("label sn1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(shown.len(), 2);
    let hist = store
        .list_baselines(&BaselineFilter {
            scanner: Some("SN1".into()),
            history: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hist.iter().map(|x| x.id).collect::<Vec<_>>(), vec![c, b, a]);
    assert!(store
        .get_baseline(other)
        .await
        .unwrap()
        .unwrap()
        .is_active());
    // an empty baseline is refused
    let mut empty = baseline("SN1", "cirs062", "k3", 0.0);
    empty.entries.clear();
    assert!(store.insert_baseline(&empty).await.is_err());
    // confirming a provisional one
    let mut p = baseline("SN3", "easycube", "k1", 0.0);
    p.provisional = true;
    let pid = store.insert_baseline(&p).await.unwrap();
    assert!(store.get_baseline(pid).await.unwrap().unwrap().provisional);
    assert!(store.confirm_baseline(pid, "alice").await.unwrap());
    let confirmed = store.get_baseline(pid).await.unwrap().unwrap();
    assert!(!confirmed.provisional && confirmed.confirmed_at.is_some());
    assert!(!store.confirm_baseline(999_999, "alice").await.unwrap());
    store.close().await;
    db.finish().await;
}

/// A baseline stored under the family id `catphan_ctp404` (before hu-red told the Catphan
/// variants apart) serves a `catphan_604` run of the same scanner and protocol until the variant
/// has its own; another variant's baseline never does.
async fn family_baselines_serve_variants(kind: Kind) {
    use hu_red::identity::{choose_preferring, Protocol, ProtocolField};
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let fields = ProtocolField::ALL;
    let p120 = Protocol {
        kvp: Some(120.0),
        kernel: Some("B30f".into()),
        slice_thickness_mm: Some(2.0),
    };
    let key = p120.key(&fields);
    let old_legacy = store
        .insert_baseline(&baseline("SN-F", "catphan_ctp404", &key, 1.0))
        .await
        .unwrap();
    let legacy = store
        .insert_baseline(&baseline("SN-F", "catphan_ctp404", &key, 2.0))
        .await
        .unwrap();
    let other_variant = store
        .insert_baseline(&baseline("SN-F", "catphan_504", &key, 3.0))
        .await
        .unwrap();
    store
        .insert_baseline(&baseline("SN-G", "catphan_ctp404", &key, 4.0))
        .await
        .unwrap();
    let ids = ["catphan_604", "catphan_ctp404"];
    let pick = |rows: &[BaselineRow]| {
        choose_preferring(rows, &p120, &fields, |b: &BaselineRow| {
            b.phantom_id == "catphan_604"
        })
        .map(|(b, diffs)| (b.id, diffs))
    };
    // only the active legacy baseline of this scanner: not the superseded one, not the 504's,
    // not another scanner's
    let rows = store.active_baselines_any("SN-F", &ids).await.unwrap();
    assert_eq!(rows.iter().map(|b| b.id).collect::<Vec<_>>(), [legacy]);
    assert_eq!(rows[0].entries[0].hu_mean, Some(2.0));
    assert_eq!(pick(&rows), Some((legacy, None)));
    assert!(!rows
        .iter()
        .any(|b| b.id == old_legacy || b.id == other_variant));
    // the variant's own baseline for the protocol wins, though older ids would not matter
    let own = store
        .insert_baseline(&baseline("SN-F", "catphan_604", &key, 5.0))
        .await
        .unwrap();
    let rows = store.active_baselines_any("SN-F", &ids).await.unwrap();
    assert_eq!(
        rows.iter().map(|b| b.id).collect::<BTreeSet<_>>(),
        [legacy, own].into_iter().collect()
    );
    assert_eq!(pick(&rows), Some((own, None)));
    // the plain lookup is unchanged: the exact id only
    let exact = store.active_baselines("SN-F", "catphan_604").await.unwrap();
    assert_eq!(exact.iter().map(|b| b.id).collect::<Vec<_>>(), [own]);
    assert!(store
        .active_baselines_any("SN-F", &[])
        .await
        .unwrap()
        .is_empty());
    // listing by several ids (`hu-red baseline show --phantom catphan_ctp404`)
    let shown = store
        .list_baselines(&BaselineFilter {
            scanner: Some("SN-F".into()),
            phantom_ids: vec![
                "catphan_ctp404".into(),
                "catphan_504".into(),
                "catphan_604".into(),
            ],
            history: false,
        })
        .await
        .unwrap();
    assert_eq!(
        shown.iter().map(|b| b.id).collect::<Vec<_>>(),
        [own, other_variant, legacy]
    );
    store.close().await;
    db.finish().await;
}

async fn auto_baseline_never_replaces_one(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(130);
    for n in 1..=2 {
        store.record_instance(&inst(&s, n)).await.unwrap();
    }
    to_analysing(&store, &s).await;
    let fp = store.series_fingerprint(&s).await.unwrap();
    let mut run = sample_run(&s, fp.clone());
    let mut prov = baseline("SN9", "cirs062", "k1", 5.0);
    prov.provisional = true;
    run.provisional_baseline = Some(prov.clone());
    let id = insert(&store, &run).await.unwrap();
    let active = store.active_baselines("SN9", "cirs062").await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].run_id, Some(id), "linked to its run");
    assert_eq!(active[0].source, format!("run {id}"));
    assert!(active[0].provisional && active[0].confirmed_at.is_none());
    // a second run with an auto baseline for the same key: the first one stays
    store.record_instance(&inst(&s, 3)).await.unwrap();
    to_analysing(&store, &s).await;
    let mut run2 = sample_run(&s, store.series_fingerprint(&s).await.unwrap());
    run2.outbox = Some(message(&["a@example.org"], "x", "m2@example.org"));
    run2.provisional_baseline = Some(prov);
    insert(&store, &run2).await.unwrap();
    let active = store.active_baselines("SN9", "cirs062").await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].run_id, Some(id));
    assert_eq!(db.count("baselines").await, 1);
    store.close().await;
    db.finish().await;
}

async fn outbox_delivery_states(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let s = series_uid(140);
    store.record_instance(&inst(&s, 1)).await.unwrap();
    to_analysing(&store, &s).await;
    let run = sample_run(&s, store.series_fingerprint(&s).await.unwrap());
    // the message is made with the new run id, inside the run's transaction
    let id = store
        .insert_run_with(&run.run, |id| {
            Some(message(
                &["physics@example.org"],
                &format!("report {id}"),
                &format!("run-{id}@example.org"),
            ))
        })
        .await
        .unwrap();
    let rows = store.outbox_for_run(id).await.unwrap();
    assert_eq!(rows.len(), 1);
    let m = &rows[0];
    assert_eq!(m.subject, format!("report {id}"));
    assert_eq!(m.message_id, format!("run-{id}@example.org"));
    assert_eq!((m.state, m.attempts), (OutboxState::Pending, 0));
    assert_eq!(m.text_body, format!("text of report {id}"));

    // claimed once only
    let now = now_ms();
    let claimed = store.claim_due_messages(now, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].state, OutboxState::Sending);
    assert!(store.claim_due_messages(now, 10).await.unwrap().is_empty());
    // a failed attempt: pending again, later
    store
        .mark_message_failed(m.id, "connection refused", now + 60_000, false)
        .await
        .unwrap();
    let r = store.get_outbox(m.id).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts), (OutboxState::Pending, 1));
    assert_eq!(r.last_error.as_deref(), Some("connection refused"));
    assert!(
        store.claim_due_messages(now, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.next_message_due().await.unwrap(), Some(now + 60_000));
    // due: claimed; the sender stops mid-send → back to pending at start
    assert_eq!(
        store
            .claim_due_messages(now + 60_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.reset_sending_messages().await.unwrap(), 1);
    // deferred without counting an attempt
    assert_eq!(
        store
            .claim_due_messages(now + 60_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.defer_message(m.id, now + 61_000).await.unwrap();
    let r = store.get_outbox(m.id).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts), (OutboxState::Pending, 1));
    // dead-lettered, listed as undelivered; a re-send is a new row with its own id
    store.claim_due_messages(now + 61_000, 10).await.unwrap();
    store
        .mark_message_failed(m.id, "refused", now, true)
        .await
        .unwrap();
    let und = store.undelivered(10).await.unwrap();
    assert_eq!(und.len(), 1);
    assert_eq!(und[0].state, OutboxState::Dead);
    let mut again = message(
        &["physics@example.org"],
        "again",
        &format!("run-{id}.resend-1@example.org"),
    );
    again.kind = OutboxKind::Resend;
    let rid = store.queue_message(id, &again).await.unwrap();
    // the same Message-ID twice is refused (one message per id)
    assert!(store.queue_message(id, &again).await.is_err());
    let c = store.claim_due_messages(now_ms(), 10).await.unwrap();
    assert_eq!(c.iter().map(|x| x.id).collect::<Vec<_>>(), vec![rid]);
    store.mark_message_sent(rid, now_ms()).await.unwrap();
    let r = store.get_outbox(rid).await.unwrap().unwrap();
    assert_eq!(
        (r.state, r.attempts, r.kind),
        (OutboxState::Sent, 1, OutboxKind::Resend)
    );
    assert!(r.sent_at.is_some() && r.last_error.is_none());
    assert_eq!(
        store.undelivered(10).await.unwrap().len(),
        1,
        "only the dead one"
    );
    // the installation id is made once and kept
    let inst_id = store.installation_id().await.unwrap();
    assert_eq!(inst_id.len(), 16);
    assert_eq!(store.installation_id().await.unwrap(), inst_id);
    store.close().await;
    assert_eq!(db.open().await.installation_id().await.unwrap(), inst_id);
    db.finish().await;
}

async fn trend_of_a_scanner_and_phantom(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let mut ids = Vec::new();
    for k in 0..4u32 {
        let s = series_uid(150 + k);
        store.record_instance(&inst(&s, 1)).await.unwrap();
        to_analysing(&store, &s).await;
        let mut run = sample_run(&s, store.series_fingerprint(&s).await.unwrap());
        run.outbox = None;
        run.identity.scanner_id = Some(if k == 2 { "SN-other" } else { "SN-T" }.into());
        run.identity.study_date = Some(format!("2026-11-0{}", k + 1));
        run.phantom_id = Some("cirs062".into());
        for m in &mut run.materials {
            m.delta_hu = Some(f64::from(k));
        }
        ids.push(insert(&store, &run).await.unwrap());
    }
    let t = store
        .trend("SN-T", &["cirs062"], i64::MAX, 12)
        .await
        .unwrap()
        .runs;
    assert_eq!(
        t.iter().map(|x| x.run_id).collect::<Vec<_>>(),
        vec![ids[0], ids[1], ids[3]]
    );
    assert_eq!(t[2].study_date.as_deref(), Some("2026-11-04"));
    assert_eq!(t[2].materials.len(), 2);
    assert_eq!(t[2].materials[0].delta_hu, Some(3.0));
    assert_eq!(t[2].materials[0].tolerance_hu, Some(20.0));
    assert_eq!(t[2].materials[0].delta_red_percent, Some(-0.2));
    // without an acquisition time, by analysis time (all the same here), then id
    assert_eq!(t[2].acquired_at, None);
    assert_eq!(t[2].at(), t[2].finished_at);
    // the most recent `limit`, up to a run
    let t = store.trend("SN-T", &["cirs062"], ids[1], 1).await.unwrap();
    assert_eq!(
        t.runs.iter().map(|x| x.run_id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert!(store
        .trend("SN-T", &["easycube"], i64::MAX, 12)
        .await
        .unwrap()
        .runs
        .is_empty());
    // a variant's trend takes in the runs stored under its family id (before the variants
    // were told apart), not another variant's
    let mut fam_ids = Vec::new();
    for (k, phantom) in ["catphan_ctp404", "catphan_504", "catphan_604"]
        .iter()
        .enumerate()
    {
        let s = series_uid(160 + k as u32);
        store.record_instance(&inst(&s, 1)).await.unwrap();
        to_analysing(&store, &s).await;
        let mut run = sample_run(&s, store.series_fingerprint(&s).await.unwrap());
        run.outbox = None;
        run.identity.scanner_id = Some("SN-T".into());
        run.phantom_id = Some((*phantom).into());
        fam_ids.push(insert(&store, &run).await.unwrap());
    }
    let t = store
        .trend("SN-T", &["catphan_504", "catphan_ctp404"], i64::MAX, 12)
        .await
        .unwrap()
        .runs;
    assert_eq!(
        t.iter().map(|x| x.run_id).collect::<Vec<_>>(),
        vec![fam_ids[0], fam_ids[1]]
    );
    let t = store
        .trend("SN-T", &["catphan_604", "catphan_ctp404"], i64::MAX, 1)
        .await
        .unwrap()
        .runs;
    assert_eq!(
        t.iter().map(|x| x.run_id).collect::<Vec<_>>(),
        vec![fam_ids[2]]
    );
    // the run row carries its identity
    let r = store.get_run(ids[3]).await.unwrap().unwrap().run;
    assert_eq!(r.identity.scanner_id.as_deref(), Some("SN-T"));
    store.close().await;
    db.finish().await;
}

/// Unix ms of `2026-MM-15 09:00` (the acquisition's wall clock read as UTC).
fn month_ms(month: u32) -> i64 {
    // 2026-01-15 09:00 UTC
    const JAN: i64 = 1_768_467_600_000;
    let days_before: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    JAN + days_before[month as usize - 1] * 86_400_000
}

/// Store a successful run of scanner `scanner`, protocol `protocol`, acquired at `acquired`,
/// evaluated against `baseline`; water's ΔHU is `water`.
async fn store_trend_run(
    store: &Store,
    n: u32,
    scanner: &str,
    protocol: &str,
    acquired: Option<i64>,
    baseline: Option<i64>,
    water: f64,
) -> i64 {
    let s = series_uid(n);
    store.record_instance(&inst(&s, 1)).await.unwrap();
    to_analysing(store, &s).await;
    let mut run = sample_run(&s, store.series_fingerprint(&s).await.unwrap());
    run.outbox = None;
    run.scanner = Some(format!("CT {scanner}"));
    run.identity.scanner_id = Some(scanner.into());
    run.identity.protocol_key = Some(protocol.into());
    run.identity.acquired_at = acquired;
    run.baseline_id = baseline;
    for m in &mut run.materials {
        m.delta_hu = Some(water);
        m.delta_red_percent = Some(water / 10.0);
    }
    insert(store, &run).await.unwrap()
}

/// The issue's year: monthly scans the PACS sends out of order (February after March, and
/// May after everything else); every trend is ordered by acquisition, a late scan lands at its
/// date, and the baselines come with the time of their own run.
async fn a_year_of_monthly_runs_sent_out_of_order(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    let arrival = [1u32, 3, 2, 4, 6, 7, 8, 9, 10, 11, 12, 5];
    let mut id_of = std::collections::BTreeMap::new();
    let mut b1 = None;
    let mut b2 = None;
    for (k, &month) in arrival.iter().enumerate() {
        // baseline 1 from January's run; from July on, baseline 2 from June's run
        let baseline = if month >= 7 { b2 } else { b1 };
        let id = store_trend_run(
            &store,
            300 + k as u32,
            "SN-Y",
            "kvp=120",
            Some(month_ms(month)),
            baseline,
            f64::from(month),
        )
        .await;
        id_of.insert(month, id);
        let mut b = baseline_of_run("SN-Y", id);
        if month == 1 {
            b1 = Some(store.insert_baseline(&b).await.unwrap());
        } else if month == 6 {
            b.note = Some("after the tube change".into());
            b2 = Some(store.insert_baseline(&b).await.unwrap());
        }
    }
    let months = |t: &RunTrend| -> Vec<u32> {
        t.runs
            .iter()
            .map(|r| {
                *id_of
                    .iter()
                    .find(|(_, id)| **id == r.run_id)
                    .map(|(m, _)| m)
                    .unwrap()
            })
            .collect()
    };
    // the whole year, by acquisition date: February and May at their dates
    let t = store
        .trend("SN-Y", &["cirs062"], i64::MAX, 12)
        .await
        .unwrap();
    assert_eq!(months(&t), (1..=12).collect::<Vec<_>>());
    let at: Vec<i64> = t.runs.iter().map(|r| r.at()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    assert_eq!(t.runs[1].acquired_at, Some(month_ms(2)));
    // the baselines, each with its own run's acquisition time
    assert_eq!(t.baselines.len(), 2);
    let (b1, b2) = (b1.unwrap(), b2.unwrap());
    let first = t.baseline(b1).unwrap();
    assert_eq!(
        (first.run_id, first.run_at),
        (Some(id_of[&1]), Some(month_ms(1)))
    );
    let second = t.baseline(b2).unwrap();
    assert_eq!(
        (second.run_id, second.run_at),
        (Some(id_of[&6]), Some(month_ms(6)))
    );
    assert_eq!(second.source, format!("run {}", id_of[&6]));
    assert_eq!(t.runs[0].baseline_id, None, "January had no baseline yet");
    assert_eq!(t.runs[6].baseline_id, Some(b2));
    // the report of March's run: the runs known then (January, March), by date
    let t = store
        .trend("SN-Y", &["cirs062"], id_of[&3], 12)
        .await
        .unwrap();
    assert_eq!(months(&t), [1, 3]);
    // the report of the late February run: January, February, March
    let t = store
        .trend("SN-Y", &["cirs062"], id_of[&2], 12)
        .await
        .unwrap();
    assert_eq!(months(&t), [1, 2, 3]);
    // "the most recent" are the most recent by acquisition, not by arrival: May, stored
    // last, is not among the last three
    let t = store
        .trend("SN-Y", &["cirs062"], i64::MAX, 3)
        .await
        .unwrap();
    assert_eq!(months(&t), [10, 11, 12]);
    let t = store
        .trend("SN-Y", &["cirs062"], i64::MAX, 8)
        .await
        .unwrap();
    assert_eq!(months(&t), (5..=12).collect::<Vec<_>>());
    // the run row carries its acquisition time
    let r = store.get_run_row(id_of[&5]).await.unwrap().unwrap();
    assert_eq!(r.identity.acquired_at, Some(month_ms(5)));
    // the dashboard's trend of the same: the same order
    let key = TrendKey {
        scanner_id: "SN-Y".into(),
        phantom_id: "cirs062".into(),
        protocol_key: "kvp=120".into(),
    };
    let (t, more) = store
        .protocol_trend(&TrendQuery {
            key,
            from_ms: None,
            before_ms: None,
            limit: 400,
        })
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(months(&t), (1..=12).collect::<Vec<_>>());
    assert_eq!(t.baselines.len(), 2);
    store.close().await;
    db.finish().await;
}

/// A baseline taken from run `id` (as `baseline set --run` stores it).
fn baseline_of_run(scanner: &str, id: i64) -> NewBaseline {
    let mut b = baseline(scanner, "cirs062", "kvp=120", 0.0);
    b.run_id = Some(id);
    b.source = format!("run {id}");
    b
}

/// The dashboard's choices (scanner, phantom, protocol; the most recent first) and the trend
/// of one of them: its protocol only, a period, the most recent `limit` and whether there
/// were more.
async fn the_dashboard_trend_of_a_protocol(kind: Kind) {
    let db = Db::new(&kind).await;
    let store = db.open().await;
    assert!(store.trend_choices().await.unwrap().is_empty());
    let mut ids = Vec::new();
    for (k, (scanner, protocol, month)) in [
        ("SN-A", "kvp=120", 3),
        ("SN-A", "kvp=80", 4),
        ("SN-A", "kvp=120", 1),
        ("SN-B", "kvp=120", 2),
        ("SN-A", "kvp=120", 2),
        ("SN-A", "kvp=120", 5),
    ]
    .into_iter()
    .enumerate()
    {
        let id = store_trend_run(
            &store,
            400 + k as u32,
            scanner,
            protocol,
            Some(month_ms(month)),
            None,
            f64::from(month),
        )
        .await;
        ids.push(id);
    }
    // a failed run is in no trend
    let s = series_uid(499);
    store.record_instance(&inst(&s, 1)).await.unwrap();
    to_analysing(&store, &s).await;
    let mut failed = NewRun::new(
        s.as_str(),
        RunStatus::Failed,
        Verdict::Error,
        store.series_fingerprint(&s).await.unwrap(),
        1,
        2,
    );
    failed.identity.scanner_id = Some("SN-C".into());
    failed.phantom_id = Some("cirs062".into());
    store.insert_run(&failed).await.unwrap();

    let choices = store.trend_choices().await.unwrap();
    let keys: Vec<(&str, &str, i64)> = choices
        .iter()
        .map(|c| {
            (
                c.key.scanner_id.as_str(),
                c.key.protocol_key.as_str(),
                c.runs,
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("SN-A", "kvp=120", 4),
            ("SN-A", "kvp=80", 1),
            ("SN-B", "kvp=120", 1)
        ]
    );
    assert_eq!(choices[0].last_at, month_ms(5));
    assert_eq!(choices[0].scanner.as_deref(), Some("CT SN-A"));
    assert_eq!(choices[0].key.phantom_id, "cirs062");

    let q = TrendQuery {
        key: choices[0].key.clone(),
        from_ms: None,
        before_ms: None,
        limit: 400,
    };
    let (t, more) = store.protocol_trend(&q).await.unwrap();
    assert!(!more);
    let run_ids: Vec<i64> = t.runs.iter().map(|r| r.run_id).collect();
    assert_eq!(run_ids, [ids[2], ids[4], ids[0], ids[5]]);
    assert_eq!(t.runs[3].materials[0].delta_red_percent, Some(0.5));
    // the two most recent by acquisition, and there were more
    let (t, more) = store
        .protocol_trend(&TrendQuery {
            limit: 2,
            ..q.clone()
        })
        .await
        .unwrap();
    assert!(more);
    assert_eq!(
        t.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [ids[0], ids[5]]
    );
    // a period: February and March (before April)
    let (t, more) = store
        .protocol_trend(&TrendQuery {
            from_ms: Some(month_ms(2) - 3_600_000),
            before_ms: Some(month_ms(4)),
            ..q.clone()
        })
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(
        t.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [ids[4], ids[0]]
    );
    // another protocol, and one nobody has
    let (t, _) = store
        .protocol_trend(&TrendQuery {
            key: choices[1].key.clone(),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        t.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        [ids[1]]
    );
    let mut none = q.clone();
    none.key.protocol_key = "kvp=140".into();
    assert!(store.protocol_trend(&none).await.unwrap().0.runs.is_empty());
    store.close().await;
    db.finish().await;
}
