//! Reports that reach the physicist (issue 4), end to end: the real `hu-red serve` binary, DCMTK
//! `storescu` as the scanner, and a real SMTP server — aiosmtpd (Debian package
//! python3-aiosmtpd, run by tests/smtp_server.py with /usr/bin/python3) on a loopback port.
//! Received messages are parsed as MIME (mail-parser) and checked part by part against the
//! database. STARTTLS uses a test CA made with `openssl` (the test trusts it explicitly through
//! `mail.smtp_ca_file`). A missing aiosmtpd, openssl or DCMTK fails the test, never skips it.
//!
//! The constancy flow runs on SQLite and on PostgreSQL (`HURED_TEST_POSTGRES_URL`; required in
//! CI); the delivery mechanics (queue, restart, STARTTLS, dead letters, file transport) on SQLite.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hu_red::store::{OutboxKind, OutboxRow, OutboxState};
use mail_parser::MimeHeaders;

use crate::common_db;
use crate::common_service;
use common_db::{postgres_kind, Kind};
use common_service::*;

const PYTHON: &str = "/usr/bin/python3";

// ------------------------------------------------------------------ the SMTP server

/// tests/smtp_server.py: every accepted message lands in `dir` as NNNN.eml + NNNN.json.
struct Smtp {
    child: Child,
    port: u16,
}

impl Smtp {
    /// Start on `port` (0 = a free one), optionally with STARTTLS (cert, key).
    fn start(dir: &Path, port: u16, tls: Option<(&Path, &Path)>) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the mail tests need aiosmtpd for {PYTHON}: apt-get install -y python3-aiosmtpd"
        );
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut child = cmd.spawn().expect("start tests/smtp_server.py");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let port: u16 = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("smtp_server.py did not start: {line:?}"));
        Smtp { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A message the SMTP server accepted.
struct Received {
    raw: Vec<u8>,
    envelope: serde_json::Value,
}

fn received(dir: &Path) -> Vec<Received> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|p| Received {
            raw: fs::read(&p).unwrap(),
            envelope: serde_json::from_slice(&fs::read(p.with_extension("json")).unwrap()).unwrap(),
        })
        .collect()
}

fn wait_mail(dir: &Path, n: usize, server: &Server) -> Vec<Received> {
    wait_until(
        &format!("{n} message(s) in {}", dir.display()),
        server,
        || {
            let r = received(dir);
            (r.len() >= n).then_some(r)
        },
    )
}

/// A free loopback port (nothing listens on it: "the SMTP server is down").
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------------ MIME

struct Mail {
    subject: String,
    to: BTreeSet<String>,
    message_id: String,
    text: String,
    html: String,
    /// file name → (content type, bytes)
    attachments: Vec<(String, String, Vec<u8>)>,
}

fn parse(raw: &[u8]) -> Mail {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable MIME message");
    let to = m
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let attachments = m
        .attachments()
        .map(|a| {
            let ct = a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_default();
            (
                a.attachment_name().unwrap_or("").to_string(),
                ct,
                a.contents().to_vec(),
            )
        })
        .collect();
    Mail {
        subject: m.subject().unwrap_or("").to_string(),
        to,
        message_id: m.message_id().unwrap_or("").to_string(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        attachments,
    }
}

/// The HTML part is a complete, well-formed document.
fn assert_valid_html(html: &str) {
    assert!(html.trim_start().starts_with("<!DOCTYPE html>"), "{html}");
    let mut r = quick_xml::Reader::from_str(html);
    let mut depth: i64 = 0;
    let mut tags = 0;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => {
                depth += 1;
                tags += 1
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("the HTML part is not well formed: {e}\n{html}"),
        }
    }
    assert_eq!(depth, 0, "unbalanced tags");
    assert!(tags > 20, "a real document, not a stub");
    assert!(!html.contains("<a "), "link-free");
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

fn attachment<'a>(m: &'a Mail, suffix: &str) -> &'a (String, String, Vec<u8>) {
    m.attachments
        .iter()
        .find(|a| a.0.ends_with(suffix))
        .unwrap_or_else(|| {
            panic!(
                "no attachment *{suffix}; attachments: {:?}",
                m.attachments.iter().map(|a| &a.0).collect::<Vec<_>>()
            )
        })
}

