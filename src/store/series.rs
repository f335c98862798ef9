//! Instances and series: recording, the stable-age query, compare-and-set state changes.

use super::{
    flag, with_ingest_pool, with_pool, InstanceRow, NewInstance, RecordOutcome, RowGet, SeriesRow,
};
use super::{now_ms, Fingerprint, SeriesState, Store, StoreError};

macro_rules! series_cols {
    () => {
        "series_instance_uid, study_instance_uid, state, state_changed_at, first_received_at, \
         last_received_at, n_instances, amended, calling_ae, station_name, modality, description, \
         analysable, last_run_id, analysed_instance_count, analysed_fingerprint"
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

            // The series row (locked) and the series the instance was recorded under before.
            let lookup = if pg {
                "SELECT state, (SELECT series_instance_uid FROM instances \
                 WHERE sop_instance_uid = $2) AS previous \
                 FROM series WHERE series_instance_uid = $1 FOR UPDATE"
            } else {
                "SELECT state, (SELECT series_instance_uid FROM instances \
                 WHERE sop_instance_uid = $2) AS previous \
                 FROM series WHERE series_instance_uid = $1"
            };
            let row = sqlx::query(lookup)
            .bind(&i.series_instance_uid)
            .bind(&i.sop_instance_uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.err(what()))?;
            let (created, state, previous) = match &row {
                Some(r) => {
                    let text = r.text("state").map_err(self.err(what()))?;
                    let state = SeriesState::parse(&text).ok_or_else(|| {
                        self.data_err(what(), format!("unknown series state {text:?}"))
                    })?;
                    (false, state, r.opt_text("previous").map_err(self.err(what()))?)
                }
                None => {
                    // The first instance of a series (or one of several arriving at once on
                    // Postgres): create the row, or learn that another transaction just did.
                    let created = sqlx::query(
                        "INSERT INTO series (series_instance_uid, study_instance_uid, state, \
                         state_changed_at, first_received_at, last_received_at, n_instances, \
                         amended, analysable) \
                         VALUES ($1, $2, 'receiving', $3, $3, $3, 0, 0, 0) \
                         ON CONFLICT (series_instance_uid) DO NOTHING",
                    )
                    .bind(&i.series_instance_uid)
                    .bind(&i.study_instance_uid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(what()))?
                    .rows_affected()
                        == 1;
                    let row = sqlx::query(lookup)
                    .bind(&i.series_instance_uid)
                    .bind(&i.sop_instance_uid)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(self.err(what()))?;
                    let text = row.text("state").map_err(self.err(what()))?;
                    let state = SeriesState::parse(&text).ok_or_else(|| {
                        self.data_err(what(), format!("unknown series state {text:?}"))
                    })?;
                    (created, state, row.opt_text("previous").map_err(self.err(what()))?)
                }
            };

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
            sqlx::query(
                "INSERT INTO series (series_instance_uid, study_instance_uid, state, \
                 state_changed_at, first_received_at, last_received_at, n_instances, amended, \
                 calling_ae, station_name, modality, description, analysable) \
                 VALUES ($1, $2, 'receiving', $3, $3, $3, $4, 0, $5, $6, $7, $8, $9) \
                 ON CONFLICT (series_instance_uid) DO UPDATE SET state = 'receiving', \
                 state_changed_at = CASE WHEN series.state <> 'receiving' \
                     THEN excluded.state_changed_at ELSE series.state_changed_at END, \
                 last_received_at = excluded.last_received_at, \
                 n_instances = series.n_instances + excluded.n_instances, \
                 amended = CASE WHEN series.state IN \
                     ('analysing', 'done', 'failed', 'not_analysed') THEN 1 \
                     ELSE series.amended END, \
                 calling_ae = COALESCE(excluded.calling_ae, series.calling_ae), \
                 station_name = COALESCE(excluded.station_name, series.station_name), \
                 modality = COALESCE(excluded.modality, series.modality), \
                 description = COALESCE(excluded.description, series.description), \
                 analysable = CASE WHEN excluded.analysable = 1 THEN 1 \
                     ELSE series.analysable END",
            )
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

            sqlx::query(
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
                 times_received = instances.times_received + 1",
            )
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
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(self.err(what()))?;

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
