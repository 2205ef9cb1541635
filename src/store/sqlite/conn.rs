//! A SQLite store's connections and what every operation needs around them: one connection for writes
//! (SQLite lets one writer in at a time, and queueing in the pool is cheaper than its busy handler's sleeps),
//! a few for reads (WAL lets them read while a write is under way), the store's name for messages, the
//! clock hold, and `BEGIN IMMEDIATE`.

use std::fmt::Display;

use sqlx::Transaction;
use sqlx::sqlite::{Sqlite, SqlitePool};

use crate::store::{Held, StoreError, TimeHold};

/// The pools of one SQLite database.
#[derive(Debug)]
pub(super) struct Db {
    /// One connection: every write transaction goes through it, in turn.
    pub(super) writer: SqlitePool,
    /// Connections for reads (the writer's pool itself for an in-memory database, which is per connection).
    pub(super) reader: SqlitePool,
    /// `sqlite:PATH`, for messages.
    pub(super) name: String,
    /// Held for the duration of each operation when the store was opened with `hold_time`.
    pub(super) hold: Option<TimeHold>,
}

impl Db {
    /// Holds tokio's paused clock for the operation about to start, if the store was asked to.
    pub(super) fn held(&self) -> Option<Held> {
        self.hold.as_ref().map(TimeHold::hold)
    }

    /// The database's error, naming this store.
    pub(super) fn err(&self, e: impl Display) -> StoreError {
        StoreError::Database { store: self.name.clone(), message: e.to_string() }
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock at once: a deferred transaction that read
    /// first and wrote later could fail to upgrade its lock (`SQLITE_BUSY`) when another process wrote in
    /// between, without waiting out the busy timeout.
    pub(super) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(|e| self.err(e))
    }

    /// A read transaction: one snapshot for the statements of one answer.
    pub(super) async fn read(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.reader.begin().await.map_err(|e| self.err(e))
    }

    /// Commits `tx`.
    pub(super) async fn commit(&self, tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        tx.commit().await.map_err(|e| self.err(e))
    }
}
