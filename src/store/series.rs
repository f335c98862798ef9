//! Instances and series: recording, the stable-age query, compare-and-set state changes.

use super::{flag, now_ms, with_ingest_pool, with_pool, RowGet, Store, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

text_enum! {
    /// Life cycle of a series: receiving → stable → analysing → done | failed | not_analysed.
    /// A new instance sends any state back to receiving (see [`super::Store::record_instance`]).
    SeriesState {
        /// Instances are arriving; becomes stable after `series.stable_seconds` of silence.
        Receiving = "receiving",
        /// Complete; waiting for a worker.
        Stable = "stable",
        /// A worker is analysing it (back to stable after a crash: `reset_interrupted`).
        Analysing = "analysing",
        /// Analysed (the last run has status ok).
        Done = "done",
        /// The last run could not analyse it (status failed or error); the run says why.
        Failed = "failed",
        /// Nothing to analyse (no CT image instance): kept, not analysed.
        NotAnalysed = "not_analysed",
    }
}

/// A stored instance as the SCP records it (contract of issue 3): one type,
/// [`crate::scp::InstanceRecord`].
pub type NewInstance = crate::scp::InstanceRecord;

/// What [`super::Store::record_instance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordOutcome {
    /// The series did not exist before.
    pub new_series: bool,
    /// The series had been analysed (done/failed/not_analysed) or was being analysed; it is back
    /// to receiving and marked amended.
    pub reopened: bool,
    /// The SOP Instance UID was already stored: its row was replaced.
    pub replaced: bool,
}

/// A series row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesRow {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub state: SeriesState,
    /// Unix milliseconds of the last state change.
    pub state_changed_at: i64,
    pub first_received_at: i64,
    pub last_received_at: i64,
    pub n_instances: i64,
    /// Instances arrived after the series had been analysed (stays set).
    pub amended: bool,
    /// Calling AE title of the association that sent the last instance.
    pub calling_ae: Option<String>,
    pub station_name: Option<String>,
    pub modality: Option<String>,
    pub description: Option<String>,
    /// At least one instance is a CT image the engine can analyse.
    pub analysable: bool,
    pub last_run_id: Option<i64>,
    /// What the last run analysed (see [`Fingerprint`]).
    pub analysed_instance_count: Option<i64>,
    pub analysed_fingerprint: Option<String>,
    /// When the series' instance files were purged (retention; unix ms): the series and its
    /// runs stay, its instances are gone. `None`: its instances are kept.
    pub instances_purged_at: Option<i64>,
}

impl SeriesRow {
    /// The fingerprint of the instance set analysed last, if any.
    pub fn analysed(&self) -> Option<Fingerprint> {
        Some(Fingerprint {
            n_instances: self.analysed_instance_count?,
            digest: self.analysed_fingerprint.clone()?,
        })
    }
}

/// An instance row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRow {
    /// What was recorded (see [`NewInstance`]).
    #[serde(flatten)]
    pub instance: NewInstance,
    /// Unix milliseconds of the last reception.
    pub received_at: i64,
    /// How many times this SOP instance was received (re-sends replace the row).
    pub times_received: i64,
}

impl std::ops::Deref for InstanceRow {
    type Target = NewInstance;
    fn deref(&self) -> &NewInstance {
        &self.instance
    }
}

/// Identifies the set of instances of a series: their count and the SHA-256 of their sorted
/// SOP Instance UIDs. Two equal fingerprints mean the same instances (DICOM gives changed pixel
/// data a new SOP Instance UID), so restart recovery and re-sends can tell "already analysed this
/// exact set" from "amended".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Fingerprint {
    pub n_instances: i64,
    /// Lower-case hex SHA-256.
    pub digest: String,
}

impl Fingerprint {
    /// The fingerprint of these SOP Instance UIDs (order and duplicates do not matter).
    pub fn of_uids<'a>(uids: impl IntoIterator<Item = &'a str>) -> Fingerprint {
        let mut v: Vec<&str> = uids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        let mut h = Sha256::new();
        for uid in &v {
            h.update(uid.as_bytes());
            h.update(b"\n");
        }
        let digest = h
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Fingerprint {
            n_instances: v.len() as i64,
            digest,
        }
    }

    /// The fingerprint of these instance rows (e.g. what a worker is about to analyse).
    pub fn of(instances: &[InstanceRow]) -> Fingerprint {
        Self::of_uids(instances.iter().map(|i| i.sop_instance_uid.as_str()))
    }
}

