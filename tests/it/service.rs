//! `hu-red serve` end to end: the real binary as a child process (so that it can be killed with
//! SIGKILL), DCMTK (echoscu, storescu, dcmcjpeg, dcmcjpls, dcmcrle) as the peer, series made by
//! `hu_red::simulate`, and the database read back through `hu_red::store::Store` (and
//! `hu-red runs --json`). Acceptance of issue 3 (the protocol cases — AE policy, per-context
//! rejection, garbage PDUs, unwritable storage, association cap — are in tests/it/scp_dcmtk.rs).
//!
//! Every test runs twice: on SQLite (a file in the test's data_dir) and on PostgreSQL when
//! `HURED_TEST_POSTGRES_URL` is set (each test in its own schema, via
//! `options[search_path]=SCHEMA` in the URL). With `CI=true` a missing `HURED_TEST_POSTGRES_URL`
//! fails the Postgres half; a missing DCMTK tool always fails.
//!
//! Each server binds 127.0.0.1:0 and the test reads the real port from its "listening" log line
//! (no port races between parallel tests). Waits poll the database with a deadline; the only
//! fixed pauses are the polling interval.
//!
//! Local Postgres (as root):
//!     pg_ctlcluster 15 main start
//!     su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
//!     su postgres -c "psql -q -c 'CREATE DATABASE hured_test'"
//!     export HURED_TEST_POSTGRES_URL=postgres://postgres:postgres@127.0.0.1/hured_test

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hu_red::store::{now_ms, RunDetail, RunRow, RunStatus, SeriesState, Verdict};

use crate::common_db;
use crate::common_service;
use common_db::{postgres_kind, Kind};
use common_service::*;

// ------------------------------------------------------------------ comparisons

/// `hu-red analyze --dicom DIR` → its summary JSON.
fn analyze_cli(dicom: &Path, outdir: &Path) -> serde_json::Value {
    let o = Command::new(BIN)
        .args(["analyze", "--dicom"])
        .arg(dicom)
        .arg("--outdir")
        .arg(outdir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "hu-red analyze {}: {}{}",
        dicom.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = fs::read_dir(outdir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_summary.json"))
        .expect("analyze wrote no summary JSON");
    serde_json::from_str(&fs::read_to_string(json).unwrap()).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-6,
        "{what}: service {a} vs analyze {b} (Δ {})",
        a - b
    );
}

/// The run stored by the service has the numbers `hu-red analyze` printed for the same files.
fn assert_same_as_analyze(d: &RunDetail, s: &serde_json::Value, label: &str) {
    let r = &d.run;
    assert_eq!(s["status"], "ok", "{label}: analyze status");
    assert_eq!(r.status, RunStatus::Ok, "{label}: {:?}", r.error);
    assert_eq!(
        r.phantom_id.as_deref(),
        s["phantom"]["id"].as_str(),
        "{label}: phantom"
    );
    assert_eq!(
        r.slab_centre_index,
        s["metadata"]["selected_slice_index"].as_i64(),
        "{label}: slab centre index"
    );
    assert_eq!(
        r.slab_centre_index,
        s["slices"]["centre_index"].as_i64(),
        "{label}: slab centre index (slices)"
    );
    for (k, v) in [
        ("centre_x_mm", r.pose_centre_x_mm),
        ("centre_y_mm", r.pose_centre_y_mm),
        ("rotation_deg", r.pose_rotation_deg),
    ] {
        close(
            v.unwrap(),
            s["pose"][k].as_f64().unwrap(),
            &format!("{label}: pose {k}"),
        );
    }
    let inserts = s["inserts"].as_array().unwrap();
    assert!(!inserts.is_empty(), "{label}: no insert measured");
    assert_eq!(
        d.materials.len(),
        inserts.len(),
        "{label}: material rows vs analyze inserts"
    );
    let mut roi_count = 0;
    for (m, i) in d.materials.iter().zip(inserts) {
        let name = i["insert"].as_str().unwrap();
        assert_eq!(m.values.insert, name, "{label}: material order");
        let what = format!("{label}: {name}");
        close(
            m.values.hu_mean,
            i["hu_mean"].as_f64().unwrap(),
            &format!("{what} hu_mean"),
        );
        close(
            m.values.hu_std,
            i["hu_std"].as_f64().unwrap(),
            &format!("{what} hu_std"),
        );
        assert_eq!(
            m.values.n_pixels,
            i["n_pixels"].as_i64().unwrap(),
            "{what} n_pixels"
        );
        for roi in i["rois"].as_array().unwrap() {
            let hole = roi["hole"].as_str().unwrap();
            let row = d
                .rois
                .iter()
                .find(|x| x.values.hole == hole)
                .unwrap_or_else(|| panic!("{what}: ROI {hole} not stored"));
            close(
                row.values.hu_mean,
                roi["hu_mean"].as_f64().unwrap(),
                &format!("{what} ROI {hole} hu_mean"),
            );
            roi_count += 1;
        }
    }
    assert_eq!(d.rois.len(), roi_count, "{label}: ROI rows");
}

/// The only run of a finished series (panics on zero or several).
fn single_run(h: &Harness, s: &Series) -> RunRow {
    let runs = h.runs_of(&s.uid);
    assert_eq!(
        runs.len(),
        1,
        "series {} must be analysed exactly once: {:#?}",
        s.uid,
        runs.iter()
            .map(|r| (r.id, r.status, r.fingerprint.n_instances, r.amended))
            .collect::<Vec<_>>()
    );
    runs.into_iter().next().unwrap()
}

/// results/<run id>/ holds this run's own summary: the file is the run's `summary_json`.
fn assert_outputs_are_the_runs(h: &Harness, run: &RunRow) {
    let dir = h.data_dir().join(
        run.outputs_dir
            .as_deref()
            .expect("the run has an outputs_dir"),
    );
    let phantom = run.phantom_id.as_deref().unwrap_or("unknown");
    let path = dir.join(format!("hu_red_{phantom}_summary.json"));
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("run {}: {}: {e}", run.id, path.display()));
    assert!(
        Some(text.as_str()) == run.summary_json.as_deref(),
        "run {} of {}: {} is not the run's summary:\n{text}",
        run.id,
        run.series_instance_uid,
        path.display()
    );
}

