//! A SQLite store's connections and what every operation needs around them: the writer's thread for the
//! writes of group commit, one sqlx connection for the other writes (SQLite lets one writer in at a time: the
//! two take turns in this process, which is cheaper than its busy handler's sleeps), a few for reads (WAL lets
//! them read while a write is under way), the store's name for messages, the clock hold, and write
//! transactions that cannot wedge the writer.

use std::fmt::Display;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::Transaction;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::writer::Writer;
use crate::store::group::{Batch, BatchFuture, Failed, Write as Queued};
use crate::store::{Held, StoreError, TimeHold};

/// The connections of one SQLite database.
#[derive(Debug)]
pub(super) struct Db {
    /// One connection for the writes that are not group commit's.
    pub(super) writer: SqlitePool,
    /// The writes of group commit: submits, saves, claims.
    pub(super) batches: Writer,
    /// Whose turn it is to write, of the two.
    pub(super) turns: Arc<Mutex<()>>,
    /// Connections for reads.
    pub(super) reader: SqlitePool,
    /// `sqlite:PATH`, for messages.
    pub(super) name: String,
    /// Held for the duration of each operation when the store was opened with `hold_time`.
    pub(super) hold: Option<TimeHold>,
    /// The file and its identity when opened: a write checks that it is still the same file, so that a file
    /// deleted or replaced under a running store is seen, not written past.
    pub(super) file: (PathBuf, FileId),
    /// Whether the file is the store's own, deleted when it is dropped (`sqlite::memory:`).
    pub(super) temporary: bool,
    /// Whether the writer may be inside a transaction nobody finished (a write that failed, or whose future was
    /// dropped): the next write rolls it back first.
    pub(super) unfinished: AtomicBool,
    /// Whether the file was found gone: nothing more is written.
    pub(super) gone: AtomicBool,
    /// Held reports dropped to keep within the cap, since the store was opened.
    pub(super) held_dropped: AtomicU64,
    /// Write transactions committed since the store was opened.
    pub(super) commits: AtomicU64,
    /// The most held reports, and their life in milliseconds.
    pub(super) max_held: u64,
    pub(super) held_life: std::time::Duration,
}

/// What makes a file the same file: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId(u64, u64);

impl FileId {
    /// The identity of the file at `path`, if it is there.
    pub(super) fn of(path: &std::path::Path) -> Option<FileId> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId(meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Some(FileId(0, 0))
        }
    }
}

/// A write transaction on the writer's connection, begun with a plain `BEGIN IMMEDIATE`: finished by
/// [`Db::commit`] or [`Write::rollback`]. One dropped unfinished (a statement failed, or the future was
/// dropped) must not keep the write lock from other processes: its connection is closed, which rolls it back.
pub(super) struct Write {
    conn: Option<PoolConnection<Sqlite>>,
    /// This process's turn to write, held to the end.
    _turn: OwnedMutexGuard<()>,
}

impl Deref for Write {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_deref().expect("a write's connection is there until it ends")
    }
}

impl DerefMut for Write {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_deref_mut().expect("a write's connection is there until it ends")
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Write {
    /// Gives the connection back to the pool: the transaction ended.
    fn finish(mut self) {
        self.conn.take();
    }
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
    ///
    /// The transaction is begun and ended with plain statements, not sqlx's transaction, whose bookkeeping
    /// stays "inside a transaction" after a failed commit (a disk error) and refuses every later one: here a
    /// write that failed, or was dropped half-way, leaves a mark, and the next write rolls back whatever is
    /// left before it begins. A connection that cannot even roll back is closed; the pool opens a new one.
    pub(super) async fn write(&self) -> Result<Write, StoreError> {
        self.check_file()?;
        let turn = self.turn().await;
        let mut conn = self.writer.acquire().await.map_err(|e| self.err(e))?;
        if self.unfinished.load(Ordering::SeqCst) {
            // "no transaction is active" when SQLite already rolled it back (as it does after some I/O errors).
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        }
        self.unfinished.store(true, Ordering::SeqCst);
        let mut tx = Write { conn: Some(conn), _turn: turn };
        match sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *tx).await {
            Ok(_) => Ok(tx),
            Err(e) => Err(self.lose(tx, e)),
        }
    }

    /// A read transaction: one snapshot for the statements of one answer.
    pub(super) async fn read(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.reader.begin().await.map_err(|e| self.err(e))
    }

    /// Commits `tx`. A commit that fails is rolled back (and the connection closed if that fails too).
    pub(super) async fn commit(&self, mut tx: Write) -> Result<(), StoreError> {
        match sqlx::raw_sql("COMMIT").execute(&mut *tx).await {
            Ok(_) => {
                self.unfinished.store(false, Ordering::SeqCst);
                self.commits.fetch_add(1, Ordering::Relaxed);
                tx.finish();
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await;
                Err(self.lose(tx, e))
            }
        }
    }

    /// The error `e` of a write on `tx`'s connection. The connection is closed as `tx` drops, so that the next
    /// write starts on a fresh one.
    fn lose(&self, tx: Write, e: impl Display) -> StoreError {
        // SQLite rolls back what the closed connection had not committed.
        self.unfinished.store(false, Ordering::SeqCst);
        drop(tx);
        self.err(e)
    }

    /// This process's turn to write (the writer's thread and the sqlx connection take turns).
    pub(super) async fn turn(&self) -> OwnedMutexGuard<()> {
        self.turns.clone().lock_owned().await
    }

    /// Refuses to write to a file that is no longer the one opened (deleted, or replaced by another).
    pub(super) fn check_file(&self) -> Result<(), StoreError> {
        let (path, id) = &self.file;
        let gone = |reason: String| StoreError::Gone { store: self.name.clone(), reason };
        if self.gone.load(Ordering::SeqCst) {
            return Err(gone(format!("its file {} was deleted or replaced", path.display())));
        }
        let reason = match FileId::of(path) {
            Some(now) if now == *id => return Ok(()),
            Some(_) => format!("its file {} was replaced by another", path.display()),
            None => format!("its file {} was deleted", path.display()),
        };
        self.gone.store(true, Ordering::SeqCst);
        tracing::error!(store = %self.name, "{reason}: the store writes no more");
        Err(gone(reason))
    }
}

/// Group commit's batches go to the writer's thread, in this process's turn.
impl Batch for Db {
    fn run<'a>(&'a self, writes: &'a Arc<[Queued]>) -> BatchFuture<'a> {
        Box::pin(async move {
            self.check_file().map_err(Failed::All)?;
            let _turn = self.turn().await;
            let answer = self.batches.run(writes.clone(), &self.name).await;
            if answer.is_ok() {
                self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            answer
        })
    }
}

impl Drop for Db {
    /// The store's own temporary file goes with it.
    fn drop(&mut self) {
        if self.temporary {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.file.0.display()));
            }
        }
    }
}
