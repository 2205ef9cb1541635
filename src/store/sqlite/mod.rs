//! The SQLite store: jobs in one database file, for one process that survives restarts.
//!
//! One file in WAL mode (`synchronous = NORMAL`: a commit survives a crash of the process; a power loss may
//! take the last few), foreign keys on, every write in `BEGIN IMMEDIATE` on one write connection, reads on a
//! few others beside it. The schema comes from embedded, versioned, forward-only migrations; a database that
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
mod tally;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conn::Db;

use crate::store::group::{Group, Write, Written};
use crate::store::{ActionRow, AssetRecord, LineageRow, NewAction, TallyRow};
use crate::store::{
    CallRow, CancelAnswer, Claimed, GuardRow, JobId, JobRow, Lease, ListFilter, NewJob, Renewed, ReportAnswer,
    ReportTarget, Save, Saved, Stats, Store, StoreError, StoreFuture, StoreOptions, Submitted, Timestamp, validate,
};

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
    /// (relative), `sqlite:///var/lib/remedy/jobs.db` (absolute), `sqlite::memory:` (in this process only).
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
        self.db.writer.close().await;
        self.db.reader.close().await;
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.db.name.clone()
    }

    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        Box::pin(async move {
            validate::new_job(&new)?;
            let _held = self.db.held();
            match self.group.write(Write::Submit { new: (&new).into(), claim: None, now }).await? {
                Written::Submitted(submitted, _) => Ok(submitted),
                Written::Saved(_) => unreachable!("a submit is answered as one"),
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
                Written::Submitted(submitted, claimed) => Ok((submitted, claimed)),
                Written::Saved(_) => unreachable!("a submit is answered as one"),
            }
        })
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Claimed>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.claim(owner, now, lease, limit).await
        })
    }

    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.renew(leases, now, lease).await
        })
    }

    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved> {
        Box::pin(async move {
            let _held = self.db.held();
            match self.group.write(Write::Save { lease: lease.clone(), save: (&save).into(), now }).await? {
                Written::Saved(saved) => Ok(saved),
                Written::Submitted(..) => unreachable!("a save is answered as one"),
            }
        })
    }

    fn report<'a>(
        &'a self,
        target: ReportTarget<'a>,
        result: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ReportAnswer> {
        Box::pin(async move {
            validate::report(target, result)?;
            let _held = self.db.held();
            self.db.report(target, result, now).await
        })
    }

    fn cancel<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, CancelAnswer> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            let _held = self.db.held();
            self.db.cancel(asset_id, now).await
        })
    }

    fn retry_now<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            let _held = self.db.held();
            self.db.retry_now(asset_id, now).await
        })
    }

    fn job(&self, id: JobId) -> StoreFuture<'_, Option<JobRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.job(id).await
        })
    }

    fn ended<'a>(&'a self, ids: &'a [JobId]) -> StoreFuture<'a, Vec<JobRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.ended(ids).await
        })
    }

    fn job_of<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Option<JobRow>> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            let _held = self.db.held();
            self.db.job_of(asset_id).await
        })
    }

    fn list<'a>(&'a self, filter: &'a ListFilter) -> StoreFuture<'a, Vec<JobRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.list(filter).await
        })
    }

    fn calls(&self, id: JobId) -> StoreFuture<'_, Vec<CallRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.calls(id).await
        })
    }

    fn stats(&self, now: Timestamp) -> StoreFuture<'_, Stats> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.stats(now).await
        })
    }

    fn next_wake(&self) -> StoreFuture<'_, Option<Timestamp>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.next_wake().await
        })
    }

    fn prune(&self, before: Timestamp) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.prune(before).await
        })
    }

    fn guard<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<GuardRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.guard(name).await
        })
    }

    fn set_guard<'a>(&'a self, name: &'a str, expected: Option<u64>, value: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.set_guard(name, expected, value).await
        })
    }

    fn put_asset<'a>(
        &'a self,
        asset_id: &'a str,
        alias: Option<&'a str>,
        parameters: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate::asset(asset_id, alias, parameters)?;
            let _held = self.db.held();
            self.db.put_asset(asset_id, alias, parameters, now).await
        })
    }

    fn asset<'a>(&'a self, id_or_alias: &'a str) -> StoreFuture<'a, Option<AssetRecord>> {
        Box::pin(async move {
            validate::id("asset id", id_or_alias)?;
            let _held = self.db.held();
            self.db.asset(id_or_alias).await
        })
    }

    fn add_lineage<'a>(
        &'a self,
        asset_id: &'a str,
        reference: &'a str,
        attempt_key: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            validate::id("reference", reference)?;
            validate::id("attempt key", attempt_key)?;
            let _held = self.db.held();
            self.db.add_lineage(asset_id, reference, attempt_key, now).await
        })
    }

    fn open_assets(&self, created_before: Timestamp, limit: usize) -> StoreFuture<'_, Vec<AssetRecord>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.open_assets(created_before, limit).await
        })
    }

    fn settle_asset<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            let _held = self.db.held();
            self.db.settle_asset(asset_id).await
        })
    }

    fn lineage<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Vec<LineageRow>> {
        Box::pin(async move {
            validate::id("asset id", asset_id)?;
            let _held = self.db.held();
            self.db.lineage(asset_id).await
        })
    }

    fn log_action<'a>(&'a self, action: NewAction<'a>, now: Timestamp) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate::action(&action)?;
            let _held = self.db.held();
            self.db.log_action(action, now).await
        })
    }

    fn actions<'a>(&'a self, asset_id: Option<&'a str>, limit: usize) -> StoreFuture<'a, Vec<ActionRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.actions(asset_id, limit).await
        })
    }

    fn tally(&self, since: Timestamp, bucket: Duration) -> StoreFuture<'_, Vec<TallyRow>> {
        Box::pin(async move {
            let _held = self.db.held();
            self.db.tally(since, bucket).await
        })
    }
}
