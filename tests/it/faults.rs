//! Bad days, reproduced with real components (issue 11): the database becoming unwritable
//! under the SCP and coming back.

use crate::common_db::Kind;
use crate::common_faults::{Immutable, PrivatePostgres};
use crate::common_service::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The received instances under data_dir (`*.dcm`).
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dcm") {
                out.push(p);
            }
        }
    }
    out
}

/// storescu of one file; the number of success responses.
fn acknowledged(server: &Server, file: &Path) -> (usize, String) {
    let out = run(tool("storescu")
        .args(["-v", "-aet", "CTSIM1", "-aec", AE])
        .arg("127.0.0.1")
        .arg(server.port.to_string())
        .arg(file));
    (out.text.matches(STORE_OK).count(), out.text)
}

/// An unwritable SQLite file fails the stores (0xA700, the file not kept), and once it is
/// writable again the next store succeeds without a restart.
#[test]
fn an_unwritable_sqlite_database_fails_stores_then_heals_without_a_restart() {
    let h = Harness::new(Kind::Sqlite);
    let server = h.serve(600);
    let dir = h.root().join("series");
    fs::create_dir_all(&dir).unwrap();
    let s = small(&dir, 71, 4, |_| {});
    send(&server, &s.files[..1], &[]);
    assert_eq!(stored_files(&h.data_dir()).len(), 1);

    let db = h.data_dir().join("hu-red.sqlite");
    let wal = h.data_dir().join("hu-red.sqlite-wal");
    let mut locked = Immutable::set(&[db, wal]);
    let (acked, text) = acknowledged(&server, &s.files[1]);
    assert_eq!(
        acked, 0,
        "a store the database refused is not acknowledged:\n{text}"
    );
    assert!(
        text.contains("OutOfResources") || text.to_lowercase().contains("a700"),
        "answered 0xA700:\n{text}\n{}",
        server.log_tail()
    );
    assert_eq!(
        stored_files(&h.data_dir()).len(),
        1,
        "the refused instance's file is not kept"
    );
    // a database that stays unusable is visible: an error in the log, and `hu-red runs`
    let status = h.data_dir().join("database-status.json");
    wait_until("the database watch to notice", &server, || {
        status.is_file().then_some(())
    });
    assert!(
        server
            .log_text()
            .contains("the database does not take writes"),
        "{}",
        server.log_tail()
    );
    let out = h.cli(&["runs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DATABASE UNUSABLE"), "hu-red runs:\n{text}");
    locked.release();
    wait_until("the database watch to see it heal", &server, || {
        (!status.exists()).then_some(())
    });
    assert!(server
        .log_text()
        .contains("the database takes writes again"));

    // the cause gone: the next stores succeed, no restart
    send(&server, &s.files[2..], &[]);
    send(&server, &s.files[1..2], &[]);
    assert_eq!(stored_files(&h.data_dir()).len(), 4);
    let series = h.series(&s.uid).expect("the series");
    assert_eq!(series.n_instances, 4);
}

/// Issue 11 (4), with the real binary: faults injected through the `fail` crate's FAILPOINTS
/// (its fail points exist in `cargo test` builds only). The QA worker pool panics when it starts
/// and the first series' analysis panics mid-run: the supervisor logs the pool's panic and
/// starts it again, the panicked series ends as an ERROR run that names the cause, and the next
/// series is analysed as usual by the same process.
#[test]
fn an_injected_worker_panic_is_restarted_and_its_series_reported() {
    use hu_red::store::{SeriesState, Verdict};
    let h = Harness::new(Kind::Sqlite);
    let first = cirs(&h.root().join("first"), 111, 12);
    let second = cirs(&h.root().join("second"), 112, 12);
    let server = h.serve_with(
        1,
        &[(
            "FAILPOINTS",
            "qa::workers=1*panic(injected pool fault);qa::series=1*panic(injected series fault)",
        )],
    );
    wait_until(
        "the pool's panic logged and the pool started again",
        &server,
        || {
            let log = server.log_text();
            (log.contains("injected pool fault") && log.contains("task started again"))
                .then_some(())
        },
    );

    send(&server, &first.files, &[]);
    let row = h.wait_finished(&server, &first.uid, first.n());
    assert_eq!(row.state, SeriesState::Failed, "{}", server.log_tail());
    let runs = h.runs_of(&first.uid);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].verdict, Verdict::Error);
    let error = runs[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("injected series fault"), "{error}");

    send(&server, &second.files, &[]);
    let row = h.wait_finished(&server, &second.uid, second.n());
    assert_eq!(row.state, SeriesState::Done, "{}", server.log_tail());
    let runs = h.runs_of(&second.uid);
    assert_eq!(runs.len(), 1);
    assert_ne!(runs[0].verdict, Verdict::Error, "{:?}", runs[0].error);
}