fn json(o: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

// ------------------------------------------------------------------ the tests

both!(
    echo_with_embedded_defaults,
    uncompressed_and_compressed_series_match_analyze,
    four_concurrent_associations,
    series_split_over_two_associations,
    amended_series_and_unchanged_resend,
    sigkill_while_receiving_loses_nothing,
    non_ct_series_is_kept_not_analysed,
    unanalysable_series_fails_with_the_reason,
    sigterm_when_idle_exits_cleanly,
    sigkill_while_analysing_reanalyses_once,
    unrecorded_files_are_recovered_at_start,
    simultaneous_runs_keep_their_own_outputs,
    new_database_on_an_existing_data_dir,
);

/// (1) No config file: the embedded defaults plus env for port, data_dir and database.
fn echo_with_embedded_defaults(kind: Kind) {
    let h = Harness::new(kind);
    let mut env = h.env();
    env.retain(|(k, _)| {
        matches!(
            *k,
            "HURED__SCP__BIND"
                | "HURED__WEB__BIND"
                | "HURED__STORAGE__DATA_DIR"
                | "HURED__DATABASE__URL"
        )
    });
    assert_eq!(env.len(), 4);
    let server = Server::start(h.root(), &env);
    let out = run(tool("echoscu")
        .args(["-v", "-aet", "ECHOSCU", "-aec", AE, "127.0.0.1"])
        .arg(server.port.to_string()));
    assert!(
        out.ok && out.text.contains("Received Echo Response (Success)"),
        "echoscu: {}\n{}",
        out.text,
        server.log_tail()
    );
    let log = server.log_text();
    assert!(log.contains(&format!("ae_title={AE}")), "{log}");
    // The default data_dir layout was set up and the database is usable.
    assert!(h.data_dir().join("results").is_dir());
    assert!(h.rt.block_on(h.store().list_series(10)).unwrap().is_empty());
}

/// (2) storescu pushes a Catphan and a CIRS series uncompressed and with each lossless codec
/// (JPEG lossless -xs, JPEG-LS -xt, RLE -xr); each series is analysed once, stored as received,
/// and the stored run has the numbers `hu-red analyze` gives on the same files.
fn uncompressed_and_compressed_series_match_analyze(kind: Kind) {
    let h = Harness::new(kind);
    let root = h.root().to_path_buf();
    let cat_plain = catphan(&root.join("cat_plain"), 21);
    let cirs_plain = cirs(&root.join("cirs_plain"), 22, 14);
    // Each variant is its own series (a transcoded copy keeps the UIDs of its source).
    let cases: Vec<(&str, Series, &str, &[&str])> = vec![
        ("Catphan uncompressed", cat_plain, EXPLICIT_LE, &[]),
        ("CIRS uncompressed", cirs_plain, EXPLICIT_LE, &[]),
        (
            "Catphan JPEG lossless",
            catphan(&root.join("cat_j"), 23).transcoded("dcmcjpeg", &root.join("cat_jpeg")),
            JPEG_LOSSLESS_SV1,
            &["-xs"],
        ),
        (
            "CIRS JPEG lossless",
            cirs(&root.join("cirs_j"), 24, 14).transcoded("dcmcjpeg", &root.join("cirs_jpeg")),
            JPEG_LOSSLESS_SV1,
            &["-xs"],
        ),
        (
            "Catphan JPEG-LS",
            catphan(&root.join("cat_l"), 25).transcoded("dcmcjpls", &root.join("cat_jls")),
            JPEG_LS_LOSSLESS,
            &["-xt"],
        ),
        (
            "CIRS RLE",
            cirs(&root.join("cirs_r"), 26, 14).transcoded("dcmcrle", &root.join("cirs_rle")),
            RLE_LOSSLESS,
            &["-xr"],
        ),
    ];
    let server = h.serve(1);
    for (label, s, ts, args) in &cases {
        assert_eq!(part10(&s.files[0]).0, *ts, "{label}: source file syntax");
        send(&server, &s.files, args);
    }
    // analyze on the same files, while the service analyses them
    let summaries: Vec<serde_json::Value> = cases
        .iter()
        .enumerate()
        .map(|(k, (_, s, _, _))| analyze_cli(&s.dir, &root.join(format!("analyze_{k}"))))
        .collect();
    for ((label, s, ts, _), summary) in cases.iter().zip(&summaries) {
        let row = h.wait_finished(&server, &s.uid, s.n());
        assert_eq!(row.state, SeriesState::Done, "{label}");
        assert_eq!(row.n_instances, s.n(), "{label}");
        assert!(!row.amended, "{label}");
        let run = single_run(&h, s);
        assert_eq!(row.last_run_id, Some(run.id), "{label}");
        assert_eq!(run.fingerprint.n_instances, s.n(), "{label}");
        assert!(!run.amended, "{label}");
        assert_eq!(run.verdict, Verdict::None, "{label}: no baseline → NONE");
        // stored as received: the negotiated (compressed) syntax, the data set unchanged
        for f in &s.files {
            let sop = &s.sop_by_file[f.file_name().unwrap().to_str().unwrap()];
            let (stored_ts, stored) = part10(&s.stored_path(&h.data_dir(), sop));
            let (_, sent) = part10(f);
            assert_eq!(stored_ts, *ts, "{label}: stored syntax of {sop}");
            assert!(stored == sent, "{label}: {sop} not stored bit for bit");
        }
        let rows = h.rt.block_on(h.store().series_instances(&s.uid)).unwrap();
        assert_eq!(rows.len(), s.files.len(), "{label}");
        for i in &rows {
            assert_eq!(i.sop_class_uid, CT_IMAGE_STORAGE, "{label}");
            assert_eq!(i.transfer_syntax, *ts, "{label}: recorded syntax");
            assert!(i.analysable, "{label}");
            assert_eq!(i.calling_ae, "CTSIM1", "{label}");
            assert_eq!(i.called_ae, AE, "{label}");
        }
        let detail = h.run_detail(run.id);
        assert_same_as_analyze(&detail, summary, label);
        // the outputs, as `analyze` names them, under results/<run id>/
        let out = h.data_dir().join("results").join(run.id.to_string());
        assert_eq!(
            run.outputs_dir.as_deref(),
            Some(&*format!("results/{}", run.id))
        );
        let phantom = run.phantom_id.as_deref().unwrap();
        for name in [
            format!("hu_red_{phantom}.csv"),
            format!("hu_red_{phantom}_summary.json"),
            format!("hu_red_{phantom}_curve.png"),
        ] {
            assert!(
                out.join(&name).is_file(),
                "{label}: {name} missing in {}",
                out.display()
            );
        }
        let written: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(out.join(format!("hu_red_{phantom}_summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written["inserts"], summary["inserts"],
            "{label}: summary inserts"
        );
        assert_outputs_are_the_runs(&h, &run);
    }
    let phantoms: BTreeSet<String> = cases
        .iter()
        .map(|(_, s, _, _)| single_run(&h, s).phantom_id.clone().unwrap())
        .collect();
    assert_eq!(
        phantoms,
        BTreeSet::from(["catphan_504".to_string(), "cirs062".to_string()])
    );
}

/// (3) Four storescu associations at once, four different series → four runs, one each.
fn four_concurrent_associations(kind: Kind) {
    let h = Harness::new(kind);
    let root = h.root().to_path_buf();
    let series = [
        catphan(&root.join("a"), 31),
        cirs(&root.join("b"), 32, 14),
        catphan(&root.join("c"), 33),
        cirs(&root.join("d"), 34, 14),
    ];
    let server = h.serve(1);
    let barrier = std::sync::Barrier::new(series.len());
    std::thread::scope(|sc| {
        for s in &series {
            let (server, barrier) = (&server, &barrier);
            sc.spawn(move || {
                barrier.wait();
                send(server, &s.files, &[]);
            });
        }
    });
    for s in &series {
        let row = h.wait_finished(&server, &s.uid, s.n());
        assert_eq!(row.state, SeriesState::Done, "{}", s.uid);
        assert_eq!(row.n_instances, s.n());
        let run = single_run(&h, s);
        assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
        assert_eq!(run.fingerprint.n_instances, s.n());
        // when it was acquired, from its headers (the simulator's StudyDate/StudyTime,
        // 2025-01-01 09:00, as unix ms read as UTC): what trends are ordered by
        assert_eq!(run.identity.acquired_at, Some(1_735_722_000_000));
    }
    let all = h.rt.block_on(h.store().list_runs(100)).unwrap();
    assert_eq!(all.len(), 4, "runs: {all:#?}");
}

/// (4) One series over two associations (the second starts within stable_seconds after the
/// first ended) → analysed once, with every instance.
fn series_split_over_two_associations(kind: Kind) {
    let h = Harness::new(kind);
    let s = catphan(&h.root().join("s"), 41);
    let stable = 3;
    let server = h.serve(stable);
    let half = s.files.len() / 2;
    send(&server, &s.files[..half], &[]);
    let gap = Instant::now();
    send(&server, &s.files[half..], &[]);
    assert!(
        gap.elapsed() < Duration::from_secs(stable),
        "the second association took longer than stable_seconds: the test proves nothing"
    );
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::Done);
    assert_eq!(row.n_instances, s.n());
    let run = single_run(&h, &s);
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
    assert_eq!(run.fingerprint.n_instances, s.n());
    assert!(!run.amended);
    let instances = h.rt.block_on(h.store().series_instances(&s.uid)).unwrap();
    assert_eq!(instances.len(), s.files.len());
}

/// (5) A series analysed, then one new instance → a second run marked amended (with every
/// instance); the identical set re-sent → no new run.
fn amended_series_and_unchanged_resend(kind: Kind) {
    let h = Harness::new(kind);
    let s = cirs(&h.root().join("s"), 51, 14);
    let server = h.serve(1);
    let first = &s.files[..s.files.len() - 1];
    send(&server, first, &[]);
    h.wait_finished(&server, &s.uid, first.len() as i64);
    let runs = h.runs_of(&s.uid);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert!(!runs[0].amended);
    assert_eq!(runs[0].status, RunStatus::Ok, "{:?}", runs[0].error);
    assert_eq!(runs[0].fingerprint.n_instances, first.len() as i64);

    // the missing slice arrives after the run
    send(&server, &s.files[s.files.len() - 1..], &[]);
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::Done);
    assert!(row.amended);
    let runs = h.runs_of(&s.uid);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let second = &runs[1];
    assert!(second.amended);
    assert_eq!(second.status, RunStatus::Ok, "{:?}", second.error);
    assert_eq!(second.fingerprint.n_instances, s.n());
    assert_ne!(second.fingerprint, runs[0].fingerprint);
    assert!(
        second.warnings.iter().any(|w| w.contains("amended")),
        "{:?}",
        second.warnings
    );
    assert_eq!(row.last_run_id, Some(second.id));

    // the identical set again: received and recorded, but no new run
    let before = now_ms();
    send(&server, &s.files, &[]);
    let row = h.wait_series(&server, &s.uid, "the re-sent series back to done", |r| {
        r.state == SeriesState::Done && r.state_changed_at >= before
    });
    assert!(row.last_received_at >= before);
    assert_eq!(row.n_instances, s.n());
    assert_eq!(row.last_run_id, Some(second.id));
    assert_eq!(h.runs_of(&s.uid).len(), 2);
    let inst =
        h.rt.block_on(h.store().get_instance(&s.sop_by_file["0001.dcm"]))
            .unwrap()
            .unwrap();
    assert_eq!(
        inst.times_received, 2,
        "sent with the first part, then re-sent"
    );

    // the same through `hu-red runs --json`
    let doc = json(&h.cli(&["runs", "--json"]), "hu-red runs --json");
    let runs: Vec<&serde_json::Value> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["series_instance_uid"] == s.uid.as_str())
        .collect();
    assert_eq!(runs.len(), 2, "{doc:#}");
    // most recent first
    assert_eq!(runs[0]["amended"], true);
    assert_eq!(runs[1]["amended"], false);
    let series = doc["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["series_instance_uid"] == s.uid.as_str())
        .unwrap();
    assert_eq!(series["amended"], true);
    assert_eq!(series["state"], "done");
}

/// (6) SIGKILL while storescu is pushing: every acknowledged instance survives (file and row),
/// the series completes after a re-send and is analysed exactly once.
fn sigkill_while_receiving_loses_nothing(kind: Kind) {
    const N: usize = 200;
    const KILL_AFTER: usize = 25;
    let h = Harness::new(kind);
    let s = small(&h.root().join("big"), 61, N, |p| p.slice_thickness_mm = 1.0);
    // Long enough that the partial set is not analysed between the kill and the re-send.
    let stable = 4;
    let mut server = h.serve(stable);

    let mut storescu = tool("storescu")
        .args(["-v", "-aet", "CTSIM1", "-aec", AE, "127.0.0.1"])
        .arg(server.port.to_string())
        .args(&s.files)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn storescu");
    let mut acked: Vec<String> = Vec::new();
    let mut sending: Option<String> = None;
    let mut killed_at = None;
    let mut transcript = Vec::new();
    for line in BufReader::new(storescu.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(f) = line.strip_prefix("I: Sending file: ") {
            sending = Some(f.trim().to_string());
        } else if line.contains(STORE_OK) {
            let f = sending.take().expect("a response without a file");
            let name = Path::new(&f).file_name().unwrap().to_str().unwrap();
            acked.push(s.sop_by_file[name].clone());
            if acked.len() == KILL_AFTER && killed_at.is_none() {
                server.kill();
                killed_at = Some(Instant::now());
            }
        }
        transcript.push(line);
    }
    let _ = storescu.wait();
    let killed_at = killed_at.unwrap_or_else(|| {
        panic!(
            "storescu finished with {} acknowledged before the kill:\n{}",
            acked.len(),
            transcript.join("\n")
        )
    });
    assert!(
        acked.len() < N,
        "every instance was acknowledged before the kill took effect: the crash test proves \
         nothing\n{}",
        transcript.join("\n")
    );
    eprintln!(
        "crash test: {} of {N} acknowledged when the server was killed",
        acked.len()
    );
    let crashed_log = server.log_text();
    drop(server);

    // Restart on the same data_dir and database.
    let server = h.serve(stable);
    let tmp = h.data_dir().join("tmp");
    if tmp.is_dir() {
        let left: Vec<_> = fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "temp files left after restart: {left:?}");
    }
    for sop in &acked {
        let path = s.stored_path(&h.data_dir(), sop);
        assert!(
            path.is_file(),
            "acknowledged instance {sop} lost on disk ({})\n--- crashed server ---\n{crashed_log}",
            path.display()
        );
        assert!(
            h.instance_exists(sop),
            "acknowledged instance {sop} not in the database\n--- crashed server ---\n{crashed_log}"
        );
    }
    let row = h.series(&s.uid).expect("the series row survived");
    assert!(row.n_instances >= acked.len() as i64, "{row:?}");
    assert_eq!(row.state, SeriesState::Receiving, "{row:?}");
    assert!(h.runs_of(&s.uid).is_empty());

    // The rest (the whole series) again, promptly.
    let resent_after = killed_at.elapsed();
    eprintln!("crash test: re-sending {resent_after:?} after the kill");
    send(&server, &s.files, &[]);
    assert!(
        resent_after < Duration::from_secs(stable),
        "restart and checks took {resent_after:?} ≥ stable_seconds: a partial run would be legal"
    );
    let row = h.wait_finished(&server, &s.uid, N as i64);
    assert_eq!(row.state, SeriesState::Done, "{row:?}");
    assert_eq!(row.n_instances, N as i64);
    let run = single_run(&h, &s);
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
    assert_eq!(run.fingerprint.n_instances, N as i64);
    assert!(
        !run.amended,
        "a partial set was analysed before the rest arrived"
    );
    // every acknowledged file still holds what was sent
    for f in &s.files {
        let sop = &s.sop_by_file[f.file_name().unwrap().to_str().unwrap()];
        assert!(part10(&s.stored_path(&h.data_dir(), sop)).1 == part10(f).1);
    }
}

