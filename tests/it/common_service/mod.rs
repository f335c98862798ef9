//! The `hu-red serve` harness shared by tests/it/service.rs and tests/it/mail.rs: a test's world
//! (temp folder, database: SQLite or a Postgres schema), the real binary as a child process,
//! DCMTK as the peer, simulated series.
#![allow(dead_code)] // each test module uses part of it

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hu_red::simulate::{self, SimParams};
use hu_red::store::{RunDetail, RunRow, SeriesRow, SeriesState, Store};

pub const BIN: &str = env!("CARGO_BIN_EXE_hu-red");
pub const AE: &str = "HURED_QA";
/// Upper bound of every wait (generous: the machine is shared with builds).
pub const DEADLINE: Duration = Duration::from_secs(120);
pub const POLL: Duration = Duration::from_millis(100);

use super::common_db::{create_schema, drop_schema, schema_url, Kind};

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

// ------------------------------------------------------------------ databases

/// One test's world: a temp folder (data_dir, series, outputs), a database (SQLite file in the
/// data_dir or a fresh Postgres schema), a small runtime for the store queries.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub kind: Kind,
    pub url: String,
    pub schema: Option<String>,
    pub dir: tempfile::TempDir,
    pub store: std::cell::OnceCell<Store>,
}

impl Harness {
    pub fn new(kind: Kind) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (url, schema) = match &kind {
            Kind::Sqlite => (
                format!(
                    "sqlite://{}",
                    dir.path().join("data").join("hu-red.sqlite").display()
                ),
                None,
            ),
            Kind::Postgres(base) => {
                let schema = rt.block_on(create_schema(base));
                (schema_url(base, &schema), Some(schema))
            }
        };
        Harness {
            rt,
            kind,
            url,
            schema,
            dir,
            store: std::cell::OnceCell::new(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// The environment that points hu-red at this test's port, data_dir and database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HURED__SCP__BIND", "127.0.0.1:0".into()),
            ("HURED__WEB__BIND", "127.0.0.1:0".into()),
            (
                "HURED__STORAGE__DATA_DIR",
                self.data_dir().display().to_string(),
            ),
            ("HURED__DATABASE__URL", self.url.clone()),
        ]
    }

    /// `hu-red serve` with the embedded defaults plus this test's env and `stable_seconds`.
    pub fn serve(&self, stable_seconds: u64) -> Server {
        self.serve_with(stable_seconds, &[])
    }

    /// As [`Harness::serve`], with more env (later keys override earlier ones).
    pub fn serve_with(&self, stable_seconds: u64, extra: &[(&'static str, &str)]) -> Server {
        self.serve_args(stable_seconds, extra, &[])
    }

    /// As [`Harness::serve_with`], with arguments after `serve` (e.g. `--config FILE`).
    pub fn serve_args(
        &self,
        stable_seconds: u64,
        extra: &[(&'static str, &str)],
        args: &[&str],
    ) -> Server {
        let mut env = self.env();
        env.push(("HURED__SERIES__STABLE_SECONDS", stable_seconds.to_string()));
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Server::start_args(self.root(), &env, args)
    }

    /// A hu-red command (not serve) with this test's env.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = hured(self.root());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run hu-red")
    }

    /// The test's own connection to the service's database (opened once the server has applied
    /// the migrations).
    pub fn store(&self) -> &Store {
        self.store.get_or_init(|| {
            self.rt
                .block_on(Store::connect(&self.url))
                .unwrap_or_else(|e| panic!("the test cannot open the database: {e}"))
        })
    }

    pub fn series(&self, uid: &str) -> Option<SeriesRow> {
        self.rt.block_on(self.store().get_series(uid)).unwrap()
    }

    pub fn runs_of(&self, uid: &str) -> Vec<RunRow> {
        self.rt.block_on(self.store().series_runs(uid)).unwrap()
    }

    pub fn run_detail(&self, id: i64) -> RunDetail {
        self.rt
            .block_on(self.store().get_run(id))
            .unwrap()
            .unwrap_or_else(|| panic!("run {id} not in the database"))
    }

    pub fn instance_exists(&self, sop: &str) -> bool {
        self.rt.block_on(self.store().instance_exists(sop)).unwrap()
    }

    /// Poll until the series satisfies `done`; returns its row.
    pub fn wait_series(
        &self,
        server: &Server,
        uid: &str,
        what: &str,
        done: impl Fn(&SeriesRow) -> bool,
    ) -> SeriesRow {
        wait_until(what, server, || self.series(uid).filter(|s| done(s)))
    }

    /// Poll until the series ended (done/failed/not_analysed) having handled `n` instances,
    /// and its last run's outputs were moved from their temp folder to `results/<id>/` (the
    /// worker does that right after committing the run).
    pub fn wait_finished(&self, server: &Server, uid: &str, n: i64) -> SeriesRow {
        let row = self.wait_series(
            server,
            uid,
            &format!("series {uid} analysed with {n} instances"),
            |s| {
                matches!(
                    s.state,
                    SeriesState::Done | SeriesState::Failed | SeriesState::NotAnalysed
                ) && s.analysed_instance_count == Some(n)
            },
        );
        wait_until(
            &format!("the outputs of the last run of {uid} in place"),
            server,
            || {
                let runs = self.runs_of(uid);
                let placed = runs.last().is_none_or(|r| {
                    !r.outputs_dir
                        .as_deref()
                        .is_some_and(|d| d.starts_with("results/tmp-"))
                });
                placed.then_some(())
            },
        );
        row
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.rt.block_on(store.close());
        }
        if let (Kind::Postgres(base), Some(schema)) = (&self.kind, &self.schema) {
            let r = self.rt.block_on(drop_schema(base, schema));
            if let Err(e) = r {
                eprintln!("could not drop the test schema {schema}: {e}");
            }
        }
    }
}

#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::Kind::Sqlite);
                }
                #[test]
                fn postgres() {
                    if let Some(kind) = super::postgres_kind("tests/it/service.rs") {
                        super::$name(kind);
                    }
                }
            }
        )*
    };
}

