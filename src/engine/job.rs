//! One job's walk: decide, wait, pass the fleet guards, call the hook, and decide again on what comes back,
//! until the job ends in exactly one outcome.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::breaker::Gate;
use super::budget::Withdrawal;
use super::call::{CallError, call};
use super::events::{Event, HookName};
use super::hooks::{
    Attempt, AttemptKey, CredentialFix, Hooks, Job, NO_CHANGES, Notice, Reconciled, Verdict, VerdictKind,
};
use super::outcome::{Outcome, SuspendedJob};
use super::remediator::Inner;
use crate::catalogue::Downstream;
use crate::decision::Decision;
use crate::failure::{Failure, FailureKind};
use crate::history::History;
use crate::policy::Action;

/// Where a job stands: the failure being remediated (already recorded in the history), and what was left of
/// a delay when it was suspended.
pub(crate) struct State {
    pub(crate) failure: Failure,
    pub(crate) history: History,
    pub(crate) remaining: Option<Duration>,
}

/// Why a wait ended before its time.
enum Stop {
    Cancelled,
    Suspend { left: Duration },
}

/// What the fleet guards allowed.
struct Cleared {
    downstream: Downstream,
    probe: bool,
    withdrawal: Option<Withdrawal>,
}

/// Runs `job` from `state` to its outcome.
pub(crate) async fn run<H: Hooks>(inner: &Inner<H>, job: &Job, mut st: State, cancel: &CancellationToken) -> Outcome {
    let now = Instant::now();
    let started = now.checked_sub(st.history.elapsed()).unwrap_or(now);
    loop {
        if cancel.is_cancelled() {
            return cancelled(&st);
        }
        if inner.suspend.is_cancelled() {
            return suspended(job, st);
        }
        st.history.set_elapsed(started.elapsed());
        let decision = inner.policies.load().decide(&st.failure, &st.history, job.context()).into_owned();
        note_decision(inner, job, &st.failure, &decision);

        match decision.action().clone() {
            Action::Fail { reason } => {
                let kind = if decision.is_exhausted() { VerdictKind::Exhausted } else { VerdictKind::Policy };
                let rule = Some(decision.rule().origin().to_string());
                return failed(inner, job, &st, kind, reason.to_string(), rule, cancel).await;
            }
            Action::Notify { channel, message } => {
                let notice = Notice { channel, message, about: st.failure.key().to_string() };
                match call(inner, job, HookName::Notify, None, cancel, inner.hooks.notify(job, &notice)).await {
                    // An operator message that cannot be delivered does not stop the remediation.
                    Ok(()) | Err(CallError::Timeout | CallError::Error(_) | CallError::Panicked(_)) => {}
                    Err(CallError::Cancelled) => return cancelled(&st),
                    Err(CallError::Aborted) => return suspended(job, st),
                }
                st.history.record(&decision);
            }
            Action::Reconcile => {
                let answer = call(inner, job, HookName::Reconcile, None, cancel, inner.hooks.reconcile(job)).await;
                st.history.record(&decision);
                match answer {
                    Ok(Reconciled::Done) => return recovered(&st, started, true),
                    Ok(Reconciled::NotDone) => {}
                    Err(e) => {
                        let downstream = st.failure.downstream();
                        if let Some(end) = call_failed(inner, job, &mut st, e, downstream, cancel).await {
                            return end;
                        }
                    }
                }
            }
            action => {
                let delay = st.remaining.take().unwrap_or(decision.delay().unwrap_or_default());
                match wait(inner, cancel, delay).await {
                    Ok(()) => {}
                    Err(Stop::Cancelled) => return cancelled(&st),
                    Err(Stop::Suspend { left }) => {
                        st.remaining = Some(left);
                        return suspended(job, st);
                    }
                }
                let cleared = match clear_guards(inner, job, &st, cancel).await {
                    Ok(cleared) => cleared,
                    Err(end) => return end,
                };
                if let Some(end) = attempt(inner, job, &mut st, &decision, action, cleared, started, cancel).await {
                    return end;
                }
            }
        }
    }
}

fn note_decision<H: Hooks>(inner: &Inner<H>, job: &Job, failure: &Failure, decision: &Decision<'_>) {
    inner.counters.decision(failure.key(), decision.kind());
    inner.emit(|| Event::Decided {
        asset_id: job.id().clone(),
        failure: failure.key(),
        action: decision.kind(),
        delay_ms: decision.delay().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        stage: decision.stage(),
        attempt: decision.attempt(),
        rule: decision.rule().origin().to_string(),
    });
    tracing::debug!(
        asset = job.asset_id(),
        code = %failure.key(),
        action = %decision.kind(),
        delay_ms = decision.delay().map(|d| d.as_millis() as u64),
        rule = %decision.rule().origin(),
        attempt = decision.attempt(),
        "decision"
    );
    if let Some(e) = decision.script_error() {
        tracing::warn!(asset = job.asset_id(), error = %e, "a decide function failed and was passed over");
    }
}