/// (7) A non-CT series (Secondary Capture, `--modality OT`): stored, ends not_analysed, no run.
fn non_ct_series_is_kept_not_analysed(kind: Kind) {
    let h = Harness::new(kind);
    let s = small(&h.root().join("ot"), 71, 4, |p| p.modality = "OT".into());
    assert_eq!(
        dicom_object::open_file(&s.files[0])
            .unwrap()
            .meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0'),
        SECONDARY_CAPTURE
    );
    let server = h.serve(1);
    send(&server, &s.files, &[]);
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::NotAnalysed);
    assert!(!row.analysable);
    assert_eq!(row.n_instances, s.n());
    assert_eq!(row.last_run_id, None);
    assert!(h.runs_of(&s.uid).is_empty());
    let instances = h.rt.block_on(h.store().series_instances(&s.uid)).unwrap();
    assert_eq!(instances.len(), s.files.len());
    for i in &instances {
        assert_eq!(i.sop_class_uid, SECONDARY_CAPTURE);
        assert!(!i.analysable);
        assert!(h.data_dir().join(&i.rel_path).is_file(), "{}", i.rel_path);
    }
}

/// (8) A CT series the engine cannot analyse (a uniform cylinder) → a failed run with verdict
/// ERROR and the reason, in the database and as an error summary under results/<run id>/.
fn unanalysable_series_fails_with_the_reason(kind: Kind) {
    let h = Harness::new(kind);
    let s = small(&h.root().join("uniform"), 81, 8, |p| p.uniform = true);
    let server = h.serve(1);
    send(&server, &s.files, &[]);
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::Failed);
    let run = single_run(&h, &s);
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.verdict, Verdict::Error);
    let error = run.error.as_deref().unwrap_or_default();
    assert!(error.contains("no phantom recognised"), "{error}");
    assert_eq!(run.phantom_id, None);
    let d = h.run_detail(run.id);
    assert!(d.materials.is_empty() && d.rois.is_empty());
    assert_eq!(
        run.outputs_dir.as_deref(),
        Some(&*format!("results/{}", run.id))
    );
    let path = h
        .data_dir()
        .join("results")
        .join(run.id.to_string())
        .join("hu_red_unknown_summary.json");
    let written: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(written["status"], "error");
    assert!(
        written["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no phantom recognised"),
        "{written:#}"
    );
    assert!(written["inserts"].as_array().unwrap().is_empty());
    assert_outputs_are_the_runs(&h, &run);

    // The identical set re-sent: no new run, and the series still says failed (not done).
    let before = now_ms();
    send(&server, &s.files, &[]);
    let row = h.wait_series(&server, &s.uid, "the re-sent series finished again", |r| {
        r.state_changed_at >= before && matches!(r.state, SeriesState::Done | SeriesState::Failed)
    });
    assert_eq!(
        row.state,
        SeriesState::Failed,
        "an unchanged re-send of a failed series must stay failed"
    );
    assert_eq!(h.runs_of(&s.uid).len(), 1);
}

