//! The database: sqlx pools for SQLite (default, a file in WAL mode) and PostgreSQL, the embedded
//! migrations of each dialect (`migrations/sqlite/`, `migrations/postgres/`, applied at connect)
//! and typed queries, one module per table (its columns, row and insert types, inserts and
//! reads): `series` (instances and series), `runs` (runs, materials, ROIs), `baselines`,
//! `outbox`, `scanners`, `users` (dashboard users, sessions, the audit log); `trend` reads the
//! trends (ordered by acquisition, see there); `retention` selects the series whose instances
//! may be purged and purges their rows; `convert` builds rows from the engine's results.
//!
//! One [`Store`] type hides the dialect: each method runs the same runtime SQL (`$1`
//! placeholders, `ON CONFLICT`, `RETURNING`) on the concrete pool of the URL's scheme (see the
//! `with_pool!` macro). Timestamps are unix milliseconds, booleans 0/1 integers.
//!
//! Write transactions: SQLite ones start with `BEGIN IMMEDIATE` (the write lock is taken up front,
//! writers queue on `busy_timeout` instead of failing on a lock upgrade); Postgres ones lock the
//! series row (`SELECT ... FOR UPDATE`) before reading what they update.

/// A unit enum stored as text (`as_str`, `parse`, `ALL`, `Display`); the expanding module
/// imports `serde::Serialize` and `std::fmt`.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value for a stored text, `None` when unknown.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod baselines;
mod convert;
mod migrations;
mod outbox;
mod retention;
mod runs;
mod scanners;
mod series;
mod trend;
mod users;

pub use baselines::{BaselineFilter, BaselineRow, NewBaseline, NewBaselineEntry};
pub use outbox::{NewOutboxMessage, OutboxKind, OutboxRow, OutboxState};
pub use retention::{PurgeCandidate, PurgeCutoffs, PurgeReason, PurgedInstance, PurgedSeries};
pub use runs::{
    MaterialRow, NewMaterialResult, NewRoiMeasurement, NewRun, RoiRow, RunColumns, RunDetail,
    RunFacets, RunFilter, RunIdentity, RunRow, RunStatistics, RunStatus, Verdict,
    RUN_ID_PLACEHOLDER,
};
pub use scanners::ScannerRow;
pub use series::{Fingerprint, InstanceRow, NewInstance, RecordOutcome, SeriesRow, SeriesState};
pub use trend::{
    RunTrend, TrendBaseline, TrendChoice, TrendKey, TrendMaterial, TrendQuery, TrendRow,
};
pub use users::{AuditEntry, AuditRow, NewSession, Role, SessionRow, UserRow};

use serde::Serialize;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The SQLite connection options of `url` (WAL, synchronous FULL, foreign keys, the busy
/// timeout; the file created if missing, its folder too unless the database is in memory).
fn sqlite_options(
    url: &str,
    db: &str,
    in_memory: bool,
    opts: &StoreOptions,
) -> Result<SqliteConnectOptions, StoreError> {
    let parsed = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Url {
        db: db.to_string(),
        reason: e.to_string(),
    })?;
    if !in_memory {
        let path = parsed.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                db: db.to_string(),
                dir: dir.to_path_buf(),
                source,
            })?;
        }
    }
    Ok(parsed
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout))
}

/// A pooled connection may be handed out (again) only outside any transaction. A transaction
/// whose statement or commit failed (disk full, I/O error, the server gone) is rolled back when
/// dropped; when that rollback fails too, the connection would stay inside the transaction and
/// every later `BEGIN` on it would fail ("non-zero transaction depth") until a restart. Such a
/// connection is closed instead (checked when returned and again before reuse), and the pool
/// opens a fresh one: the next write after the cause is gone succeeds.
fn usable<C: sqlx::Connection>(conn: &C) -> bool {
    let ok = !conn.is_in_transaction();
    if !ok {
        tracing::warn!("a database connection left inside a failed transaction is closed");
    }
    ok
}

/// Pool settings for [`Store::connect_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (`database.max_connections`). SQLite in-memory databases always use 1.
    pub max_connections: u32,
    /// How long a SQLite writer waits for another writer (PRAGMA busy_timeout).
    pub busy_timeout: Duration,
    /// How long to wait for a free connection (and for the first connection at start).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        })
    }
}

