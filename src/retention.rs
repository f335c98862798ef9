//! Retention: the instance files of series that are no QA phantom (no CT image, or no phantom
//! recognised — possibly a patient's CT routed here by mistake) are purged after
//! `retention.unrecognised_days`, those of phantom series after `retention.instances_days` (0 =
//! kept). A purged series stays listed with its runs, results and reports, marked
//! `instances_purged_at`.
//!
//! One purge, per series (oldest first): the store marks the series and deletes its instance
//! rows in one transaction, only if the series is still as selected (finished, nothing received
//! since); then the files named by those rows are removed, and the folders left empty. A stop in
//! between leaves files of a series marked purged and no row pointing at them: start-up recovery
//! does not record them again, and the next purge removes them ("left-overs"). A file is removed
//! only when its path is inside `storage.data_dir` (relative, no `..`, no symbolic link out), no
//! instance row names it again and it was not written after the purge began (an instance
//! re-sent meanwhile re-opens its series and is kept).
//!
//! The service runs a purge at start and then every 24 hours (a supervised task); `hu-red purge`
//! runs one (or lists it, `--dry-run`). Logs name series by their UID only: never patient data.

use crate::store::{
    now_ms, PurgeCandidate, PurgeCutoffs, PurgedInstance, PurgedSeries, Store, StoreError,
};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tracing::{info, warn};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Between two purges of the service.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(DAY);
/// After a purge that failed (the database refused).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(HOUR);
/// The longest age accepted (days in the configuration, `--older-than`): 100 years.
pub const MAX_DAYS: u32 = 36_500;

/// Which series lose their instance files, and after how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Series with no CT image or no phantom recognised; `None`: kept.
    pub unrecognised: Option<Duration>,
    /// Phantom series (every other analysed series); `None`: kept.
    pub phantom: Option<Duration>,
}

impl Policy {
    /// `retention.unrecognised_days` and `retention.instances_days` (0 = kept).
    pub fn from_days(unrecognised_days: u32, instances_days: u32) -> Policy {
        let days = |d: u32| (d > 0).then(|| Duration::from_secs(u64::from(d) * DAY));
        Policy {
            unrecognised: days(unrecognised_days),
            phantom: days(instances_days),
        }
    }

    /// The unix-ms cutoffs at `now_ms`.
    pub fn cutoffs(&self, now_ms: i64) -> PurgeCutoffs {
        let before = |age: Duration| {
            now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        };
        PurgeCutoffs {
            unrecognised: self.unrecognised.map(before),
            phantom: self.phantom.map(before),
        }
    }

    /// E.g. "unrecognised series after 7d, phantom series kept".
    pub fn describe(&self) -> String {
        let age = |d: Option<Duration>| match d {
            Some(d) => format!("after {}", format_duration(d)),
            None => "kept".to_string(),
        };
        format!(
            "instances of unrecognised series {}, of phantom series {}",
            age(self.unrecognised),
            age(self.phantom)
        )
    }
}

/// What the retention room needs, taken once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `storage.data_dir`: every file a purge removes lies inside it.
    pub data_dir: PathBuf,
    pub policy: Policy,
}

/// Errors of a purge.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storage.data_dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file removal task ended abnormally: {0}")]
    Task(String),
}

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeSummary {
    /// Series whose instances were purged.
    pub series: u64,
    /// Instance files removed, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Instance rows whose file was already gone.
    pub missing: u64,
    /// Files left in place: re-sent while the purge ran.
    pub kept: u64,
    /// Files not removed: a path outside data_dir, or an error (each logged).
    pub refused: u64,
    /// Series that changed since they were selected (an instance arrived): left alone.
    pub skipped: u64,
    /// Files of earlier, interrupted purges removed now.
    pub leftovers: u64,
}

impl PurgeSummary {
    fn add(&mut self, f: &FileTally) {
        self.files += f.removed;
        self.bytes += f.bytes;
        self.missing += f.missing;
        self.kept += f.kept;
        self.refused += f.refused;
    }
}

/// The series a purge under `policy` would take at `now_ms` (what `--dry-run` lists).
pub async fn candidates(
    store: &Store,
    policy: &Policy,
    now_ms: i64,
) -> Result<Vec<PurgeCandidate>, RetentionError> {
    Ok(store.purge_candidates(policy.cutoffs(now_ms)).await?)
}

