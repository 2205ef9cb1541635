//! The PostgreSQL store: jobs in one database (and schema) that several replicas share.
//!
//! - **Claims**: one statement per batch, a CTE that picks the due rows over the partial index of active jobs
//!   by `wake_at` (`ORDER BY wake_at LIMIT n FOR UPDATE SKIP LOCKED`: replicas claiming at once take
//!   different rows and never wait for each other) and an `UPDATE … RETURNING` that takes the lease: the owner,
//!   `wake_at` = its expiry, `epoch + 1`. A held job's `wake_at` is its lease's expiry, so an expired lease is
//!   simply due, and taken over by the next claim.
//! - **Fencing**: every write of a holder names `id`, `epoch` and `lease_owner`; none matching is
//!   [`StoreError::LeaseLost`]. A save and its ledger entries (and a report held for its reference) are one
//!   transaction. Renewals are one statement per batch.
//! - **One active job per asset** is a partial unique index; two submits of one asset from two replicas at once
//!   end in one job, the other joins it.
//! - **Wake hints**: a write that makes a job due notifies the channel `lightflow_remedy_due` (with a
//!   `schema`, `lightflow_remedy_due.SCHEMA`) in its own transaction; every store listens and wakes its
//!   claimer ([`Store::wake_hints`]). Polling stays the
//!   fallback: [`StoreOptions::wake_hints`] off (behind PgBouncer in transaction mode) costs a poll interval.
//! - **One clock**: [`PgStore::clock`] is the database's ([`DatabaseClock`]), for every replica's due times
//!   and leases.
//! - **Schema**: embedded, versioned, forward-only migrations (`migrations/postgres/`), applied under an
//!   advisory lock so that replicas starting together take turns; a schema newer than this build is refused
//!   ([`StoreError::SchemaTooNew`]).
//!
//! Times are `BIGINT` milliseconds on the engine's clock, ids identities that are never reused.

mod actions;
mod assets;
mod clock;
mod conn;
mod decode;
mod guards;
mod hints;
mod holder;
mod host;
mod migrate;
mod open;
#[cfg(test)]
mod plans;
mod read;
mod saves;
mod submit;
mod tally;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use clock::DatabaseClock;
use conn::{Db, Task};

use crate::store::group::{Group, Write, Written};
use hints::Listening;

use crate::store::{
    Claimed, Clock, NewJob, Store, StoreError, StoreFuture, StoreOptions, Submitted, Timestamp, validate,
};

/// Job rows in a PostgreSQL database, shared by the replicas that open it. See the [module](self) for how.
///
/// ```no_run
/// use lightflow_remedy::store::{NewJob, PgStore, Store, StoreOptions, Submitted};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = PgStore::open("postgres://remedy@db.internal/remedy?schema=remedy", &StoreOptions::default()).await?;
/// let clock = store.clock();
/// let new = NewJob::new("a1", "{}", 1, "2001", clock.now());
/// let Submitted::New(id) = store.submit(new, clock.now()).await? else { unreachable!() };
/// // Any replica may claim it; each claim takes a lease and a new epoch.
/// let claimed = store.claim("replica-1", clock.now(), Duration::from_secs(30), 64).await?;
/// assert_eq!(claimed[0].lease.job, id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PgStore {
    db: Arc<Db>,
    /// Saves, committed together by the store's writer.
    group: Group<Db>,
    clock: Arc<DatabaseClock>,
    /// Reads the database's clock again when a reading has grown old; ends with the store.
    reader: Task,
    listening: Option<Listening>,
}