/// (9) SIGTERM while idle → exit 0 within a few seconds; afterwards `hu-red runs` and
/// `hu-red check-config` work on the same configuration.
fn sigterm_when_idle_exits_cleanly(kind: Kind) {
    let h = Harness::new(kind);
    let s = small(&h.root().join("ot"), 91, 3, |p| p.modality = "OT".into());
    let mut server = h.serve(1);
    send(&server, &s.files, &[]);
    h.wait_finished(&server, &s.uid, s.n());

    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "hu-red serve still running 10 s after SIGTERM\n{}",
                server.log_tail()
            )
        });
    assert!(
        status.success(),
        "exit status {status} after SIGTERM\n{}",
        server.log_tail()
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let log = server.log_text();
    assert!(log.contains("hu-red serve: stopped"), "{log}");
    // the port is closed
    let echo = run(tool("echoscu")
        .args(["-to", "2", "-aec", AE, "127.0.0.1"])
        .arg(server.port.to_string()));
    assert!(
        !echo.ok,
        "echoscu still answered after shutdown: {}",
        echo.text
    );

    let table = h.cli(&["runs"]);
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.status.success(),
        "hu-red runs: {text}{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(
        text.contains(&s.uid) && text.contains("not_analysed"),
        "{text}"
    );
    let doc = json(&h.cli(&["runs", "--json"]), "hu-red runs --json");
    assert_eq!(doc["series"][0]["series_instance_uid"], s.uid.as_str());
    assert_eq!(doc["series"][0]["state"], "not_analysed");
    assert!(doc["runs"].as_array().unwrap().is_empty());
    let check = h.cli(&["check-config"]);
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        check.status.success() && text.contains("configuration valid"),
        "hu-red check-config: {text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Restart recovery (beyond the numbered list): the server killed while a run is in progress →