macro_rules! series_cols {
    () => {
        "series_instance_uid, study_instance_uid, state, state_changed_at, first_received_at, \
         last_received_at, n_instances, amended, calling_ae, station_name, modality, description, \
         analysable, last_run_id, analysed_instance_count, analysed_fingerprint, \
         instances_purged_at"
    };
}

macro_rules! instance_cols {
    () => {
        "sop_instance_uid, series_instance_uid, study_instance_uid, sop_class_uid, \
         transfer_syntax, rel_path, size_bytes, calling_ae, called_ae, peer, modality, \
         station_name, series_description, analysable, received_at, times_received"
    };
}

/// Recount a series' instances and analysable flag from the instance rows ($1 = its UID),
/// rather than trusting an increment (an instance moved away, or a row removed).
const RECOUNT_SERIES: &str = "UPDATE series SET \
     n_instances = (SELECT COUNT(*) FROM instances i \
                    WHERE i.series_instance_uid = series.series_instance_uid), \
     analysable = CASE WHEN EXISTS (SELECT 1 FROM instances i \
                    WHERE i.series_instance_uid = series.series_instance_uid \
                    AND i.analysable = 1) THEN 1 ELSE 0 END \
     WHERE series_instance_uid = $1";

/// The series row of an instance and the series the instance was recorded under before
/// (locked on Postgres: `FOR UPDATE`).
const LOOKUP_SERIES_PG: &str = "SELECT state, (SELECT series_instance_uid FROM instances \
                 WHERE sop_instance_uid = $2) AS previous \
                 FROM series WHERE series_instance_uid = $1 FOR UPDATE";

/// [`LOOKUP_SERIES_PG`] for SQLite (the transaction holds the write lock already).
const LOOKUP_SERIES: &str = "SELECT state, (SELECT series_instance_uid FROM instances \
     WHERE sop_instance_uid = $2) AS previous \
     FROM series WHERE series_instance_uid = $1";

/// A new series row, unless another transaction just made it.
const CREATE_SERIES: &str = "INSERT INTO series (series_instance_uid, study_instance_uid, state, \
                         state_changed_at, first_received_at, last_received_at, n_instances, \
                         amended, analysable) \
                         VALUES ($1, $2, 'receiving', $3, $3, $3, 0, 0, 0) \
                         ON CONFLICT (series_instance_uid) DO NOTHING";

/// The series of a received instance: back to `receiving`, amended when it had been analysed,
/// counted, its descriptive columns kept at their last non-empty value. A series whose instances
/// were purged (retention) has them again: the count starts afresh and the mark is cleared.
const UPSERT_SERIES: &str = "INSERT INTO series (series_instance_uid, study_instance_uid, state, \
                 state_changed_at, first_received_at, last_received_at, n_instances, amended, \
                 calling_ae, station_name, modality, description, analysable) \
                 VALUES ($1, $2, 'receiving', $3, $3, $3, $4, 0, $5, $6, $7, $8, $9) \
                 ON CONFLICT (series_instance_uid) DO UPDATE SET state = 'receiving', \
                 state_changed_at = CASE WHEN series.state <> 'receiving' \
                     THEN excluded.state_changed_at ELSE series.state_changed_at END, \
                 last_received_at = excluded.last_received_at, \
                 n_instances = CASE WHEN series.instances_purged_at IS NOT NULL \
                     THEN excluded.n_instances \
                     ELSE series.n_instances + excluded.n_instances END, \
                 instances_purged_at = NULL, \
                 amended = CASE WHEN series.state IN \
                     ('analysing', 'done', 'failed', 'not_analysed') THEN 1 \
                     ELSE series.amended END, \
                 calling_ae = COALESCE(excluded.calling_ae, series.calling_ae), \
                 station_name = COALESCE(excluded.station_name, series.station_name), \
                 modality = COALESCE(excluded.modality, series.modality), \
                 description = COALESCE(excluded.description, series.description), \
                 analysable = CASE WHEN excluded.analysable = 1 THEN 1 \
                     ELSE series.analysable END";

