//! A PostgreSQL store's pool and what every operation needs around it: the store's name for messages, the
//! clock hold, whether wake hints are sent, and transactions.

use std::fmt::Display;

use sqlx::Transaction;
use sqlx::postgres::{PgPool, Postgres};

use crate::store::{Held, StoreError, TimeHold};

/// The pool of one PostgreSQL database (and schema).
#[derive(Debug)]
pub(super) struct Db {
    /// Every operation takes a connection from it; a statement that is a transaction of its own runs without
    /// `BEGIN` and `COMMIT`.
    pub(super) pool: PgPool,
    /// A small pool of its own for lease renewals: a renewal never queues behind the jobs' writes for a
    /// connection, so that a busy replica keeps its leases.
    pub(super) renewals: PgPool,
    /// `postgres://user@host:port/database` (and `?schema=`), without a password, for messages.
    pub(super) name: String,
    /// Held for the duration of each operation when the store was opened with `hold_time`.
    pub(super) hold: Option<TimeHold>,
    /// The channel that writes making a job due send a wake hint on (bound to the statements that send it);
    /// `None`: hints off.
    pub(super) hints: Option<String>,
    /// Held reports dropped to keep within the cap, since the store was opened.
    pub(super) held_dropped: std::sync::atomic::AtomicU64,
    /// The most held reports, and their life in milliseconds.
    pub(super) max_held: u64,
    pub(super) held_life: std::time::Duration,
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

    /// A transaction (read committed: every statement sees what committed before it began).
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| self.err(e))
    }

    /// Commits `tx`.
    pub(super) async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
        tx.commit().await.map_err(|e| self.err(e))
    }
}

/// A task of the store's (the wake hints' listener, the clock's reader), ended when the store is dropped.
#[derive(Debug)]
pub(super) struct Task(tokio::task::JoinHandle<()>);

impl Task {
    pub(super) fn spawn(work: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(work))
    }

    /// Ends the task now.
    pub(super) fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}