/// after restart the series is analysed again, once, and no half-written result is left.
fn sigkill_while_analysing_reanalyses_once(kind: Kind) {
    let h = Harness::new(kind);
    let s = catphan(&h.root().join("s"), 101);
    let mut server = h.serve(1);
    send(&server, &s.files, &[]);
    let t0 = Instant::now();
    loop {
        let row = h.series(&s.uid).unwrap();
        if row.state == SeriesState::Analysing {
            server.kill();
            break;
        }
        assert!(
            matches!(row.state, SeriesState::Receiving | SeriesState::Stable),
            "the run finished before the test could kill the server ({:?}): inconclusive",
            row.state
        );
        assert!(
            t0.elapsed() < DEADLINE,
            "never analysing\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(server);
    assert!(
        h.runs_of(&s.uid).is_empty(),
        "the run committed before the kill took effect: inconclusive"
    );
    assert_eq!(h.series(&s.uid).unwrap().state, SeriesState::Analysing);

    let server = h.serve(1);
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::Done);
    let run = single_run(&h, &s);
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
    assert!(!run.amended, "nothing new arrived: not an amendment");
    let results = h.data_dir().join("results");
    let names: Vec<String> = fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![run.id.to_string()], "results/: {names:?}");
}

/// Restart recovery (beyond the numbered list): files stored under data_dir but never recorded
/// (a crash between the rename and the commit) are recorded at start and analysed.
fn unrecorded_files_are_recovered_at_start(kind: Kind) {
    let h = Harness::new(kind);
    let s = cirs(&h.root().join("s"), 111, 14);
    for f in &s.files {
        let sop = &s.sop_by_file[f.file_name().unwrap().to_str().unwrap()];
        let dest = s.stored_path(&h.data_dir(), sop);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(f, &dest).unwrap();
    }
    let server = h.serve(1);
    let row = h.wait_finished(&server, &s.uid, s.n());
    assert_eq!(row.state, SeriesState::Done);
    assert_eq!(row.n_instances, s.n());
    let run = single_run(&h, &s);
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
    assert_eq!(run.phantom_id.as_deref(), Some("cirs062"));
    for sop in s.sop_by_file.values() {
        assert!(h.instance_exists(sop), "{sop} not recovered");
    }
}

