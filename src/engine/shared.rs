//! What every job of one remediator shares ([`Inner`]), and what a job's task holds to end itself in it
//! ([`Delivery`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::time::Instant;

use super::breaker::{Breakers, Transition};
use super::budget::RetryBudget;
use super::cell::{JobCell, Offer};
use super::counters::Counters;
use super::durable::Durable;
use super::events::Event;
use super::fleet::Guards;
use super::outcome::{Outcome, SuspendedJob};
use super::registry::Registry;
use super::report::Reported;
use crate::decide::LivePolicies;
use crate::store::{JobId, ReportAnswer};

/// What every job of one remediator shares.
pub(crate) struct Inner<H> {
    pub(crate) policies: Arc<LivePolicies>,
    pub(crate) hooks: H,
    pub(crate) hook_timeout: Duration,
    pub(crate) hook_slots: Semaphore,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) breakers: Option<Breakers>,
    pub(crate) counters: Counters,
    pub(crate) events: broadcast::Sender<Event>,
    /// Whether anyone ever subscribed to the events.
    pub(crate) listened: AtomicBool,
    pub(crate) jobs: Mutex<Registry>,
    /// Turned off by `shutdown`, under the jobs' lock, so that no job starts unseen by it.
    pub(crate) accepting: AtomicBool,
    /// Told whenever the last running job ends, for `shutdown`.
    pub(crate) idle: Notify,
    pub(crate) suspended: Mutex<Vec<SuspendedJob>>,
    /// The next job id.
    pub(crate) job_ids: AtomicU64,
    /// How long a submitted attempt's result may take before the engine asks `check`.
    pub(crate) await_result: Duration,
    /// Submitted attempts by reference, for reports addressed by reference.
    pub(crate) references: Mutex<References>,
    /// The durable store the jobs live in, if any (else they live in their tasks).
    pub(crate) durable: Option<Durable>,
}

/// Submitted attempts by reference, and reports that came for a reference before its attempt was known.
#[derive(Default)]
pub(crate) struct References {
    attempts: HashMap<String, Submitted>,
    held: HashMap<String, (Reported, Instant)>,
    inserts: usize,
}

/// A submitted attempt of a job.
struct Submitted {
    cell: Weak<JobCell>,
    job: JobId,
    attempt: u32,
}

/// How long a report for an unknown reference is held, in case its attempt is being submitted.
pub(crate) const HOLD_REPORTS_FOR: Duration = Duration::from_secs(3600);

