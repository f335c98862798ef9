//! Dashboard benchmark (issue 12; a benchmark, not a test): a database holding 10,000 runs of 5
//! scanners (2,000 each, monthly-ish acquisitions, 9 materials per run), served by the real
//! `hu-red serve` (the bench-profile binary, SQLite); a physicist logged in through the form.
//! Timed from a client on loopback, one request at a time: `/` (the first page of runs), `/?page=`
//! deep in the list, `/runs/{id}` (random runs), `/trends` (the default chart: the busiest
//! scanner's 2,000 runs), `/api/runs`. Reported: median, p95 and max per page; target: median
//! under 100 ms for `/`, `/runs/{id}` and `/trends`.
//!
//!     cargo bench --bench web
//!     WEB_RUNS=2000 WEB_REQUESTS=20 cargo bench --bench web      # a shorter run
//!
//! The database is built in /dev/shm when it exists (the setup's 20,000 commits are then not
//! bound by fsync); WEB_KEEP=1 keeps the work folder.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hu_red::scp::InstanceRecord;
use hu_red::store::{
    Fingerprint, NewMaterialResult, NewRun, RunIdentity, RunStatus, Store, Verdict,
};

const BIN: &str = env!("CARGO_BIN_EXE_hu-red");
const SCANNERS: usize = 5;
const MATERIALS: [(&str, f64, f64); 9] = [
    ("lung_inhale", -800.0, 0.19),
    ("lung_exhale", -500.0, 0.49),
    ("adipose", -80.0, 0.95),
    ("breast", -45.0, 0.98),
    ("water", 0.0, 1.0),
    ("muscle", 40.0, 1.04),
    ("liver", 55.0, 1.05),
    ("trabecular_bone", 240.0, 1.16),
    ("dense_bone", 900.0, 1.51),
];

