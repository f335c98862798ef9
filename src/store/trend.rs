//! Trends: ΔHU and ΔRED % per material of the successful runs of a scanner and phantom (the
//! report's, [`Store::trend`]) or of a scanner, phantom and protocol (the dashboard's,
//! [`Store::protocol_trend`], with [`Store::trend_choices`]).
//!
//! Ordering invariant: a trend is ordered by when each series was acquired,
//! `COALESCE(acquired_at, finished_at)` then the run id — never by arrival — so a scan the
//! PACS sends late lands at its date; "the `limit` most recent" are the most recent by that
//! order too. With the runs come the baselines they were evaluated against, each with the time
//! of its own run, so that a chart draws the baseline run as a point at ΔHU 0 and marks a change
//! of baseline. One query per trend (its runs with their materials and baselines), never one
//! per run.

use super::{with_pool, RowGet, Store, StoreError};
use serde::Serialize;

/// One material of a run in a trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendMaterial {
    pub insert: String,
    /// `None`: not measured, or no baseline value.
    pub delta_hu: Option<f64>,
    pub tolerance_hu: Option<f64>,
    pub delta_red_percent: Option<f64>,
}

/// One run of a trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRow {
    pub run_id: i64,
    pub finished_at: i64,
    /// See [`super::RunIdentity::acquired_at`].
    pub acquired_at: Option<i64>,
    pub study_date: Option<String>,
    /// The baseline it was evaluated against.
    pub baseline_id: Option<i64>,
    /// In the run's material order.
    pub materials: Vec<TrendMaterial>,
}

impl TrendRow {
    /// Where the run stands in time: its acquisition, else when it was analysed (unix ms).
    pub fn at(&self) -> i64 {
        self.acquired_at.unwrap_or(self.finished_at)
    }
}

/// A baseline the runs of a trend were evaluated against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendBaseline {
    pub id: i64,
    /// The run it was taken from (`None`: imported from a file).
    pub run_id: Option<i64>,
    /// That run's acquisition, else analysis time (unix ms); `None` without a run, or when the
    /// run is no longer stored.
    pub run_at: Option<i64>,
    pub created_at: i64,
    pub source: String,
    pub provisional: bool,
}

/// A trend: its runs oldest first (by acquisition), and the baselines they used by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunTrend {
    pub runs: Vec<TrendRow>,
    pub baselines: Vec<TrendBaseline>,
}

impl RunTrend {
    pub fn baseline(&self, id: i64) -> Option<&TrendBaseline> {
        self.baselines.iter().find(|b| b.id == id)
    }
}

/// What the dashboard's trend is of: one scanner, phantom and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendKey {
    pub scanner_id: String,
    pub phantom_id: String,
    /// Empty for runs stored without one.
    pub protocol_key: String,
}

/// A scanner, phantom and protocol with successful runs (the dashboard's choices).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendChoice {
    pub key: TrendKey,
    /// The scanner's label (its `[[scanners]]` name or station).
    pub scanner: Option<String>,
    pub runs: i64,
    /// The most recent run's acquisition (else analysis) time, unix ms.
    pub last_at: i64,
}

/// The dashboard's trend: which runs, how many at most.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendQuery {
    pub key: TrendKey,
    /// Acquired (else analysed) at or after this, unix ms.
    pub from_ms: Option<i64>,
    /// Acquired (else analysed) before this, unix ms.
    pub before_ms: Option<i64>,
    /// The most recent (by acquisition) this many.
    pub limit: u32,
}

/// The bind values of a trend's run filter: texts first ($1..), then integers.
struct Filter {
    sql: String,
    texts: Vec<String>,
    ints: Vec<i64>,
}