/// The instance row; a re-sent SOP instance replaces its row and counts its receptions.
const UPSERT_INSTANCE: &str =
    "INSERT INTO instances (sop_instance_uid, series_instance_uid, study_instance_uid, \
                 sop_class_uid, transfer_syntax, rel_path, size_bytes, calling_ae, called_ae, \
                 peer, modality, station_name, series_description, analysable, received_at, \
                 times_received) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1) \
                 ON CONFLICT (sop_instance_uid) DO UPDATE SET \
                 series_instance_uid = excluded.series_instance_uid, \
                 study_instance_uid = excluded.study_instance_uid, \
                 sop_class_uid = excluded.sop_class_uid, \
                 transfer_syntax = excluded.transfer_syntax, \
                 rel_path = excluded.rel_path, size_bytes = excluded.size_bytes, \
                 calling_ae = excluded.calling_ae, called_ae = excluded.called_ae, \
                 peer = excluded.peer, modality = excluded.modality, \
                 station_name = excluded.station_name, \
                 series_description = excluded.series_description, \
                 analysable = excluded.analysable, received_at = excluded.received_at, \
                 times_received = instances.times_received + 1";

/// The state of the series of instance `$i` and the series it was recorded under before, in
/// the open transaction `$tx` (expanded inside `with_ingest_pool!`); the series row is created
/// when missing. Gives `(created, state, previous)`.
macro_rules! lock_series_tx {
    ($store:expr, $tx:expr, $lookup:expr, $i:expr, $now:expr, $what:expr) => {{
        let store: &Store = $store;
        let i: &NewInstance = $i;
        async {
            let row = sqlx::query($lookup)
                .bind(&i.series_instance_uid)
                .bind(&i.sop_instance_uid)
                .fetch_optional(&mut *$tx)
                .await
                .map_err(store.err(($what)()))?;
            let (created, row) = match row {
                Some(r) => (false, r),
                None => {
                    // The first instance of a series (or one of several arriving at once on
                    // Postgres): create the row, or learn that another transaction just did.
                    let created = sqlx::query(CREATE_SERIES)
                        .bind(&i.series_instance_uid)
                        .bind(&i.study_instance_uid)
                        .bind($now)
                        .execute(&mut *$tx)
                        .await
                        .map_err(store.err(($what)()))?
                        .rows_affected()
                        == 1;
                    let row = sqlx::query($lookup)
                        .bind(&i.series_instance_uid)
                        .bind(&i.sop_instance_uid)
                        .fetch_one(&mut *$tx)
                        .await
                        .map_err(store.err(($what)()))?;
                    (created, row)
                }
            };
            let text = row.text("state").map_err(store.err(($what)()))?;
            let state = SeriesState::parse(&text).ok_or_else(|| {
                store.data_err(($what)(), format!("unknown series state {text:?}"))
            })?;
            let previous = row.opt_text("previous").map_err(store.err(($what)()))?;
            Ok::<_, StoreError>((created, state, previous))
        }
    }};
}

/// Upsert the instance row of `$i` received at `$now` in the open transaction `$tx`.
macro_rules! upsert_instance_tx {
    ($store:expr, $tx:expr, $i:expr, $now:expr, $what:expr) => {{
        let store: &Store = $store;
        let i: &NewInstance = $i;
        async {
            sqlx::query(UPSERT_INSTANCE)
                .bind(&i.sop_instance_uid)
                .bind(&i.series_instance_uid)
                .bind(&i.study_instance_uid)
                .bind(&i.sop_class_uid)
                .bind(&i.transfer_syntax)
                .bind(&i.rel_path)
                .bind(i.size_bytes)
                .bind(&i.calling_ae)
                .bind(&i.called_ae)
                .bind(&i.peer)
                .bind(non_empty(&i.modality))
                .bind(non_empty(&i.station_name))
                .bind(non_empty(&i.series_description))
                .bind(flag(i.analysable))
                .bind($now)
                .execute(&mut *$tx)
                .await
                .map_err(store.err(($what)()))?;
            Ok::<_, StoreError>(())
        }
    }};
}

impl Store {
    /// Upsert the instance row (a re-sent SOP Instance UID replaces the earlier row) and its
    /// series, in one transaction, at the current time. See [`Store::record_instance_at`].
    pub async fn record_instance(&self, i: &NewInstance) -> Result<RecordOutcome, StoreError> {
        self.record_instance_at(i, now_ms()).await
    }

