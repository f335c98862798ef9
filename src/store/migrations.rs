//! The embedded migrations of each dialect (`migrations/sqlite/`, `migrations/postgres/`).
//!
//! Listed by hand (the `sqlx::migrate!` macro needs sqlx's `macros` feature and its build-time
//! machinery); a unit test checks that this list and the folders agree. To change the schema,
//! add `NNNN_description.sql` to BOTH folders and a line to both lists below. Never edit or
//! delete a released migration: its checksum is recorded in `_sqlx_migrations`.

use super::Dialect;
use sqlx::migrate::{MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::borrow::Cow;

/// (version, file name, SQL)
pub(crate) type Embedded = (i64, &'static str, &'static str);

pub(crate) const SQLITE: &[Embedded] = &[
    (
        1,
        "0001_initial.sql",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "0002_baselines_reports.sql",
        include_str!("../../migrations/sqlite/0002_baselines_reports.sql"),
    ),
    (
        3,
        "0003_retention.sql",
        include_str!("../../migrations/sqlite/0003_retention.sql"),
    ),
    (
        4,
        "0004_web.sql",
        include_str!("../../migrations/sqlite/0004_web.sql"),
    ),
];

pub(crate) const POSTGRES: &[Embedded] = &[
    (
        1,
        "0001_initial.sql",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "0002_baselines_reports.sql",
        include_str!("../../migrations/postgres/0002_baselines_reports.sql"),
    ),
    (
        3,
        "0003_retention.sql",
        include_str!("../../migrations/postgres/0003_retention.sql"),
    ),
    (
        4,
        "0004_web.sql",
        include_str!("../../migrations/postgres/0004_web.sql"),
    ),
];

pub(crate) fn embedded(dialect: Dialect) -> &'static [Embedded] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

/// The migrator of a dialect (descriptions as sqlx derives them from the file names).
pub(crate) fn migrator(dialect: Dialect) -> Migrator {
    let migrations = embedded(dialect)
        .iter()
        .map(|&(version, file, sql)| {
            let description = file
                .trim_end_matches(".sql")
                .split_once('_')
                .map(|(_, d)| d.replace('_', " "))
                .unwrap_or_default();
            sqlx::migrate::Migration::new(
                version,
                Cow::Owned(description),
                MigrationType::Simple,
                AssertSqlSafe(sql).into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn files(dir: &str) -> BTreeSet<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect()
    }

    #[test]
    fn embedded_lists_match_the_folders_and_each_other() {
        for (dialect, dir) in [(Dialect::Sqlite, "sqlite"), (Dialect::Postgres, "postgres")] {
            let listed: BTreeSet<String> =
                embedded(dialect).iter().map(|m| m.1.to_string()).collect();
            assert_eq!(
                listed,
                files(dir),
                "migrations/{dir} vs the list in migrations.rs"
            );
            for (version, file, _) in embedded(dialect) {
                let prefix: i64 = file.split('_').next().unwrap().parse().unwrap();
                assert_eq!(prefix, *version, "{file}");
            }
        }
        let versions = |d| embedded(d).iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(Dialect::Sqlite), versions(Dialect::Postgres));
        let m = migrator(Dialect::Sqlite);
        assert_eq!(m.iter().next().unwrap().description, "initial");
    }
}