impl Store {
    /// The trend of a report: the successful runs of a scanner and phantom stored up to run
    /// `up_to` (inclusive: the runs known when that run was stored), the `limit` most recent
    /// by acquisition, oldest first, with their baselines. `phantom_ids` are the ids the runs
    /// may be stored under: the phantom's own id and, for a variant, its family id (runs stored
    /// before the variants were told apart, e.g. `catphan_ctp404` for a Catphan 504).
    pub async fn trend(
        &self,
        scanner_id: &str,
        phantom_ids: &[&str],
        up_to: i64,
        limit: u32,
    ) -> Result<RunTrend, StoreError> {
        let what = format!(
            "reading the trend of scanner {scanner_id} / phantom {}",
            phantom_ids.join(" or ")
        );
        if phantom_ids.is_empty() || limit == 0 {
            return Ok(RunTrend::default());
        }
        let ids_in: Vec<String> = (0..phantom_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let filter = Filter {
            sql: format!(
                "scanner_id = $1 AND phantom_id IN ({}) AND id <= ${}",
                ids_in.join(", "),
                phantom_ids.len() + 2
            ),
            texts: std::iter::once(scanner_id)
                .chain(phantom_ids.iter().copied())
                .map(str::to_string)
                .collect(),
            ints: vec![up_to],
        };
        self.query_trend(&what, &filter, limit).await
    }

    /// The dashboard's trend of one scanner, phantom and protocol: its successful runs in the
    /// query's period, the `limit` most recent by acquisition, oldest first, with their
    /// baselines; and whether there were more (the older ones left out).
    pub async fn protocol_trend(&self, q: &TrendQuery) -> Result<(RunTrend, bool), StoreError> {
        let k = &q.key;
        let what = format!(
            "reading the trend of scanner {} / phantom {} / protocol {}",
            k.scanner_id, k.phantom_id, k.protocol_key
        );
        let mut filter = Filter {
            sql: "scanner_id = $1 AND phantom_id = $2 AND COALESCE(protocol_key, '') = $3".into(),
            texts: vec![
                k.scanner_id.clone(),
                k.phantom_id.clone(),
                k.protocol_key.clone(),
            ],
            ints: Vec::new(),
        };
        for (op, v) in [(">=", q.from_ms), ("<", q.before_ms)] {
            if let Some(v) = v {
                filter.ints.push(v);
                let n = filter.texts.len() + filter.ints.len();
                filter.sql += &format!(" AND COALESCE(acquired_at, finished_at) {op} ${n}");
            }
        }
        let mut trend = self
            .query_trend(&what, &filter, q.limit.saturating_add(1))
            .await?;
        let more = trend.runs.len() > q.limit as usize;
        if more {
            trend.runs.remove(0);
        }
        Ok((trend, more))
    }

    /// Every scanner, phantom and protocol with successful runs, the one with the most recent
    /// run (by acquisition) first.
    pub async fn trend_choices(&self) -> Result<Vec<TrendChoice>, StoreError> {
        let what = "listing the trends";
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT scanner_id, MAX(scanner) AS scanner, phantom_id, \
                 COALESCE(protocol_key, '') AS protocol_key, COUNT(*) AS runs, \
                 MAX(COALESCE(acquired_at, finished_at)) AS last_at, MAX(id) AS last_id \
                 FROM runs WHERE status = 'ok' AND scanner_id IS NOT NULL \
                 AND phantom_id IS NOT NULL \
                 GROUP BY scanner_id, phantom_id, COALESCE(protocol_key, '') \
                 ORDER BY last_at DESC, last_id DESC",
            )
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            rows.iter()
                .map(|r| {
                    Ok(TrendChoice {
                        key: TrendKey {
                            scanner_id: r.text("scanner_id")?,
                            phantom_id: r.text("phantom_id")?,
                            protocol_key: r.text("protocol_key")?,
                        },
                        scanner: r.opt_text("scanner")?,
                        runs: r.int("runs")?,
                        last_at: r.int("last_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(self.err(what))
        })
    }

    /// The successful runs `filter` selects, the `limit` most recent by acquisition, oldest
    /// first, with their materials and their baselines (one query).
    async fn query_trend(
        &self,
        what: &str,
        filter: &Filter,
        limit: u32,
    ) -> Result<RunTrend, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT r.id, r.finished_at, r.acquired_at, r.study_date, r.baseline_id, \
             m.insert_name, m.delta_hu, m.tolerance_hu, m.delta_red_percent, \
             b.run_id AS b_run_id, b.created_at AS b_created_at, b.source AS b_source, \
             b.provisional AS b_provisional, \
             COALESCE(br.acquired_at, br.finished_at) AS b_run_at \
             FROM runs r JOIN material_results m ON m.run_id = r.id \
             LEFT JOIN baselines b ON b.id = r.baseline_id \
             LEFT JOIN runs br ON br.id = b.run_id \
             WHERE r.id IN (SELECT id FROM runs WHERE {} AND status = 'ok' \
             ORDER BY COALESCE(acquired_at, finished_at) DESC, id DESC LIMIT ${}) \
             ORDER BY COALESCE(r.acquired_at, r.finished_at), r.id, m.seq",
            filter.sql,
            filter.texts.len() + filter.ints.len() + 1
        ));
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            for t in &filter.texts {
                q = q.bind(t.clone());
            }
            for i in &filter.ints {
                q = q.bind(*i);
            }
            let rows = q
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
            let mut out = RunTrend::default();
            for r in &rows {
                trend_row(r, &mut out).map_err(self.err(what))?;
            }
            out.baselines.sort_by_key(|b| b.id);
            Ok(out)
        })
    }

    /// The baselines `ids`, by id, each with the acquisition (else analysis) time of the run it
    /// was taken from.
    pub async fn trend_baselines(&self, ids: &[i64]) -> Result<Vec<TrendBaseline>, StoreError> {
        let what = "reading the baselines of a trend";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT b.id, b.run_id, b.created_at, b.source, b.provisional, \
             COALESCE(br.acquired_at, br.finished_at) AS run_at \
             FROM baselines b LEFT JOIN runs br ON br.id = b.run_id \
             WHERE b.id IN ({}) ORDER BY b.id",
            list.join(", ")
        ));
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            for id in ids {
                q = q.bind(*id);
            }
            let rows = q.fetch_all(pool).await.map_err(self.err(what))?;
            rows.iter()
                .map(|r| {
                    Ok(TrendBaseline {
                        id: r.int("id")?,
                        run_id: r.opt_int("run_id")?,
                        run_at: r.opt_int("run_at")?,
                        created_at: r.int("created_at")?,
                        source: r.text("source")?,
                        provisional: r.flag("provisional")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(self.err(what))
        })
    }
}

