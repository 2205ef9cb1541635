//! The fleet guards around one attempt: the downstream's circuit breaker and the retry budget, and what they
//! are owed until the attempt settles with them.

use tokio::time::Instant;

use super::breaker::{Breakers, Gate};
use super::budget::{RetryBudget, Withdrawal};
use super::cell::{CANCEL, JobCell, SUSPEND};
use super::ending::{cancelled, failed, suspended};
use super::events::Event;
use super::hooks::{Hooks, Job, VerdictKind};
use super::outcome::Outcome;
use super::shared::Inner;
use super::state::State;
use super::wait::later;
use crate::classify::FailureKind;
use crate::classify::catalogue::Downstream;

/// What the fleet guards allowed. Until the attempt settles with them, they are owed: dropped unsettled (the
/// attempt's future dropped half-way, because its runtime stopped or the engine panicked), it gives back the
/// budget's tokens and the breaker's probe, so that a breaker never stays half-open for a probe that is gone.
pub(super) struct Cleared<'a> {
    pub(super) downstream: Downstream,
    /// The breaker's half-open generation, when this attempt is one of its probes.
    probe: Option<u64>,
    withdrawal: Option<Withdrawal>,
    budget: Option<&'a RetryBudget>,
    breakers: Option<&'a Breakers>,
    pub(super) settled: bool,
}

impl<'a> Cleared<'a> {
    pub(super) fn new<H>(
        inner: &'a Inner<H>,
        downstream: Downstream,
        probe: Option<u64>,
        withdrawal: Option<Withdrawal>,
    ) -> Self {
        let (budget, breakers) = (inner.budget.as_ref(), inner.breakers.as_ref());
        Cleared { downstream, probe, withdrawal, budget, breakers, settled: false }
    }

    /// Gives back what the guards lent to an attempt that did not happen.
    pub(super) fn give_back(&mut self) {
        self.settled = true;
        if let (Some(budget), Some(w)) = (self.budget, self.withdrawal) {
            budget.refund(w);
        }
        if let (Some(generation), Some(b)) = (self.probe, self.breakers) {
            b.release_probe(self.downstream, generation);
        }
    }
}

impl Drop for Cleared<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.give_back();
        }
    }
}

/// Waits for the downstream's breaker, then takes the retry budget's tokens.
pub(super) async fn clear_guards<'a, H: Hooks>(
    inner: &'a Inner<H>,
    job: &Job,
    st: &State,
    cell: &JobCell,
) -> Result<Cleared<'a>, Outcome> {
    let downstream = st.failure.downstream();
    let mut probe = None;
    if let Some(breakers) = &inner.breakers {
        let began = Instant::now();
        let mut announced = false;
        loop {
            let changed = breakers.changed(downstream).notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (gate, transition) = breakers.gate(downstream, Instant::now());
            if let Some(t) = transition {
                inner.breaker_changed(t);
            }
            let until = match gate {
                Gate::Pass { probe: p } => {
                    probe = p;
                    break;
                }
                Gate::Until(until) => until,
                Gate::ForProbes => later(Instant::now(), breakers.config().open_for),
            };
            let patience = later(began, breakers.config().max_wait);
            if until > patience {
                let reason = format!("the {downstream} circuit breaker stayed open longer than the engine waits");
                return Err(failed(inner, job, st, VerdictKind::CircuitOpen, reason, None, cell).await);
            }
            if !announced {
                inner.emit(|| Event::BreakerWait { asset_id: job.id().clone(), downstream });
                announced = true;
            }
            tokio::select! {
                biased;
                _ = cell.raised(CANCEL | SUSPEND) => match cell.is(CANCEL) {
                    true => return Err(cancelled(st)),
                    false => return Err(suspended(job, st.clone())),
                },
                _ = tokio::time::sleep_until(until) => {}
                _ = changed => {}
            }
        }
    }
    let mut withdrawal = None;
    if let Some(budget) = &inner.budget {
        match budget.try_acquire(st.failure.kind() == FailureKind::Timeout) {
            Ok(w) => withdrawal = Some(w),
            Err(refused) => {
                // Nothing is attempted: the breaker's probe, if this was one, goes back.
                Cleared::new(inner, downstream, probe, None).give_back();
                inner.counters.budget_refusal();
                inner.emit(|| Event::BudgetRefused { asset_id: job.id().clone(), available: refused.available });
                let reason = format!("the fleet's retry budget refused another attempt: {refused}");
                return Err(failed(inner, job, st, VerdictKind::BudgetExhausted, reason, None, cell).await);
            }
        }
    }
    Ok(Cleared::new(inner, downstream, probe, withdrawal))
}

/// Records how an attempt went with the fleet guards: whether the downstream held, and whether the attempt
/// succeeded.
pub(super) fn settle<H: Hooks>(inner: &Inner<H>, cleared: &mut Cleared<'_>, held: bool, succeeded: bool) {
    cleared.settled = true;
    if let Some(budget) = &inner.budget {
        match succeeded {
            true => budget.succeeded(cleared.withdrawal),
            false => budget.failed(),
        }
    }
    if let Some(breakers) = &inner.breakers
        && let Some(t) = breakers.record(cleared.downstream, held, cleared.probe, Instant::now())
    {
        inner.breaker_changed(t);
    }
}