// ------------------------------------------------------------------ helpers

/// A configuration file: SMTP to `port`, two recipients by default plus the scanner's own.
fn smtp_config(dir: &Path, port: u16, tls: &str, extra: &str) -> PathBuf {
    let path = dir.join("hu-red.toml");
    fs::write(
        &path,
        format!(
            "[mail]\ntransport = \"smtp\"\nfrom = \"qa@hospital.test\"\n\
             to = [\"physics@hospital.test\"]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
             smtp_tls = \"{tls}\"\nretry_initial_seconds = 1\nretry_max_seconds = 2\n{extra}\n\
             [[scanners]]\nname = \"CT-SIM-1\"\ncalling_ae = \"CTSIM1\"\n\
             recipients = [\"ct-sim-1@hospital.test\"]\n"
        ),
    )
    .unwrap();
    path
}

fn cli_ok(h: &Harness, args: &[&str]) -> String {
    let out = h.cli(args);
    assert!(
        out.status.success(),
        "hu-red {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn outbox(h: &Harness, run: i64) -> Vec<OutboxRow> {
    h.rt.block_on(h.store().outbox_for_run(run)).unwrap()
}

/// A CIRS series at 120 kV / B30f / 5 mm, with per-material HU shifts.
fn cirs_series(h: &Harness, name: &str, seed: u64, offsets: &[(&str, f64)], kvp: f64) -> Series {
    let dir = h.root().join(name);
    fs::create_dir_all(&dir).unwrap();
    small(&dir, seed, 12, |p| {
        p.station_name = "CTAWP73892".into();
        p.kvp = kvp;
        p.kernel = "B30f".into();
        p.study_date = "20261125".into();
        for (m, d) in offsets {
            p.hu_offsets.insert(m.to_string(), *d);
        }
    })
}

fn run_of(h: &Harness, server: &Server, s: &Series) -> hu_red::store::RunRow {
    h.wait_finished(server, &s.uid, s.n());
    let runs = h.runs_of(&s.uid);
    assert_eq!(runs.len(), 1, "one run");
    runs.into_iter().next().unwrap()
}

const SUBJECT_TAIL: &str = " HU–RED constancy — CT-SIM-1 — cirs062 — 2026-11-25";

// ------------------------------------------------------------------ the tests

both!(baseline_then_constancy_by_email);

/// No baseline → [NO BASELINE] (never [PASS]), saying how to set one, stored NONE and shown
/// NO BASELINE by `hu-red runs`; `baseline set --run` on that run; water +35 HU →
/// [FAIL] naming water only; all shifts inside tolerance → [PASS]; another kVp → evaluated
/// against the closest baseline, saying so. Each message: subject, recipients, valid HTML and
/// text, attachments that decode and match the database.
fn baseline_then_constancy_by_email(kind: Kind) {
    let h = Harness::new(kind);
    let mail_dir = h.root().join("mail");
    let smtp = Smtp::start(&mail_dir, 0, None);
    let config = smtp_config(h.root(), smtp.port, "none", "");
    let server = h.serve_args(1, &[], &["--config", config.to_str().unwrap()]);

    // 1. no baseline yet
    let s1 = cirs_series(&h, "s1", 11, &[], 120.0);
    send(&server, &s1.files, &[]);
    let r1 = run_of(&h, &server, &s1);
    // the configured scanners are in the database from the start
    let scanners = h.rt.block_on(h.store().list_scanners()).unwrap();
    assert_eq!(
        scanners
            .iter()
            .map(|s| (
                s.name.as_str(),
                s.calling_ae.as_deref(),
                s.recipients.clone()
            ))
            .collect::<Vec<_>>(),
        [(
            "CT-SIM-1",
            Some("CTSIM1"),
            vec!["ct-sim-1@hospital.test".to_string()]
        )]
    );
    let got = wait_mail(&mail_dir, 1, &server);
    let m = parse(&got[0].raw);
    assert_eq!(m.subject, format!("[NO BASELINE]{SUBJECT_TAIL}"));
    assert_eq!(r1.verdict, hu_red::store::Verdict::None, "stored as NONE");
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = squash(m.text.split("\n=").next().unwrap_or_default());
    assert!(first.starts_with("NO BASELINE: "), "{}", m.text);
    assert!(
        first.ends_with(&format!(
            "Constancy needs a baseline: set one with: hu-red baseline set --run {}",
            r1.id
        )),
        "{first}"
    );
    assert!(!m.text.contains("PASS:"), "{}", m.text);
    assert!(squash(&m.html).contains("NO BASELINE: "));
    assert!(m.text.contains("Absolute checks"), "{}", m.text);
    let runs = cli_ok(&h, &["runs", "--config", config.to_str().unwrap()]);
    let line = runs
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} ", r1.id)) && l.contains(" ok "))
        .unwrap_or_else(|| panic!("run {} in:\n{runs}", r1.id));
    assert!(line.contains("NO BASELINE"), "{line}");
    let expected_to: BTreeSet<String> = ["physics@hospital.test", "ct-sim-1@hospital.test"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(m.to, expected_to);
    let rcpt: BTreeSet<String> = got[0].envelope["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(rcpt, expected_to, "envelope recipients");
    assert!(m.text.to_lowercase().contains("no baseline"), "{}", m.text);
    assert!(m.html.to_lowercase().contains("no baseline"));
    assert_valid_html(&m.html);
    assert_eq!(
        m.message_id,
        outbox(&h, r1.id)[0].message_id,
        "the Message-ID is the outbox row's"
    );
    assert!(m.message_id.contains(&format!("run-{}.", r1.id)));
    // attachments: CSV header, JSON = the database, PNG signatures
    let csv = attachment(&m, ".csv");
    assert!(
        csv.2.starts_with(b"SeriesDescription,ProtocolName,KVP"),
        "CSV header: {}",
        String::from_utf8_lossy(&csv.2[..80.min(csv.2.len())])
    );
    let json = attachment(&m, "_summary.json");
    let v: serde_json::Value = serde_json::from_slice(&json.2).expect("the JSON parses");
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(r1.summary_json.as_deref().unwrap()).unwrap(),
        "the attached JSON is the run's summary in the database"
    );
    let d1 = h.run_detail(r1.id);
    for mat in &d1.materials {
        let j = v["inserts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["insert"] == mat.values.insert.as_str())
            .unwrap();
        let hu = j["hu_mean"].as_f64().unwrap();
        assert!(
            (hu - mat.values.hu_mean).abs() < 1e-9,
            "{}",
            mat.values.insert
        );
        assert!(
            m.text.contains(&mat.values.insert),
            "the table lists {}",
            mat.values.insert
        );
    }
    for suffix in ["_curve.png", "_overlay.png", "_trend.png"] {
        let a = attachment(&m, suffix);
        assert!(a.2.starts_with(PNG), "{suffix} is a PNG");
        assert_eq!(a.1, "image/png");
    }

    // 2. this run becomes the baseline
    let out = cli_ok(&h, &["baseline", "set", "--run", &r1.id.to_string()]);
    assert!(out.contains("baseline #"), "{out}");

    // 3. water +35 HU → FAIL naming water only
    let s2 = cirs_series(&h, "s2", 12, &[("water", 35.0)], 120.0);
    send(&server, &s2.files, &[]);
    let r2 = run_of(&h, &server, &s2);
    let got = wait_mail(&mail_dir, 2, &server);
    let m = parse(&got[1].raw);
    assert_eq!(m.subject, format!("[FAIL]{SUBJECT_TAIL}"));
    assert_valid_html(&m.html);
    let d2 = h.run_detail(r2.id);
    let failed: Vec<&str> = d2
        .materials
        .iter()
        .filter(|x| x.values.within_tolerance == Some(false))
        .map(|x| x.values.insert.as_str())
        .collect();
    assert_eq!(failed, vec!["water"], "only water fails in the database");
    let first_line = m
        .text
        .lines()
        .find(|l| l.contains("FAIL"))
        .unwrap_or_default()
        .to_string();
    assert!(first_line.contains("water"), "{first_line}");
    for other in d2.materials.iter().map(|x| x.values.insert.as_str()) {
        if other != "water" && !other.contains("water") {
            assert!(
                !first_line.contains(other),
                "{other} named as failing: {first_line}"
            );
        }
    }
    let water = d2
        .materials
        .iter()
        .find(|x| x.values.insert == "water")
        .unwrap();
    assert!((water.values.delta_hu.unwrap() - 35.0).abs() < 3.0);

    // 4. shifts within tolerance → PASS against the baseline
    let s3 = cirs_series(
        &h,
        "s3",
        13,
        &[("water", 1.5), ("lung_inhale", -2.0)],
        120.0,
    );
    send(&server, &s3.files, &[]);
    let r3 = run_of(&h, &server, &s3);
    let got = wait_mail(&mail_dir, 3, &server);
    let m = parse(&got[2].raw);
    assert_eq!(m.subject, format!("[PASS]{SUBJECT_TAIL}"));
    assert!(!m.text.to_lowercase().contains("no baseline"));
    assert_eq!(h.run_detail(r3.id).run.constancy_pass, Some(true));
    let trend = attachment(&m, "_trend.png");
    assert!(trend.2.starts_with(PNG));

    // 5. another protocol: evaluated against the closest baseline, and the report says so
    let s4 = cirs_series(&h, "s4", 14, &[], 100.0);
    send(&server, &s4.files, &[]);
    let r4 = run_of(&h, &server, &s4);
    let got = wait_mail(&mail_dir, 4, &server);
    let m = parse(&got[3].raw);
    assert!(m.subject.starts_with("[PASS]"), "{}", m.subject);
    assert!(m.text.contains("kVp 100 (baseline 120)"), "{}", m.text);
    let d4 = h.run_detail(r4.id);
    assert!(d4
        .run
        .baseline_note
        .as_deref()
        .unwrap_or("")
        .contains("closest"));

    // every report exactly once
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(received(&mail_dir).len(), 4);
    for r in [&r1, &r2, &r3, &r4] {
        let o = outbox(&h, r.id);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].state, OutboxState::Sent);
        assert_eq!(o[0].attempts, 1);
    }
}

