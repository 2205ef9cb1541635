//! A remediator on a durable store, as the host sees it: the builder's store settings, jobs enqueued (written
//! before they are taken), cancellation through the store, and the replica started or stopped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::builder::RemediatorBuilder;
use super::handle::JobHandle;
use super::hooks::Hooks;
use super::job::Job;
use super::observe::events::Event;
use super::remediator::{Remediator, SubmitError};
use super::replica::StoreSettings;
use super::replica::record::{PAYLOAD_VERSION, Record};
use super::replica::{claimer, held};
use super::walk::cell::CANCEL;
use super::walk::state::State;
use crate::classify::Failure;
use crate::decide::History;
use crate::store::{CancelAnswer, Clock, JobId, NewJob, Store, StoreError, Submitted, SystemClock};

impl<H: Hooks> RemediatorBuilder<H> {
    /// Keeps the jobs in `store` rather than in this process's memory: jobs at rest are rows, claimed when
    /// they are due; a restart (or another replica) goes on with them. Due times and leases are read from the
    /// store's own clock if it has one ([`Store::own_clock`]: PostgreSQL's is the database's, one for every
    /// replica), else from the system's; see [`RemediatorBuilder::store_with`] for another.
    pub fn store(self, store: impl Store) -> Self {
        let clock = store.own_clock().unwrap_or_else(|| Arc::new(SystemClock));
        self.store_with(Arc::new(store), clock, StoreSettings::default())
    }

    /// Keeps the jobs in `store`, reading due times and leases from `clock` (e.g. a
    /// [`TokioClock`](crate::store::TokioClock) under paused time), with `settings`.
    pub fn store_with(mut self, store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: StoreSettings) -> Self {
        self.store = Some((store, clock, settings));
        self
    }
}

impl<H: Hooks> Remediator<H> {
    /// Starts this replica's claimer, heartbeat and pruner on the current tokio runtime, once. `build` does it
    /// when called inside a runtime, and a hand-over when it was not.
    pub fn start(&self) -> bool {
        claimer::start(&self.inner)
    }

