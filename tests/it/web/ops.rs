//! For IT, without login: `/healthz` (200 `ok`; 503 with the reason while the database is
//! really unusable — the SQLite file made immutable, the PostgreSQL cluster stopped — and 200
//! again once it is back, without a restart) and `/metrics` (Prometheus text; the counters
//! follow what storescu sent, the run counts what the database holds).

use super::*;
use crate::common_db::{postgres_kind, Kind};
use crate::common_faults::{Immutable, PrivatePostgres};
use hu_red::store::Verdict;
use std::collections::BTreeMap;

both!(metrics_count_instances_associations_and_runs);

/// Poll `/healthz` until its status is `want`; the last reply.
fn healthz_until(web: &Web, server: &Server, want: u16) -> Reply {
    wait_until(&format!("/healthz answering {want}"), server, || {
        let r = web.get("/healthz", "");
        (r.status == want).then_some(r)
    })
}

fn assert_healthy(web: &Web, server: &Server) {
    let r = healthz_until(web, server, 200);
    assert_eq!(r.body, "ok\n");
}

fn assert_unhealthy_database(web: &Web, server: &Server) {
    let r = healthz_until(web, server, 503);
    assert!(
        r.body.starts_with("unhealthy: database"),
        "503 says why: {}",
        r.body
    );
}

#[test]
fn healthz_fails_while_the_sqlite_file_is_immutable_then_recovers() {
    let h = Harness::new(Kind::Sqlite);
    let server = h.serve(600);
    let web = Web::new(&h, &server);
    let r = web.get("/healthz", "");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let db = h.data_dir().join("hu-red.sqlite");
    let wal = h.data_dir().join("hu-red.sqlite-wal");
    let mut locked = Immutable::set(&[db, wal]);
    assert_unhealthy_database(&web, &server);
    // /metrics still answers, saying the database is down
    let m = web.get("/metrics", "");
    assert_eq!(m.status, 200);
    locked.release();
    assert_healthy(&web, &server);
}

#[test]
fn healthz_fails_while_postgres_is_stopped_then_recovers() {
    if postgres_kind("tests/it/web/ops.rs").is_none() {
        return;
    }
    let pg = PrivatePostgres::start();
    let h = Harness::new(Kind::Postgres(pg.url()));
    let server = h.serve(600);
    let web = Web::new(&h, &server);
    assert_healthy(&web, &server);
    pg.pg_ctl("stop");
    assert_unhealthy_database(&web, &server);
    let m = web.get("/metrics", "");
    assert_eq!(m.status, 200);
    assert_eq!(metrics(&m.body).get("hured_database_up"), Some(&0.0));
    pg.pg_ctl("start");
    assert_healthy(&web, &server);
}

/// `name{labels}` → value of every sample line.
fn metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample {l:?}"));
            let v: f64 = v.parse().unwrap_or_else(|_| panic!("value of {l:?}"));
            (k.to_string(), v)
        })
        .collect()
}

fn scrape(web: &Web) -> BTreeMap<String, f64> {
    let r = web.get("/metrics", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for name in [
        "hured_instances_stored_total",
        "hured_instances_failed_total",
        "hured_associations_total",
        "hured_runs_total",
        "hured_outbox_pending",
        "hured_last_run_timestamp_seconds",
    ] {
        assert!(
            r.body.contains(&format!("# TYPE {name} ")),
            "{name}:\n{}",
            r.body
        );
    }
    metrics(&r.body)
}

fn runs_by_verdict(m: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    Verdict::ALL
        .iter()
        .map(|v| {
            let key = format!("hured_runs_total{{verdict=\"{}\"}}", v.as_str());
            let n = *m.get(&key).unwrap_or_else(|| panic!("{key} in {m:?}"));
            (v.as_str().to_string(), n)
        })
        .collect()
}

/// Sending N instances in A associations adds exactly N to hured_instances_stored_total and A
/// to hured_associations_total; hured_runs_total{verdict} counts the runs of each verdict and
/// hured_last_run_timestamp_seconds{scanner} is the scanner's last run.
fn metrics_count_instances_associations_and_runs(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(1);
    let web = Web::new(&h, &server);
    let m0 = scrape(&web);
    let stored0 = m0["hured_instances_stored_total"];
    let assoc0 = m0["hured_associations_total"];
    assert_eq!(m0["hured_instances_failed_total"], 0.0);
    assert_eq!(m0["hured_outbox_pending"], 0.0);
    assert_eq!(m0["hured_database_up"], 1.0);
    assert!(runs_by_verdict(&m0).values().all(|&n| n == 0.0), "{m0:?}");
    assert!(
        !m0.keys()
            .any(|k| k.starts_with("hured_last_run_timestamp_seconds{")),
        "no run yet: {m0:?}"
    );

    let mk = |name: &str, seed: u64| {
        let dir = h.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        small(&dir, seed, 12, |p| p.station_name = "CT-METRICS".into())
    };
    let a = mk("a", 41);
    let b = mk("b", 42);
    send(&server, &a.files[..5], &[]);
    send(&server, &a.files[5..], &[]);
    let m1 = scrape(&web);
    assert_eq!(m1["hured_instances_stored_total"] - stored0, 12.0, "{m1:?}");
    assert_eq!(m1["hured_associations_total"] - assoc0, 2.0, "{m1:?}");
    h.wait_finished(&server, &a.uid, a.n());
    send(&server, &b.files, &[]);
    h.wait_finished(&server, &b.uid, b.n());
    let m2 = scrape(&web);
    assert_eq!(m2["hured_instances_stored_total"] - stored0, 24.0, "{m2:?}");
    assert_eq!(m2["hured_associations_total"] - assoc0, 3.0, "{m2:?}");
    assert_eq!(m2["hured_instances_failed_total"], 0.0);

    let runs: Vec<_> = [&a, &b].iter().flat_map(|s| h.runs_of(&s.uid)).collect();
    assert_eq!(runs.len(), 2);
    let counted = runs_by_verdict(&m2);
    for (verdict, n) in &counted {
        let in_db = runs
            .iter()
            .filter(|r| r.verdict.as_str() == verdict)
            .count();
        assert_eq!(*n, in_db as f64, "{verdict}: {m2:?}");
    }
    assert_eq!(counted.values().sum::<f64>(), 2.0);
    let last = runs.iter().map(|r| r.finished_at).max().unwrap() as f64 / 1000.0;
    let key = "hured_last_run_timestamp_seconds{scanner=\"CT-METRICS\"}";
    let got = *m2.get(key).unwrap_or_else(|| panic!("{key} in {m2:?}"));
    assert!((got - last).abs() < 0.002, "{got} vs {last}");
}