/// SMTP down when the run finishes → queued; the server started later → delivered once; the
/// service restarted while a report is queued → still exactly once.
#[test]
fn queued_reports_are_delivered_exactly_once() {
    let h = Harness::new(Kind::Sqlite);
    let mail_dir = h.root().join("mail");
    let port = free_port();
    let config = smtp_config(h.root(), port, "none", "");
    let cfg = config.to_str().unwrap();

    // phase 1: SMTP down, then started while hu-red runs
    let server = h.serve_args(1, &[], &["--config", cfg]);
    let s1 = cirs_series(&h, "s1", 21, &[], 120.0);
    send(&server, &s1.files, &[]);
    let r1 = run_of(&h, &server, &s1);
    let row = wait_until("a failed delivery attempt", &server, || {
        outbox(&h, r1.id)
            .into_iter()
            .next()
            .filter(|o| o.attempts >= 1 && o.state != OutboxState::Sent)
    });
    assert!(row.last_error.is_some(), "the failure is recorded");
    let mut smtp = Smtp::start(&mail_dir, port, None);
    wait_mail(&mail_dir, 1, &server);

    // phase 2: SMTP down again; a run queues its report; hu-red is stopped and restarted
    smtp.stop();
    let s2 = cirs_series(&h, "s2", 22, &[], 120.0);
    send(&server, &s2.files, &[]);
    let r2 = run_of(&h, &server, &s2);
    wait_until("a failed attempt of the second report", &server, || {
        outbox(&h, r2.id)
            .into_iter()
            .next()
            .filter(|o| o.attempts >= 1)
    });
    let mut server = server;
    server.kill();
    let server = h.serve_args(1, &[], &["--config", cfg]);
    let _smtp = Smtp::start(&mail_dir, port, None);
    let got = wait_mail(&mail_dir, 2, &server);
    std::thread::sleep(Duration::from_secs(4)); // several retry periods: no second copy
    let got2 = received(&mail_dir);
    assert_eq!(got2.len(), 2, "exactly one message per run");
    let ids: BTreeSet<String> = got.iter().map(|r| parse(&r.raw).message_id).collect();
    assert_eq!(ids.len(), 2, "two different reports");
    for r in [&r1, &r2] {
        let o = outbox(&h, r.id);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].state, OutboxState::Sent);
        assert!(ids.contains(&o[0].message_id));
    }
}

