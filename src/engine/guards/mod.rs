//! The fleet guards around one step: the retry budget, asked when a retry is decided, and the downstream's
//! circuit breaker, passed just before the hook is called.

pub(crate) mod breaker;
pub(crate) mod budget;
pub(crate) mod fleet;

use tokio::time::Instant;

use self::breaker::{Breakers, Gate};
use self::budget::{ErrorClass, Refused, RetryBudget, Withdrawal};
use crate::classify::catalogue::Downstream;
use crate::decide::Decision;
use crate::engine::job::Job;
use crate::engine::observe::events::Event;
use crate::engine::shared::Inner;
use crate::engine::walk::state::State;
use crate::engine::walk::wait::later;

/// Asks the retry budget about the decision just made, as its discipline counts: gRPC throttling takes a token
/// for the first decision on each failure whose rule retries (the job's first failure included), and refuses a
/// retry while the bucket is at half or below; the AWS quota takes a retry's cost, by class of failure, when a
/// retry is decided. What it lends stays in `st.lent` until the attempt is made or given up.
pub(crate) fn ask_budget(budget: &RetryBudget, st: &mut State, decision: &Decision<'_>) -> Result<(), Refused> {
    let retrying = decision.kind().awaits_outcome();
    if budget.is_grpc() {
        let rule_retries = || decision.rule().policy().stages().iter().any(|s| s.action().kind().awaits_outcome());
        if st.steps == 1 && rule_retries() {
            let counted = budget.failed_retryable();
            if retrying && counted.is_ok() {
                st.more().lent = Some(Withdrawal::NONE);
            }
            return if retrying { counted } else { Ok(()) };
        }
        if retrying {
            let lent = budget.try_acquire(ErrorClass::of(&st.failure))?;
            st.more().lent = Some(lent);
        }
        return Ok(());
    }
    if retrying {
        let lent = budget.try_acquire(ErrorClass::of(&st.failure))?;
        st.more().lent = Some(lent);
    }
    Ok(())
}

/// Gives back what the budget lent to an attempt that was not made.
pub(crate) fn give_back<H>(inner: &Inner<H>, st: &mut State) {
    if let (Some(budget), Some(lent)) = (&inner.budget, st.take_lent()) {
        budget.refund(lent);
    }
}

/// A probe of a half-open breaker, owed back until its attempt settles: dropped unsettled (the attempt's future
/// dropped half-way, because its runtime stopped or the engine panicked), it frees the probe's place, so that
/// a breaker never stays half-open for a probe that is gone.
pub(crate) struct Probe<'a> {
    pub(crate) downstream: Downstream,
    generation: Option<u64>,
    breakers: Option<&'a Breakers>,
}

impl<'a> Probe<'a> {
    /// No probe: the breaker was closed, or there are none.
    pub(crate) fn none(downstream: Downstream) -> Self {
        Probe { downstream, generation: None, breakers: None }
    }

    /// Frees the probe's place without a result.
    pub(crate) fn give_back(&mut self) {
        if let (Some(generation), Some(b)) = (self.generation.take(), self.breakers) {
            b.release_probe(self.downstream, generation);
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Why a job did not get past its breaker.
pub(crate) enum Held {
    /// It would wait longer than the breaker's `max_wait`.
    TooLong(String),
    /// It must wait this long: it rests in the store meanwhile, and decides again when it is due.
    Rest(std::time::Duration),
}

/// Asks the downstream's breaker: a probe when it lets the job through now, else how long the job rests before
/// it asks again (or why it does not wait at all).
///
/// A job rests until the breaker half-opens; one that finds it half-open, until its probe's call must have
/// answered (the hook timeout, at most `open_for`). To that each job adds its place in the release, spread
/// over `release_over` ([`Breakers::rest_place`]), so that the jobs that waited do not all come back at once.
pub(crate) fn pass_breaker<'a, H>(inner: &'a Inner<H>, job: &Job, st: &State) -> Result<Probe<'a>, Held> {
    let downstream = st.failure.downstream();
    let Some(breakers) = &inner.breakers else { return Ok(Probe::none(downstream)) };
    let now = Instant::now();
    let (gate, transition) = breakers.gate(downstream, now);
    if let Some(t) = transition {
        inner.breaker_changed(t);
    }
    let until = match gate {
        Gate::Pass { probe: Some(generation) } => {
            return Ok(Probe { downstream, generation: Some(generation), breakers: Some(breakers) });
        }
        Gate::Pass { probe: None } => return Ok(Probe::none(downstream)),
        Gate::Until(until) => until,
        Gate::ForProbes => later(now, inner.hook_timeout.min(breakers.config().open_for)),
    };
    if until > later(now, breakers.config().max_wait) {
        return Err(Held::TooLong(format!(
            "the {downstream} circuit breaker stayed open longer than the engine waits ({})",
            humantime::format_duration(breakers.config().max_wait)
        )));
    }
    inner.emit(|| Event::BreakerWait { asset_id: job.id().clone(), downstream });
    let place = breakers.config().release_over.mul_f64(breakers.rest_place(downstream));
    Err(Held::Rest(until.saturating_duration_since(now) + place))
}

/// With shared guards, around a held job's wait: before it, the store is given what this replica's guards did
/// (`taking_in` false); after it, what the fleet's did is taken in, as a claim would.
pub(crate) async fn sync_fleet<H>(inner: &Inner<H>, st: &State, taking_in: bool) {
    let Some(fleet) = &inner.durable.fleet else { return };
    if !taking_in {
        fleet.after(inner.guards()).await;
    } else if let Some(t) = fleet.before(inner.guards(), st.failure.downstream()).await {
        inner.breaker_seen(t);
    }
}

/// Records how an attempt went with the fleet guards: whether the downstream held, and whether the attempt
/// succeeded (the budget gets back what it lent; a failed attempt's tokens stay spent).
pub(crate) fn settle<H>(inner: &Inner<H>, st: &mut State, probe: &mut Probe<'_>, held: bool, succeeded: bool) {
    let lent = st.take_lent();
    if let Some(budget) = &inner.budget {
        if succeeded {
            // The last attempt paid for gives its cost back (AWS); gRPC adds its ratio for the success.
            let paid = st.more().paid.take();
            budget.succeeded(lent.or(paid));
        } else {
            st.more().paid = lent;
        }
    }
    let generation = probe.generation.take();
    if let Some(breakers) = &inner.breakers
        && let Some(t) = breakers.record(probe.downstream, held, generation, Instant::now())
    {
        inner.breaker_changed(t);
    }
}