/// Errors of the store. Each names the database (its URL without password) and what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL {db}: {reason}")]
    Url { db: String, reason: String },
    #[error("cannot create the folder {} for the SQLite database {db}: {source}", dir.display())]
    CreateDir {
        db: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the database {db}: {source}")]
    Connect {
        db: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot apply the migrations to the database {db}: {source} (a database written by a \
         newer hu-red, or an edited migration?)"
    )]
    Migrate {
        db: String,
        #[source]
        source: MigrateError,
    },
    #[error("database {db}: {what} failed: {source}")]
    Query {
        db: String,
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {db}: {what}: {reason}")]
    Data {
        db: String,
        what: String,
        reason: String,
    },
}

#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database handle. Cheap to clone (a pool inside).
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// The pool that records received instances. SQLite: a second pool on the same file whose
    /// commits do not wait for an fsync of the WAL (`synchronous=NORMAL`): such a commit
    /// survives a crash of the process, and after an OS crash or power loss (which restarts
    /// hu-red too) the instance files, which are fsynced before they are acknowledged, are
    /// recorded again by `series::recover`. Every other write goes through `backend`
    /// (`synchronous=FULL`), whose commit also makes all earlier WAL frames durable. Postgres
    /// (possibly on another host, so it can lose commits while hu-red keeps running): the same
    /// pool as `backend`, fully synchronous.
    pub(crate) ingest: Backend,
    /// The URL with any password replaced, for messages.
    pub(crate) db: Arc<str>,
    /// SQLite: one writer at a time inside this process. Writers queue here (FIFO) instead of
    /// in SQLite's busy handler, which sleeps in growing steps and made 4 concurrent writers
    /// slower than one. Other processes still wait on `busy_timeout`.
    pub(crate) writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .field("db", &self.db)
            .finish()
    }
}