/// Issue 11 (4): a task that keeps failing (the worker pool panicking at every start) stops the
/// service with a non-zero exit after the supervisor's budget (more than 5 failures in 10
/// minutes; backoff 1, 2, 4, 8, 16 s), so that systemd restarts it; the log says why.
#[test]
fn a_worker_pool_that_keeps_panicking_stops_the_service_non_zero() {
    let h = Harness::new(Kind::Sqlite);
    let mut server = h.serve_with(
        1,
        &[("FAILPOINTS", "qa::workers=panic(injected pool fault)")],
    );
    let status = server
        .wait_exit(std::time::Duration::from_secs(120))
        .unwrap_or_else(|| panic!("still running after 120 s\n{}", server.log_tail()));
    assert!(!status.success(), "{status}");
    let log = server.log_text();
    assert!(
        log.contains("failed 6 times") && log.contains("injected pool fault"),
        "{}",
        server.log_tail()
    );
}

/// Issue 11 (1) on PostgreSQL: the cluster stopped under the SCP fails the stores (0xA700, the
/// file not kept); started again, the next store succeeds without restarting hu-red. Then a
/// restart of the cluster in the middle of a push: every acknowledged instance is recorded, and
/// the ones refused meanwhile are stored when sent again.
#[test]
fn postgres_restarted_mid_push_fails_stores_then_heals_without_a_restart() {
    if crate::common_db::postgres_kind("tests/it/faults.rs").is_none() {
        return;
    }
    let pg = PrivatePostgres::start();
    let h = Harness::new(Kind::Postgres(pg.url()));
    let server = h.serve(600);
    let dir = h.root().join("series");
    fs::create_dir_all(&dir).unwrap();
    let s = small(&dir, 72, 24, |_| {});
    send(&server, &s.files[..1], &[]);
    assert_eq!(stored_files(&h.data_dir()).len(), 1);

    pg.pg_ctl("stop");
    let (acked, text) = acknowledged(&server, &s.files[1]);
    assert_eq!(acked, 0, "no database, no acknowledgement:\n{text}");
    assert!(
        text.contains("OutOfResources") || text.to_lowercase().contains("a700"),
        "answered 0xA700:\n{text}\n{}",
        server.log_tail()
    );
    assert_eq!(
        stored_files(&h.data_dir()).len(),
        1,
        "the refused file is not kept"
    );
    pg.pg_ctl("start");
    let (acked, text) = acknowledged(&server, &s.files[1]);
    assert_eq!(
        acked,
        1,
        "healed without a restart:\n{text}\n{}",
        server.log_tail()
    );

    // a restart while a push is under way
    let files = s.files[2..].to_vec();
    let port = server.port;
    let push = std::thread::spawn(move || {
        run(tool("storescu")
            .args(["-v", "-aet", "CTSIM1", "-aec", AE])
            .arg("127.0.0.1")
            .arg(port.to_string())
            .args(&files))
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    pg.pg_ctl("restart");
    let out = push.join().unwrap();
    let acked_mid = out.text.matches(STORE_OK).count();
    // what was acknowledged is recorded, and only those files (plus the first two) are kept
    let recorded = h.series(&s.uid).map(|r| r.n_instances).unwrap_or(0);
    assert_eq!(recorded as usize, 2 + acked_mid, "{}", out.text);
    assert_eq!(stored_files(&h.data_dir()).len(), 2 + acked_mid);
    // the rest, sent again, is stored: nothing stays broken
    send(&server, &s.files, &[]);
    assert_eq!(stored_files(&h.data_dir()).len(), s.files.len());
    let series = h.series(&s.uid).expect("the series");
    assert_eq!(series.n_instances as usize, s.files.len());
}
