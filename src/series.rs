//! Series assembly: decides when a series is complete (no instance for `stable_seconds`, the
//! stable-age rule Orthanc uses), hands complete series to the QA worker queue, and rebuilds that
//! state after a restart (series interrupted while analysing, series stable but not yet queued,
//! files written but never recorded).

use crate::scp::{BoxFuture, InstanceSink, SinkError, StoredInstance};
use crate::store::{now_ms, Fingerprint, NewInstance, SeriesState, Store, StoreError};
use dicom_dictionary_std::tags;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

/// A complete series, ready for the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesJob {
    pub series_instance_uid: String,
}

/// The SCP's sink: records a durable instance in the database (the SCP acknowledges only after
/// this returns Ok).
pub struct StoreSink {
    pub store: Store,
}

impl InstanceSink for StoreSink {
    fn record(&self, i: StoredInstance) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let outcome = self
                .store
                .record_instance(&new_instance(i))
                .await
                .map_err(SinkError::new)?;
            if outcome.reopened {
                info!("series re-opened by a new instance: it will be analysed again (amended)");
            }
            Ok(())
        })
    }

    fn forget(&self, i: StoredInstance) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { undo_record(&self.store, &i).await.map_err(SinkError::new) })
    }
}

/// Undo the record of an instance whose file could not be put in place: if a file is at its
/// path (the earlier copy of a re-sent instance) the row is made to describe that file again,
/// otherwise the row is deleted and its series recounted.
pub async fn undo_record(store: &Store, i: &StoredInstance) -> Result<(), StoreError> {
    let earlier = tokio::task::spawn_blocking({
        let path = i.path.clone();
        move || read_header(&path)
    })
    .await
    .ok()
    .flatten();
    match earlier {
        Some(mut inst) => {
            inst.rel_path = i.record.rel_path.clone();
            store.record_instance(&inst).await.map(|_| ())
        }
        None => store
            .forget_instance(&i.record.sop_instance_uid)
            .await
            .map(|_| ()),
    }
}

fn new_instance(i: StoredInstance) -> NewInstance {
    i.record
}

/// SOP classes the engine analyses (CT Image Storage, Enhanced CT Image Storage).
pub fn is_analysable(sop_class_uid: &str) -> bool {
    matches!(
        sop_class_uid,
        "1.2.840.10008.5.1.4.1.1.2" | "1.2.840.10008.5.1.4.1.1.2.1"
    )
}

/// What [`recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Files stored but not recorded, recorded now.
    pub recorded: usize,
    /// Rows whose file is missing (recorded while their file was being written when the
    /// service stopped: never acknowledged), deleted.
    pub forgotten: usize,
}