/// Run `$body` with `$pool` bound to the concrete pool (the body is compiled once per dialect).
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// [`with_pool!`] on the instance-recording pool ([`Store::ingest`]).
macro_rules! with_ingest_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.ingest {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_ingest_pool;

impl Store {
    /// Connects with default pool settings (see [`Store::connect_with`]).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects (creating the SQLite file and its folder), sets WAL + synchronous=FULL +
    /// foreign keys + busy_timeout for SQLite, and applies the migrations of the dialect.
    ///
    /// URLs: `sqlite://PATH` / `sqlite:PATH` (relative paths are relative to the working
    /// directory), `postgres://` / `postgresql://` with the usual sqlx parameters
    /// (`?sslmode=require`, `?options[search_path]=hured` for a schema).
    pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let db: Arc<str> = redact_url(url).into();
        let lower = url.to_ascii_lowercase();
        let max = opts.max_connections.max(1);
        let (backend, ingest) = if lower.starts_with("sqlite:") {
            let in_memory = lower.contains(":memory:") || lower.contains("mode=memory");
            let options = sqlite_options(url, &db, in_memory, opts)?;
            let ingest_options = options.clone().synchronous(SqliteSynchronous::Normal);
            let mut pool_options = SqlitePoolOptions::new();
            if !in_memory {
                // (an in-memory database lives as long as its one connection: never closed)
                pool_options = pool_options
                    .before_acquire(|c, _| Box::pin(async move { Ok(usable(&*c)) }))
                    .after_release(|c, _| Box::pin(async move { Ok(usable(&*c)) }));
            }
            let pool = pool_options
                // An in-memory database lives as long as its one connection.
                .max_connections(if in_memory { 1 } else { max })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(std::time::Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(std::time::Duration::from_secs(1800))
                })
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    db: db.to_string(),
                    source,
                })?;
            migrations::migrator(Dialect::Sqlite)
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate {
                    db: db.to_string(),
                    source,
                })?;
            let ingest = if in_memory {
                // one connection holds the whole database
                pool.clone()
            } else {
                SqlitePoolOptions::new()
                    .before_acquire(|c, _| Box::pin(async move { Ok(usable(&*c)) }))
                    .after_release(|c, _| Box::pin(async move { Ok(usable(&*c)) }))
                    .max_connections(2)
                    .min_connections(0)
                    .idle_timeout(Some(std::time::Duration::from_secs(600)))
                    .max_lifetime(Some(std::time::Duration::from_secs(1800)))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(ingest_options)
                    .await
                    .map_err(|source| StoreError::Connect {
                        db: db.to_string(),
                        source,
                    })?
            };
            (Backend::Sqlite(pool), Backend::Sqlite(ingest))
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url {
                db: db.to_string(),
                reason: e.to_string(),
            })?;
            let pool = PgPoolOptions::new()
                .before_acquire(|c, _| Box::pin(async move { Ok(usable(&*c)) }))
                .after_release(|c, _| Box::pin(async move { Ok(usable(&*c)) }))
                .max_connections(max)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    db: db.to_string(),
                    source,
                })?;
            migrations::migrator(Dialect::Postgres)
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate {
                    db: db.to_string(),
                    source,
                })?;
            (Backend::Postgres(pool.clone()), Backend::Postgres(pool))
        } else {
            return Err(StoreError::Url {
                db: db.to_string(),
                reason: "unsupported scheme: use sqlite://PATH or postgres://USER@HOST/DB"
                    .to_string(),
            });
        };
        let writer =
            matches!(backend, Backend::Sqlite(_)).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let store = Store {
            backend,
            ingest,
            db,
            writer,
        };
        tracing::info!(db = %store.db, dialect = %store.dialect(), "database ready (migrations applied)");
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The database URL with any password replaced by `***` (for logs and messages).
    pub fn display_url(&self) -> &str {
        &self.db
    }

    /// Close the pool: waits for checked-out connections to return (SQLite checkpoints its
    /// WAL when the last connection closes).
    pub async fn close(&self) {
        if let Backend::Sqlite(ingest) = &self.ingest {
            ingest.close().await;
        }
        with_pool!(self, pool => pool.close().await)
    }

    /// A small committed write (the time of the last check, in `settings`): does the database
    /// take writes now? The service's database watch calls it periodically.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let what = "checking that the database takes writes";
        let now = now_ms().to_string();
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what))?;
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('last_write_check', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(self.err(what))?;
            tx.commit().await.map_err(self.err(what))?;
            Ok(())
        })
    }

    /// The settings in force, for the start-up log and tests: SQLite `journal_mode`,
    /// `synchronous` (2 = FULL), `foreign_keys`, `busy_timeout` (ms); Postgres
    /// `server_version`, `search_path`.
    pub async fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let what = "reading the connection settings";
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(self.err(what))?;
                let mut out = Vec::new();
                for pragma in [
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                ] {
                    let sql = match pragma {
                        "journal_mode" => "PRAGMA journal_mode",
                        "synchronous" => "PRAGMA synchronous",
                        "foreign_keys" => "PRAGMA foreign_keys",
                        _ => "PRAGMA busy_timeout",
                    };
                    let row = sqlx::query(sql)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(self.err(what))?;
                    let v = row
                        .try_get::<String, _>(0)
                        .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                        .map_err(self.err(what))?;
                    out.push((pragma.to_string(), v));
                }
                Ok(out)
            }
            Backend::Postgres(pool) => {
                let mut out = Vec::new();
                for (name, sql) in [
                    ("server_version", "SHOW server_version"),
                    ("search_path", "SHOW search_path"),
                ] {
                    let v: String = sqlx::query_scalar(sql)
                        .fetch_one(pool)
                        .await
                        .map_err(self.err(what))?;
                    out.push((name.to_string(), v));
                }
                Ok(out)
            }
        }
    }

    /// Maps a sqlx error to [`StoreError::Query`] naming the database and the operation.
    pub(crate) fn err(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let db = self.db.to_string();
        let what = what.into();
        move |source| StoreError::Query { db, what, source }
    }

    pub(crate) fn data_err(
        &self,
        what: impl Into<String>,
        reason: impl Into<String>,
    ) -> StoreError {
        StoreError::Data {
            db: self.db.to_string(),
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Held for the duration of a write (see `writer`); `None` for Postgres.
    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `url` with the password (userinfo after ':' and any `password=` parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &out[rest_start..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                let end = rest_start + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

/// Typed column access shared by the SQLite and Postgres rows.
pub(crate) trait RowGet {
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn opt_num(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    /// A number stored as NULL because it was not finite reads back as NaN.
    fn num(&self, col: &str) -> Result<f64, sqlx::Error> {
        Ok(self.opt_num(col)?.unwrap_or(f64::NAN))
    }
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get::<i64, _>(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get::<Option<i64>, _>(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                Ok(self.try_get::<i32, _>(col)? != 0)
            }
            fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error> {
                Ok(self.try_get::<Option<i32>, _>(col)?.map(|v| v != 0))
            }
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get::<String, _>(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get::<Option<String>, _>(col)
            }
            fn opt_num(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
                self.try_get::<Option<f64>, _>(col)
            }
        }
    };
}
impl_row_get!(SqliteRow);
impl_row_get!(PgRow);

/// A float for binding: non-finite values become NULL (SQLite cannot store NaN).
pub(crate) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

pub(crate) fn opt_finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

pub(crate) fn flag(b: bool) -> i32 {
    i32::from(b)
}

pub(crate) fn opt_flag(b: Option<bool>) -> Option<i32> {
    b.map(i32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://hured:s3cr:et@db.example.org:5432/hured"),
            "postgres://hured:***@db.example.org:5432/hured"
        );
        assert_eq!(
            redact_url("postgres://hured@db/x?sslmode=require&password=pw&x=1"),
            "postgres://hured@db/x?sslmode=require&password=***&x=1"
        );
        assert_eq!(
            redact_url("postgresql://u:p@h/db?options[search_path]=s"),
            "postgresql://u:***@h/db?options[search_path]=s"
        );
        assert_eq!(
            redact_url("sqlite://./data/hu-red.sqlite"),
            "sqlite://./data/hu-red.sqlite"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn text_enums_round_trip() {
        for s in SeriesState::ALL {
            assert_eq!(SeriesState::parse(s.as_str()), Some(*s));
        }
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(*s));
        }
        for s in Verdict::ALL {
            assert_eq!(Verdict::parse(s.as_str()), Some(*s));
        }
        // NONE is stored, NO BASELINE is what users read
        assert_eq!(Verdict::None.as_str(), "NONE");
        assert_eq!(Verdict::None.label(), "NO BASELINE");
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Error] {
            assert_eq!(v.label(), v.as_str());
        }
        for s in OutboxState::ALL {
            assert_eq!(OutboxState::parse(s.as_str()), Some(*s));
        }
        for r in PurgeReason::ALL {
            assert_eq!(PurgeReason::parse(r.as_str()), Some(*r));
        }
        assert!(PurgeReason::NoCtImage.unrecognised() && PurgeReason::NoPhantom.unrecognised());
        assert!(!PurgeReason::Phantom.unrecognised());
        assert_eq!(SeriesState::parse("Done"), None);
        assert_eq!(RunStatus::Ok.series_state(), SeriesState::Done);
        assert_eq!(RunStatus::Error.series_state(), SeriesState::Failed);
    }

    #[test]
    fn fingerprint_is_a_set_function() {
        let a = Fingerprint::of_uids(["1.2.3", "1.2.4", "1.2.5"]);
        let b = Fingerprint::of_uids(["1.2.5", "1.2.3", "1.2.4", "1.2.3"]);
        assert_eq!(a, b);
        assert_eq!(a.n_instances, 3);
        assert_eq!(a.digest.len(), 64);
        assert_ne!(a, Fingerprint::of_uids(["1.2.3", "1.2.4"]));
        // no ambiguity from concatenation
        assert_ne!(
            Fingerprint::of_uids(["1.2", "3.4"]),
            Fingerprint::of_uids(["1.23.4"])
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_the_password() {
        let e = Store::connect("mysql://root:hunter2@localhost/x")
            .await
            .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("unsupported scheme"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[tokio::test]
    async fn sqlite_folder_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let url = format!("sqlite://{}/sub/db.sqlite", file.display());
        let e = Store::connect(&url).await.unwrap_err();
        assert!(matches!(e, StoreError::CreateDir { .. }), "{e:?}");
        assert!(e.to_string().contains("a-file/sub"), "{e}");
    }
}