/// Many runs at once (16 small series complete in the same tick, 8 workers): every run's
/// results/<run id>/ exists and holds that run's own summary, nothing is left in a temp folder.
/// (Found a shared temp folder when two runs started in the same millisecond.)
fn simultaneous_runs_keep_their_own_outputs(kind: Kind) {
    let h = Harness::new(kind);
    let series: Vec<Series> = (0..16)
        .map(|k| {
            small(&h.root().join(format!("s{k}")), 120 + k, 3, |p| {
                p.matrix = 64;
                p.pixel_mm = 5.0;
                p.uniform = true;
            })
        })
        .collect();
    // 16 associations at once from one calling AE: above the default per-AE cap of 8
    let server = h.serve_with(
        1,
        &[
            ("HURED__QA__WORKERS", "8"),
            ("HURED__SCP__MAX_ASSOCIATIONS_PER_AE", "16"),
        ],
    );
    std::thread::scope(|sc| {
        for s in &series {
            let server = &server;
            sc.spawn(move || send(server, &s.files, &[]));
        }
    });
    let results = h.data_dir().join("results");
    for s in &series {
        h.wait_finished(&server, &s.uid, s.n());
        let run = single_run(&h, s);
        assert_eq!(run.status, RunStatus::Failed, "{:?}", run.error);
        let path = results
            .join(run.id.to_string())
            .join("hu_red_unknown_summary.json");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "run {} of {}: {}: {e}\n{}",
                run.id,
                s.uid,
                path.display(),
                server.log_tail()
            )
        });
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let dicom_path = doc["dicom_path"].as_str().unwrap();
        assert!(
            dicom_path.ends_with(&s.uid),
            "results/{}/ holds the summary of {dicom_path}, not of {}",
            run.id,
            s.uid
        );
        assert_outputs_are_the_runs(&h, &run);
    }
    let left: Vec<String> = fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(left.is_empty(), "temp result folders left: {left:?}");
}

