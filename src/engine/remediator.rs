//! The remediator: runs jobs on tokio, one per asset, and guards the fleet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::Instrument;

use super::breaker::BreakerState;
use super::budget::RetryBudget;
use super::cell::{ABORT, CANCEL, JobCell, Offer, SUSPEND};
use super::counters::CounterSnapshot;
use super::events::Event;
use super::handle::JobHandle;
use super::hooks::Hooks;
use super::job::{AttemptKey, Job};
use super::outcome::SuspendedJob;
use super::parts::Parts;
use super::registry::Entered;
use super::report::Reported;
use super::shared::{Delivery, Inner};
use super::state::{More, State};
use super::walk;
use crate::classify::catalogue::Downstream;
use crate::classify::{Callback, Failure};
use crate::decide::{History, LivePolicies, Policies};
use crate::store::{JobId, ReportAnswer, ReportTarget, StoreError, Timestamp};

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
    /// The store could not take the job.
    #[error("the store refused the job: {0}")]
    Store(String),
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
/// let handle = remediator.submit(Job::new("asset-1"), Failure::asset(2503, "unavailable")?)?;
/// assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
/// # Ok(()) }
/// ```
pub struct Remediator<H> {
    pub(super) inner: Arc<Inner<H>>,
}

impl<H> Clone for Remediator<H> {
    fn clone(&self) -> Self {
        Remediator { inner: self.inner.clone() }
    }
}

impl<H: Hooks> Remediator<H> {
    /// Starts remediating `job`, which failed with `failure`. If the asset is already being remediated, the
    /// report joins the running job and the handle gives that job's outcome.
    pub fn submit(&self, job: Job, failure: Failure) -> Result<JobHandle, SubmitError> {
        if self.inner.durable.is_some() {
            return Err(SubmitError::UseEnqueue);
        }
        let mut history = History::new(job.seed());
        history.record_failure(&failure);
        self.spawn_job(job, State::new(failure, history))
    }

    /// Continues a job that a shutdown suspended.
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
    /// let handle = before.submit(Job::new("asset-42"), failure)?;
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
        let more = More { remaining: remaining_delay, lent: None, paid, reconciles, verdict, awaiting, early_report };
        let mut state = State::new(failure, history).with_more(more);
        state.steps = steps;
        self.spawn_job(job, state)
    }

    fn spawn_job(&self, mut job: Job, state: State) -> Result<JobHandle, SubmitError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoRuntime)?;
        let id = job.id().clone();
        let mut jobs = self.inner.jobs();
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if job.job_id() == JobId::default() {
            job.set_job_id(self.inner.next_job_id());
        }
        let cell = Arc::new(JobCell::new(job.job_id()));
        let hash = match jobs.enter(&id, &cell) {
            Entered::New { hash } => hash,
            Entered::Running(running) => {
                drop(jobs);
                self.inner.emit(|| Event::Joined { asset_id: id.clone(), failure: state.failure.key() });
                return Ok(JobHandle::new(id, running, true));
            }
        };
        drop(jobs);
        self.inner.emit(|| Event::Submitted { asset_id: id.clone(), failure: state.failure.key() });

        let now = tokio::time::Instant::now();
        let started = now.checked_sub(state.history.elapsed()).unwrap_or(now);
        let delivery = Delivery { inner: self.inner.clone(), hash, cell: cell.clone(), finished: false };
        let task = walk::run(Parts { job, state, started, delivery, stored: None });
        // Detached: the registry knows the running jobs, and every job delivers its outcome to its cell. The
        // span only when someone records it: a disabled one would cost every job its room and every poll. With
        // no subscriber set at all nothing can record it, and it is not even built (tracing's `log` fallback,
        // which a dependency turns on, would format it on every submission).
        let span = tracing::dispatcher::has_been_set().then(|| tracing::info_span!("remediation", asset = %id));
        match span {
            Some(span) if !span.is_disabled() => drop(runtime.spawn(task.instrument(span))),
            _ => drop(runtime.spawn(task)),
        }
        Ok(JobHandle::new(id, cell, false))
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

    /// Cancels the job of `asset_id`; `false` when there is none.
    pub fn cancel(&self, asset_id: &str) -> bool {
        match self.inner.jobs().get(asset_id) {
            Some(cell) => {
                cell.raise(CANCEL);
                true
            }
            None => false,
        }
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
    /// let handle = remediator.submit(Job::new("asset-1"), Failure::asset(2503, "unavailable")?)?;
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
        if let Some(d) = &self.inner.durable {
            let json = serde_json::to_string(&result).unwrap_or_default();
            let answer = d.store.report(target, &json, d.now()).await?;
            if matches!(answer, ReportAnswer::Applied { .. } | ReportAnswer::Ambiguous { .. }) {
                d.wake.notify_one();
            }
            return Ok(answer);
        }
        Ok(match target {
            ReportTarget::Attempt { job, attempt } => {
                let cell = self.inner.jobs().cells().find(|c| c.id == job).cloned();
                match cell {
                    None => ReportAnswer::Unknown,
                    Some(cell) => match cell.offer(Some(attempt), result) {
                        Offer::Taken => ReportAnswer::Applied { job },
                        Offer::Kept => ReportAnswer::Early { job },
                        Offer::Duplicate => ReportAnswer::Duplicate { job },
                        Offer::NotAwaited => ReportAnswer::OlderAttempt { job },
                    },
                }
            }
            // In memory, a report by asset is offered to the attempt under way.
            ReportTarget::Asset(asset) | ReportTarget::AssetEndedAt(asset, _) => {
                let cell = self.inner.jobs().get(asset).cloned();
                match cell {
                    None => ReportAnswer::Unknown,
                    Some(cell) => {
                        let job = cell.id;
                        match cell.offer(None, result) {
                            Offer::Taken => ReportAnswer::Applied { job },
                            Offer::Kept => ReportAnswer::Early { job },
                            Offer::Duplicate => ReportAnswer::Duplicate { job },
                            Offer::NotAwaited => ReportAnswer::OlderAttempt { job },
                        }
                    }
                }
            }
            ReportTarget::Reference(reference) => self.inner.report_by_reference(reference, result),
        })
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

    /// Cancels every running job.
    pub fn cancel_all(&self) {
        self.raise_all(CANCEL);
    }

    /// Stops taking new jobs, lets hook calls in flight finish within `deadline`, and returns every
    /// unfinished job's state for [`Remediator::resume`]. Each of those jobs' handles gives
    /// [`Outcome::Suspended`]; jobs whose calls finish in time may still end otherwise. See
    /// [`Remediator::resume`] for the round trip.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<SuspendedJob> {
        if let Some(d) = &self.inner.durable {
            // The store keeps every job: the claimer stops, and the jobs held here go back to it.
            d.stop();
        }
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
        std::mem::take(&mut *self.inner.suspended.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether it takes new jobs (it stops at `shutdown`).
    pub(super) fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
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

    /// How many jobs are running.
    pub fn active_jobs(&self) -> usize {
        self.inner.jobs().len()
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
