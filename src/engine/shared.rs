//! What every job of one remediator shares ([`Inner`]), and what a job's task holds to end itself in it
//! ([`Delivery`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast};

use super::guards::breaker::{Breakers, Transition};
use super::guards::budget::RetryBudget;
use super::guards::fleet::Guards;
use super::observe::counters::Counters;
use super::observe::events::Event;
use super::outcome::Outcome;
use super::replica::Durable;
use super::replica::registry::Registry;
use super::walk::cell::JobCell;
use crate::decide::LivePolicies;

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
    /// How long a submitted attempt's result may take before the engine asks `check`.
    pub(crate) await_result: Duration,
    /// The store the jobs live in, with this replica's claimer, heartbeat and held jobs.
    pub(crate) durable: Durable,
}

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

    /// This replica's guards and the store that shares them.
    pub(crate) fn guards(&self) -> Guards<'_> {
        let d = &self.durable;
        Guards { store: &*d.store, clock: &*d.clock, budget: self.budget.as_ref(), breakers: self.breakers.as_ref() }
    }

    /// A change of this replica's breaker: counted, told, and noted for the fleet.
    pub(crate) fn breaker_changed(&self, t: Transition) {
        let d = &self.durable;
        if let Some(fleet) = &d.fleet {
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