impl PgStore {
    /// Connects to the database `url` names, brings its schema up to date, reads its clock, and (with
    /// [`StoreOptions::wake_hints`], on by default) listens for the other replicas' hints.
    ///
    /// `url` is a `postgres://` (or `postgresql://`) URL as sqlx reads it (`sslmode`, `application_name`,
    /// `options`, `statement-cache-capacity`, ...), and one parameter of the store's own: `schema=NAME` keeps
    /// the store's tables in that schema (created if missing; a plain lower-case name), by setting every
    /// connection's `search_path`; without it they are where the role's `search_path` says (`public`). Each
    /// schema is a store of its own: a database can hold several, e.g. one per test. The pool has
    /// [`StoreOptions::pool_size`] connections, opened as they are needed and kept (no idle reaper, no
    /// lifetime); lease renewals have one more of their own, so that they never queue behind the jobs' writes, and
    /// the listener one.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadUrl`] for a URL that sqlx cannot read or a `schema` that is not a plain name,
    /// [`StoreError::SchemaTooNew`] for a schema a newer build has migrated, [`StoreError::Database`] (naming
    /// the URL, without its password) when the database cannot be reached or migrated.
    ///
    /// ```no_run
    /// use lightflow_remedy::store::{PgStore, StoreError, StoreOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// // Behind PgBouncer in transaction mode: no LISTEN; the claimers poll.
    /// let options = StoreOptions::default().wake_hints(false).pool_size(20);
    /// let store = PgStore::open("postgres://remedy:secret@pgbouncer:6432/remedy", &options).await?;
    ///
    /// let Err(StoreError::BadUrl { url, reason }) =
    ///     PgStore::open("postgres://remedy:secret@db/remedy?schema=Bad-Name", &options).await
    /// else { unreachable!() };
    /// assert_eq!(url, "postgres://remedy:***@db/remedy?schema=Bad-Name");
    /// assert!(reason.contains("not a plain name"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn open(url: &str, options: &StoreOptions) -> Result<PgStore, StoreError> {
        let opened = open::open(url, options).await?;
        let group =
            Group::new(opened.db.clone(), options.group_commit_window, !options.hold_time, opened.db.name.clone());
        Ok(PgStore { db: opened.db, group, clock: opened.clock, reader: opened.reader, listening: opened.listening })
    }

    /// The database's clock: the engine's clock for this store, so that every replica's due times and leases
    /// are on one clock (see [`DatabaseClock`]).
    ///
    /// ```no_run
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator, StoreSettings};
    /// use lightflow_remedy::store::{PgStore, StoreOptions};
    /// use lightflow_remedy::Policies;
    /// use serde_json::{Map, Value};
    /// use std::sync::Arc;
    ///
    /// struct Host;
    /// impl Hooks for Host {
    ///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    ///         Ok(Attempt::Succeeded)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
    /// let store = PgStore::open("postgres://remedy@db/remedy", &StoreOptions::default()).await?;
    /// let clock = store.clock();
    /// let remediator = Remediator::builder(Policies::defaults(), Host)
    ///     .store_with(Arc::new(store), clock, StoreSettings::default())
    ///     .build();
    /// # drop(remediator);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The database's clock as its own type, to see how far it is from this machine's
    /// ([`DatabaseClock::skew`]).
    pub fn database_clock(&self) -> Arc<DatabaseClock> {
        self.clock.clone()
    }

    /// The newest schema version this build knows.
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert!(lightflow_remedy::store::PgStore::schema_version() >= 2);
    /// ```
    pub fn schema_version() -> i64 {
        migrate::known()
    }

    /// Closes the connections, after the work under way, and stops listening for hints and reading the
    /// database's clock. Dropping the store does the same, without waiting.
    pub async fn close(&self) {
        let _held = self.db.held();
        if let Some(listening) = &self.listening {
            listening.task.stop();
        }
        self.reader.stop();
        self.db.pool.close().await;
        self.db.renewals.close().await;
    }
}

impl Store for PgStore {
    crate::store::delegate::durable_methods!();

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

    fn wake_hints(&self) -> Option<Arc<Notify>> {
        self.listening.as_ref().map(|l| l.notify.clone())
    }

    fn own_clock(&self) -> Option<Arc<dyn Clock>> {
        Some(self.clock.clone())
    }
}
