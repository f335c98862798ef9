//! Test databases shared by the suites that run on SQLite and on PostgreSQL (tests/it/store.rs,
//! tests/it/service.rs): the Postgres base URL from `HURED_TEST_POSTGRES_URL` (required in CI), and a
//! fresh schema per test, selected with `options[search_path]` in the URL.
#![allow(dead_code)] // each test module uses part of it

use std::sync::atomic::{AtomicU64, Ordering};

pub const PG_ENV: &str = "HURED_TEST_POSTGRES_URL";

#[derive(Clone)]
pub enum Kind {
    Sqlite,
    Postgres(String),
}

/// The Postgres base URL, or None (skip) outside CI; panics in CI when it is missing.
/// `suite` names the test file in the message.
pub fn postgres_kind(suite: &str) -> Option<Kind> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(Kind::Postgres(url)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{PG_ENV} is not set but CI=true: the Postgres half of {suite} must \
                     run in CI (start PostgreSQL and export {PG_ENV}=postgres://USER:PASSWORD@HOST/DB)"
                );
            }
            eprintln!("skipping the Postgres variant: {PG_ENV} is not set");
            None
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// The URL of `schema` on the server of `base`.
pub fn schema_url(base: &str, schema: &str) -> String {
    with_param(base, &format!("options[search_path]={schema}"))
}

/// Create a fresh schema (and drop leftovers of crashed runs older than an hour: schema names
/// carry their creation time).
pub async fn create_schema(base: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!(
        "hured_t_{now}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}: {e}"));
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'hured\\_t\\_%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    for s in old {
        let t: u64 = s
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if t + 3600 < now {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{s}\" CASCADE"
            )))
            .execute(&admin)
            .await;
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    schema
}

pub async fn drop_schema(base: &str, schema: &str) -> Result<(), sqlx::Error> {
    let admin = sqlx::PgPool::connect(base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await?;
    admin.close().await;
    Ok(())
}
