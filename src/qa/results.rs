//! The results folder: each run writes its files into a temporary folder
//! `data_dir/results/tmp-…` (created durably, every file written through [`crate::durable`]),
//! its row is stored pointing at that folder, then the folder is renamed to
//! `results/<run id>/` and the row updated. A stop in between is finished at the next start
//! ([`recover_results`]); folders no row points at are removed.

use crate::durable;
use crate::store::{now_ms, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{error, info, warn};

/// Folder of the finished runs, under data_dir.
pub const RESULTS_DIR: &str = "results";

/// Numbers the temp result folders of this process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new temporary result folder's path (not created): unique per run, also for runs started
/// in the same millisecond by this process.
pub(super) fn temp_folder(data_dir: &Path, started_ms: i64) -> PathBuf {
    let name = format!(
        "tmp-{}-{}-{}",
        started_ms,
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    data_dir.join(RESULTS_DIR).join(name)
}

/// The folder a run's row points at while its files are still in `tmp`: `results/tmp-…`.
pub(super) fn temp_rel_path(tmp: &Path) -> String {
    let name = tmp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{RESULTS_DIR}/{name}")
}

/// Remove half-written result folders of runs that were never stored (a crash mid-run).
pub fn clean_partial_results(data_dir: &Path) {
    let dir = data_dir.join(RESULTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("tmp-") {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                warn!(path = %e.path().display(), "cannot remove a partial result folder: {err}");
            }
        }
    }
}

/// Remove a temporary result folder that no row points at.
pub(super) fn discard(tmp: &Path) {
    if let Err(e) = std::fs::remove_dir_all(tmp) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %tmp.display(), "cannot remove a temporary result folder: {e}");
        }
    }
}

/// Move a stored run's outputs from their temp folder to `results/<id>/` (durably) and record
/// it; a folder of the same name (a run of an earlier database with the same id) is moved
/// aside.
pub(super) async fn place_outputs(store: &Store, data_dir: &Path, id: i64, tmp: &Path) {
    let results = data_dir.join(RESULTS_DIR);
    let dest = results.join(id.to_string());
    if dest.exists() {
        let aside = results.join(format!("{id}-superseded-{}", now_ms()));
        warn!(
            run = id,
            "{} already exists (a run of an earlier database?): moved to {}",
            dest.display(),
            aside.display()
        );
        if let Err(e) = durable::rename(&dest, &aside) {
            error!(run = id, "cannot move {} aside: {e}", dest.display());
        }
    }
    if let Err(e) = durable::rename(tmp, &dest) {
        error!(
            run = id,
            "cannot move the run's outputs to {}: {e}",
            dest.display()
        );
        return;
    }
    if let Err(e) = store
        .set_outputs_dir(id, Some(&format!("{RESULTS_DIR}/{id}")))
        .await
    {
        error!(
            run = id,
            "cannot record the run's results folder: {e}; it is recorded at the next start"
        );
    }
}

/// At start: runs stored while their outputs were still in a temp folder get them moved to
/// `results/<id>/` (the folder lost: the run keeps its database record and summary), then the
/// temp folders no run refers to (half-written by a stopped run) are removed.
pub async fn recover_results(store: &Store, data_dir: &Path) -> Result<(), StoreError> {
    for (id, dir) in store.runs_with_temp_outputs().await? {
        let tmp = data_dir.join(&dir);
        if tmp.is_dir() {
            info!(
                run = id,
                "moving the results of a run stored before a stop into place"
            );
            place_outputs(store, data_dir, id, &tmp).await;
        } else {
            warn!(run = id, folder = %dir, "the results folder of this run was lost; its record and summary remain in the database");
            store.set_outputs_dir(id, None).await?;
        }
    }
    clean_partial_results(data_dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_folders_are_unique_and_under_results() {
        let a = temp_folder(Path::new("/data"), 5);
        let b = temp_folder(Path::new("/data"), 5);
        assert_ne!(a, b);
        assert!(a.starts_with("/data/results"));
        let rel = temp_rel_path(&a);
        assert!(rel.starts_with("results/tmp-5-"), "{rel}");
        assert_eq!(Path::new("/data").join(&rel), a);
    }

    #[test]
    fn partial_folders_are_removed_and_finished_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = temp_folder(dir.path(), 1);
        durable::create_dir_all(&tmp).expect("mkdir");
        std::fs::write(tmp.join("x.csv"), b"x").expect("write");
        let done = dir.path().join(RESULTS_DIR).join("7");
        std::fs::create_dir(&done).expect("mkdir");
        clean_partial_results(dir.path());
        assert!(!tmp.exists());
        assert!(done.is_dir());
    }

    #[tokio::test]
    async fn a_stored_run_gets_its_folder_and_a_clash_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = super::super::jobs::tests::context(dir.path()).await;
        let tmp = temp_folder(dir.path(), 2);
        durable::create_dir_all(&tmp).expect("mkdir");
        std::fs::write(tmp.join("new.csv"), b"new").expect("write");
        // a folder left by an earlier database under the same id
        let dest = dir.path().join(RESULTS_DIR).join("1");
        std::fs::create_dir(&dest).expect("mkdir");
        std::fs::write(dest.join("old.csv"), b"old").expect("write");
        place_outputs(&ctx.store, dir.path(), 1, &tmp).await;
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(dest.join("new.csv")).expect("moved"), b"new");
        let aside: Vec<String> = std::fs::read_dir(dir.path().join(RESULTS_DIR))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("1-superseded-"))
            .collect();
        assert_eq!(aside.len(), 1, "the old folder is kept aside");
    }
}
