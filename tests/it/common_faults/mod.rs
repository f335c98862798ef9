//! Faults made with real components, shared by tests/it/faults.rs and tests/it/web: files made
//! immutable (`chattr +i`, needs root) and a private PostgreSQL cluster that can be stopped.
#![allow(dead_code)] // each test module uses part of it

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes files immutable (`chattr +i`) and always makes them writable again, also when the
/// test fails (else the temp folder could not be removed).
pub struct Immutable(Vec<PathBuf>);

impl Immutable {
    pub fn set(files: &[PathBuf]) -> Immutable {
        for f in files {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(f)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "chattr +i {} (the test needs root and e2fsprogs)",
                f.display()
            );
        }
        Immutable(files.to_vec())
    }

    pub fn release(&mut self) {
        for f in self.0.drain(..) {
            let _ = Command::new("chattr").arg("-i").arg(&f).status();
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.release();
    }
}

/// A PostgreSQL cluster of this test's own (initdb in a temp folder, trust authentication on
/// 127.0.0.1, a free port), so that it can be stopped and restarted without touching the
/// shared test database. Stopped (by its postmaster's PID, through pg_ctl) when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let root = Path::new("/usr/lib/postgresql");
        let mut versions: Vec<u32> = fs::read_dir(root)
            .unwrap_or_else(|e| panic!("{}: {e} (install postgresql)", root.display()))
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort();
        let version = versions.last().expect("a PostgreSQL version installed");
        let bin = root.join(version.to_string()).join("bin");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        fs::create_dir(&data).unwrap();
        // the server refuses to run as root: the cluster belongs to the postgres user
        let chown = |p: &Path| {
            assert!(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(p)
                .status()
                .unwrap()
                .success());
        };
        chown(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres {
            bin,
            data,
            port,
            _dir: dir,
        };
        pg.as_postgres(&format!(
            "{} -D {} -U postgres --auth=trust -E UTF8 --no-sync",
            pg.bin.join("initdb").display(),
            pg.data.display()
        ));
        pg.pg_ctl("start");
        pg
    }

    fn as_postgres(&self, command: &str) {
        let out = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", command])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start|stop|restart`, waiting until done (stop: fast, the open connections cut).
    pub fn pg_ctl(&self, action: &str) {
        self.as_postgres(&format!(
            "{} -D {} -w -m fast -l {}/log -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off' {action}",
            self.bin.join("pg_ctl").display(),
            self.data.display(),
            self.data.display(),
            self.port,
            self.data.display(),
        ));
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c"])
            .arg(format!(
                "{} -D {} -w -m immediate stop",
                self.bin.join("pg_ctl").display(),
                self.data.display()
            ))
            .output();
    }
}
