//! Baselines (one active per scanner, phantom and protocol, with history) and this database's
//! installation id (the trends are in `trend.rs`).

use super::{with_pool, RowGet, Store, StoreError};
use serde::Serialize;

/// A baseline to store: reference HU per material for one scanner, phantom and protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewBaseline {
    pub scanner_id: String,
    pub scanner_label: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub phantom_id: String,
    pub protocol_key: String,
    pub kvp: Option<f64>,
    pub kernel: Option<String>,
    pub slice_thickness_mm: Option<f64>,
    /// "run 12", "import FILE".
    pub source: String,
    /// The run it was taken from (for `baseline set --run` and auto baselines). `None` while
    /// inserted with its run: [`super::Store::insert_run`] fills it in.
    pub run_id: Option<i64>,
    /// Set automatically (`qa.auto_baseline`), not yet confirmed by a physicist.
    pub provisional: bool,
    pub note: Option<String>,
    /// Who set it: a dashboard user, "auto" (qa.auto_baseline), "NAME (command line)"; `None`
    /// for baselines stored before this was recorded.
    pub set_by: Option<String>,
    pub entries: Vec<NewBaselineEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewBaselineEntry {
    pub insert: String,
    /// `None`: listed without a usable value (the material then fails constancy).
    pub hu_mean: Option<f64>,
    pub red: Option<f64>,
}

/// A stored baseline with its entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineRow {
    pub id: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    /// `None`: the active baseline of its scanner, phantom and protocol.
    pub superseded_at: Option<i64>,
    pub superseded_by: Option<i64>,
    /// What was stored (see [`NewBaseline`]).
    #[serde(flatten)]
    pub baseline: NewBaseline,
}

impl std::ops::Deref for BaselineRow {
    type Target = NewBaseline;
    fn deref(&self) -> &NewBaseline {
        &self.baseline
    }
}

impl BaselineRow {
    pub fn is_active(&self) -> bool {
        self.superseded_at.is_none()
    }
}

macro_rules! baseline_cols {
    () => {
        "id, created_at, scanner_id, scanner_label, manufacturer, model, phantom_id, \
         protocol_key, kvp, kernel, slice_thickness_mm, source, run_id, provisional, \
         confirmed_at, superseded_at, superseded_by, note, set_by"
    };
}

/// How [`insert_baseline_tx!`] treats an active baseline of the same scanner, phantom and
/// protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExisting {
    /// The new baseline replaces it (it stays in the history, superseded).
    Supersede,
    /// Keep it and store nothing (an automatic baseline never replaces one).
    Keep,
}

/// Insert a baseline inside the open transaction `$tx` (both dialects: expanded inside
/// `with_pool!`). Evaluates to `Result<Option<i64>, StoreError>`: the new id, or `None` when
/// an active baseline exists and `$mode` is [`OnExisting::Keep`].
macro_rules! insert_baseline_tx {
    ($store:expr, $tx:expr, $b:expr, $now:expr, $mode:expr) => {{
        let store: &$crate::store::Store = $store;
        let b: &$crate::store::NewBaseline = $b;
        let now: i64 = $now;
        let what = || {
            format!(
                "storing a baseline of scanner {} / phantom {}",
                b.scanner_id, b.phantom_id
            )
        };
        async {
            let active: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM baselines WHERE scanner_id = $1 AND phantom_id = $2 \
                 AND protocol_key = $3 AND superseded_at IS NULL",
            )
            .bind(&b.scanner_id)
            .bind(&b.phantom_id)
            .bind(&b.protocol_key)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(store.err(what()))?;
            if active.is_some() && $mode == $crate::store::baselines::OnExisting::Keep {
                return Ok(None);
            }
            if let Some(old) = active {
                sqlx::query("UPDATE baselines SET superseded_at = $2 WHERE id = $1")
                    .bind(old)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await
                    .map_err(store.err(what()))?;
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO baselines (created_at, scanner_id, scanner_label, manufacturer, \
                 model, phantom_id, protocol_key, kvp, kernel, slice_thickness_mm, source, \
                 run_id, provisional, confirmed_at, note, set_by) VALUES ($1, $2, $3, $4, $5, \
                 $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
            )
            .bind(now)
            .bind(&b.scanner_id)
            .bind(&b.scanner_label)
            .bind(&b.manufacturer)
            .bind(&b.model)
            .bind(&b.phantom_id)
            .bind(&b.protocol_key)
            .bind($crate::store::opt_finite(b.kvp))
            .bind(&b.kernel)
            .bind($crate::store::opt_finite(b.slice_thickness_mm))
            .bind(&b.source)
            .bind(b.run_id)
            .bind($crate::store::flag(b.provisional))
            .bind((!b.provisional).then_some(now))
            .bind(&b.note)
            .bind(&b.set_by)
            .fetch_one(&mut *$tx)
            .await
            .map_err(store.err(what()))?;
            if let Some(old) = active {
                sqlx::query("UPDATE baselines SET superseded_by = $2 WHERE id = $1")
                    .bind(old)
                    .bind(id)
                    .execute(&mut *$tx)
                    .await
                    .map_err(store.err(what()))?;
            }
            for (seq, e) in b.entries.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO baseline_entries (baseline_id, seq, insert_name, hu_mean, red) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(&e.insert)
                .bind($crate::store::opt_finite(e.hu_mean))
                .bind($crate::store::opt_finite(e.red))
                .execute(&mut *$tx)
                .await
                .map_err(store.err(format!("{}: insert {}", what(), e.insert)))?;
            }
            Ok::<Option<i64>, $crate::store::StoreError>(Some(id))
        }
        .await
    }};
}
pub(crate) use insert_baseline_tx;

