//! The remediator: runs jobs on tokio, one per asset, and guards the fleet.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::broadcast;

use super::guards::breaker::BreakerState;
use super::guards::budget::RetryBudget;
use super::handle::{Cancel, JobHandle};
use super::hooks::Hooks;
use super::job::{AttemptKey, Job};
use super::observe::counters::CounterSnapshot;
use super::observe::events::Event;
use super::outcome::{Outcome, OutcomeKind, SuspendedJob};
use super::report::Reported;
use super::shared::Inner;
use super::walk::cell::{ABORT, CANCEL, SUSPEND};
use super::walk::state::{More, State};
use crate::classify::catalogue::Downstream;
use crate::classify::{Callback, Failure};
use crate::decide::{LivePolicies, Policies};
use crate::store::{CancelAnswer, ReportAnswer, ReportTarget, StoreError, Timestamp};

/// Why a job could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// [`Remediator::shutdown`] was called: no new work.
    #[error("the remediator is shutting down and takes no new jobs")]
    ShuttingDown,
    /// `submit` was called outside a tokio runtime.
    #[error("jobs run on tokio: submit from inside a tokio runtime")]
    NoRuntime,
    /// The remediator keeps its jobs in a durable store: a job is submitted with
    /// [`Remediator::enqueue`], which returns once the job is written.
    #[error(
        "this remediator keeps its jobs in a store: submit with `enqueue(..).await`, which returns once the job is written"
    )]
    UseEnqueue,
    /// [`Remediator::resume`] on a remediator whose store was given to it: that store keeps every job over a
    /// restart, and `shutdown` handed none back.
    #[error("this remediator's store keeps its jobs over a restart: there is nothing to resume")]
    StoreKeepsJobs,
    /// The store could not take the job.
    #[error("the store refused the job: {0}")]
    Store(String),
}

impl<H: Hooks> Inner<H> {
    /// A job the store cancelled at rest ended here: its handles are told, and its outcome counted.
    pub(crate) async fn cancelled_at_rest(&self, answer: CancelAnswer) {
        let CancelAnswer::Cancelled { job } = answer else { return };
        let attempts = match self.durable.store.job(job).await {
            Ok(Some(row)) => row.attempts,
            _ => 0,
        };
        let outcome = Outcome::Cancelled { attempts };
        self.counters.outcome(outcome.kind());
        self.durable.tell(job, &outcome);
    }
}

impl<H: Hooks> Cancel for Inner<H> {
    fn cancel_asset(self: Arc<Self>, asset_id: &str) -> bool {
        let held = self.jobs().get(asset_id).cloned();
        if let Some(cell) = &held {
            cell.raise(CANCEL);
        }
        let d = &self.durable;
        let now = d.now();
        if d.private.is_some() {
            if !self.accepting.load(Ordering::SeqCst) {
                // Shut down: its jobs were handed back, and are the host's to resume (or cancel) elsewhere.
                return held.is_some();
            }
            // The remediator's own memory store answers without waiting.
            let answer = d.store.cancel(asset_id, now).now_or_never().and_then(Result::ok);
            if let Some(answer) = answer {
                let _ = self.cancelled_at_rest(answer).now_or_never();
            }
            return held.is_some() || answer.is_some_and(|a| a != CancelAnswer::NoJob);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (inner, asset) = (self.clone(), asset_id.to_owned());
            drop(runtime.spawn(async move {
                let d = &inner.durable;
                match d.store.cancel(&asset, now).await {
                    Ok(answer) => inner.cancelled_at_rest(answer).await,
                    Err(e) => tracing::warn!(store = %d.store.describe(), asset, error = %e, "cancelling a job failed"),
                }
                d.wake.notify_one();
            }));
        }
        held.is_some()
    }
}

/// Drives the host's hooks for every submitted job, on tokio.
///
/// Cheap to clone; clones share the jobs, the guards and the event stream.
///
/// ```
/// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator};
/// use lightflow_remedy::{Failure, Policies};
/// use serde_json::{Map, Value};
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
/// let remediator = Remediator::builder(Policies::defaults(), Host).build();
/// let handle = remediator.enqueue(Job::new("asset-1"), Failure::asset(2503, "unavailable")?).await?;
/// assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
/// # Ok(()) }
/// ```
pub struct Remediator<H> {
    pub(crate) inner: Arc<Inner<H>>,
}

impl<H> Clone for Remediator<H> {
    fn clone(&self) -> Self {
        Remediator { inner: self.inner.clone() }
    }
}

