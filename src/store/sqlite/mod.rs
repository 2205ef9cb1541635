//! The SQLite store: jobs in one database file, for one process that survives restarts.
//!
//! One file in WAL mode (`synchronous = NORMAL`: a commit survives a crash of the process; a power loss may
//! take the last few), foreign keys on, every write in `BEGIN IMMEDIATE`: group commit's on the writer's
//! thread (its own connection), the others on one sqlx connection, taking turns; reads on a few others beside
//! them. The schema comes from embedded, versioned, forward-only migrations; a database that
//! a newer build migrated further is refused ([`StoreError::SchemaTooNew`]).
//!
//! Claims are one `UPDATE … RETURNING` per batch over the partial index of active jobs by `wake_at` (a held
//! job's `wake_at` is its lease's expiry, so an expired lease is simply due); renewals one statement per
//! batch; every write of a holder is fenced by `id`, `epoch` and `lease_owner`.

mod actions;
mod assets;
mod conn;
mod decode;
mod guards;
mod holder;
mod host;
mod migrate;
mod open;
#[cfg(test)]
mod plans;
mod read;
mod renew;
mod tally;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conn::Db;

use crate::store::group::{Group, Write, Written};
use crate::store::{Claimed, NewJob, Store, StoreError, StoreFuture, StoreOptions, Submitted, Timestamp, validate};

/// Job rows in a SQLite database file.
///
/// ```
/// use lightflow_remedy::store::{SqliteStore, Store, StoreOptions, NewJob, Submitted, Timestamp};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("jobs.db"), &StoreOptions::default()).await?;
/// let new = NewJob::new("a1", "{}", 1, "2001", Timestamp(0));
/// let Submitted::New(id) = store.submit(new, Timestamp(0)).await? else { unreachable!() };
/// let claimed = store.claim("replica-1", Timestamp(10), Duration::from_secs(30), 10).await?;
/// assert_eq!(claimed[0].lease.job, id);
/// store.close().await;
///
/// // The job is still there when the file is opened again.
/// let store = SqliteStore::open(dir.path().join("jobs.db"), &StoreOptions::default()).await?;
/// assert_eq!(store.job_of("a1").await?.map(|row| row.id), Some(id));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    db: Arc<Db>,
    /// Saves and submits, committed together by the store's writer.
    group: Group<Db>,
}

impl SqliteStore {
    /// Opens the database at `location`, creating it if missing, and brings its schema up to date.
    ///
    /// `location` is a path (`/var/lib/remedy/jobs.db`, `jobs.db`) or a `sqlite:` URL: `sqlite://jobs.db`
    /// (relative), `sqlite:///var/lib/remedy/jobs.db` (absolute), `sqlite::memory:` (in this process only: a
    /// temporary file of the store's own, deleted when the store is dropped).
    ///
    /// # Errors
    ///
    /// [`StoreError::BadUrl`] for a URL that names no file, [`StoreError::SchemaTooNew`] for a database a
    /// newer build has migrated, [`StoreError::Database`] (naming the file) when it cannot be opened or
    /// migrated.
    ///
    /// ```
    /// use lightflow_remedy::store::{SqliteStore, Store, StoreError, StoreOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let store = SqliteStore::open("sqlite::memory:", &StoreOptions::default()).await?;
    /// assert_eq!(store.describe(), "sqlite::memory:");
    ///
    /// let dir = tempfile::tempdir()?;
    /// let missing = dir.path().join("no-such-folder").join("jobs.db");
    /// let Err(StoreError::Database { store, .. }) = SqliteStore::open(&missing, &StoreOptions::default()).await
    /// else { unreachable!() };
    /// assert_eq!(store, format!("sqlite:{}", missing.display()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn open(location: impl AsRef<Path>, options: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let db = Arc::new(open::open(location.as_ref(), options).await?);
        let group = Group::new(db.clone(), options.group_commit_window, !options.hold_time, db.name.clone());
        Ok(SqliteStore { db, group })
    }

    /// The newest schema version this build knows.
    pub fn schema_version() -> i64 {
        migrate::known()
    }

    /// Closes the connections, after the work under way. Dropping the store closes them too, without
    /// waiting.
    pub async fn close(&self) {
        let _held = self.db.held();
        self.db.batches.close().await;
        self.db.writer.close().await;
        self.db.reader.close().await;
    }
}

impl Store for SqliteStore {
    crate::store::delegate::durable_methods!();

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Claimed>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let _held = self.db.held();
            match self.group.write(Write::Claim { owner: Arc::from(owner), now, lease, limit }).await? {
                Written::Claimed(claimed) => Ok(claimed),
                _ => unreachable!("a claim is answered as one"),
            }
        })
    }

    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        Box::pin(async move {
            validate::new_job(&new)?;
            let _held = self.db.held();
            match self.group.write(Write::Submit { new: (&new).into(), claim: None, now }).await? {
                Written::Submitted(submitted, _) => Ok(submitted),
                _ => unreachable!("a submit is answered as one"),
            }
        })
    }

    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        Box::pin(async move {
            validate::new_job(&new)?;
            let _held = self.db.held();
            let claim = Some((Arc::from(owner), lease));
            match self.group.write(Write::Submit { new: (&new).into(), claim, now }).await? {
                Written::Submitted(submitted, claimed) => Ok((submitted, claimed.map(|c| *c))),
                _ => unreachable!("a submit is answered as one"),
            }
        })
    }
}