/// Sleeps `delay`, unless the job is cancelled or the engine shuts down first.
async fn wait<H: Hooks>(inner: &Inner<H>, cancel: &CancellationToken, delay: Duration) -> Result<(), Stop> {
    if delay.is_zero() {
        return Ok(());
    }
    let until = Instant::now() + delay;
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Stop::Cancelled),
        _ = inner.suspend.cancelled() => Err(Stop::Suspend { left: until.saturating_duration_since(Instant::now()) }),
        _ = tokio::time::sleep_until(until) => Ok(()),
    }
}

/// Waits for the downstream's breaker, then takes the retry budget's tokens.
async fn clear_guards<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    cancel: &CancellationToken,
) -> Result<Cleared, Outcome> {
    let downstream = st.failure.downstream();
    let mut probe = false;
    if let Some(breakers) = &inner.breakers {
        let began = Instant::now();
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
                Gate::ForProbes => Instant::now() + breakers.config().open_for,
            };
            let patience = began + breakers.config().max_wait;
            if until > patience {
                let reason = format!("the {downstream} circuit breaker stayed open longer than the engine waits");
                return Err(failed(inner, job, st, VerdictKind::CircuitOpen, reason, None, cancel).await);
            }
            inner.emit(|| Event::BreakerWait { asset_id: job.id().clone(), downstream });
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(cancelled(st)),
                _ = inner.suspend.cancelled() => return Err(suspended(job, clone_state(st))),
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
                if probe && let Some(b) = &inner.breakers {
                    b.release_probe(downstream);
                }
                inner.counters.budget_refusal();
                inner.emit(|| Event::BudgetRefused { asset_id: job.id().clone(), available: refused.available });
                let reason = format!("the fleet's retry budget refused another attempt: {refused}");
                return Err(failed(inner, job, st, VerdictKind::BudgetExhausted, reason, None, cancel).await);
            }
        }
    }
    Ok(Cleared { downstream, probe, withdrawal })
}

/// Carries out a waiting action (its delay is over and the guards are passed). `None` means: decide again.
#[allow(clippy::too_many_arguments)]
async fn attempt<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    decision: &Decision<'static>,
    action: Action,
    cleared: Cleared,
    started: Instant,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    let before = st.history.clone();
    st.history.record(decision);
    let key = AttemptKey { asset_id: job.id().clone(), attempt: st.history.attempts() };
    let n = Some(key.attempt);

    let reconcile_first = decision.stage_ref().is_some_and(|s| s.reconcile_first());
    if reconcile_first {
        match call(inner, job, HookName::Reconcile, None, cancel, inner.hooks.reconcile(job)).await {
            Ok(Reconciled::Done) => {
                settle(inner, &cleared, true);
                return Some(recovered(st, started, true));
            }
            Ok(Reconciled::NotDone) => {}
            Err(e) => return interrupted(inner, job, st, before, &cleared, e, cancel).await,
        }
    }

    let result = match action {
        Action::FixCredentials { scope } => {
            match call(inner, job, HookName::FixCredentials, None, cancel, inner.hooks.fix_credentials(job, scope))
                .await
            {
                Ok(CredentialFix::Fixed) => {
                    st.history.mark_repaired(scope);
                    call(inner, job, HookName::Resubmit, n, cancel, inner.hooks.resubmit(job, &NO_CHANGES, &key)).await
                }
                Ok(CredentialFix::CannotFix) => {
                    // Nothing was attempted: give the guards back and go on to the next stage.
                    unwind_guards(inner, &cleared);
                    st.history.skip_stage(decision);
                    return None;
                }
                Err(e) => Err(e),
            }
        }
        Action::Resubmit { amend } => {
            call(inner, job, HookName::Resubmit, n, cancel, inner.hooks.resubmit(job, &amend, &key)).await
        }
        Action::Republish { target, new_reference_id } => {
            let hook = inner.hooks.republish(job, &target, new_reference_id, &key);
            call(inner, job, HookName::Republish, n, cancel, hook).await
        }
        _ => call(inner, job, HookName::Resubmit, n, cancel, inner.hooks.resubmit(job, &NO_CHANGES, &key)).await,
    };

    match result {
        Ok(Attempt::Succeeded) => {
            settle(inner, &cleared, true);
            Some(recovered(st, started, false))
        }
        Ok(Attempt::Failed(next)) => {
            // The downstream held if the asset now fails somewhere else.
            let held = next.downstream() != cleared.downstream;
            settle(inner, &cleared, held);
            st.history.record_failure(&next);
            st.failure = next;
            None
        }
        Err(e) => interrupted(inner, job, st, before, &cleared, e, cancel).await,
    }
}