impl<H: Hooks> Remediator<H> {
    /// Starts remediating `job` as [`Remediator::enqueue`] does, without waiting: only on a remediator built
    /// without a store (whose own memory store takes a job at once); on a database it is
    /// [`SubmitError::UseEnqueue`].
    #[deprecated(
        since = "0.2.0",
        note = "hand jobs over with `enqueue(job, failure).await`: every job is written to the remediator's store \
                (a memory store by default) before it starts"
    )]
    pub fn submit(&self, job: Job, failure: Failure) -> Result<JobHandle, SubmitError> {
        tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoRuntime)?;
        if self.inner.durable.private.is_none() {
            return Err(SubmitError::UseEnqueue);
        }
        // The remediator's own memory store answers without waiting.
        self.enqueue(job, failure).now_or_never().unwrap_or(Err(SubmitError::UseEnqueue))
    }

    /// Hands over a job that a shutdown of a remediator without a store handed back, to go on where it stopped:
    /// what was left of its wait, the attempt it awaited, the verdict it had not delivered. The job keeps its id
    /// (and so its calls' keys) in this remediator's own memory store, which takes it at once. A remediator on
    /// a store given to it answers [`SubmitError::StoreKeepsJobs`]: such a store keeps every job over a restart.
    ///
    /// ```
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator};
    /// use lightflow_remedy::{Failure, Policies};
    /// use serde_json::{Map, Value};
    /// use std::time::Duration;
    ///
    /// struct Host;
    /// impl Hooks for Host {
    ///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    ///         Ok(Attempt::Succeeded)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?.block_on(async {
    /// let failure = Failure::asset(2001, "download failed")?;
    /// let before = Remediator::builder(Policies::defaults(), Host).build();
    /// let handle = before.enqueue(Job::new("asset-42"), failure).await?;
    /// // The process is about to stop: the job (waiting a minute before its retry) is suspended.
    /// let suspended = before.shutdown(Duration::from_secs(5)).await;
    /// assert_eq!(handle.await.kind(), lightflow_remedy::engine::OutcomeKind::Suspended);
    /// let stored = serde_json::to_string(&suspended)?;
    ///
    /// // After the restart: each job goes on where it stopped.
    /// let after = Remediator::builder(Policies::defaults(), Host).build();
    /// for state in serde_json::from_str::<Vec<_>>(&stored)? {
    ///     assert!(matches!(after.resume(state)?.await, Outcome::Recovered { attempts: 1, .. }));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume(&self, state: SuspendedJob) -> Result<JobHandle, SubmitError> {
        tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoRuntime)?;
        if self.inner.durable.private.is_none() {
            return Err(SubmitError::StoreKeepsJobs);
        }
        let SuspendedJob {
            job,
            failure,
            history,
            remaining_delay,
            reconciles,
            steps,
            paid,
            verdict,
            awaiting,
            early_report,
        } = state;
        let more =
            More { remaining: remaining_delay, paid, reconciles, verdict, awaiting, early_report, ..More::default() };
        let mut state = State::new(failure, history).with_more(more);
        state.steps = steps;
        let due_in = remaining_delay.unwrap_or_default();
        // The remediator's own memory store answers without waiting.
        self.hand_over(job, state, due_in, None).now_or_never().unwrap_or(Err(SubmitError::UseEnqueue))
    }

    /// Resolves when no job is running.
    async fn idle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.jobs().is_empty() {
                return;
            }
            idle.await;
        }
    }

    /// Raises `flag` on every running job.
    fn raise_all(&self, flag: u8) {
        for cell in self.inner.jobs().cells() {
            cell.raise(flag);
        }
    }

    /// Cancels the job of `asset_id`: at once if this replica holds it or it rests in the remediator's own
    /// memory store; on a store given to it, a job at rest is cancelled by a write that follows (wait for it
    /// with [`Remediator::cancel_job`]). `false` when no job was found here.
    pub fn cancel(&self, asset_id: &str) -> bool {
        self.inner.clone().cancel_asset(asset_id)
    }

    /// A handle's way to cancel its job.
    pub(crate) fn canceller(&self) -> Weak<dyn Cancel> {
        let inner: Arc<dyn Cancel> = self.inner.clone();
        Arc::downgrade(&inner)
    }

    /// Hands the host a submitted attempt's result: from its LightFlow callback handler, or its poller.
    ///
    /// `target` names the attempt: best by its key ([`ReportTarget::Attempt`], from the callback URL the host
    /// made for it), or by the reference its hook answered `Submitted` with, or by the asset and when the
    /// attempt ended ([`ReportTarget::AssetEndedAt`]). The answer says what became of the report: applied to
    /// the attempt the job awaits; kept because the attempt's hook has not answered yet (it is applied when it
    /// does); held because no attempt has this reference yet; or changing nothing (a duplicate, an older
    /// attempt, a finished or unknown job). On a store, a report by asset alone without an end time could be
    /// about any attempt of the job: it is answered [`ReportAnswer::Ambiguous`], changes nothing, and a job
    /// awaiting a result asks the host's `check` at once. A report is never applied to the wrong attempt.
    ///
    /// Values a store refuses to keep (an id with a NUL, longer than
    /// [`MAX_ID_BYTES`](crate::store::MAX_ID_BYTES), a report over
    /// [`MAX_REPORT_BYTES`](crate::store::MAX_REPORT_BYTES)) are [`StoreError::Invalid`], on every store.
    ///
    /// ```
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator, ReportAnswer, ReportTarget, Reported};
    /// use lightflow_remedy::{Failure, Policies};
    /// use serde_json::{Map, Value};
    ///
    /// struct Host;
    /// impl Hooks for Host {
    ///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    ///         // POST /assets; LightFlow answers with the new asset's uuid and reports its end by callback.
    ///         Ok(Attempt::Submitted { reference: format!("uuid-{}", key.attempt) })
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let remediator = Remediator::builder(Policies::defaults(), Host).build();
    /// let handle = remediator.enqueue(Job::new("asset-1"), Failure::asset(2503, "unavailable")?).await?;
    /// tokio::time::sleep(std::time::Duration::from_secs(3600)).await; // the retry is submitted meanwhile
    /// // The callback for uuid-1 says the encode finished.
    /// let answer = remediator.report(ReportTarget::Reference("uuid-1"), Reported::Succeeded).await?;
    /// assert!(matches!(answer, ReportAnswer::Applied { .. }));
    /// assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    /// // A duplicate callback changes nothing.
    /// let again = remediator.report(ReportTarget::Reference("uuid-1"), Reported::Succeeded).await?;
    /// assert!(matches!(again, ReportAnswer::Finished { .. }));
    /// # Ok(()) }
    /// ```
    pub async fn report(&self, target: ReportTarget<'_>, result: Reported) -> Result<ReportAnswer, StoreError> {
        let answer = self.take_report(target, result).await;
        let name = match &answer {
            Ok(answer) => answer.as_str(),
            Err(StoreError::Invalid { .. }) => "refused",
            Err(_) => "store_error",
        };
        self.inner.counters.report(name);
        answer
    }

    async fn take_report(&self, target: ReportTarget<'_>, result: Reported) -> Result<ReportAnswer, StoreError> {
        let d = &self.inner.durable;
        let json = serde_json::to_string(&result).unwrap_or_default();
        let answer = d.store.report(target, &json, d.now()).await?;
        if matches!(answer, ReportAnswer::Applied { .. } | ReportAnswer::Ambiguous { .. }) {
            d.wake.notify_one();
        }
        Ok(answer)
    }

    /// Reports what a LightFlow callback says, addressed as surely as the callback allows:
    ///
    /// 1. by the attempt its URL names: the host puts the attempt's key ([`AttemptKey`], its text
    ///    `asset#job.attempt`, percent-encoded: `#` is `%23`) in the callback URL it gives LightFlow with the
    ///    attempt, as an `attempt` parameter (`https://host/callbacks?attempt=asset-1%237.2`); a callback of an
    ///    earlier attempt is then answered [`ReportAnswer::OlderAttempt`] in either of LightFlow's forms;
    /// 2. else by the asset's uuid (the reference its attempt was submitted under);
    /// 3. else by the host's own `asset` parameter and the callback's `endDate` (a callback of an attempt that
    ///    ended before the one under way began is older);
    /// 4. else by the asset alone (on a store: [`ReportAnswer::Ambiguous`], and `check` decides).
    ///
    /// A callback that says the asset has not ended (`queued`, `running`), or that names no asset, changes
    /// nothing (`None`); an `attempt` parameter that is not a key is [`StoreError::Invalid`].
    ///
    /// ```
    /// # use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator, ReportAnswer};
    /// # use lightflow_remedy::{classify::Callback, Policies};
    /// # use serde_json::{Map, Value};
    /// # struct Host;
    /// # impl Hooks for Host {
    /// #     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    /// #         Ok(Attempt::Succeeded)
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let remediator = Remediator::builder(Policies::defaults(), Host).build();
    /// // In the host's callback handler (GET form): LightFlow appends status and endDate.
    /// let callback = Callback::from_query("uuid=6f1c&status=error&endDate=2026-12-01T10:00:00.000Z")?;
    /// let answer = remediator.report_callback(&callback).await?;
    /// assert_eq!(answer, Some(ReportAnswer::Held), "no attempt has this uuid yet: held for a while");
    /// # Ok(()) }
    /// ```
    pub async fn report_callback(&self, callback: &Callback) -> Result<Option<ReportAnswer>, StoreError> {
        let Some(result) = Reported::from_callback(callback.result()) else { return Ok(None) };
        let ended = callback.end_time().map(Timestamp::from);
        let target = match (callback.param("attempt"), &callback.uuid, &callback.asset) {
            (Some(text), _, _) => {
                let key = AttemptKey::parse(text).ok_or_else(|| StoreError::Invalid {
                    field: "attempt",
                    reason: "it is not an attempt key (asset#job.attempt)".to_owned(),
                })?;
                ReportTarget::Attempt { job: key.job, attempt: key.attempt }
            }
            (None, Some(uuid), _) => ReportTarget::Reference(uuid),
            (None, None, Some(asset)) => match ended {
                Some(at) => ReportTarget::AssetEndedAt(asset, at),
                None => ReportTarget::Asset(asset),
            },
            (None, None, None) => return Ok(None),
        };
        self.report(target, result).await.map(Some)
    }

    /// Cancels every job this replica holds (jobs at rest in the store are cancelled by
    /// [`Remediator::cancel_job`]).
    pub fn cancel_all(&self) {
        self.raise_all(CANCEL);
        if let Some(own) = &self.inner.durable.private {
            for row in own.active_rows() {
                self.inner.clone().cancel_asset(&row.asset_id);
            }
        }
    }

    /// Stops taking new jobs and claiming, lets hook calls in flight finish within `deadline`, and writes every
    /// job it holds back to the store. Each handle of a job that did not end meanwhile gives
    /// [`Outcome::Suspended`]. A remediator built without a store (its own memory store, which nothing outlives)
    /// returns the state of every unfinished job, for [`Remediator::resume`] after the restart; on a store
    /// given to it the jobs stay in the store, and the list is empty.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<SuspendedJob> {
        let d = &self.inner.durable;
        d.stop();
        {
            let jobs = self.inner.jobs();
            self.inner.accepting.store(false, Ordering::SeqCst);
            for cell in jobs.cells() {
                cell.raise(SUSPEND);
            }
        }
        if tokio::time::timeout(deadline, self.idle()).await.is_err() {
            self.raise_all(ABORT);
            self.idle().await;
        }
        let (unfinished, suspended) = d.suspend_watchers().await;
        for _ in 0..suspended {
            self.inner.counters.outcome(OutcomeKind::Suspended);
        }
        unfinished
    }

    /// Whether it takes new jobs (it stops at `shutdown`).
    pub(crate) fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
    }

    /// Now, on the clock of the remediator's store: for a report of an attempt that ended just now
    /// ([`ReportTarget::AssetEndedAt`]).
    pub fn now(&self) -> Timestamp {
        self.inner.durable.now()
    }

    /// The event stream, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        let receiver = self.inner.events.subscribe();
        self.inner.listened.store(true, Ordering::Relaxed);
        receiver
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    /// Reports a call that succeeded on its first try, outside the engine: the AWS quota gets a token back,
    /// gRPC throttling `token_ratio`. Without a budget, nothing happens.
    pub fn record_first_try_success(&self) {
        if let Some(budget) = &self.inner.budget {
            budget.succeeded(None);
        }
    }

    /// The retry budget, if there is one.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// The state of `downstream`'s breaker (`Closed` without breakers).
    pub fn breaker_state(&self, downstream: Downstream) -> BreakerState {
        self.inner.breakers.as_ref().map_or(BreakerState::Closed, |b| b.state(downstream))
    }

    /// How many jobs this replica holds (works on, or waits for a short delay of).
    pub fn active_jobs(&self) -> usize {
        self.inner.durable.held().len()
    }

    /// The policies decisions are made with now.
    pub fn policies(&self) -> Arc<Policies> {
        self.inner.policies.current()
    }

    /// The live policy set: reload it, watch its directories, or replace it.
    pub fn live_policies(&self) -> &Arc<LivePolicies> {
        &self.inner.policies
    }

    /// Replaces the policies at once: decisions already made keep theirs, the next ones use these.
    pub fn set_policies(&self, policies: impl Into<Arc<Policies>>) {
        self.inner.policies.replace(policies);
    }

    /// The host's hooks.
    pub fn hooks(&self) -> &H {
        &self.inner.hooks
    }
}
