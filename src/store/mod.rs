//! The store: where jobs live between steps, so that remediation survives a restart and replicas share it.
//!
//! A store keeps job **rows**: the columns it needs to find, lease and fence jobs (the asset, where the job
//! stands, when it is next due, who holds it and with which epoch, the current attempt's reference) and an
//! opaque, versioned payload that the engine writes and reads (the job, its failure, its history). It knows
//! nothing of hooks or policies: it keeps, leases and fences; the engine decides.
//!
//! - One active job per asset: a second submit joins it.
//! - Jobs at rest are claimed when they are due, in batches, each with a lease (an owner, an expiry, and an
//!   epoch that grows at every claim). Every write of a holder is fenced by its epoch: once a lease is gone,
//!   its holder can no longer change the job.
//! - A lease that expires makes the job due again: another owner takes it over. An attempt that was started
//!   (the ledger has its call, unanswered) is reconciled before it is repeated, with the same key.
//! - Reports of attempts that finish later are kept on the job's row until the engine takes them; a report
//!   that arrives before its attempt's reference is known is held for a while.
//!
//! Implementations: [`MemoryStore`] (rows in this process: nothing survives it), and behind cargo features
//! the SQLite store (`sqlite`, on by default: one file, one process) and the PostgreSQL store (`postgres`:
//! replicas, on the database's clock). The engine's default keeps jobs as tasks in memory and needs no store at all.