/// STARTTLS to a server with a certificate from a test CA: refused while the CA is not
/// trusted, delivered over TLS once `mail.smtp_ca_file` names it.
#[test]
fn starttls_with_a_trusted_test_certificate() {
    let h = Harness::new(Kind::Sqlite);
    let pki = h.root().join("pki");
    let (ca, cert, key) = test_ca(&pki);
    let mail_dir = h.root().join("mail");
    let smtp = Smtp::start(&mail_dir, 0, Some((&cert, &key)));

    // without the CA: the certificate is not trusted, nothing is delivered
    let untrusted = smtp_config(h.root(), smtp.port, "starttls", "max_attempts = 1");
    let server = h.serve_args(1, &[], &["--config", untrusted.to_str().unwrap()]);
    let s1 = cirs_series(&h, "s1", 31, &[], 120.0);
    send(&server, &s1.files, &[]);
    let r1 = run_of(&h, &server, &s1);
    let dead = wait_until("the untrusted delivery dead-lettered", &server, || {
        outbox(&h, r1.id)
            .into_iter()
            .next()
            .filter(|o| o.state == OutboxState::Dead)
    });
    let err = dead.last_error.unwrap_or_default().to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");
    assert!(received(&mail_dir).is_empty());
    drop(server);

    // with the CA: delivered over TLS; the dead report is re-sent with `report --resend`
    let trusted = smtp_config(
        h.root(),
        smtp.port,
        "starttls",
        &format!("smtp_ca_file = \"{}\"", ca.display()),
    );
    let out = cli_ok(
        &h,
        &[
            "report",
            "--run",
            &r1.id.to_string(),
            "--resend",
            "--config",
            trusted.to_str().unwrap(),
        ],
    );
    assert!(out.contains("sent again"), "{out}");
    let got = received(&mail_dir);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope["tls"], true, "delivered inside TLS");
    let m = parse(&got[0].raw);
    assert!(m.subject.starts_with("[NO BASELINE]"), "{}", m.subject);
    let rows = outbox(&h, r1.id);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].kind, OutboxKind::Resend);
    assert_eq!(rows[1].state, OutboxState::Sent);
    assert_ne!(rows[0].message_id, rows[1].message_id);

    // and the service itself delivers over STARTTLS
    let server = h.serve_args(1, &[], &["--config", trusted.to_str().unwrap()]);
    let s2 = cirs_series(&h, "s2", 32, &[], 120.0);
    send(&server, &s2.files, &[]);
    run_of(&h, &server, &s2);
    let got = wait_mail(&mail_dir, 2, &server);
    assert_eq!(got[1].envelope["tls"], true);
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is needed for the STARTTLS test (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=hu-red test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A fresh `hu-red serve` with no configuration file receives a series and leaves one .eml
/// in data_dir/outbox.
#[test]
fn file_transport_on_the_embedded_defaults() {
    let h = Harness::new(Kind::Sqlite);
    let server = h.serve(1);
    let s = cirs_series(&h, "s1", 41, &[], 120.0);
    send(&server, &s.files, &[]);
    let r = run_of(&h, &server, &s);
    let outbox_dir = h.data_dir().join("outbox");
    let files = wait_until("an .eml in data_dir/outbox", &server, || {
        let f: Vec<PathBuf> = fs::read_dir(&outbox_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        (!f.is_empty()).then_some(f)
    });
    std::thread::sleep(Duration::from_secs(2));
    let all: Vec<_> = fs::read_dir(&outbox_dir).unwrap().flatten().collect();
    assert_eq!(all.len(), 1, "exactly one file: {all:?}");
    let m = parse(&fs::read(&files[0]).unwrap());
    assert!(
        m.subject.starts_with("[NO BASELINE] HU–RED constancy — "),
        "{}",
        m.subject
    );
    assert!(m.to.contains("hu-red@localhost"));
    assert_valid_html(&m.html);
    assert!(attachment(&m, "_overlay.png").2.starts_with(PNG));
    assert_eq!(outbox(&h, r.id)[0].state, OutboxState::Sent);
}

/// A series that cannot be analysed → an [ERROR] report with the reason and what to check;
/// after max_attempts failures a report is dead-lettered and `hu-red runs` shows it.
#[test]
fn error_reports_and_dead_letters() {
    let h = Harness::new(Kind::Sqlite);
    let port = free_port();
    let config = smtp_config(h.root(), port, "none", "max_attempts = 2");
    let server = h.serve_args(1, &[], &["--config", config.to_str().unwrap()]);
    let dir = h.root().join("uniform");
    fs::create_dir_all(&dir).unwrap();
    let s = small(&dir, 51, 12, |p| p.uniform = true);
    send(&server, &s.files, &[]);
    h.wait_finished(&server, &s.uid, s.n());
    let r = h.runs_of(&s.uid).pop().unwrap();
    assert_eq!(r.status, hu_red::store::RunStatus::Failed);
    let dead = wait_until("the report dead-lettered", &server, || {
        outbox(&h, r.id)
            .into_iter()
            .next()
            .filter(|o| o.state == OutboxState::Dead)
    });
    assert_eq!(dead.attempts, 2);
    assert!(dead
        .subject
        .starts_with("[ERROR] HU–RED constancy — CT-SIM-1 — "));
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squash(&dead.text_body).contains(&squash(r.error.as_deref().unwrap())),
        "the reason {:?} in:\n{}",
        r.error,
        dead.text_body
    );
    assert!(
        dead.text_body.to_lowercase().contains("check"),
        "what to check"
    );
    assert!(server.log_text().contains("dead-lettered"));
    let runs = cli_ok(&h, &["runs", "--config", config.to_str().unwrap()]);
    assert!(
        runs.contains("Reports not delivered") && runs.contains("dead"),
        "{runs}"
    );
    let json = cli_ok(
        &h,
        &["runs", "--json", "--config", config.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["undelivered_reports"][0]["state"], "dead");

    // the SMTP server back: `report --resend` delivers it; no phantom was recognised, so the
    // series may be a patient's: no picture of it (mail.error_preview is off by default)
    let mail_dir = h.root().join("mail");
    let _smtp = Smtp::start(&mail_dir, port, None);
    let out = cli_ok(
        &h,
        &[
            "report",
            "--run",
            &r.id.to_string(),
            "--resend",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(out.contains("sent again"), "{out}");
    let m = parse(&received(&mail_dir)[0].raw);
    assert!(m.subject.starts_with("[ERROR]"));
    assert_valid_html(&m.html);
    assert!(
        !m.attachments
            .iter()
            .any(|a| a.1.starts_with("image/") || a.2.starts_with(PNG)),
        "no image part: {:?}",
        m.attachments
            .iter()
            .map(|a| (&a.0, &a.1))
            .collect::<Vec<_>>()
    );
    attachment(&m, "_summary.json");
    let folder = h.data_dir().join(r.outputs_dir.as_deref().unwrap());
    let kept: Vec<_> = fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !kept.iter().any(|n| n.to_string_lossy().ends_with(".png")),
        "no picture kept: {kept:?}"
    );
}

/// `baseline import` of the script's CSV, `show`, `set --run`, `history` listing both; and
/// `qa.auto_baseline`: the first run is a provisional baseline — its own report is still
/// [NO BASELINE] and says how to confirm it — and the next report says PROVISIONAL.
#[test]
fn baseline_commands_round_trip_and_auto_baseline() {
    let h = Harness::new(Kind::Sqlite);
    let cfg_path = h.root().join("auto.toml");
    fs::write(&cfg_path, "[qa]\nauto_baseline = true\n").unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let server = h.serve_args(1, &[], &["--config", cfg]);
    let s1 = cirs_series(&h, "s1", 61, &[], 120.0);
    send(&server, &s1.files, &[]);
    let r1 = run_of(&h, &server, &s1);
    let s2 = cirs_series(&h, "s2", 62, &[], 120.0);
    send(&server, &s2.files, &[]);
    let r2 = run_of(&h, &server, &s2);
    let d2 = h.run_detail(r2.id);
    assert_eq!(
        d2.run.baseline_provisional,
        Some(true),
        "evaluated against the provisional"
    );
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let o1 = outbox(&h, r1.id);
    assert!(
        o1[0]
            .subject
            .starts_with("[NO BASELINE] HU–RED constancy — "),
        "the first run has nothing to compare with: {}",
        o1[0].subject
    );
    assert_eq!(r1.verdict, hu_red::store::Verdict::None);
    assert!(
        squash(&o1[0].text_body).contains(&format!(
            "this run is now the PROVISIONAL baseline (qa.auto_baseline): confirm it with \
             hu-red baseline set --run {}",
            r1.id
        )),
        "{}",
        o1[0].text_body
    );
    let o2 = outbox(&h, r2.id);
    assert!(
        o2[0].text_body.contains("PROVISIONAL"),
        "{}",
        o2[0].text_body
    );
    assert!(o2[0].subject.starts_with("[PASS] "), "{}", o2[0].subject);
    assert_eq!(r2.verdict, hu_red::store::Verdict::Pass);
    drop(server);

    // the provisional baseline, then confirmed by `set --run` on its run
    let show = cli_ok(&h, &["baseline", "show", "--json", "--config", cfg]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["provisional"], true);
    assert_eq!(v[0]["run_id"], r1.id);
    let auto_id = v[0]["id"].as_i64().unwrap();
    let out = cli_ok(
        &h,
        &[
            "baseline",
            "set",
            "--run",
            &r1.id.to_string(),
            "--config",
            cfg,
        ],
    );
    assert!(out.contains("confirmed"), "{out}");

    // import the script's CSV for the same scanner/phantom at another protocol (2 mm)
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/script_baseline.csv");
    let out = cli_ok(
        &h,
        &[
            "baseline",
            "import",
            csv.to_str().unwrap(),
            "--scanner",
            "CTAWP73892",
            "--phantom",
            "cirs062",
            "--config",
            cfg,
        ],
    );
    assert!(out.contains("imported"), "{out}");
    let show = cli_ok(
        &h,
        &[
            "baseline",
            "show",
            "--scanner",
            "CTAWP73892",
            "--config",
            cfg,
        ],
    );
    assert!(show.contains("import") && show.contains("-802.3"), "{show}");
    let v: serde_json::Value = serde_json::from_str(&cli_ok(
        &h,
        &["baseline", "show", "--json", "--config", cfg],
    ))
    .unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "two protocols, two active baselines"
    );
    let imported = v
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["source"].as_str().unwrap().starts_with("import"))
        .unwrap();
    assert_eq!(imported["protocol_key"], "kvp=120|kernel=B30F|slice=2");
    assert_eq!(imported["provisional"], false);

    // set from the second run: replaces the confirmed one of that protocol
    let out = cli_ok(
        &h,
        &[
            "baseline",
            "set",
            "--run",
            &r2.id.to_string(),
            "--config",
            cfg,
        ],
    );
    assert!(
        out.contains(&format!("replaces baseline #{auto_id}")),
        "{out}"
    );
    let hist: serde_json::Value = serde_json::from_str(&cli_ok(
        &h,
        &["baseline", "history", "--json", "--config", cfg],
    ))
    .unwrap();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 3, "the auto, the imported and the new one");
    let sources: Vec<&str> = hist.iter().map(|b| b["source"].as_str().unwrap()).collect();
    assert!(sources.iter().any(|s| s.starts_with("import")));
    assert!(sources.contains(&format!("run {}", r2.id).as_str()));
    let superseded: Vec<_> = hist
        .iter()
        .filter(|b| !b["superseded_at"].is_null())
        .collect();
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0]["run_id"], r1.id);
    let text = cli_ok(&h, &["baseline", "history", "--config", cfg]);
    assert!(text.contains("superseded"), "{text}");

    // a typo in a scanner name does not create a database: bad inputs name what is wrong
    let bad = h.cli(&[
        "baseline",
        "import",
        "/nonexistent.csv",
        "--scanner",
        "X",
        "--phantom",
        "cirs062",
        "--config",
        cfg,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.csv"));
}

/// A first scan that fails an absolute check (a Catphan material outside the manufacturer's
/// window at the kVp the window is given at) is [FAIL] naming it, not [NO BASELINE]; with
/// `qa.auto_baseline` it does not become the provisional baseline. `hu-red report --run`
/// shows the stored report as it was sent.
#[test]
fn first_scan_failing_an_absolute_check_is_a_fail() {
    let h = Harness::new(Kind::Sqlite);
    let mail_dir = h.root().join("mail");
    let smtp = Smtp::start(&mail_dir, 0, None);
    let config = smtp_config(h.root(), smtp.port, "none", "[qa]\nauto_baseline = true");
    let cfg = config.to_str().unwrap();
    let server = h.serve_args(1, &[], &["--config", cfg]);
    let dir = h.root().join("cat");
    fs::create_dir_all(&dir).unwrap();
    let mut params = hu_red::simulate::SimParams {
        matrix: 256,
        pixel_mm: 0.9,
        n_slices: 20,
        slice_thickness_mm: 2.0,
        catphan_modules: false,
        seed: 71,
        kvp: 120.0,
        station_name: "CTAWP73892".into(),
        study_date: "20261125".into(),
        ..Default::default()
    };
    params.hu_offsets.insert("delrin".into(), 60.0);
    let s = simulate(&dir, "catphan_504", params);
    send(&server, &s.files, &[]);
    let r = run_of(&h, &server, &s);
    let got = wait_mail(&mail_dir, 1, &server);
    let m = parse(&got[0].raw);
    assert!(
        m.subject
            .starts_with("[FAIL] HU–RED constancy — CT-SIM-1 — "),
        "{}",
        m.subject
    );
    assert_eq!(r.verdict, hu_red::store::Verdict::Fail);
    assert_eq!(r.absolute_pass, Some(false));
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = squash(m.text.split("\n=").next().unwrap_or_default());
    assert!(
        first.starts_with("FAIL: ") && first.contains("delrin"),
        "{first}"
    );
    assert!(
        squash(&m.text).contains("!! No baseline for this scanner, phantom and protocol yet"),
        "{}",
        m.text
    );
    assert!(
        squash(&m.text).contains("this run was not made the provisional baseline"),
        "{}",
        m.text
    );
    assert_valid_html(&m.html);
    // no provisional baseline from a failing run
    let show = cli_ok(&h, &["baseline", "show", "--json", "--config", cfg]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(0), "{show}");
    // the report shown again is the one sent
    let shown = cli_ok(&h, &["report", "--run", &r.id.to_string(), "--config", cfg]);
    assert!(
        shown.contains(&format!("Subject: {}", m.subject)),
        "{shown}"
    );
    assert!(
        squash(&shown).contains(&squash(&outbox(&h, r.id)[0].text_body)),
        "{shown}"
    );
}
