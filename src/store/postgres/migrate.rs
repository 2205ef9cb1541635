//! The schema, as embedded, versioned, forward-only migrations (`migrations/postgres/`), applied by whichever
//! replica opens the store first while the others wait, and the refusal of a database that a newer build has
//! migrated past what this one knows.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::store::StoreError;

/// Every migration this build has, in order. A new one is appended; an applied one is never edited (the
/// migrator checks their checksums).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/postgres/0001_jobs.sql")),
    (2, "guards", include_str!("../../../migrations/postgres/0002_guards.sql")),
];

/// The key space of the advisory lock taken around migrating (the two-key form), per schema: replicas that
/// start at once on one schema take turns, and those on other schemas of the database do not wait.
const MIGRATION_LOCKS: i32 = 0x4c46_4d47;

/// Held until the transaction ends, so that a replica that dies while migrating lets the next one in.
const LOCK: &str = "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE($2, current_schema(), '')))";

/// Where sqlx records the migrations applied (in the schema the connection's `search_path` names first).
const TRACKED: &str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";

const NEWEST_APPLIED: &str = "SELECT MAX(version) FROM _sqlx_migrations";

/// The newest schema version this build knows.
pub(super) fn known() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Brings the schema up to this build's, in one transaction under the advisory lock (creating `schema` first
/// if one is named and it is missing), after checking that it is not newer. PostgreSQL's DDL is
/// transactional: a migration that fails leaves nothing behind.
pub(super) async fn migrate(pool: &PgPool, schema: Option<&str>, store: &str) -> Result<(), StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::Database {
        store: store.to_owned(),
        message: format!("migrating the schema: {e}"),
    };
    let mut tx = pool.begin().await.map_err(|e| err(&e))?;
    sqlx::query(LOCK).bind(MIGRATION_LOCKS).bind(schema).execute(&mut *tx).await.map_err(|e| err(&e))?;
    if let Some(schema) = schema {
        // `schema` is a checked identifier (see `open`), quoted besides.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::query(AssertSqlSafe(create)).execute(&mut *tx).await.map_err(|e| err(&e))?;
    }
    let tracked: bool = sqlx::query_scalar(TRACKED).fetch_one(&mut *tx).await.map_err(|e| err(&e))?;
    if tracked {
        let found: Option<i64> = sqlx::query_scalar(NEWEST_APPLIED).fetch_one(&mut *tx).await.map_err(|e| err(&e))?;
        if let Some(found) = found.filter(|v| *v > known()) {
            return Err(StoreError::SchemaTooNew { found, known: known() });
        }
    }
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // The advisory lock above is the migrator's: its own is per database and session-wide.
    migrator.set_locking(false);
    // Inside this transaction, each migration's own transaction is a savepoint.
    migrator.run(&mut *tx).await.map_err(|e| err(&e))?;
    tx.commit().await.map_err(|e| err(&e))
}