/// At start, before the port opens: series left `analysing` by a crash go back to `stable`;
/// the instance rows and the files under data_dir are reconciled (one listing query and one
/// walk of the folder): files stored but never recorded (never acknowledged, but kept; or
/// rows lost with an OS crash, see `Store` on SQLite commits) are recorded, and rows whose
/// file is missing are deleted, since the SCP records an instance while its file is being
/// made durable. At most `max_in_flight` rows can be in that state (one per association);
/// more missing files mean that files were removed or `storage.data_dir` points elsewhere,
/// and then no row is deleted (an error is logged). Files of a series whose instances were
/// purged, left by a purge that stopped before removing them, are not recorded again (the next
/// purge removes them; see `crate::retention`).
pub async fn recover(
    store: &Store,
    data_dir: &Path,
    max_in_flight: usize,
) -> Result<Recovered, StoreError> {
    store.reset_interrupted().await?;
    let known = store.instance_paths().await?;
    // A file counts as recorded when its SOP Instance UID is (an instance re-sent under
    // another series leaves its earlier file behind; the row describes the newer one).
    let known_sops: std::collections::HashSet<String> =
        known.iter().map(|(sop, _)| sop.clone()).collect();
    let (files, missing) = tokio::task::spawn_blocking({
        let data_dir = data_dir.to_path_buf();
        move || {
            // the walk finds every file the SCP can have written (the same layout)
            let files = stored_files(&data_dir);
            let present: std::collections::HashSet<&str> =
                files.iter().map(|(_, rel)| rel.as_str()).collect();
            let missing: Vec<(String, String)> = known
                .into_iter()
                .filter(|(_, rel)| !present.contains(rel.as_str()))
                .collect();
            (files, missing)
        }
    })
    .await
    .unwrap_or_default();
    let purged = purged_folders(store).await?;
    let mut out = Recovered::default();
    if missing.len() > max_in_flight {
        tracing::error!(
            rows = missing.len(),
            data_dir = %data_dir.display(),
            first = %missing.first().map(|(_, r)| r.as_str()).unwrap_or(""),
            "instance rows whose file is missing under storage.data_dir: more than could be in \
             flight, so none is deleted; check that data_dir is the folder this database was \
             used with and that no files were removed"
        );
    } else {
        for (sop, rel) in &missing {
            warn!(
                sop_instance_uid = %sop,
                path = %rel,
                "an instance recorded while its file was being written when the service \
                 stopped (never acknowledged): its row is removed"
            );
            store.forget_instance(sop).await?;
            out.forgotten += 1;
        }
    }
    for (path, rel) in files {
        let sop = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if sop.is_empty() || known_sops.contains(sop) || left_by_a_purge(&purged, &path, &rel) {
            continue;
        }
        let header = tokio::task::spawn_blocking({
            let path = path.clone();
            move || read_header(&path)
        })
        .await
        .ok()
        .flatten();
        let Some(mut inst) = header else {
            warn!(file = %path.display(), "a stored file that is not in the database cannot be read; left in place");
            continue;
        };
        inst.rel_path = rel;
        store.record_instance(&inst).await?;
        out.recorded += 1;
    }
    if out.recorded > 0 {
        info!(
            files = out.recorded,
            "recorded instances whose files were stored but not recorded"
        );
    }
    Ok(out)
}

/// `<study>/<series>` → when that series' instances were purged (unix ms).
async fn purged_folders(
    store: &Store,
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    Ok(store
        .purged_series()
        .await?
        .into_iter()
        .map(|p| {
            (
                format!("{}/{}", p.study_instance_uid, p.series_instance_uid),
                p.instances_purged_at,
            )
        })
        .collect())
}

/// A file of a purged series written before its purge: left by a purge that stopped between
/// its transaction and the removal of the files (an instance received after the purge is
/// newer, and recorded).
fn left_by_a_purge(
    purged: &std::collections::HashMap<String, i64>,
    path: &Path,
    rel: &str,
) -> bool {
    let Some((folder, _)) = rel.rsplit_once('/') else {
        return false;
    };
    let Some(&purged_at) = purged.get(folder) else {
        return false;
    };
    let modified_ms = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    let left = modified_ms.is_some_and(|m| m <= purged_at);
    if left {
        info!(
            path = %rel,
            "a file of a series whose instances were purged is not recorded again: the next \
             purge removes it"
        );
    }
    left
}

