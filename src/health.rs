//! The database watch: a database that stays unusable must be visible, not only to the senders
//! whose stores are refused (0xA700). Every [`CHECK_EVERY`] the service makes a small committed
//! write; while that fails it logs an error at most once a minute and keeps
//! `data_dir/database-status.json` saying since when and why (written durably; removed once the
//! database takes writes again). `hu-red runs` reads that file first, so it says so even when it
//! cannot open the database itself.

use crate::durable;
use crate::store::{now_ms, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// How often the database is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How often a database that stays unusable is logged again.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// The status file's name, under data_dir.
pub const STATUS_FILE: &str = "database-status.json";

/// What the status file says: the database has refused writes since `since_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unusable {
    /// Unix ms of the first failed check.
    pub since_ms: i64,
    /// Unix ms of the last failed check.
    pub checked_ms: i64,
    /// The last error, as the store words it (names the database, never a password).
    pub error: String,
}

/// The status file of `data_dir`.
pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATUS_FILE)
}

/// What the service last found, when the database is unusable (`None`: usable, or no service
/// has said otherwise). A status file that cannot be read is reported as such.
pub fn read_status(data_dir: &Path) -> Result<Option<Unusable>, String> {
    let path = status_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not readable: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Check the database every [`CHECK_EVERY`] until `shutdown`.
pub async fn watch_database(store: Store, data_dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    let mut state: Option<Unusable> = None;
    let mut last_log: Option<tokio::time::Instant> = None;
    // a status file left by an earlier run of the service is stale once a check succeeds
    let mut stale = true;
    loop {
        let now = now_ms();
        match store.probe_write().await {
            Ok(()) => {
                if let Some(s) = state.take() {
                    info!(
                        "the database takes writes again after {} s",
                        (now - s.since_ms) / 1000
                    );
                    stale = true;
                    last_log = None;
                }
                if stale {
                    remove_status(&data_dir);
                    stale = false;
                }
            }
            Err(e) => {
                let s = state.get_or_insert_with(|| Unusable {
                    since_ms: now,
                    checked_ms: now,
                    error: String::new(),
                });
                s.checked_ms = now;
                s.error = e.to_string();
                if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    error!(
                        unusable_for_s = (now - s.since_ms) / 1000,
                        "the database does not take writes: {}; every store is refused (0xA700) \
                         until it does",
                        s.error
                    );
                    last_log = Some(tokio::time::Instant::now());
                }
                write_status(&data_dir, s);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Remove the status file (the database takes writes).
fn remove_status(data_dir: &Path) {
    let path = status_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            if let Err(e) = durable::sync_dir(data_dir) {
                warn!("cannot fsync {}: {e}", data_dir.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!("cannot remove {}: {e}", path.display()),
    }
}

/// Write the status file (durably; a failure is logged: the log line is the fallback).
fn write_status(data_dir: &Path, s: &Unusable) {
    let written = serde_json::to_vec_pretty(s)
        .map_err(|e| e.to_string())
        .and_then(|b| durable::write(&status_path(data_dir), &b).map_err(|e| e.to_string()));
    if let Err(e) = written {
        warn!("cannot write {}: {e}", STATUS_FILE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_file_round_trips_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_status(dir.path()), Ok(None));
        let s = Unusable {
            since_ms: 1,
            checked_ms: 2,
            error: "disk I/O error".into(),
        };
        write_status(dir.path(), &s);
        assert_eq!(read_status(dir.path()), Ok(Some(s)));
        std::fs::write(status_path(dir.path()), b"{").expect("write");
        let e = read_status(dir.path()).expect_err("unreadable");
        assert!(e.contains(STATUS_FILE), "{e}");
    }

    #[tokio::test]
    async fn a_usable_database_removes_a_stale_status_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        write_status(
            dir.path(),
            &Unusable {
                since_ms: 1,
                checked_ms: 1,
                error: "old".into(),
            },
        );
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(watch_database(store, dir.path().to_path_buf(), stop));
        // the first check runs at once
        for _ in 0..100 {
            if read_status(dir.path()).expect("readable").is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).expect("listening");
        task.await.expect("no panic");
        assert_eq!(
            read_status(dir.path()),
            Ok(None),
            "left by an earlier run: removed"
        );
    }
}
