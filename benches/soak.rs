//! Soak benchmark (issue 11; a benchmark, not a test): `hu-red serve` (the bench-profile binary,
//! SQLite) receives 8 series of 500 instances over 8 parallel DCMTK `storescu` associations while
//! it is killed with SIGKILL every ~10 s (20 cycles) and started again on the same port. Each
//! sender re-sends what was not acknowledged until every instance was. Then the service runs
//! undisturbed until every series is analysed.
//!
//! Reported: instances acknowledged vs present (file in place and row recorded; target 0 lost),
//! runs stored per (series, instance set) — a set analysed twice is a duplicate (target 0) —,
//! the kills, re-sent instances and wall time.
//!
//!     cargo bench --bench soak
//!     SOAK_CYCLES=5 SOAK_INSTANCES=100 cargo bench --bench soak    # a shorter run
//!
//! Environment: SOAK_CYCLES (20), SOAK_ASSOCIATIONS (8), SOAK_INSTANCES (500 per association),
//! SOAK_KILL_SECONDS (10; each interval is drawn between 0.5× and 1.5× of it), SOAK_KEEP=1
//! keeps the work folder. Needs DCMTK's storescu on PATH.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hu_red::store::{SeriesState, Store};

const BIN: &str = env!("CARGO_BIN_EXE_hu-red");
const AE: &str = "HURED_QA";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    cycles: u64,
    associations: u64,
    instances: u64,
    kill_every: Duration,
}

/// One simulated series: its files and the SOP Instance UID of each.
struct Series {
    uid: String,
    sops: BTreeMap<PathBuf, String>,
}

fn simulate(dir: &Path, seed: u64, n: u64) -> Series {
    let out = Command::new(BIN)
        .args(["simulate", "--phantom", "catphan_504", "--matrix", "64"])
        .args(["--pixel-mm", "4.0", "--slice-thickness-mm", "0.5"])
        .args(["--n-slices", &n.to_string(), "--seed", &seed.to_string()])
        .args(["--station-name", &format!("SOAK{seed:02}")])
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run hu-red simulate");
    assert!(
        out.status.success(),
        "hu-red simulate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sops = BTreeMap::new();
    let mut uid = String::new();
    for entry in std::fs::read_dir(dir)
        .expect("the simulated series")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "dcm") {
            let obj = dicom_object::open_file(&path).expect("a simulated file");
            let text = |tag| {
                obj.element(tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default()
            };
            uid = text(dicom_dictionary_std::tags::SERIES_INSTANCE_UID);
            sops.insert(path, text(dicom_dictionary_std::tags::SOP_INSTANCE_UID));
        }
    }
    assert_eq!(sops.len() as u64, n, "{}", dir.display());
    Series { uid, sops }
}

/// The running service (restarted after each kill on the same port).
struct Service {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Service {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        let mut child = Command::new(BIN)
            .arg("serve")
            .env("HURED__SCP__BIND", format!("127.0.0.1:{}", self.port))
            .env("HURED__SCP__MAX_ASSOCIATIONS", "16")
            .env("HURED__WEB__BIND", "")
            .env("HURED__STORAGE__DATA_DIR", &self.data_dir)
            .env(
                "HURED__DATABASE__URL",
                format!("sqlite://{}", self.data_dir.join("hu-red.sqlite").display()),
            )
            .env("HURED__SERIES__STABLE_SECONDS", "5")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hu-red serve");
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(log, "{line}");
            }
        });
        // warn-level logs do not say "listening": wait for the port
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hu-red serve exited ({status}); see {}", self.log.display());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "hu-red serve not listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