    /// [`Store::record_instance`] at `now` (unix ms). Committed when it returns Ok (on SQLite
    /// through the instance pool: durable against a crash of the process; see `Store::ingest`
    /// for OS crashes and power loss).
    ///
    /// Series transitions: a new series is created `receiving` (first = last received = now);
    /// `receiving` and `stable` series go (back) to `receiving`; a series that was `analysing`,
    /// `done`, `failed` or `not_analysed` goes back to `receiving` and is marked amended
    /// (`reopened`; an analysis in flight still records its run, see [`Store::insert_run`]).
    /// `last_received_at` = now; `n_instances` counts distinct SOP instances (a replacement does
    /// not count twice; an instance re-sent under another series moves to it). Modality,
    /// station name and description keep the last non-empty value; `analysable` is set once any
    /// instance is analysable.
    pub async fn record_instance_at(
        &self,
        i: &NewInstance,
        now: i64,
    ) -> Result<RecordOutcome, StoreError> {
        let what = || {
            format!(
                "recording instance {} of series {}",
                i.sop_instance_uid, i.series_instance_uid
            )
        };
        let pg = self.is_postgres();
        let _writing = self.write_guard().await;
        // Five round trips in the usual case (this is on the path of every C-STORE response):
        // BEGIN, the series row (locked) with the instance's earlier series, the series
        // upsert, the instance upsert, COMMIT.
        with_ingest_pool!(self, pool => {
            let mut tx = if pg {
                pool.begin().await
            } else {
                pool.begin_with("BEGIN IMMEDIATE").await
            }
            .map_err(self.err(what()))?;
            let lookup = if pg { LOOKUP_SERIES_PG } else { LOOKUP_SERIES };
            let (created, state, previous) =
                lock_series_tx!(self, tx, lookup, i, now, what).await?;
            let replaced = previous.is_some();
            let moved_from = previous.filter(|s| *s != i.series_instance_uid);
            let added: i64 = if replaced && moved_from.is_none() { 0 } else { 1 };
            let reopened = matches!(
                state,
                SeriesState::Analysing
                    | SeriesState::Done
                    | SeriesState::Failed
                    | SeriesState::NotAnalysed
            );
            // The state change and the amended flag are computed from the locked row.
            sqlx::query(UPSERT_SERIES)
                .bind(&i.series_instance_uid)
                .bind(&i.study_instance_uid)
                .bind(now)
                .bind(added)
                .bind(non_empty(&Some(i.calling_ae.clone())))
                .bind(non_empty(&i.station_name))
                .bind(non_empty(&i.modality))
                .bind(non_empty(&i.series_description))
                .bind(flag(i.analysable))
                .execute(&mut *tx)
                .await
                .map_err(self.err(what()))?;
            upsert_instance_tx!(self, tx, i, now, what).await?;
            if let Some(old) = &moved_from {
                // The instance left `old`: recount it rather than trusting a decrement.
                sqlx::query(RECOUNT_SERIES)
                    .bind(old)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(what()))?;
                tracing::warn!(
                    sop_instance_uid = %i.sop_instance_uid,
                    from = %old,
                    to = %i.series_instance_uid,
                    "a re-sent instance moved to another series"
                );
            }
            tx.commit().await.map_err(self.err(what()))?;
            Ok(RecordOutcome {
                new_series: created,
                reopened,
                replaced,
            })
        })
    }

    /// Every instance's SOP Instance UID and relative path (start-up reconciliation).
    pub async fn instance_paths(&self) -> Result<Vec<(String, String)>, StoreError> {
        let what = "listing the recorded instances";
        with_pool!(self, pool => {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT sop_instance_uid, rel_path FROM instances")
                    .fetch_all(pool)
                    .await
                    .map_err(self.err(what))?;
            Ok(rows)
        })
    }

    /// Delete an instance row and recount its series (an instance whose file never made it
    /// into place). Returns whether a row was deleted.
    pub async fn forget_instance(&self, sop_instance_uid: &str) -> Result<bool, StoreError> {
        let what = || format!("removing instance {sop_instance_uid}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what()))?;
            let series: Option<String> = sqlx::query_scalar(
                "DELETE FROM instances WHERE sop_instance_uid = $1 RETURNING series_instance_uid",
            )
            .bind(sop_instance_uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.err(what()))?;
            if let Some(uid) = &series {
                sqlx::query(RECOUNT_SERIES)
                .bind(uid)
                .execute(&mut *tx)
                .await
                .map_err(self.err(what()))?;
            }
            tx.commit().await.map_err(self.err(what()))?;
            Ok(series.is_some())
        })
    }

    /// Whether an instance with this SOP Instance UID is recorded.
    pub async fn instance_exists(&self, sop_instance_uid: &str) -> Result<bool, StoreError> {
        let what = || format!("looking up instance {sop_instance_uid}");
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM instances WHERE sop_instance_uid = $1",
            )
            .bind(sop_instance_uid)
            .fetch_one(pool)
            .await
            .map_err(self.err(what()))?;
            Ok(n > 0)
        })
    }

    /// One instance row.
    pub async fn get_instance(
        &self,
        sop_instance_uid: &str,
    ) -> Result<Option<InstanceRow>, StoreError> {
        let what = format!("reading instance {sop_instance_uid}");
        with_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", instance_cols!(), " FROM instances WHERE sop_instance_uid = $1"
            ))
            .bind(sop_instance_uid)
            .fetch_optional(pool)
            .await
            .map_err(self.err(what.clone()))?;
            row.map(|r| instance_row(&r).map_err(self.err(what.clone()))).transpose()
        })
    }

    /// One series row.
    pub async fn get_series(&self, uid: &str) -> Result<Option<SeriesRow>, StoreError> {
        let what = format!("reading series {uid}");
        with_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", series_cols!(), " FROM series WHERE series_instance_uid = $1"
            ))
            .bind(uid)
            .fetch_optional(pool)
            .await
            .map_err(self.err(what.clone()))?;
            row.map(|r| self.series_row(&r, &what)).transpose()
        })
    }

    /// Series in `receiving` whose last instance arrived at least `stable_seconds` before `now`
    /// (unix ms): `last_received_at <= now - stable_seconds * 1000`. Oldest first.
    pub async fn series_due(
        &self,
        stable_seconds: u64,
        now: i64,
    ) -> Result<Vec<SeriesRow>, StoreError> {
        let what = "listing series due (stable age reached)";
        let cutoff = now.saturating_sub((stable_seconds as i64).saturating_mul(1000));
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", series_cols!(), " FROM series \
                 WHERE state = 'receiving' AND last_received_at <= $1 \
                 ORDER BY last_received_at, series_instance_uid"
            ))
            .bind(cutoff)
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            rows.iter().map(|r| self.series_row(r, what)).collect()
        })
    }

    /// Every series in `state`, oldest state change first (restart recovery: series left
    /// `stable` were never claimed and must be queued again).
    pub async fn series_in_state(&self, state: SeriesState) -> Result<Vec<SeriesRow>, StoreError> {
        let what = format!("listing series in state {state}");
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", series_cols!(), " FROM series WHERE state = $1 \
                 ORDER BY state_changed_at, series_instance_uid"
            ))
            .bind(state.as_str())
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?;
            rows.iter().map(|r| self.series_row(r, &what)).collect()
        })
    }

    /// The most recently active series first.
    pub async fn list_series(&self, limit: u32) -> Result<Vec<SeriesRow>, StoreError> {
        let what = "listing recent series";
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", series_cols!(), " FROM series \
                 ORDER BY last_received_at DESC, series_instance_uid LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            rows.iter().map(|r| self.series_row(r, what)).collect()
        })
    }

    /// Compare-and-set of the series state: moves `uid` from `from` to `to` and returns true,
    /// or returns false (nothing changed) when the series is not in `from` (or does not exist).
    /// Of several concurrent claims, exactly one wins.
    pub async fn claim_series(
        &self,
        uid: &str,
        from: SeriesState,
        to: SeriesState,
    ) -> Result<bool, StoreError> {
        self.finish_series(uid, from, to, None).await
    }

    /// As [`Store::claim_series`], also recording `analysed` as the instance set handled (for a
    /// series ending without a run, e.g. `not_analysed`).
    pub async fn finish_series(
        &self,
        uid: &str,
        from: SeriesState,
        to: SeriesState,
        analysed: Option<&Fingerprint>,
    ) -> Result<bool, StoreError> {
        let what = format!("moving series {uid} from {from} to {to}");
        let now = now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let q = match analysed {
                None => sqlx::query(
                    "UPDATE series SET state = $3, state_changed_at = $4 \
                     WHERE series_instance_uid = $1 AND state = $2",
                )
                .bind(uid)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(now),
                Some(fp) => sqlx::query(
                    "UPDATE series SET state = $3, state_changed_at = $4, \
                     analysed_instance_count = $5, analysed_fingerprint = $6 \
                     WHERE series_instance_uid = $1 AND state = $2",
                )
                .bind(uid)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(now)
                .bind(fp.n_instances)
                .bind(fp.digest.clone()),
            };
            let n = q.execute(pool).await.map_err(self.err(what))?.rows_affected();
            Ok(n == 1)
        })
    }

    /// Series left `analysing` by a crash go back to `stable` (their runs were never committed:
    /// a run is stored in one transaction with the state change). Returns how many.
    pub async fn reset_interrupted(&self) -> Result<u64, StoreError> {
        let what = "resetting series interrupted while analysing";
        let now = now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let n = sqlx::query(
                "UPDATE series SET state = 'stable', state_changed_at = $1 \
                 WHERE state = 'analysing'",
            )
            .bind(now)
            .execute(pool)
            .await
            .map_err(self.err(what))?
            .rows_affected();
            if n > 0 {
                tracing::info!(series = n, "series interrupted while analysing are stable again");
            }
            Ok(n)
        })
    }

    /// The instances of a series, ordered by SOP Instance UID.
    pub async fn series_instances(&self, uid: &str) -> Result<Vec<InstanceRow>, StoreError> {
        let what = format!("listing the instances of series {uid}");
        with_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", instance_cols!(), " FROM instances \
                 WHERE series_instance_uid = $1 ORDER BY sop_instance_uid"
            ))
            .bind(uid)
            .fetch_all(pool)
            .await
            .map_err(self.err(what.clone()))?;
            rows.iter()
                .map(|r| instance_row(r).map_err(self.err(what.clone())))
                .collect()
        })
    }

    /// The fingerprint of the series' current instance set. A worker should rather compute
    /// [`Fingerprint::of`] on the very rows it analyses (no race with arrivals).
    pub async fn series_fingerprint(&self, uid: &str) -> Result<Fingerprint, StoreError> {
        let what = format!("fingerprinting the instances of series {uid}");
        with_pool!(self, pool => {
            let uids: Vec<String> = sqlx::query_scalar(
                "SELECT sop_instance_uid FROM instances WHERE series_instance_uid = $1",
            )
            .bind(uid)
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            Ok(Fingerprint::of_uids(uids.iter().map(String::as_str)))
        })
    }

    pub(crate) fn series_row(&self, r: &impl RowGet, what: &str) -> Result<SeriesRow, StoreError> {
        let e = || self.err(what.to_string());
        let state_text = r.text("state").map_err(e())?;
        let state = SeriesState::parse(&state_text)
            .ok_or_else(|| self.data_err(what, format!("unknown series state {state_text:?}")))?;
        Ok(SeriesRow {
            series_instance_uid: r.text("series_instance_uid").map_err(e())?,
            study_instance_uid: r.text("study_instance_uid").map_err(e())?,
            state,
            state_changed_at: r.int("state_changed_at").map_err(e())?,
            first_received_at: r.int("first_received_at").map_err(e())?,
            last_received_at: r.int("last_received_at").map_err(e())?,
            n_instances: r.int("n_instances").map_err(e())?,
            amended: r.flag("amended").map_err(e())?,
            calling_ae: r.opt_text("calling_ae").map_err(e())?,
            station_name: r.opt_text("station_name").map_err(e())?,
            modality: r.opt_text("modality").map_err(e())?,
            description: r.opt_text("description").map_err(e())?,
            analysable: r.flag("analysable").map_err(e())?,
            last_run_id: r.opt_int("last_run_id").map_err(e())?,
            analysed_instance_count: r.opt_int("analysed_instance_count").map_err(e())?,
            analysed_fingerprint: r.opt_text("analysed_fingerprint").map_err(e())?,
            instances_purged_at: r.opt_int("instances_purged_at").map_err(e())?,
        })
    }
}

fn instance_row(r: &impl RowGet) -> Result<InstanceRow, sqlx::Error> {
    Ok(InstanceRow {
        instance: NewInstance {
            sop_instance_uid: r.text("sop_instance_uid")?,
            series_instance_uid: r.text("series_instance_uid")?,
            study_instance_uid: r.text("study_instance_uid")?,
            sop_class_uid: r.text("sop_class_uid")?,
            transfer_syntax: r.text("transfer_syntax")?,
            rel_path: r.text("rel_path")?,
            size_bytes: r.int("size_bytes")?,
            calling_ae: r.text("calling_ae")?,
            called_ae: r.text("called_ae")?,
            peer: r.text("peer")?,
            modality: r.opt_text("modality")?,
            station_name: r.opt_text("station_name")?,
            series_description: r.opt_text("series_description")?,
            analysable: r.flag("analysable")?,
        },
        received_at: r.int("received_at")?,
        times_received: r.int("times_received")?,
    })
}

/// `None` for a missing or blank text (DICOM pads with spaces).
fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}