/// One purge: every candidate's rows, then its files; then the left-overs of interrupted
/// purges. Logs one line per purged series (UID, reason, instances, bytes).
pub async fn purge(
    store: &Store,
    data_dir: &Path,
    policy: &Policy,
    now_ms: i64,
) -> Result<PurgeSummary, RetentionError> {
    let root = canonical_root(data_dir).await?;
    let mut summary = PurgeSummary::default();
    for c in candidates(store, policy, now_ms).await? {
        let begun = crate::store::now_ms();
        let Some(rows) = store.purge_series_instances(&c).await? else {
            summary.skipped += 1;
            continue;
        };
        // Rows of instances re-sent since the commit (the series re-opened): their files stay.
        let live = live_paths(store, &c.series_instance_uid).await?;
        let tally = blocking(root.clone(), move |root| {
            remove_files(&root, &rows, begun, &live)
        })
        .await?;
        info!(
            series = %c.series_instance_uid,
            reason = c.reason.label(),
            instances = c.instances,
            bytes = c.bytes,
            removed = tally.removed,
            "instances purged (retention): the series, its runs and reports are kept"
        );
        summary.series += 1;
        summary.add(&tally);
    }
    summary.leftovers = purge_leftovers(store, &root).await?;
    if summary.series > 0 || summary.leftovers > 0 {
        info!(
            series = summary.series,
            files = summary.files,
            bytes = summary.bytes,
            leftovers = summary.leftovers,
            "retention purge done"
        );
    }
    Ok(summary)
}

/// The service's task: a purge now, then every [`PURGE_INTERVAL`] (after a failure, again in an
/// hour) until `shutdown`. A purge interrupted by the shutdown is completed by the next one.
pub async fn run_daily(store: Store, settings: Settings, mut shutdown: watch::Receiver<bool>) {
    info!(policy = %settings.policy.describe(), "retention: a purge now and every 24 h");
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = tokio::select! {
            r = purge(&store, &settings.data_dir, &settings.policy, now_ms()) => match r {
                Ok(_) => PURGE_INTERVAL,
                Err(e) => {
                    warn!("retention purge failed: {e}; trying again in an hour");
                    RETRY_AFTER_FAILURE
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn canonical_root(data_dir: &Path) -> Result<PathBuf, RetentionError> {
    let path = data_dir.to_path_buf();
    blocking(path.clone(), |p| std::fs::canonicalize(&p))
        .await?
        .map_err(|source| RetentionError::DataDir { path, source })
}

/// Run `f(arg)` on the blocking pool.
async fn blocking<A, T>(
    arg: A,
    f: impl FnOnce(A) -> T + Send + 'static,
) -> Result<T, RetentionError>
where
    A: Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || f(arg))
        .await
        .map_err(|e| RetentionError::Task(e.to_string()))
}

/// The relative paths of a series' instance rows now.
async fn live_paths(store: &Store, uid: &str) -> Result<HashSet<String>, StoreError> {
    Ok(store
        .series_instances(uid)
        .await?
        .into_iter()
        .map(|i| i.instance.rel_path)
        .collect())
}

/// Files of series marked purged that a stop left behind (their rows are gone): removed, unless
/// a row names them again or they were written after the purge. Returns how many.
async fn purge_leftovers(store: &Store, root: &Path) -> Result<u64, RetentionError> {
    let purged = store.purged_series().await?;
    let with_files: Vec<PurgedSeries> = blocking(root.to_path_buf(), move |root| {
        purged
            .into_iter()
            .filter(|p| series_dir(&root, p).is_some_and(|d| d.is_dir()))
            .collect()
    })
    .await?;
    let mut removed = 0;
    for p in with_files {
        let live = live_paths(store, &p.series_instance_uid).await?;
        let tally = blocking(root.to_path_buf(), move |root| {
            let rows = leftover_rows(&root, &p);
            remove_files(&root, &rows, p.instances_purged_at, &live)
        })
        .await?;
        removed += tally.removed;
    }
    if removed > 0 {
        info!(
            files = removed,
            "files left by an interrupted purge removed (their series were purged)"
        );
    }
    Ok(removed)
}

/// `root/<study>/<series>` of a purged series, when both UIDs are plain UIDs.
fn series_dir(root: &Path, p: &PurgedSeries) -> Option<PathBuf> {
    let uid_like = |s: &str| {
        s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    };
    (uid_like(&p.study_instance_uid) && uid_like(&p.series_instance_uid)).then(|| {
        root.join(&p.study_instance_uid)
            .join(&p.series_instance_uid)
    })
}

/// The `.dcm` files in a purged series' folder, as rows to remove.
fn leftover_rows(root: &Path, p: &PurgedSeries) -> Vec<PurgedInstance> {
    let Some(dir) = series_dir(root, p) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let sop = name.strip_suffix(".dcm")?.to_string();
            Some(PurgedInstance {
                sop_instance_uid: sop,
                rel_path: format!("{}/{}/{name}", p.study_instance_uid, p.series_instance_uid),
                size_bytes: 0,
            })
        })
        .collect()
}