/// One association's sender: sends the files not yet acknowledged, again and again (200 ms
/// apart while the service is down), until all were. Adds the acknowledged SOP Instance UIDs to
/// `acked` and counts the store requests that went out again after a failed association.
fn sender(
    port: u16,
    calling: String,
    files: BTreeMap<PathBuf, String>,
    acked: Arc<Mutex<BTreeSet<String>>>,
    resent: Arc<AtomicUsize>,
) {
    let mut left: Vec<PathBuf> = files.keys().cloned().collect();
    let mut attempts = 0u32;
    while !left.is_empty() {
        if attempts > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        attempts += 1;
        let out = Command::new("storescu")
            .args([
                "-v",
                "-aet",
                &calling,
                "-aec",
                AE,
                "127.0.0.1",
                &port.to_string(),
            ])
            .args(&left)
            .output()
            .expect("storescu on PATH (apt-get install dcmtk)");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        // "I: Sending file: PATH" ... "I: Received Store Response (Success)"
        let mut current: Option<PathBuf> = None;
        let mut done = BTreeSet::new();
        for line in text.lines() {
            if line.contains("Sending Store Request") && attempts > 1 {
                // an instance sent again after a kill cut the association
                resent.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(p) = line.split("Sending file: ").nth(1) {
                current = Some(PathBuf::from(p.trim()));
            } else if line.contains("Received Store Response (Success)") {
                if let Some(p) = current.take() {
                    done.insert(p);
                }
            }
        }
        let mut a = acked.lock().expect("acked");
        for p in &done {
            if let Some(sop) = files.get(p) {
                a.insert(sop.clone());
            }
        }
        drop(a);
        left.retain(|p| !done.contains(p));
        assert!(attempts < 10_000, "{calling}: no progress");
    }
}

fn main() {
    let s = Settings {
        cycles: env_or("SOAK_CYCLES", 20),
        associations: env_or("SOAK_ASSOCIATIONS", 8),
        instances: env_or("SOAK_INSTANCES", 500),
        kill_every: Duration::from_secs(env_or("SOAK_KILL_SECONDS", 10)),
    };
    let work = tempfile::tempdir().expect("a work folder");
    let root = work.path().to_path_buf();
    eprintln!(
        "soak: simulating {} cycles × {} series × {} instances in {}",
        s.cycles,
        s.associations,
        s.instances,
        root.display()
    );
    let rounds: Vec<Vec<Series>> = (0..s.cycles)
        .map(|c| {
            (0..s.associations)
                .map(|i| {
                    let seed = 1000 * (c + 1) + i;
                    simulate(&root.join(format!("c{c}s{i}")), seed, s.instances)
                })
                .collect()
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut service = Service {
        child: None,
        port,
        data_dir: root.join("data"),
        log: root.join("serve.log"),
    };
    service.start();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let resent = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    // a fixed pseudo-random sequence of kill moments, 0.3–1.5× kill_every into each cycle: some
    // land in the push, some in the analyses after it
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut kills = 0u64;
    for (c, round) in rounds.iter().enumerate() {
        let senders: Vec<_> = round
            .iter()
            .enumerate()
            .map(|(i, se)| {
                let (acked, resent, files) = (acked.clone(), resent.clone(), se.sops.clone());
                std::thread::spawn(move || {
                    sender(port, format!("SOAK{i:02}"), files, acked, resent)
                })
            })
            .collect();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let f = 0.3 + (state % 1200) as f64 / 1000.0;
        std::thread::sleep(s.kill_every.mul_f64(f));
        service.kill();
        kills += 1;
        service.start();
        for h in senders {
            h.join().expect("a sender");
        }
        eprintln!(
            "soak: cycle {}/{}: killed {:.1} s in, {} acknowledged so far, {:.0} s",
            c + 1,
            s.cycles,
            s.kill_every.mul_f64(f).as_secs_f64(),
            acked.lock().expect("acked").len(),
            t0.elapsed().as_secs_f64()
        );
    }
    let push_s = t0.elapsed().as_secs_f64();
    eprintln!("soak: all acknowledged after {push_s:.0} s; waiting for the analyses");
    let series: Vec<&Series> = rounds.iter().flatten().collect();

    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let url = format!(
        "sqlite://{}",
        service.data_dir.join("hu-red.sqlite").display()
    );
    let store = rt.block_on(Store::connect(&url)).expect("the database");
    let settled = Instant::now();
    loop {
        let done = series.iter().all(|se| {
            rt.block_on(store.get_series(&se.uid))
                .ok()
                .flatten()
                .is_some_and(|r| {
                    matches!(r.state, SeriesState::Done | SeriesState::Failed)
                        && r.analysed_instance_count == Some(se.sops.len() as i64)
                })
        });
        if done {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(1800),
            "series not analysed after 30 min; see {}",
            service.log.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let total_s = t0.elapsed().as_secs_f64();

    // acknowledged vs present (file in place and row recorded)
    let acked = acked.lock().expect("acked").clone();
    let mut present = 0usize;
    let mut lost = Vec::new();
    for se in &series {
        let rows = rt
            .block_on(store.series_instances(&se.uid))
            .expect("instances");
        let by_sop: HashMap<&str, &str> = rows
            .iter()
            .map(|r| (r.sop_instance_uid.as_str(), r.rel_path.as_str()))
            .collect();
        for sop in se.sops.values().filter(|s| acked.contains(*s)) {
            match by_sop.get(sop.as_str()) {
                Some(rel) if service.data_dir.join(rel).is_file() => present += 1,
                _ => lost.push(sop.clone()),
            }
        }
    }
    // runs per (series, instance set): the same set analysed twice is a duplicate
    let mut runs = 0usize;
    let mut duplicates = 0usize;
    for se in &series {
        let rs = rt.block_on(store.series_runs(&se.uid)).expect("runs");
        runs += rs.len();
        let mut seen = BTreeSet::new();
        for r in &rs {
            if !seen.insert((r.fingerprint.n_instances, r.fingerprint.digest.clone())) {
                duplicates += 1;
            }
        }
    }
    service.kill();
    let total = series.iter().map(|se| se.sops.len()).sum::<usize>();
    println!(
        "soak: {} cycles of {} associations × {} instances, {kills} SIGKILLs (0.3–1.5 × {:?} into each cycle)",
        s.cycles, s.associations, s.instances, s.kill_every
    );
    println!("| instances | acknowledged | present | lost | requests on retried associations | series | runs stored | duplicate runs | wall (s) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {total} | {} | {present} | {} | {} | {} | {runs} | {duplicates} | {total_s:.0} |",
        acked.len(),
        lost.len(),
        resent.load(Ordering::Relaxed),
        series.len(),
    );
    if !lost.is_empty() {
        println!("LOST: {lost:?}");
    }
    if std::env::var_os("SOAK_KEEP").is_some() {
        let kept = work.keep();
        println!("work folder kept: {}", kept.display());
    }
    if !lost.is_empty() || duplicates > 0 {
        std::process::exit(1);
    }
}
