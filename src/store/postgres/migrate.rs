//! The schema, as embedded, versioned, forward-only migrations (`migrations/postgres/`), applied by whichever
//! replica opens the store first while the others wait (an advisory lock), and the refusal of a database that a newer build has
//! migrated past what this one knows.

use std::borrow::Cow;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection, SqlSafeStr};

use crate::store::StoreError;

/// Every migration this build has, in order. A new one is appended; an applied one is never edited (the
/// migrator checks their checksums).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "jobs", include_str!("../../../migrations/postgres/0001_jobs.sql")),
    (2, "guards", include_str!("../../../migrations/postgres/0002_guards.sql")),
    (3, "attempts and dedupe", include_str!("../../../migrations/postgres/0003_attempts_and_dedupe.sql")),
    (4, "assets", include_str!("../../../migrations/postgres/0004_assets.sql")),
    (5, "actions", include_str!("../../../migrations/postgres/0005_actions.sql")),
];

/// The key space of the advisory lock taken around migrating (the two-key form), per schema: replicas that
/// start at once on one schema take turns, and those on other schemas of the database do not wait.
const MIGRATION_LOCKS: i32 = 0x4c46_4d47;

/// The schema the lock is for: the one named, else the connection's first.
macro_rules! schema_key {
    () => {
        "hashtext(COALESCE($2, current_schema(), ''))"
    };
}

/// Held by a connection of its own for the whole migration (released with it if the replica dies).
const LOCK: &str = concat!("SELECT pg_advisory_lock($1, ", schema_key!(), ")");

const UNLOCK: &str = concat!("SELECT pg_advisory_unlock($1, ", schema_key!(), ")");

/// Where sqlx records the migrations applied (in the schema the connection's `search_path` names first).
const TRACKED: &str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";

const NEWEST_APPLIED: &str = "SELECT MAX(version) FROM _sqlx_migrations";

/// The newest schema version this build knows.
pub(super) fn known() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Brings the schema up to this build's (creating `schema` first if one is named and it is missing), after
/// checking that it is not newer, holding the advisory lock on `lock`, a connection of its own, meanwhile
/// (and closing it). Each
/// migration is a transaction of its own (PostgreSQL's DDL is transactional: one that fails leaves nothing
/// behind, and the next replica to open tries it again).
pub(super) async fn migrate(
    mut lock: PgConnection,
    pool: &PgPool,
    schema: Option<&str>,
    store: &str,
) -> Result<(), StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::Database {
        store: store.to_owned(),
        message: format!("migrating the schema: {e}"),
    };
    let migrated = locked(&mut lock, pool, schema).await;
    let unlocked = sqlx::query(UNLOCK).bind(MIGRATION_LOCKS).bind(schema).execute(&mut lock).await;
    // Closing the connection lets the lock go in any case.
    let _ = lock.close().await;
    match migrated {
        Err(Failed::TooNew(found)) => Err(StoreError::SchemaTooNew { found, known: known() }),
        Err(Failed::Database(e)) => Err(err(&e)),
        Err(Failed::Migrating(e)) => Err(err(&e)),
        Ok(()) => unlocked.map(|_| ()).map_err(|e| err(&e)),
    }
}

/// Why [`locked`] stopped.
enum Failed {
    TooNew(i64),
    Database(sqlx::Error),
    Migrating(MigrateError),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Failed::Database(e)
    }
}

async fn locked(lock: &mut PgConnection, pool: &PgPool, schema: Option<&str>) -> Result<(), Failed> {
    sqlx::query(LOCK).bind(MIGRATION_LOCKS).bind(schema).execute(&mut *lock).await?;
    if let Some(schema) = schema {
        // `schema` is a checked identifier (see `open`), quoted besides.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::query(AssertSqlSafe(create)).execute(&mut *lock).await?;
    }
    let tracked: bool = sqlx::query_scalar(TRACKED).fetch_one(&mut *lock).await?;
    if tracked {
        let found: Option<i64> = sqlx::query_scalar(NEWEST_APPLIED).fetch_one(&mut *lock).await?;
        if let Some(found) = found.filter(|v| *v > known()) {
            return Err(Failed::TooNew(found));
        }
    }
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // The advisory lock above is the migrator's: its own is per database, not per schema.
    migrator.set_locking(false);
    migrator.run(pool).await.map_err(Failed::Migrating)
}