// ------------------------------------------------------------------ the server process

/// `hu-red` with a clean environment: no inherited HURED__ keys, logs at INFO.
pub fn hured(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HURED__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info").current_dir(cwd);
    cmd
}

/// A running `hu-red serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(cwd: &Path, env: &[(&str, String)]) -> Server {
        Self::start_args(cwd, env, &[])
    }

    pub fn start_args(cwd: &Path, env: &[(&str, String)], args: &[&str]) -> Server {
        let mut cmd = hured(cwd);
        cmd.arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hu-red serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        let t0 = Instant::now();
        server.port = loop {
            if let Some(port) = server.listening_port() {
                break port;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "hu-red serve exited ({status}) before listening:\n{}",
                    server.log_tail()
                );
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "hu-red serve did not report listening within {DEADLINE:?}:\n{}",
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        server
    }

    /// The port of the SCP's "DICOM SCP listening addr=127.0.0.1:PORT" line (logged once its
    /// temp folder is prepared, just before it accepts).
    pub fn listening_port(&self) -> Option<u16> {
        self.logged_port("DICOM SCP listening")
    }

    /// The web server's port (its "web: listening addr=127.0.0.1:PORT" line), waiting for it.
    pub fn web_port(&self) -> u16 {
        let t0 = Instant::now();
        loop {
            if let Some(p) = self.logged_port("web: listening") {
                return p;
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "hu-red serve did not report its web server listening within {DEADLINE:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port of the `addr=` of the first log line containing `marker`.
    fn logged_port(&self, marker: &str) -> Option<u16> {
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains(marker))?;
        // text: `addr=127.0.0.1:PORT`; JSON logs: `"addr":"127.0.0.1:PORT"`
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .or_else(|| {
                let rest = line.split("\"addr\":\"").nth(1)?;
                rest.split('"').next()
            })?;
        addr.rsplit(':').next()?.parse().ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let from = log.len().saturating_sub(60);
        format!(
            "--- server log (last lines) ---\n{}",
            log[from..].join("\n")
        )
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the process to exit by itself, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if t0.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Poll `f` until it gives a value; panics after [`DEADLINE`] with the server's log.
pub fn wait_until<T>(what: &str, server: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for: {what}\n{}",
            server.log_tail()
        );
        std::thread::sleep(POLL);
    }
}

// ------------------------------------------------------------------ DCMTK

pub fn tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "DCMTK is required for this test but `{name}` was not found on PATH \
         (install it: apt-get install -y dcmtk)"
    );
    Command::new(name)
}

pub struct Out {
    pub ok: bool,
    pub text: String,
}

