//! Retention: which series' instance files may be purged (the selection), and the purge's own
//! transaction (the series marked, its instance rows deleted). The files themselves are removed
//! by `crate::retention` after that transaction commits, so that no row ever points at a file
//! that is gone; files left behind by a stop in between belong to a series marked purged and are
//! removed by the next purge (and never recorded again by start-up recovery).

use super::{now_ms, with_pool, RowGet, SeriesState, Store, StoreError};
use serde::Serialize;
use std::fmt;

text_enum! {
    /// Why a series' instances may be purged.
    PurgeReason {
        /// No CT image instance (only MR, RTSTRUCT, secondary captures, ...): the series was
        /// kept, never analysed (`retention.unrecognised_days`).
        NoCtImage = "no_ct_image",
        /// Its last run recognised no phantom (`retention.unrecognised_days`).
        NoPhantom = "no_phantom",
        /// A phantom series (or one whose last run failed on hu-red's side):
        /// `retention.instances_days`.
        Phantom = "phantom",
    }
}

impl PurgeReason {
    /// What users read (`hu-red purge --dry-run`, the log).
    pub fn label(self) -> &'static str {
        match self {
            PurgeReason::NoCtImage => "no CT image",
            PurgeReason::NoPhantom => "no phantom recognised",
            PurgeReason::Phantom => "phantom series",
        }
    }

    /// Whether the series is "unrecognised" (no CT image or no phantom recognised).
    pub fn unrecognised(self) -> bool {
        !matches!(self, PurgeReason::Phantom)
    }
}

/// The ages that decide a purge, as unix-ms cutoffs: a series qualifies when its last instance
/// arrived at or before its class's cutoff. `None`: that class is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeCutoffs {
    /// Series with no CT image or no phantom recognised.
    pub unrecognised: Option<i64>,
    /// Phantom series (every other analysed series).
    pub phantom: Option<i64>,
}

/// A series whose instance files may be purged, with what they take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeCandidate {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub station_name: Option<String>,
    /// done, failed or not_analysed (never a series still received, queued or analysed).
    pub state: SeriesState,
    /// Unix ms of its last instance (the age retention measures).
    pub last_received_at: i64,
    pub last_run_id: Option<i64>,
    pub reason: PurgeReason,
    /// Instance rows and their recorded bytes.
    pub instances: i64,
    pub bytes: i64,
}

/// An instance row deleted by a purge: its file is to be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedInstance {
    pub sop_instance_uid: String,
    /// Relative to data_dir, as recorded.
    pub rel_path: String,
    pub size_bytes: i64,
}

/// A series whose instances were purged (its folder may still hold files a stop left behind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedSeries {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub instances_purged_at: i64,
}

/// Cutoff bound for a class that is kept: no series arrived that early.
const NEVER: i64 = i64::MIN;

/// The series eligible under the cutoffs ($1 unrecognised, $2 phantom), oldest first. The class
/// comes from the series state and its last run's `phantom_recognised`.
const CANDIDATES: &str = "SELECT s.series_instance_uid, s.study_instance_uid, s.station_name, \
     s.state, s.last_received_at, s.last_run_id, \
     CASE WHEN s.state = 'not_analysed' THEN 'no_ct_image' \
          WHEN r.phantom_recognised = 0 THEN 'no_phantom' \
          ELSE 'phantom' END AS reason, \
     (SELECT COUNT(*) FROM instances i \
      WHERE i.series_instance_uid = s.series_instance_uid) AS n_files, \
     (SELECT CAST(COALESCE(SUM(i.size_bytes), 0) AS BIGINT) FROM instances i \
      WHERE i.series_instance_uid = s.series_instance_uid) AS n_bytes \
     FROM series s LEFT JOIN runs r ON r.id = s.last_run_id \
     WHERE s.instances_purged_at IS NULL \
     AND s.state IN ('done', 'failed', 'not_analysed') \
     AND ((s.last_received_at <= $1 \
           AND (s.state = 'not_analysed' OR r.phantom_recognised = 0)) \
       OR (s.last_received_at <= $2 AND s.state <> 'not_analysed' \
           AND (r.phantom_recognised IS NULL OR r.phantom_recognised = 1))) \
     ORDER BY s.last_received_at, s.series_instance_uid";

/// Mark a candidate purged, only if it is as it was selected (compare-and-set on its state,
/// last reception and last run: an instance that arrived since, or a new run, leaves it alone).
const MARK_PURGED: &str = "UPDATE series SET instances_purged_at = $2 \
     WHERE series_instance_uid = $1 AND instances_purged_at IS NULL AND state = $3 \
     AND last_received_at = $4 AND COALESCE(last_run_id, -1) = $5";