/// A new database on an existing data_dir (e.g. moving from SQLite to Postgres and keeping the
/// storage): the stored files are recorded again and analysed, run ids start again at 1, and
/// each run's results/<id>/ must still be that run's (not the old database's run 1).
fn new_database_on_an_existing_data_dir(kind: Kind) {
    let h = Harness::new(kind);
    let a = small(&h.root().join("a"), 131, 12, |_| {});
    let b = small(&h.root().join("b"), 132, 12, |_| {});
    let old_db = format!("sqlite://{}", h.root().join("old.sqlite").display());
    let server = h.serve_with(1, &[("HURED__DATABASE__URL", &old_db)]);
    let results = h.data_dir().join("results");
    for (s, id) in [(&a, 1), (&b, 2)] {
        send(&server, &s.files, &[]);
        wait_until("the run under the old database", &server, || {
            results.join(id.to_string()).is_dir().then_some(())
        });
    }
    drop(server);

    let server = h.serve(1);
    for s in [&a, &b] {
        h.wait_finished(&server, &s.uid, s.n());
        let run = single_run(&h, s);
        assert_eq!(run.status, RunStatus::Ok, "{:?}", run.error);
        assert!(run.id <= 2);
        assert_outputs_are_the_runs(&h, &run);
    }
    // the old database's outputs are kept aside, not deleted
    let n = fs::read_dir(&results).unwrap().count();
    assert_eq!(n, 4, "results/: the two runs and the two earlier folders");
}