    /// Hands over a job that failed with `failure`, and returns once it is written to the store (the
    /// remediator's own memory store when it was built without one). If the asset already has an active job,
    /// the report joins it. With room for it, this replica holds the job at once and begins its walk; else the
    /// claimer takes it when there is room (or another replica does).
    ///
    /// ```
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator, StoreSettings};
    /// use lightflow_remedy::store::{MemoryStore, TokioClock, Timestamp};
    /// use lightflow_remedy::{Failure, Policies};
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
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    /// let remediator = Remediator::builder(Policies::defaults(), Host)
    ///     .store_with(Arc::new(MemoryStore::new()), clock, StoreSettings::default())
    ///     .build();
    /// let handle = remediator.enqueue(Job::new("asset-1"), Failure::asset(2503, "unavailable")?).await?;
    /// assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    /// # Ok(()) }
    /// ```
    pub async fn enqueue(&self, job: Job, failure: Failure) -> Result<JobHandle, SubmitError> {
        let state = Self::first_state(&job, failure);
        self.hand_over(job, state, Duration::ZERO, None).await
    }

    /// Enqueues a job as [`Remediator::enqueue`] does, made once for `dedupe_key` (e.g. the failed asset's
    /// LightFlow uuid): the same failure handed over again, by this replica or another, at any time while the
    /// store keeps the first job (its retention), gives a handle to that job rather than a new one.
    ///
    /// ```
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator, StoreSettings};
    /// use lightflow_remedy::store::{MemoryStore, Store, TokioClock, Timestamp};
    /// use lightflow_remedy::{Failure, Policies};
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
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(MemoryStore::new());
    /// let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    /// let remediator = Remediator::builder(Policies::defaults(), Host)
    ///     .store_with(store.clone(), clock, StoreSettings::default())
    ///     .build();
    /// let failure = Failure::asset(2503, "unavailable")?;
    /// let first = remediator.enqueue_once(Job::new("asset-1"), failure.clone(), "uuid-of-the-failed-asset").await?;
    /// assert!(matches!(first.await, Outcome::Recovered { .. }));
    /// // The same failure handed over again (a webhook delivered twice): no second job.
    /// let again = remediator.enqueue_once(Job::new("asset-1"), failure, "uuid-of-the-failed-asset").await?;
    /// assert!(matches!(again.await, Outcome::Recovered { .. }));
    /// assert_eq!(store.stats(Timestamp(0)).await?.by_outcome["recovered"], 1);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_once(&self, job: Job, failure: Failure, dedupe_key: &str) -> Result<JobHandle, SubmitError> {
        let state = Self::first_state(&job, failure);
        self.hand_over(job, state, Duration::ZERO, Some(dedupe_key)).await
    }

    /// A new job's state: its first failure in its history.
    fn first_state(job: &Job, failure: Failure) -> State {
        let mut history = History::new(job.seed());
        history.record_failure(&failure);
        State::new(failure, history)
    }

    /// Writes a job to the store, due in `due_in`, and holds it here at once when there is room.
    pub(crate) async fn hand_over(
        &self,
        job: Job,
        state: State,
        due_in: Duration,
        dedupe_key: Option<&str>,
    ) -> Result<JobHandle, SubmitError> {
        tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoRuntime)?;
        let d = &self.inner.durable;
        if !self.is_accepting() {
            return Err(SubmitError::ShuttingDown);
        }
        self.start();
        let now = d.now();
        let first_failure_at = now.before(state.history.elapsed());
        let key = state.failure.key();
        let record = Record::of(&job, &state, first_failure_at).encode();
        let key_text = key.to_string();
        let mut new = NewJob::new(job.asset_id(), &record, PAYLOAD_VERSION, &key_text, now.after(due_in));
        new.dedupe_key = dedupe_key;
        let store_err = |e: StoreError| SubmitError::Store(e.to_string());
        // With room for it (and nothing to wait first), this replica holds the job from the start.
        let room =
            if due_in.is_zero() && d.has_room() && !d.stopping.load(Ordering::SeqCst) { d.reserve() } else { None };
        let sent = Instant::now();
        let earlier_id = Some(job.job_id()).filter(|id| *id != JobId::default());
        let (submitted, claimed) = match (&d.private, earlier_id) {
            // A job handed back by a shutdown keeps its id in the remediator's own store, and with it the keys
            // of its calls: a call cut off is repeated with the same key.
            (Some(own), Some(id)) => (own.submit_as(id, new, now).map_err(store_err)?, None),
            _ if room.is_some() => {
                d.store.submit_and_claim(new, &d.owner, d.settings.lease, now).await.map_err(store_err)?
            }
            _ => (d.store.submit(new, now).await.map_err(store_err)?, None),
        };
        let (id, joined) = match submitted {
            Submitted::New(id) => (id, false),
            Submitted::Joined(id) | Submitted::Deduplicated(id) => (id, true),
        };
        let asset_id = job.id().clone();
        if joined {
            self.inner.emit(|| Event::Joined { asset_id: asset_id.clone(), failure: key });
        } else {
            self.inner.emit(|| Event::Submitted { asset_id: asset_id.clone(), failure: key });
        }
        // Watched before its task starts, which may end it at once.
        let handle = JobHandle::watching(asset_id, d.watch(id), joined, self.canceller());
        match claimed {
            Some(claimed) => held::hold(&self.inner, claimed, sent),
            // Due later, or perhaps ended already (joined): the claimer takes it, or reads its outcome.
            None => d.wake.notify_one(),
        }
        drop(room);
        Ok(handle)
    }

    /// Cancels the active job of `asset_id`, wherever it is: in this process, or at rest in the store (at
    /// once), or held by another replica (which is asked to).
    pub async fn cancel_job(&self, asset_id: &str) -> Result<CancelAnswer, StoreError> {
        let d = &self.inner.durable;
        let held = self.inner.jobs().get(asset_id).cloned();
        if let Some(cell) = held {
            cell.raise(CANCEL);
        }
        let answer = d.store.cancel(asset_id, d.now()).await?;
        self.inner.cancelled_at_rest(answer).await;
        Ok(answer)
    }

    /// The store the jobs are kept in (the remediator's own memory store when it was built without one).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.durable.store
    }

    /// Drops every task of this remediator at once, as a crash of its process would: nothing more is written,
    /// hook calls under way are dropped, and the leases it held are left to expire, for another replica (or a
    /// restart) to take the jobs over. For crash tests and simulations; a real shutdown is
    /// [`Remediator::shutdown`].
    pub fn crash(&self) {
        self.inner.durable.crash();
    }
}