impl Store {
    /// The series whose instance files may be purged under `cutoffs`: finished (done, failed,
    /// not_analysed), not purged yet, their last instance received at or before the cutoff of
    /// their class (no CT image or no phantom recognised: `unrecognised`; every other analysed
    /// series: `phantom`). Oldest first.
    pub async fn purge_candidates(
        &self,
        cutoffs: PurgeCutoffs,
    ) -> Result<Vec<PurgeCandidate>, StoreError> {
        let what = "listing the series whose instances may be purged";
        with_pool!(self, pool => {
            let rows = sqlx::query(CANDIDATES)
                .bind(cutoffs.unrecognised.unwrap_or(NEVER))
                .bind(cutoffs.phantom.unwrap_or(NEVER))
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
            rows.iter().map(|r| self.candidate(r, what)).collect()
        })
    }

    fn candidate(&self, r: &impl RowGet, what: &str) -> Result<PurgeCandidate, StoreError> {
        let e = || self.err(what.to_string());
        let state_text = r.text("state").map_err(e())?;
        let state = SeriesState::parse(&state_text)
            .ok_or_else(|| self.data_err(what, format!("unknown series state {state_text:?}")))?;
        let reason_text = r.text("reason").map_err(e())?;
        let reason = PurgeReason::parse(&reason_text)
            .ok_or_else(|| self.data_err(what, format!("unknown reason {reason_text:?}")))?;
        Ok(PurgeCandidate {
            series_instance_uid: r.text("series_instance_uid").map_err(e())?,
            study_instance_uid: r.text("study_instance_uid").map_err(e())?,
            station_name: r.opt_text("station_name").map_err(e())?,
            state,
            last_received_at: r.int("last_received_at").map_err(e())?,
            last_run_id: r.opt_int("last_run_id").map_err(e())?,
            reason,
            instances: r.int("n_files").map_err(e())?,
            bytes: r.int("n_bytes").map_err(e())?,
        })
    }

    /// The purge of one candidate, in one transaction: the series is marked
    /// `instances_purged_at` (only if it is still as selected: finished, no instance since, the
    /// same last run) and its instance rows are deleted; the series row, its runs, results and
    /// reports stay. Returns the deleted rows (whose files the caller then removes), or `None`
    /// when the series changed since it was selected (nothing done).
    pub async fn purge_series_instances(
        &self,
        c: &PurgeCandidate,
    ) -> Result<Option<Vec<PurgedInstance>>, StoreError> {
        let uid = &c.series_instance_uid;
        let what = || format!("purging the instances of series {uid}");
        let now = now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = if self.is_postgres() {
                pool.begin().await
            } else {
                pool.begin_with("BEGIN IMMEDIATE").await
            }
            .map_err(self.err(what()))?;
            let marked = sqlx::query(MARK_PURGED)
                .bind(uid)
                .bind(now)
                .bind(c.state.as_str())
                .bind(c.last_received_at)
                .bind(c.last_run_id.unwrap_or(-1))
                .execute(&mut *tx)
                .await
                .map_err(self.err(what()))?
                .rows_affected();
            if marked != 1 {
                tx.rollback().await.map_err(self.err(what()))?;
                return Ok(None);
            }
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "DELETE FROM instances WHERE series_instance_uid = $1 \
                 RETURNING sop_instance_uid, rel_path, size_bytes",
            )
            .bind(uid)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err(what()))?;
            tx.commit().await.map_err(self.err(what()))?;
            let mut out: Vec<PurgedInstance> = rows
                .into_iter()
                .map(|(sop_instance_uid, rel_path, size_bytes)| PurgedInstance {
                    sop_instance_uid,
                    rel_path,
                    size_bytes,
                })
                .collect();
            out.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
            Ok(Some(out))
        })
    }

    /// Every series whose instances were purged (start-up recovery leaves their left-over files
    /// alone; the purge removes them).
    pub async fn purged_series(&self) -> Result<Vec<PurgedSeries>, StoreError> {
        let what = "listing the series whose instances were purged";
        with_pool!(self, pool => {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT series_instance_uid, study_instance_uid, instances_purged_at FROM series \
                 WHERE instances_purged_at IS NOT NULL ORDER BY series_instance_uid",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            Ok(rows
                .into_iter()
                .map(|(series_instance_uid, study_instance_uid, instances_purged_at)| {
                    PurgedSeries {
                        series_instance_uid,
                        study_instance_uid,
                        instances_purged_at,
                    }
                })
                .collect())
        })
    }
}
