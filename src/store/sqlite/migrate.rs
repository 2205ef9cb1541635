//! The schema, as embedded, versioned, forward-only migrations (`migrations/sqlite/`), and the refusal of a
//! database that a newer build has migrated past what this one knows.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqlitePool;

use crate::store::StoreError;

/// Every migration this build has, in order. A new one is appended; an applied one is never edited (the
/// migrator checks their checksums).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/sqlite/0001_jobs.sql")),
    (2, "guards", include_str!("../../../migrations/sqlite/0002_guards.sql")),
    (3, "attempts and dedupe", include_str!("../../../migrations/sqlite/0003_attempts_and_dedupe.sql")),
    (4, "assets", include_str!("../../../migrations/sqlite/0004_assets.sql")),
    (5, "actions", include_str!("../../../migrations/sqlite/0005_actions.sql")),
];

/// Where sqlx records the migrations applied.
const APPLIED: &str = "_sqlx_migrations";

/// The newest schema version this build knows.
pub(super) fn known() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Brings the database's schema up to this build's, in one `BEGIN IMMEDIATE` transaction (so that two
/// processes opening a new file at once take turns), after checking that it is not newer.
pub(super) async fn migrate(pool: &SqlitePool, store: &str) -> Result<(), StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::Database {
        store: store.to_owned(),
        message: format!("migrating the schema: {e}"),
    };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| err(&e))?;
    let tracked: bool = sqlx::query_scalar("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .bind(APPLIED)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| err(&e))?;
    if tracked {
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| err(&e))?;
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
    // Inside this transaction, each migration's own transaction is a savepoint.
    Migrator::with_migrations(migrations).run(&mut *tx).await.map_err(|e| err(&e))?;
    tx.commit().await.map_err(|e| err(&e))
}