/// `--log-format json` (here via HURED_LOG_FORMAT): every stderr line is one JSON object, with
/// one line per association (peer, AE titles, instances, bytes, duration) and one per run
/// (series, phantom, verdict, timing).
#[test]
fn json_logs_one_line_per_association_and_run() {
    let h = Harness::new(Kind::Sqlite);
    let s = cirs(&h.root().join("s"), 171, 12);
    let mut server = h.serve_with(1, &[("HURED_LOG_FORMAT", "json")]);
    send(&server, &s.files, &[]);
    h.wait_finished(&server, &s.uid, s.n());
    server.kill();
    let lines: Vec<serde_json::Value> = server
        .log_text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let assoc = lines
        .iter()
        .find(|v| v["fields"]["message"] == "association ended")
        .expect("an association line");
    let f = &assoc["fields"];
    assert_eq!(f["calling_ae"], "CTSIM1");
    assert_eq!(f["called_ae"], "HURED_QA");
    assert_eq!(f["stored"], s.n());
    assert!(f["bytes"].as_u64().unwrap() > 100_000);
    assert!(f["duration_ms"].is_u64());
    assert!(f["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let run = lines
        .iter()
        .find(|v| v["fields"]["message"] == "run finished")
        .expect("a run line");
    assert_eq!(run["fields"]["phantom"], "cirs062");
    assert!(run["fields"]["verdict"].is_string());
    assert!(run["fields"]["ms"].is_i64() || run["fields"]["ms"].is_u64());
    assert_eq!(run["span"]["uid"], s.uid.as_str(), "the series span");
}