/// One row of the trend query (a run's material, with the run's baseline) added to `out`
/// (rows come run by run).
fn trend_row(r: &impl RowGet, out: &mut RunTrend) -> Result<(), sqlx::Error> {
    let id = r.int("id")?;
    if out.runs.last().is_none_or(|t| t.run_id != id) {
        let baseline_id = r.opt_int("baseline_id")?;
        if let Some(b) = baseline_id.filter(|b| out.baseline(*b).is_none()) {
            // NULL when the baseline row is gone
            if let Some(created_at) = r.opt_int("b_created_at")? {
                out.baselines.push(TrendBaseline {
                    id: b,
                    run_id: r.opt_int("b_run_id")?,
                    run_at: r.opt_int("b_run_at")?,
                    created_at,
                    source: r.opt_text("b_source")?.unwrap_or_default(),
                    provisional: r.opt_flag("b_provisional")?.unwrap_or(false),
                });
            }
        }
        out.runs.push(TrendRow {
            run_id: id,
            finished_at: r.int("finished_at")?,
            acquired_at: r.opt_int("acquired_at")?,
            study_date: r.opt_text("study_date")?,
            baseline_id,
            materials: Vec::new(),
        });
    }
    if let Some(t) = out.runs.last_mut() {
        t.materials.push(TrendMaterial {
            insert: r.text("insert_name")?,
            delta_hu: r.opt_num("delta_hu")?,
            tolerance_hu: r.opt_num("tolerance_hu")?,
            delta_red_percent: r.opt_num("delta_red_percent")?,
        });
    }
    Ok(())
}
