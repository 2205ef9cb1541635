//! The store's writer: a thread with a connection of its own (rusqlite) that runs each batch of group commit
//! ([`Batch`]) in one transaction, its statements prepared once and bound per write. One hand-off per batch, and
//! nothing encoded for the way: sqlx would hand every statement to its worker thread, and a statement over many
//! rows would need them packed as JSON and unpacked again by SQLite.
//!
//! It takes its turn with the store's other writes (on the sqlx connection), so that they queue in this process
//! rather than meet SQLite's busy handler. A transaction that fails is rolled back; one whose commit fails, or
//! that cannot roll back, leaves its connection closed, and the next batch opens a new one: one disk error
//! does not wedge the writer.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::holder::{Failure, claim, save, submit};
use crate::store::StoreError;
use crate::store::group::{Failed, OwnedSave, Write, Written};

/// What a batch answers: each write's own result, or why nothing was committed.
pub(super) type Answer = Result<Vec<Result<Written, StoreError>>, Failed>;

enum Work {
    Batch(Arc<[Write]>, oneshot::Sender<Answer>),
    /// Closes the connection and ends the thread.
    Close(oneshot::Sender<()>),
}

/// The writer thread's queue.
#[derive(Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Work>,
}

/// Where the writer connects, and how.
struct Target {
    path: PathBuf,
    busy_timeout: Duration,
    name: String,
}

impl Target {
    /// A connection with the store's settings (WAL is the file's own, set when it was opened), to the file as
    /// it is: never one made anew in its place.
    fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.err(e))?;
        conn.busy_timeout(self.busy_timeout).map_err(|e| self.err(e))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(|e| self.err(e))?;
        Ok(conn)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database { store: self.name.clone(), message: e.to_string() }
    }

    /// The error of a statement that failed: the database's, naming the store, or the row's own.
    fn failed(&self, e: Failure) -> StoreError {
        match e {
            Failure::Sql(e) => self.err(e),
            Failure::Row(e) => e,
        }
    }
}

impl Writer {
    /// Connects to the file at `path` and starts the thread.
    pub(super) fn start(path: PathBuf, busy_timeout: Duration, name: String) -> Result<Writer, StoreError> {
        let target = Target { path, busy_timeout, name };
        let conn = target.connect()?;
        let (queue, work) = mpsc::channel();
        std::thread::Builder::new()
            .name("remedy-sqlite-writer".into())
            .spawn(move || serve(&target, Some(conn), &work))
            .map_err(|e| StoreError::Database { store: String::new(), message: format!("starting its writer: {e}") })?;
        Ok(Writer { queue })
    }

    /// Runs `writes` in one transaction on the thread.
    pub(super) async fn run(&self, writes: Arc<[Write]>, name: &str) -> Answer {
        let stopped = || {
            Failed::All(StoreError::Database { store: name.to_owned(), message: "the store's writer is closed".into() })
        };
        let (answer, answered) = oneshot::channel();
        self.queue.send(Work::Batch(writes, answer)).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Closes the writer's connection, after the batch under way; later writes fail.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Work::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The thread: runs batches until the store is dropped or closed.
fn serve(target: &Target, mut conn: Option<Connection>, work: &mpsc::Receiver<Work>) {
    for item in work {
        let (writes, answer) = match item {
            Work::Batch(writes, answer) => (writes, answer),
            Work::Close(done) => {
                drop(conn.take());
                let _ = done.send(());
                return;
            }
        };
        let mut open = match conn.take().map_or_else(|| target.connect(), Ok) {
            Ok(open) => open,
            Err(e) => {
                let _ = answer.send(Err(Failed::All(e)));
                continue;
            }
        };
        let (result, sound) = run(&mut open, &writes, target);
        if sound {
            conn = Some(open);
        }
        let _ = answer.send(result);
    }
}

/// Runs `writes` in one transaction: submits first (a job is saved only once its submit has answered), then
/// saves in their order, then claims (a job a save released due now is claimable at once). Also whether the
/// connection is fit for the next batch.
fn run(conn: &mut Connection, writes: &[Write], target: &Target) -> (Answer, bool) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return (Err(Failed::All(target.err(e))), false),
    };
    let mut results: Vec<Option<Result<Written, StoreError>>> = writes.iter().map(|_| None).collect();
    let order = |write: &Write| match write {
        Write::Submit { .. } => 0,
        Write::Save { .. } => 1,
        Write::Claim { .. } => 2,
    };
    let mut indexes: Vec<usize> = (0..writes.len()).collect();
    indexes.sort_by_key(|&i| order(&writes[i]));
    for i in indexes {
        let written = match &writes[i] {
            Write::Submit { new, claim, now } => submit(&tx, new, claim.as_ref(), *now).map(Ok),
            // A lost lease is the save's own answer, and writes nothing.
            Write::Save { lease, save: s, now } => {
                save(&tx, lease, s, *now).map(|saved| saved.ok_or_else(|| OwnedSave::lost(lease)))
            }
            Write::Claim { owner, now, lease, limit } => claim(&tx, owner, *now, *lease, *limit, &target.name).map(Ok),
        };
        match written {
            Ok(answer) => results[i] = Some(answer),
            Err(e) => {
                // The others run again without it.
                let sound = tx.rollback().is_ok();
                return (Err(Failed::At(i, target.failed(e))), sound);
            }
        }
    }
    match tx.commit() {
        Ok(()) => (Ok(results.into_iter().map(|r| r.expect("every write has its answer")).collect()), true),
        Err(e) => (Err(Failed::All(target.err(e))), false),
    }
}
