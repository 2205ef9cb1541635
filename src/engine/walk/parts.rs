//! What a job's task owns, and how it ends: counted, told and delivered once, even when the task is dropped.

use futures_util::FutureExt;
use tokio::time::Instant;

use super::cell::LOST;
use super::ledger::write_back;
use super::state::State;
use crate::engine::guards::give_back;
use crate::engine::job::Job;
use crate::engine::observe::events::Event;
use crate::engine::outcome::Outcome;
use crate::engine::replica::Stored;
use crate::engine::shared::Delivery;

impl<H> Parts<H> {
    /// Counts, tells and delivers the job's outcome; tokens lent to an attempt that was not made go back.
    pub(crate) fn end(&mut self, outcome: Outcome) {
        let inner = &*self.delivery.inner;
        give_back(inner, &mut self.state);
        inner.counters.outcome(outcome.kind());
        inner.emit(|| Event::Finished { asset_id: self.job.id().clone(), outcome: outcome.kind() });
        tracing::info!(asset = self.job.asset_id(), outcome = ?outcome.kind(), "job finished");
        self.delivery.finish(outcome);
    }

    /// Lets go of a job that goes on elsewhere (at rest in its store, or taken over): it leaves the registry,
    /// with no outcome.
    pub(crate) fn leave(&mut self) {
        self.delivery.leave();
    }
}

impl<H> Drop for Parts<H> {
    /// A job whose task is dropped before it ends (its runtime shut down, or the replica crashed) leaves the
    /// registry, so that `shutdown` does not wait for a job that is gone. On a store the job is not over: it
    /// stays there, and goes on from its last write once its lease expires. In the remediator's own memory
    /// store, which nothing else reads, it would never go on: it ends cancelled, so that no handle waits
    /// forever.
    fn drop(&mut self) {
        if self.delivery.is_finished() {
            return;
        }
        let inner = self.delivery.inner.clone();
        let d = &inner.durable;
        if d.private.is_none() || self.delivery.cell.is(LOST) {
            self.leave();
            return;
        }
        let outcome = Outcome::Cancelled { attempts: self.state.history.attempts() };
        let (id, epoch) = (self.stored.lease.job, self.stored.lease.epoch);
        // The memory store answers without waiting.
        let _ = write_back(d, &self.job, &self.state, &mut self.stored, &outcome).now_or_never();
        d.tell(id, &outcome);
        self.end(outcome);
        d.let_go(id, epoch, None);
    }
}

/// What a job's task owns.
pub(crate) struct Parts<H> {
    pub(crate) job: Job,
    pub(crate) state: State,
    /// When the job's first failure happened, on the engine's clock.
    pub(crate) started: Instant,
    pub(crate) delivery: Delivery<H>,
    /// The job's lease and what goes with its next write.
    pub(crate) stored: Box<Stored>,
}