mod actions;
mod assets;
mod category;
mod clock;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod delegate;
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group;
pub(crate) mod judge;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod list_sql;
mod memory;
mod options;
#[cfg(feature = "postgres")]
mod postgres;
mod redact;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tally;
mod url;
pub(crate) mod validate;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use actions::{ActionRow, NewAction};
pub use assets::{AssetRecord, LineageRow, MAX_PARAMETERS_BYTES};
pub use clock::{Clock, Held, SystemClock, TimeHold, Timestamp, TokioClock};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use options::StoreOptions;
#[cfg(feature = "postgres")]
pub use postgres::{DatabaseClock, PgStore};
pub use rows::{
    CallRow, CancelAnswer, Claimed, GuardRow, JobId, JobRow, Lease, LedgerWrite, ListFilter, NewJob, Phase, Renewed,
    ReportAnswer, ReportTarget, Save, Saved, Stats, Submitted,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use tally::{RUNNING, TallyRow};
pub use url::open_url;
pub use validate::{MAX_ID_BYTES, MAX_REPORT_BYTES};

/// What a store method returns: a boxed future, so that stores can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store of job rows. See the [module](self) for what it guarantees.
///
/// Every method takes `now` from the engine's [`Clock`], so that due times and leases are on one clock.
pub trait Store: Send + Sync + 'static {
    /// Where the store is, for messages (`sqlite:/var/lib/remedy/jobs.db`).
    fn describe(&self) -> String;

    /// Inserts a job for `new.asset_id`, due at `new.wake_at`, unless the asset has an active job: then the
    /// submit joins it.
    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted>;

    /// Submits a job due now as [`Store::submit`] does, and claims it for `owner` in the same write (a lease
    /// until `now + lease`, the job's first epoch), as the replica that takes a report and has room for it does:
    /// it starts on the job at once, without a claim of its own. A job that joins the asset's active job
    /// claims nothing (that job stays where it is), nor does one due later than `now`.
    ///
    /// The default submits, and leaves the job to be claimed.
    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        let _ = (owner, lease);
        Box::pin(async move { Ok((self.submit(new, now).await?, None)) })
    }

    /// Claims up to `limit` jobs that are due (`wake_at <= now`: at rest and due, or whose lease has expired),
    /// earliest first, each with a lease for `owner` until `now + lease` and a new epoch.
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Claimed>>;

    /// Renews `leases` until `now + lease`. Says which are lost (taken over, or the job ended) and which of
    /// the held jobs were asked to cancel.
    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed>;

    /// Writes a held job back, fenced by its lease: [`StoreError::LeaseLost`] if the lease is no longer its
    /// holder's. With `save.release` the job goes to rest (due at `save.wake_at`); without, the holder keeps it.
    /// A save to [`Phase::Awaiting`] picks up a report held for its reference.
    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved>;

    /// Hands an attempt's result (`result`, the engine's JSON) to the job it is for; see [`ReportAnswer`].
    fn report<'a>(&'a self, target: ReportTarget<'a>, result: &'a str, now: Timestamp)
    -> StoreFuture<'a, ReportAnswer>;

    /// Cancels the active job of `asset_id`: at once if nobody holds it, else by asking its holder.
    fn cancel<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, CancelAnswer>;

    /// Makes the active job of `asset_id` due now; `false` if it has none.
    fn retry_now<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, bool>;

    /// A job by id.
    fn job(&self, id: JobId) -> StoreFuture<'_, Option<JobRow>>;

    /// The rows of the jobs among `ids` that have finished, in order of id, read at once (the engine looks up
    /// whether the jobs it watches ended at another replica): jobs that are active, unknown (pruned), or whose
    /// row cannot be read are left out.
    ///
    /// The default reads them one at a time with [`Store::job`]; the SQLite and PostgreSQL stores in one
    /// statement.
    ///
    /// ```
    /// use lightflow_remedy::store::{MemoryStore, NewJob, Store, Submitted, Timestamp};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// let Submitted::New(a) = store.submit(NewJob::new("a1", "{}", 1, "2001", Timestamp(0)), Timestamp(0)).await?
    /// else { unreachable!() };
    /// let Submitted::New(b) = store.submit(NewJob::new("a2", "{}", 1, "2001", Timestamp(0)), Timestamp(0)).await?
    /// else { unreachable!() };
    /// store.cancel("a2", Timestamp(5)).await?;
    /// let ended = store.ended(&[a, b]).await?;
    /// assert_eq!(ended.iter().map(|row| (row.id, row.outcome.as_deref())).collect::<Vec<_>>(), [(b, Some("cancelled"))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn ended<'a>(&'a self, ids: &'a [JobId]) -> StoreFuture<'a, Vec<JobRow>> {
        Box::pin(async move {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            let mut ended = Vec::new();
            for id in ids {
                if let Ok(Some(row)) = self.job(id).await
                    && row.phase == Phase::Finished
                {
                    ended.push(row);
                }
            }
            Ok(ended)
        })
    }

    /// The newest job of `asset_id` (the active one if any).
    fn job_of<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Option<JobRow>>;

    /// Jobs by filter, newest first.
    fn list<'a>(&'a self, filter: &'a ListFilter) -> StoreFuture<'a, Vec<JobRow>>;

    /// The ledger of a job's side-effecting calls, in order.
    fn calls(&self, id: JobId) -> StoreFuture<'_, Vec<CallRow>>;

    /// Counts by phase and outcome.
    fn stats(&self, now: Timestamp) -> StoreFuture<'_, Stats>;

    /// When the earliest active job is next due, if any: a job at rest at its `wake_at`, a held one when its
    /// lease expires (it can be taken over then).
    fn next_wake(&self) -> StoreFuture<'_, Option<Timestamp>>;

    /// Deletes jobs that finished before `before`, with their ledgers, held reports older than it, and assets
    /// recorded before it whose end is known and that have no active job, with their lineage.
    fn prune(&self, before: Timestamp) -> StoreFuture<'_, u64>;

    /// The state of a guard the replicas share (the retry budget, a downstream's circuit breaker), by name,
    /// with the version it was written at; `None` before it is first written.
    fn guard<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<GuardRow>>;

    /// Writes a shared guard's state (the engine's JSON) if it is still at version `expected` (`None`: not
    /// written yet), as version `expected + 1`; `false` if another replica wrote it first (read it again and
    /// retry).
    fn set_guard<'a>(&'a self, name: &'a str, expected: Option<u64>, value: &'a str) -> StoreFuture<'a, bool>;

    /// A hint that jobs may have become due elsewhere (another replica's submit, a report): the claimer looks
    /// at once when it is notified, and otherwise polls. `None`: no hints, polling only.
    fn wake_hints(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Records the asset `asset_id` (also found by `alias`) with the `parameters` it was created with; a second
    /// record of one asset replaces its parameters.
    ///
    /// The default says the store keeps no assets ([`StoreError::Unsupported`]).
    fn put_asset<'a>(
        &'a self,
        asset_id: &'a str,
        alias: Option<&'a str>,
        parameters: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let _ = (asset_id, alias, parameters, now);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// The asset recorded with this id, or this alias.
    fn asset<'a>(&'a self, id_or_alias: &'a str) -> StoreFuture<'a, Option<AssetRecord>> {
        let _ = id_or_alias;
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// Records that the attempt `attempt_key` replaced asset `asset_id` under `reference` (once per reference).
    fn add_lineage<'a>(
        &'a self,
        asset_id: &'a str,
        reference: &'a str,
        attempt_key: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let _ = (asset_id, reference, attempt_key, now);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// Up to `limit` assets whose first end is not known yet ([`Store::settle_asset`]), recorded before
    /// `created_before`, oldest first.
    fn open_assets(&self, created_before: Timestamp, limit: usize) -> StoreFuture<'_, Vec<AssetRecord>> {
        let _ = (created_before, limit);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// Notes that asset `asset_id`'s first end is known (its callback came, or LightFlow was asked).
    fn settle_asset<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, ()> {
        let _ = asset_id;
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// The attempts that replaced asset `asset_id`, oldest first.
    fn lineage<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Vec<LineageRow>> {
        let _ = asset_id;
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "assets" }) })
    }

    /// Logs an operator's action (the web view's cancel and retry now), at `now`. Actions are pruned with the
    /// jobs, after the retention period.
    ///
    /// The default says the store keeps no actions ([`StoreError::Unsupported`]).
    fn log_action<'a>(&'a self, action: NewAction<'a>, now: Timestamp) -> StoreFuture<'a, ()> {
        let _ = (action, now);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "actions" }) })
    }

    /// The actions logged on `asset_id` (every asset's with `None`), newest first, at most `limit`.
    fn actions<'a>(&'a self, asset_id: Option<&'a str>, limit: usize) -> StoreFuture<'a, Vec<ActionRow>> {
        let _ = (asset_id, limit);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "actions" }) })
    }

    /// The jobs submitted since `since`, counted by interval of `bucket` (rounded down from the Unix epoch), by
    /// the failure they remediate and by how they stand ([`TallyRow`]), in no particular order.
    ///
    /// The default says the store cannot count them so ([`StoreError::Unsupported`]).
    fn tally(&self, since: Timestamp, bucket: Duration) -> StoreFuture<'_, Vec<TallyRow>> {
        let _ = (since, bucket);
        Box::pin(async move { Err(StoreError::Unsupported { store: self.describe(), what: "tallies" }) })
    }

    /// The clock every replica on this store should read due times and leases from, when the store has one of
    /// its own (PostgreSQL: the database's); `None`: the system's. [`RemediatorBuilder::store`]
    /// (crate::engine::RemediatorBuilder::store) uses it.
    fn own_clock(&self) -> Option<std::sync::Arc<dyn Clock>> {
        None
    }
}