/// `<study>/<series>/<sop>.dcm` files under data_dir, with their '/'-separated relative paths.
fn stored_files(data_dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(data_dir)
        .min_depth(3)
        .max_depth(3)
        .into_iter()
        .filter_map(Result::ok)
    {
        let p = entry.path();
        if !entry.file_type().is_file() || p.extension().and_then(|e| e.to_str()) != Some("dcm") {
            continue;
        }
        let Ok(rel) = p.strip_prefix(data_dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        // Only the SCP's layout: UIDs (digits and dots) for study and series folders.
        let uid_like = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
        if parts.len() == 3 && uid_like(&parts[0]) && uid_like(&parts[1]) {
            out.push((p.to_path_buf(), parts.join("/")));
        }
    }
    out
}

fn read_header(path: &Path) -> Option<NewInstance> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .ok()?;
    let text = |tag| {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let meta = obj.meta();
    let sop_class = meta
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_string();
    Some(NewInstance {
        sop_instance_uid: text(tags::SOP_INSTANCE_UID)?,
        series_instance_uid: text(tags::SERIES_INSTANCE_UID)?,
        study_instance_uid: text(tags::STUDY_INSTANCE_UID)?,
        analysable: is_analysable(&sop_class),
        sop_class_uid: sop_class,
        transfer_syntax: meta.transfer_syntax().trim_end_matches('\0').to_string(),
        rel_path: String::new(),
        size_bytes: std::fs::metadata(path).map(|m| m.len() as i64).unwrap_or(0),
        calling_ae: meta
            .source_application_entity_title
            .as_deref()
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        called_ae: String::new(),
        peer: "recovered at start".into(),
        modality: text(tags::MODALITY),
        station_name: text(tags::STATION_NAME),
        series_description: text(tags::SERIES_DESCRIPTION),
    })
}

/// The assembler loop: every tick, series with no new instance for `stable` become stable and
/// are queued; series with nothing to analyse end `not_analysed`; a re-sent, unchanged instance
/// set is not analysed twice. Series already `stable` at start are queued first. Ends when
/// `shutdown` fires or the queue is closed.
pub async fn run_assembler(
    store: Store,
    stable: Duration,
    queue: mpsc::Sender<SeriesJob>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    match store.series_in_state(SeriesState::Stable).await {
        Ok(rows) => {
            for s in rows {
                if queue
                    .send(SeriesJob {
                        series_instance_uid: s.series_instance_uid,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        Err(e) => warn!("cannot list stable series at start: {e}"),
    }
    let tick = (stable / 4).clamp(Duration::from_millis(200), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = assemble_once(&store, stable, &queue).await {
            warn!("series assembly: {e}");
        }
        if queue.is_closed() {
            return;
        }
    }
}

async fn assemble_once(
    store: &Store,
    stable: Duration,
    queue: &mpsc::Sender<SeriesJob>,
) -> Result<(), StoreError> {
    let due = store.series_due(stable.as_secs().max(1), now_ms()).await?;
    for s in due {
        let span = tracing::info_span!("series", uid = %s.series_instance_uid);
        if !handle_due(store, s, queue).instrument(span).await? {
            break;
        }
    }
    Ok(())
}

/// One due series; `Ok(false)` when the queue is closed.
async fn handle_due(
    store: &Store,
    s: crate::store::SeriesRow,
    queue: &mpsc::Sender<SeriesJob>,
) -> Result<bool, StoreError> {
    let uid = s.series_instance_uid.clone();
    let fp: Fingerprint = store.series_fingerprint(&uid).await?;
    if !s.analysable {
        if store
            .finish_series(
                &uid,
                SeriesState::Receiving,
                SeriesState::NotAnalysed,
                Some(&fp),
            )
            .await?
        {
            info!(
                instances = s.n_instances,
                modality = s.modality.as_deref().unwrap_or("?"),
                "series complete: kept, not analysed (no CT image)"
            );
        }
        return Ok(true);
    }
    if s.analysed().as_ref() == Some(&fp) {
        // The same instances again (a PACS re-sending the series): same result, no new run;
        // the series ends as its last run did (done, or failed with that run's reason).
        let state = store
            .series_runs(&uid)
            .await?
            .last()
            .map_or(SeriesState::Done, |r| r.status.series_state());
        if store
            .finish_series(&uid, SeriesState::Receiving, state, Some(&fp))
            .await?
        {
            info!(state = %state, "series re-sent unchanged: not analysed again");
        }
        return Ok(true);
    }
    if store
        .claim_series(&uid, SeriesState::Receiving, SeriesState::Stable)
        .await?
    {
        info!(
            instances = s.n_instances,
            "series complete: queued for analysis"
        );
        if queue
            .send(SeriesJob {
                series_instance_uid: uid,
            })
            .await
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}