/// Makes the path of each request of a page.
type PathOf<'a> = Box<dyn FnMut() -> String + 'a>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runs = env_or("WEB_RUNS", 10_000);
    let requests = env_or("WEB_REQUESTS", 50) as usize;
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("a work folder");
    let data = base.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let url = format!("sqlite://{}", data.join("hu-red.sqlite").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t0 = Instant::now();
    let ids = rt.block_on(populate(&url, runs));
    println!(
        "database: {runs} runs of {SCANNERS} scanners stored in {:.1} s ({})",
        t0.elapsed().as_secs_f64(),
        base.path().display()
    );
    let add = Command::new(BIN)
        .args([
            "user",
            "add",
            "bench",
            "--role",
            "physicist",
            "--password-stdin",
        ])
        .env("HURED__DATABASE__URL", &url)
        .env("HURED__STORAGE__DATA_DIR", &data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut i) = c.stdin.take() {
                i.write_all(b"benchmark password\n")?;
            }
            c.wait()
        })
        .expect("hu-red user add");
    assert!(add.success(), "hu-red user add failed");
    let mut server = Server::start(&url, &data);
    let client = rt.block_on(login(server.web_port));
    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random_run = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        ids[(rng_state % ids.len() as u64) as usize]
    };
    let pages: Vec<(&str, PathOf)> = vec![
        ("/", Box::new(|| "/".to_string())),
        ("/?page=150", Box::new(|| "/?page=150".to_string())),
        (
            "/runs/{id}",
            Box::new(move || format!("/runs/{}", random_run())),
        ),
        ("/trends", Box::new(|| "/trends".to_string())),
        ("/api/runs", Box::new(|| "/api/runs?limit=100".to_string())),
    ];
    println!("{requests} requests per page, one at a time, after 3 warm-up requests");
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10}",
        "page", "median ms", "p95 ms", "max ms", "bytes"
    );
    for (name, mut path) in pages {
        let mut times = Vec::with_capacity(requests);
        let mut bytes = 0;
        for i in 0..requests + 3 {
            let p = path();
            let t = Instant::now();
            let body = rt.block_on(client.get(server.web_port, &p));
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 3 {
                times.push(ms);
                bytes = body;
            }
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{name:<14} {:>10.1} {:>10.1} {:>10.1} {bytes:>10}",
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    server.stop();
    if std::env::var("WEB_KEEP").is_ok() {
        println!("kept {}", base.keep().display());
    }
}

/// 10,000 runs: one series (one instance row) per run, round-robin over the scanners,
/// acquisitions a few days apart, 9 materials with small ΔHU.
async fn populate(url: &str, runs: u64) -> Vec<i64> {
    let store = Store::connect(url).await.expect("database");
    let mut ids = Vec::with_capacity(runs as usize);
    let day = 86_400_000_i64;
    let start = 1_577_836_800_000_i64; // 2020-01-01
    for n in 0..runs {
        let scanner = (n as usize) % SCANNERS;
        let series = format!("2.25.{}", 1_000_000 + n);
        let record = InstanceRecord {
            sop_instance_uid: format!("2.25.{}", 9_000_000 + n),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            series_instance_uid: series.clone(),
            study_instance_uid: format!("2.25.{}", 5_000_000 + n),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            rel_path: format!("s/{n}.dcm"),
            size_bytes: 526_000,
            calling_ae: format!("CT{scanner}"),
            called_ae: "HURED_QA".into(),
            peer: "127.0.0.1:5000".into(),
            modality: Some("CT".into()),
            station_name: Some(format!("CT-{scanner}")),
            series_description: Some("QA HU-RED".into()),
            analysable: true,
        };
        store.record_instance(&record).await.expect("instance row");
        let acquired = start + (n as i64 / SCANNERS as i64) * day + scanner as i64 * 3_600_000;
        let verdict = if n % 17 == 0 {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        let mut run = NewRun::new(
            series,
            RunStatus::Ok,
            verdict,
            Fingerprint::of_uids([record.sop_instance_uid.as_str()]),
            acquired + 3_600_000,
            acquired + 3_700_000,
        );
        run.phantom_id = Some("cirs062".into());
        run.phantom_name = Some("CIRS 062M".into());
        run.scanner = Some(format!("CT-{scanner}"));
        run.baseline_source = Some("run 1".into());
        run.identity = RunIdentity {
            scanner_id: Some(format!("SERIAL{scanner}")),
            manufacturer: Some("hu-red".into()),
            model: Some("bench".into()),
            station_name: Some(format!("CT-{scanner}")),
            protocol_key: Some("kvp=120|kernel=STANDARD|slice=2".into()),
            kvp: Some(120.0),
            kernel: Some("STANDARD".into()),
            slice_thickness_mm: Some(2.0),
            study_date: Some(hu_red::report::utc_date_of_ms(acquired)),
            acquired_at: Some(acquired),
            ..RunIdentity::default()
        };
        run.materials = MATERIALS
            .iter()
            .map(|(name, hu, red)| {
                let delta = ((n * 7 + name.len() as u64) % 11) as f64 - 5.0;
                NewMaterialResult {
                    insert: (*name).into(),
                    red: Some(*red),
                    hu_mean: hu + delta,
                    hu_std: 6.0,
                    hu_median: hu + delta,
                    n_rois: 1,
                    n_pixels: 900,
                    baseline_hu: Some(*hu),
                    delta_hu: Some(delta),
                    tolerance_hu: Some(if *hu > 500.0 { 40.0 } else { 20.0 }),
                    within_tolerance: Some(true),
                    delta_red_percent: Some(delta / 10.0),
                    ..NewMaterialResult::default()
                }
            })
            .collect();
        ids.push(store.insert_run(&run).await.expect("run"));
    }
    store.close().await;
    ids
}

/// `hu-red serve` on the prepared database, its web server on a free port.
struct Server {
    child: Child,
    web_port: u16,
}

impl Server {
    fn start(url: &str, data: &std::path::Path) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env("HURED__SCP__BIND", "127.0.0.1:0")
            .env("HURED__WEB__BIND", "127.0.0.1:0")
            .env("HURED__STORAGE__DATA_DIR", data)
            .env("HURED__DATABASE__URL", url)
            .env("HURED__RETENTION__UNRECOGNISED_DAYS", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hu-red serve");
        let stderr = child.stderr.take().expect("stderr");
        let port = Arc::new(Mutex::new(None));
        let seen = port.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("web: listening") {
                    let p = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok());
                    *seen.lock().expect("lock") = p;
                }
            }
        });
        let t0 = Instant::now();
        let web_port = loop {
            if let Some(p) = *port.lock().expect("lock") {
                break p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "hu-red serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Server { child, web_port }
    }

    fn stop(&mut self) {
        // SIGTERM: the service stops gracefully
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A client with the session cookie of a logged-in physicist.
struct Client {
    http: reqwest::Client,
    cookie: String,
}

impl Client {
    async fn get(&self, port: u16, path: &str) -> usize {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().await.expect("body").len()
    }
}

async fn login(port: u16) -> Client {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = http
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .expect("login form");
    let login_cookie = cookie_of(&form, "hured_login");
    let page = form.text().await.expect("form");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field")
        .to_string();
    let r = http
        .post(format!("http://127.0.0.1:{port}/login"))
        .header("cookie", format!("hured_login={login_cookie}"))
        .form(&[
            ("username", "bench"),
            ("password", "benchmark password"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 303, "login");
    let session = cookie_of(&r, "hured_session");
    Client {
        http,
        cookie: format!("hured_session={session}"),
    }
}

fn cookie_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string()
}