pub fn run(cmd: &mut Command) -> Out {
    let out = cmd.output().expect("run DCMTK tool");
    Out {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

pub const STORE_OK: &str = "Received Store Response (Success)";

/// storescu -v of `files` in one association; asserts every instance was acknowledged with
/// success (storescu exits 0 even when stores fail, so the responses are counted).
pub fn send(server: &Server, files: &[PathBuf], extra: &[&str]) {
    let out = run(tool("storescu")
        .args(["-v", "-aet", "CTSIM1", "-aec", AE])
        .args(extra)
        .arg("127.0.0.1")
        .arg(server.port.to_string())
        .args(files));
    let acked = out.text.matches(STORE_OK).count();
    assert!(
        out.ok && acked == files.len(),
        "storescu {extra:?}: {acked} of {} acknowledged:\n{}\n{}",
        files.len(),
        out.text,
        server.log_tail()
    );
}

/// Transcode each file with a DCMTK codec tool into `out_dir`.
pub fn transcode(name: &str, files: &[PathBuf], out_dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(out_dir).unwrap();
    files
        .iter()
        .map(|f| {
            let out = out_dir.join(f.file_name().unwrap());
            let r = run(tool(name).arg(f).arg(&out));
            assert!(r.ok, "{name} {}: {}", f.display(), r.text);
            out
        })
        .collect()
}

/// (transfer syntax, data set bytes after the file meta) of a Part-10 file.
pub fn part10(path: &Path) -> (String, Vec<u8>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[128..132], b"DICM", "{}", path.display());
    let mut r = &bytes[128..];
    let before = r.len();
    let meta = dicom_object::meta::FileMetaTable::from_reader(&mut r).unwrap();
    let offset = 128 + (before - r.len());
    (
        meta.transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_string(),
        bytes[offset..].to_vec(),
    )
}

// ------------------------------------------------------------------ simulated series

pub struct Series {
    /// Folder with the DICOM files only (truth.json removed).
    pub dir: PathBuf,
    /// The files in z order.
    pub files: Vec<PathBuf>,
    pub uid: String,
    pub study: String,
    /// SOP Instance UID by file name.
    pub sop_by_file: BTreeMap<String, String>,
}

impl Series {
    pub fn n(&self) -> i64 {
        self.files.len() as i64
    }

    /// The same series written with a DCMTK codec (same UIDs, compressed pixel data).
    pub fn transcoded(&self, tool_name: &str, dir: &Path) -> Series {
        let files = transcode(tool_name, &self.files, dir);
        Series {
            dir: dir.to_path_buf(),
            files,
            uid: self.uid.clone(),
            study: self.study.clone(),
            sop_by_file: self.sop_by_file.clone(),
        }
    }

    pub fn stored_path(&self, data_dir: &Path, sop: &str) -> PathBuf {
        data_dir
            .join(&self.study)
            .join(&self.uid)
            .join(format!("{sop}.dcm"))
    }
}

pub fn simulate(dir: &Path, phantom: &str, params: SimParams) -> Series {
    let set = hu_red::phantom::PhantomSet::builtin();
    let def = set.get(phantom).unwrap();
    let (paths, truth) = simulate::render_to_dir(&params, def, dir).unwrap();
    fs::remove_file(dir.join("truth.json")).unwrap();
    let files: Vec<PathBuf> = paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(files.len(), params.n_slices);
    Series {
        dir: dir.to_path_buf(),
        files,
        uid: truth.series_uid.clone(),
        study: truth.study_uid.clone(),
        sop_by_file: truth
            .slices
            .iter()
            .map(|s| (s.file.clone(), s.sop_instance_uid.clone()))
            .collect(),
    }
}

/// Catphan 504 (CTP404): 20 slices of 256² at 0.9 mm (230 mm FOV), 2 mm thick.
pub fn catphan(dir: &Path, seed: u64) -> Series {
    simulate(
        dir,
        "catphan_504",
        SimParams {
            matrix: 256,
            pixel_mm: 0.9,
            n_slices: 20,
            slice_thickness_mm: 2.0,
            catphan_modules: false,
            seed,
            ..SimParams::default()
        },
    )
}

/// CIRS 062M: `n` slices of 256² at 1.4 mm (358 mm FOV), 5 mm thick.
pub fn cirs(dir: &Path, seed: u64, n: usize) -> Series {
    simulate(
        dir,
        "cirs062",
        SimParams {
            matrix: 256,
            pixel_mm: 1.4,
            n_slices: n,
            slice_thickness_mm: 5.0,
            seed,
            ..SimParams::default()
        },
    )
}

/// A small CIRS-sized series of 128² at 2.8 mm with custom parameters.
pub fn small(dir: &Path, seed: u64, n: usize, tweak: impl FnOnce(&mut SimParams)) -> Series {
    let mut p = SimParams {
        matrix: 128,
        pixel_mm: 2.8,
        n_slices: n,
        slice_thickness_mm: 5.0,
        seed,
        ..SimParams::default()
    };
    tweak(&mut p);
    simulate(dir, "cirs062", p)
}