/// A hook call of an attempt that gave no answer.
async fn interrupted<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    before: History,
    cleared: &Cleared,
    e: CallError,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    match e {
        CallError::Cancelled => {
            unwind_guards(inner, cleared);
            Some(cancelled(st))
        }
        CallError::Aborted => {
            // The call's answer is lost: resume repeats it, with the same attempt key.
            unwind_guards(inner, cleared);
            st.history = before;
            st.remaining = Some(Duration::ZERO);
            Some(suspended(job, clone_state(st)))
        }
        CallError::Timeout => {
            settle(inner, cleared, false);
            call_failed(inner, job, st, e, cleared.downstream, cancel).await
        }
        CallError::Error(_) | CallError::Panicked(_) => {
            unwind_guards(inner, cleared);
            call_failed(inner, job, st, e, cleared.downstream, cancel).await
        }
    }
}

/// A hook call without an answer, outside an attempt's bookkeeping: a timeout becomes the failure to decide on
/// next; an error or a panic ends the job.
async fn call_failed<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    e: CallError,
    downstream: Downstream,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    match e {
        CallError::Timeout => {
            let message = format!("a hook did not answer within {}", humantime::format_duration(inner.hook_timeout));
            let timeout = Failure::timeout(downstream, message);
            st.history.record_failure(&timeout);
            st.failure = timeout;
            None
        }
        CallError::Error(e) => {
            let reason = format!("a hook failed: {e}");
            Some(failed(inner, job, st, VerdictKind::HookError, reason, None, cancel).await)
        }
        CallError::Panicked(m) => {
            let reason = format!("a hook panicked: {m}");
            Some(failed(inner, job, st, VerdictKind::HookPanicked, reason, None, cancel).await)
        }
        CallError::Cancelled => Some(cancelled(st)),
        CallError::Aborted => Some(suspended(job, clone_state(st))),
    }
}

/// Records how an attempt went with the fleet guards.
fn settle<H: Hooks>(inner: &Inner<H>, cleared: &Cleared, success: bool) {
    if let Some(budget) = &inner.budget {
        match success {
            true => budget.succeeded(cleared.withdrawal),
            false => budget.failed(),
        }
    }
    if let Some(breakers) = &inner.breakers
        && let Some(t) = breakers.record(cleared.downstream, success, cleared.probe, Instant::now())
    {
        inner.breaker_changed(t);
    }
}

/// Gives back what the guards lent to an attempt that did not happen.
fn unwind_guards<H: Hooks>(inner: &Inner<H>, cleared: &Cleared) {
    if let (Some(budget), Some(w)) = (&inner.budget, cleared.withdrawal) {
        budget.refund(w);
    }
    if cleared.probe
        && let Some(b) = &inner.breakers
    {
        b.release_probe(cleared.downstream);
    }
}

fn clone_state(st: &State) -> State {
    State { failure: st.failure.clone(), history: st.history.clone(), remaining: st.remaining }
}

fn recovered(st: &State, started: Instant, reconciled: bool) -> Outcome {
    Outcome::Recovered { attempts: st.history.attempts(), elapsed: started.elapsed(), reconciled }
}

fn cancelled(st: &State) -> Outcome {
    Outcome::Cancelled { attempts: st.history.attempts() }
}

fn suspended(job: &Job, st: State) -> Outcome {
    Outcome::Suspended {
        state: Box::new(SuspendedJob {
            job: job.clone(),
            failure: st.failure,
            history: st.history,
            remaining_delay: st.remaining,
        }),
    }
}

/// Ends the job failed, telling the host's `failed` hook.
async fn failed<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    kind: VerdictKind,
    reason: String,
    rule: Option<String>,
    cancel: &CancellationToken,
) -> Outcome {
    let verdict = Verdict {
        kind,
        reason,
        hint: format!("{} {}", st.failure.key(), st.failure.name()),
        last_failure: st.failure.clone(),
        rule,
        attempts: st.history.attempts(),
    };
    // The verdict stands whatever the hook answers; its trouble shows in events and counters.
    let _ = call(inner, job, HookName::Failed, None, cancel, inner.hooks.failed(job, &verdict)).await;
    Outcome::Failed { verdict: Box::new(verdict) }
}