/// What happened to the files of one series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FileTally {
    removed: u64,
    bytes: u64,
    missing: u64,
    kept: u64,
    refused: u64,
}

/// What became of one file.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Removed(u64),
    Missing,
    /// Named by a row again, or written after `not_after`: an instance received meanwhile.
    Kept,
    Refused(String),
}

/// Remove the files of `rows` (see [`remove_file`]), then the folders they leave empty.
fn remove_files(
    root: &Path,
    rows: &[PurgedInstance],
    not_after_ms: i64,
    live: &HashSet<String>,
) -> FileTally {
    let mut tally = FileTally::default();
    let mut folders: Vec<PathBuf> = Vec::new();
    for row in rows {
        match remove_file(root, &row.rel_path, not_after_ms, live) {
            Fate::Removed(bytes) => {
                tally.removed += 1;
                tally.bytes += bytes;
                if let Some(parent) = root.join(&row.rel_path).parent() {
                    if !folders.iter().any(|f| f == parent) {
                        folders.push(parent.to_path_buf());
                    }
                }
            }
            Fate::Missing => tally.missing += 1,
            Fate::Kept => tally.kept += 1,
            Fate::Refused(why) => {
                warn!(
                    sop_instance_uid = %row.sop_instance_uid,
                    path = %row.rel_path,
                    "instance file not purged: {why}"
                );
                tally.refused += 1;
            }
        }
    }
    for folder in folders {
        remove_empty_folders(root, &folder);
    }
    tally
}

/// Remove `root/rel` if it is a file inside `root` that no row names (`live`) and that was not
/// modified after `not_after_ms`.
fn remove_file(root: &Path, rel: &str, not_after_ms: i64, live: &HashSet<String>) -> Fate {
    if live.contains(rel) {
        return Fate::Kept;
    }
    let path = match inside(root, rel) {
        Ok(p) => p,
        Err(why) => return Fate::Refused(why),
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Fate::Missing,
        Err(e) => return Fate::Refused(format!("{}: {e}", path.display())),
    };
    if meta.is_dir() {
        return Fate::Refused(format!("{} is a folder", path.display()));
    }
    if meta.modified().ok().and_then(unix_ms).unwrap_or(i64::MIN) > not_after_ms {
        return Fate::Kept;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Fate::Removed(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Fate::Missing,
        Err(e) => Fate::Refused(format!("{}: {e}", path.display())),
    }
}

/// `root/rel`, when `rel` is a plain relative path (no `..`, no root, not empty) and its folder
/// resolves inside `root` (no symbolic link out of it). A folder that does not exist is fine
/// (the file is gone with it).
fn inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    let plain = !rel.is_empty()
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "{rel:?} is not a relative path inside storage.data_dir"
        ));
    }
    let path = root.join(p);
    let Some(parent) = path.parent() else {
        return Err(format!("{rel:?} has no folder"));
    };
    match std::fs::canonicalize(parent) {
        Ok(real) if real.starts_with(root) => Ok(path),
        Ok(real) => Err(format!(
            "{rel:?} leads outside storage.data_dir (to {})",
            real.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(path),
        Err(e) => Err(format!("{rel:?}: {e}")),
    }
}

/// Remove `folder` and its parents up to (not including) `root` while they are empty.
fn remove_empty_folders(root: &Path, folder: &Path) {
    let mut dir = folder.to_path_buf();
    while dir.starts_with(root) && dir != root {
        if std::fs::remove_dir(&dir).is_err() {
            return; // not empty (or already gone): stop
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => return,
        }
    }
}

fn unix_ms(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// A duration as `hu-red purge --older-than` takes it: a whole number and a unit, `m`
/// (minutes), `h` (hours), `d` (days) or `w` (weeks): `90m`, `36h`, `7d`, `2w`. At most 100
/// years.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a duration: a whole number and a unit m, h, d or w \
             (e.g. 90m, 36h, 7d, 2w)"
        )
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_s = match unit {
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(bad()),
    };
    let secs = n
        .checked_mul(unit_s)
        .filter(|s| *s <= u64::from(MAX_DAYS) * DAY)
        .ok_or_else(|| format!("{text:?} is longer than {MAX_DAYS} days"))?;
    Ok(Duration::from_secs(secs))
}

/// The shortest exact text of a duration in the units of [`parse_duration`] (`7d`, `36h`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, size) in [("w", 7 * DAY), ("d", DAY), ("h", HOUR), ("m", MINUTE)] {
        if s > 0 && s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests;