impl<H> Inner<H> {
    /// Sends an event, building it only when someone listens.
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        // An atomic flag, not `receiver_count` (which takes the channel's lock on every event).
        if self.listened.load(Ordering::Relaxed) {
            self.send(event);
        }
    }

    /// Builds and sends an event, out of line: most remediators have no listener, and the code that builds an
    /// event would otherwise sit in the middle of every step's code, in the instruction cache.
    #[cold]
    #[inline(never)]
    fn send(&self, event: impl FnOnce() -> Event) {
        let _ = self.events.send(event());
    }

    /// Keeps the state of a job that the shutdown suspended, for `shutdown` to return.
    pub(crate) fn keep_suspended(&self, state: SuspendedJob) {
        self.suspended.lock().unwrap_or_else(|e| e.into_inner()).push(state);
    }

    /// Remembers a submitted attempt's reference; a report held for it is returned.
    pub(crate) fn remember_reference(
        &self,
        reference: &str,
        job: JobId,
        attempt: u32,
        cell: &Arc<JobCell>,
    ) -> Option<Reported> {
        let mut refs = self.references.lock().unwrap_or_else(|e| e.into_inner());
        refs.inserts += 1;
        if refs.inserts.is_multiple_of(1024) {
            // Ended jobs' references go now and then, so that the map stays the size of the live jobs.
            refs.attempts.retain(|_, s| s.cell.strong_count() > 0);
            let now = Instant::now();
            refs.held.retain(|_, (_, at)| now.saturating_duration_since(*at) < HOLD_REPORTS_FOR);
        }
        refs.attempts.insert(reference.to_owned(), Submitted { cell: Arc::downgrade(cell), job, attempt });
        refs.held.remove(reference).map(|(report, _)| report)
    }

    /// Hands a report addressed by reference to the attempt it names, or holds it.
    pub(crate) fn report_by_reference(&self, reference: &str, report: Reported) -> ReportAnswer {
        let mut refs = self.references.lock().unwrap_or_else(|e| e.into_inner());
        let Some(submitted) = refs.attempts.get(reference) else {
            let now = Instant::now();
            refs.held.retain(|_, (_, at)| now.saturating_duration_since(*at) < HOLD_REPORTS_FOR);
            refs.held.insert(reference.to_owned(), (report, now));
            return ReportAnswer::Held;
        };
        let job = submitted.job;
        let Some(cell) = submitted.cell.upgrade() else { return ReportAnswer::Finished { job } };
        let attempt = submitted.attempt;
        drop(refs);
        match cell.offer(Some(attempt), report) {
            Offer::Taken => ReportAnswer::Applied { job },
            Offer::Kept => ReportAnswer::Early { job },
            Offer::Duplicate => ReportAnswer::Duplicate { job },
            Offer::NotAwaited => ReportAnswer::OlderAttempt { job },
        }
    }

    /// A new job's id.
    pub(crate) fn next_job_id(&self) -> JobId {
        JobId(self.job_ids.fetch_add(1, Ordering::Relaxed))
    }

    /// This replica's guards and the store that shares them.
    pub(crate) fn guards<'a>(&'a self, d: &'a Durable) -> Guards<'a> {
        Guards { store: &*d.store, clock: &*d.clock, budget: self.budget.as_ref(), breakers: self.breakers.as_ref() }
    }

    /// A change of this replica's breaker: counted, told, and noted for the fleet.
    pub(crate) fn breaker_changed(&self, t: Transition) {
        if let Some(d) = &self.durable
            && let Some(fleet) = &d.fleet
        {
            let open_until = self.breakers.as_ref().and_then(|b| b.open_until(t.downstream));
            fleet.noted(d.now(), t, open_until);
        }
        self.breaker_seen(t);
    }

    /// A change of a breaker, counted and told (another replica's, taken in here, is not noted again).
    pub(crate) fn breaker_seen(&self, t: Transition) {
        self.counters.breaker(t.downstream, t.to);
        tracing::info!(downstream = %t.downstream, from = ?t.from, to = ?t.to, "circuit breaker");
        self.emit(|| Event::BreakerChanged { downstream: t.downstream, from: t.from, to: t.to });
    }

    pub(crate) fn jobs(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Held by a job's task: ends the job in the registry and delivers its outcome (the job's parts deliver
/// `Cancelled` if the task is dropped before).
pub(crate) struct Delivery<H> {
    pub(crate) inner: Arc<Inner<H>>,
    /// Where the job is in the registry.
    pub(crate) hash: u64,
    pub(crate) cell: Arc<JobCell>,
    pub(crate) finished: bool,
}

impl<H> Delivery<H> {
    /// Whether the outcome is delivered.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Leaves the registry without an outcome: the job goes on elsewhere.
    pub(crate) fn leave(&mut self) {
        self.finished = true;
        let mut jobs = self.inner.jobs();
        jobs.leave(self.hash, &self.cell);
        if jobs.is_empty() {
            self.inner.idle.notify_waiters();
        }
    }

    /// Leaves the registry first, so that a report arriving once the outcome is known starts a new job.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut jobs = self.inner.jobs();
            jobs.leave(self.hash, &self.cell);
            if jobs.is_empty() {
                self.inner.idle.notify_waiters();
            }
        }
        self.cell.deliver(outcome);
    }
}