/// Filters of [`Store::list_baselines`].
#[derive(Debug, Clone, Default)]
pub struct BaselineFilter {
    /// Scanner id (DeviceSerialNumber / StationName) or label.
    pub scanner: Option<String>,
    /// Only baselines stored under one of these phantom ids (empty = every phantom); `hu-red
    /// baseline show --phantom catphan_ctp404` lists the family id and every variant.
    pub phantom_ids: Vec<String>,
    /// Include superseded baselines (the history).
    pub history: bool,
}

impl Store {
    /// Store a baseline; an active one of the same scanner, phantom and protocol is superseded
    /// (kept in the history). Returns the new id.
    pub async fn insert_baseline(&self, b: &NewBaseline) -> Result<i64, StoreError> {
        let what = format!(
            "storing a baseline of scanner {} / phantom {}",
            b.scanner_id, b.phantom_id
        );
        if b.entries.is_empty() {
            return Err(self.data_err(what, "a baseline needs at least one material"));
        }
        let now = super::now_ms();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what.clone()))?;
            let id = insert_baseline_tx!(self, tx, b, now, OnExisting::Supersede)?
                .ok_or_else(|| self.data_err(what.clone(), "not stored"))?;
            tx.commit().await.map_err(self.err(what.clone()))?;
            Ok(id)
        })
    }

    /// Confirm a provisional baseline (it stays the active one); `by` becomes who set it.
    /// Returns false when there is no such baseline.
    pub async fn confirm_baseline(&self, id: i64, by: &str) -> Result<bool, StoreError> {
        let what = format!("confirming baseline {id}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let n = sqlx::query(
                "UPDATE baselines SET provisional = 0, \
                 confirmed_at = COALESCE(confirmed_at, $2), set_by = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(super::now_ms())
            .bind(by)
            .execute(pool)
            .await
            .map_err(self.err(what))?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// One baseline with its entries.
    pub async fn get_baseline(&self, id: i64) -> Result<Option<BaselineRow>, StoreError> {
        let rows = self
            .query_baselines(
                &format!("reading baseline {id}"),
                "id = $1",
                &[Arg::Int(id)],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The active baselines of a scanner and phantom (every protocol), newest first.
    pub async fn active_baselines(
        &self,
        scanner_id: &str,
        phantom_id: &str,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        self.active_baselines_any(scanner_id, &[phantom_id]).await
    }

    /// The active baselines of a scanner stored under any of `phantom_ids` (every protocol),
    /// newest first: a run's phantom id and its family id (`catphan_604`, `catphan_ctp404`),
    /// so that baselines stored before hu-red told the Catphan variants apart still serve.
    /// Which one a run uses is [`crate::identity::choose_preferring`]'s choice.
    pub async fn active_baselines_any(
        &self,
        scanner_id: &str,
        phantom_ids: &[&str],
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let what = format!(
            "reading the baselines of scanner {scanner_id} / phantom {}",
            phantom_ids.join(" or ")
        );
        if phantom_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..phantom_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let filter = format!(
            "scanner_id = $1 AND phantom_id IN ({}) AND superseded_at IS NULL",
            placeholders.join(", ")
        );
        let args: Vec<Arg<'_>> = std::iter::once(Arg::Text(scanner_id))
            .chain(phantom_ids.iter().map(|p| Arg::Text(p)))
            .collect();
        self.query_baselines(&what, &filter, &args).await
    }

    /// Baselines for `hu-red baseline show / history`, newest first. The scanner filter
    /// matches the scanner id or label (case-insensitive).
    pub async fn list_baselines(
        &self,
        filter: &BaselineFilter,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let mut all = self
            .query_baselines(
                "listing baselines",
                if filter.history {
                    "1 = 1"
                } else {
                    "superseded_at IS NULL"
                },
                &[],
            )
            .await?;
        all.retain(|b| {
            filter.scanner.as_deref().is_none_or(|s| {
                b.scanner_id.eq_ignore_ascii_case(s)
                    || b.scanner_label
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(s))
            }) && (filter.phantom_ids.is_empty() || filter.phantom_ids.contains(&b.phantom_id))
        });
        Ok(all)
    }

    async fn query_baselines(
        &self,
        what: &str,
        filter: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM baselines WHERE {filter} ORDER BY id DESC",
            baseline_cols!()
        ));
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = match a {
                    Arg::Int(v) => q.bind(*v),
                    Arg::Text(v) => q.bind(v.to_string()),
                };
            }
            let rows = q.fetch_all(pool).await.map_err(self.err(what))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut b = baseline_row(r).map_err(self.err(what))?;
                let entries = sqlx::query(
                    "SELECT insert_name, hu_mean, red FROM baseline_entries \
                     WHERE baseline_id = $1 ORDER BY seq",
                )
                .bind(b.id)
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
                for e in &entries {
                    b.baseline.entries.push(NewBaselineEntry {
                        insert: e.text("insert_name").map_err(self.err(what))?,
                        hu_mean: e.opt_num("hu_mean").map_err(self.err(what))?,
                        red: e.opt_num("red").map_err(self.err(what))?,
                    });
                }
                out.push(b);
            }
            Ok(out)
        })
    }

    /// This database's installation id (random, made on first use): part of every report's
    /// Message-ID, so that a new database never reuses the Message-ID of an earlier one's
    /// report with the same run id.
    pub async fn installation_id(&self) -> Result<String, StoreError> {
        let what = "reading the installation id";
        let fresh = format!("{:016x}", rand::random::<u64>());
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('installation_id', $1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&fresh)
            .execute(pool)
            .await
            .map_err(self.err(what))?;
            let v: String =
                sqlx::query_scalar("SELECT value FROM settings WHERE key = 'installation_id'")
                    .fetch_one(pool)
                    .await
                    .map_err(self.err(what))?;
            Ok(v)
        })
    }
}

enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

fn baseline_row(r: &impl RowGet) -> Result<BaselineRow, sqlx::Error> {
    Ok(BaselineRow {
        id: r.int("id")?,
        created_at: r.int("created_at")?,
        confirmed_at: r.opt_int("confirmed_at")?,
        superseded_at: r.opt_int("superseded_at")?,
        superseded_by: r.opt_int("superseded_by")?,
        baseline: NewBaseline {
            scanner_id: r.text("scanner_id")?,
            scanner_label: r.opt_text("scanner_label")?,
            manufacturer: r.opt_text("manufacturer")?,
            model: r.opt_text("model")?,
            phantom_id: r.text("phantom_id")?,
            protocol_key: r.text("protocol_key")?,
            kvp: r.opt_num("kvp")?,
            kernel: r.opt_text("kernel")?,
            slice_thickness_mm: r.opt_num("slice_thickness_mm")?,
            source: r.text("source")?,
            run_id: r.opt_int("run_id")?,
            provisional: r.flag("provisional")?,
            note: r.opt_text("note")?,
            set_by: r.opt_text("set_by")?,
            entries: Vec::new(),
        },
    })
}
