//! One job's walk, step by step, until it ends in exactly one outcome. A step is: decide ▶ (the retry budget
//! asked, at decision time) ▶ wait ▶ reconcile if the stage asks it ▶ the downstream's breaker ▶ the hook; then
//! decide again on what came back.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::call::{CallError, call};
use super::cell::{CANCEL, JobCell, SUSPEND};
use super::ending::{cancelled, dead_letter, internal_failure, recovered, suspended, verdict};
use super::events::{Event, HookName};
use super::guards::{Held, Probe, ask_budget, give_back, pass_breaker, settle};
use super::hooks::{Attempt, CredentialFix, Hooks, NO_CHANGES, Notice, Reconciled};
use super::job::{AttemptKey, Job};
use super::outcome::Outcome;
use super::shared::{Delivery, Inner};
use super::state::{MAX_STEPS_PER_FAILURE, State};
use super::verdict::VerdictKind;
use super::wait::{Stop, Wait};
use crate::classify::Failure;
use crate::classify::catalogue::Downstream;
use crate::decide::{Action, Decision};

/// Runs the job to its outcome and delivers it.
///
/// A job spends nearly all its life in a [`Wait`]: everything else is awaited boxed, so that the state a
/// sleeping job keeps (a hundred thousand of them at once in a large fleet) stays small. See the sizes with
/// `RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Zprint-type-sizes cargo build --release --lib`.
#[expect(clippy::manual_async_fn, reason = "an async fn would keep its arguments twice")]
pub(crate) fn run<H: Hooks>(mut parts: Parts<H>) -> impl Future<Output = ()> + Send {
    // An async block that uses its captures in place: an async fn would move its arguments into a second copy
    // (rust-lang/rust#62958), and a fleet keeps a hundred thousand of these futures.
    async move {
        // A panic inside the engine is a bug; the job still ends, failed, on the failure it had got to.
        let walked = AssertUnwindSafe(walk(&mut parts)).catch_unwind().await;
        let mut outcome =
            walked.unwrap_or_else(|_| internal_failure(&parts.state.failure, parts.state.history.attempts()));
        if let Outcome::Suspended { state } = &mut outcome {
            // The time spent so far, for `max_elapsed` and the recovery time after resume.
            state.history.set_elapsed(parts.started.elapsed());
            parts.delivery.inner.keep_suspended((**state).clone());
        }
        parts.end(outcome);
    }
}

impl<H> Parts<H> {
    /// Counts, tells and delivers the job's outcome; tokens lent to an attempt that was not made go back.
    fn end(&mut self, outcome: Outcome) {
        let inner = &*self.delivery.inner;
        give_back(inner, &mut self.state);
        inner.counters.outcome(outcome.kind());
        inner.emit(|| Event::Finished { asset_id: self.job.id().clone(), outcome: outcome.kind() });
        tracing::info!(asset = self.job.asset_id(), outcome = ?outcome.kind(), "job finished");
        self.delivery.finish(outcome);
    }
}

impl<H> Drop for Parts<H> {
    /// A job whose task is dropped before it ends (its runtime shut down) ends cancelled, so that no handle
    /// waits forever and `shutdown` does not wait for a job that is gone.
    fn drop(&mut self) {
        if !self.delivery.is_finished() {
            self.end(Outcome::Cancelled { attempts: self.state.history.attempts() });
        }
    }
}

/// What a job's task owns.
pub(crate) struct Parts<H> {
    pub(crate) job: Job,
    pub(crate) state: State,
    /// When the job's first failure happened, on the engine's clock.
    pub(crate) started: Instant,
    pub(crate) delivery: Delivery<H>,
}

/// The job's loop. An async block, like [`run`]'s, so that its captures are kept once.
#[expect(clippy::manual_async_fn, reason = "an async fn would keep its arguments twice")]
fn walk<H: Hooks>(parts: &mut Parts<H>) -> impl Future<Output = Outcome> + Send + '_ {
    async move {
        // Fields reached through `parts` rather than bound to locals: a local that lives across an await is kept
        // in the job's future, and a fleet keeps a hundred thousand of them.
        warm(parts);
        loop {
            // Hooks that answer at once would otherwise let this loop run without giving the runtime back.
            tokio::task::consume_budget().await;
            // A verdict stands: not even a cancellation keeps it from the `failed` hook.
            if parts.state.verdict.is_some() {
                let (inner, cell) = (&parts.delivery.inner, &parts.delivery.cell);
                return Box::pin(dead_letter(inner, &parts.job, &mut parts.state, cell)).await;
            }
            if parts.delivery.cell.is(CANCEL) {
                return cancelled(&parts.state);
            }
            parts.state.history.set_elapsed(parts.started.elapsed());
            let decision = parts
                .delivery
                .inner
                .policies
                .guard()
                .decide(&parts.state.failure, &parts.state.history, parts.job.context())
                .into_owned();
            // Shutting down, a job stops here; one that fails for good keeps its verdict, for resume to deliver.
            let fails = matches!(decision.action(), Action::Fail { .. });
            if parts.delivery.cell.is(SUSPEND) && !fails {
                return suspended(&parts.job, parts.state.clone());
            }
            note_decision(&parts.delivery.inner, &parts.job, &parts.state.failure, &decision);
            parts.state.steps = parts.state.steps.saturating_add(1);
            if parts.state.steps > MAX_STEPS_PER_FAILURE {
                let reason = format!(
                    "the policy took {MAX_STEPS_PER_FAILURE} steps on {} without a new failure (the rule at {} \
                     does not move on)",
                    parts.state.failure.key(),
                    decision.rule().origin()
                );
                parts.state.verdict = Some(verdict(&parts.state, VerdictKind::NoProgress, reason, None));
                continue;
            }

            // Borrowed, not cloned: whatever a job holds while it sleeps, a fleet holds a hundred thousand times.
            match decision.action() {
                Action::Fail { reason } => {
                    let kind = if decision.is_exhausted() { VerdictKind::Exhausted } else { VerdictKind::Policy };
                    if let Some(budget) = &parts.delivery.inner.budget {
                        // gRPC counts every failure of a code the policy retries, the last one too.
                        let _ = ask_budget(budget, &mut parts.state, &decision);
                    }
                    let rule = Some(decision.rule().origin().to_string());
                    parts.state.verdict = Some(verdict(&parts.state, kind, reason.to_string(), rule));
                }
                Action::Notify { .. } | Action::Reconcile => {
                    if let Some(budget) = &parts.delivery.inner.budget {
                        let _ = ask_budget(budget, &mut parts.state, &decision);
                    }
                    if let Some(end) = Box::pin(side_step(parts, &decision)).await {
                        return end;
                    }
                }
                _ => {
                    if let Some(budget) = &parts.delivery.inner.budget
                        && let Err(refused) = ask_budget(budget, &mut parts.state, &decision)
                    {
                        if let Some(end) = Box::pin(refused_retry(parts, &decision, refused)).await {
                            return end;
                        }
                        continue;
                    }
                    // The locals here are moved into the wait before it is awaited, so the job does not keep them
                    // beside it.
                    let remaining = parts.state.remaining.take();
                    // The clock as it was read just before the decision (reading it again costs a lock when time
                    // is paused).
                    let now = parts.started.checked_add(parts.state.history.elapsed()).unwrap_or_else(Instant::now);
                    match Wait::new(
                        &parts.delivery.cell,
                        now,
                        remaining.unwrap_or(decision.delay().unwrap_or_default()),
                    )
                    .await
                    {
                        Ok(()) => {}
                        Err(Stop::Cancelled) => return cancelled(&parts.state),
                        Err(Stop::Suspend { left }) => {
                            // Decided again on resume, and the budget asked again then.
                            give_back(&parts.delivery.inner, &mut parts.state);
                            parts.state.remaining = Some(left);
                            return suspended(&parts.job, parts.state.clone());
                        }
                    }
                    warm(parts);
                    let attempted = Box::pin(attempt(parts, &decision)).await;
                    if let Some(end) = attempted {
                        return end;
                    }
                }
            }
        }
    }
}

/// Reads one value from each part of a job's state and from its cell. A job wakes after a long sleep with
/// all of these out of the cache; the steps that follow would wait for them one by one, each read a few hundred
/// instructions after the last. Asked for together here, they arrive together.
fn warm<H>(parts: &Parts<H>) {
    let st = &parts.state;
    std::hint::black_box((
        st.history.touch(),
        st.failure.key(),
        st.remaining,
        parts.job.seed(),
        parts.started,
        parts.delivery.cell.is(CANCEL),
        // The id's allocation: the registry's copy of the id is dropped when the job ends.
        parts.job.asset_id().as_bytes().first().copied(),
    ));
}

fn note_decision<H: Hooks>(inner: &Inner<H>, job: &Job, failure: &Failure, decision: &Decision<'_>) {
    inner.counters.decision(failure.key(), decision.kind());
    let delay_ms = decision.delay().map(crate::millis::millis);
    inner.emit(|| Event::Decided {
        asset_id: job.id().clone(),
        failure: failure.key(),
        action: decision.kind(),
        delay_ms,
        stage: decision.stage(),
        attempt: decision.attempt(),
        rule: decision.rule().origin().to_string(),
    });
    tracing::debug!(
        asset = job.asset_id(),
        code = %failure.key(),
        action = %decision.kind(),
        delay_ms,
        rule = %decision.rule().origin(),
        attempt = decision.attempt(),
        "decision"
    );
    if let Some(e) = decision.script_error() {
        tracing::warn!(asset = job.asset_id(), error = %e, "a decide function failed and was passed over");
    }
}

/// A step that does not resubmit: `notify` or `reconcile`. `None` means: decide again.
async fn side_step<H: Hooks>(parts: &mut Parts<H>, decision: &Decision<'static>) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    match decision.action() {
        Action::Notify { channel, message } => {
            let notice =
                Notice { channel: channel.clone(), message: message.clone(), about: st.failure.key().to_string() };
            match call(inner, job, HookName::Notify, None, cell, || inner.hooks.notify(job, &notice)).await {
                // An operator message that cannot be delivered does not stop the remediation.
                Ok(()) | Err(CallError::Timeout | CallError::Error(_) | CallError::Panicked(_)) => {}
                Err(CallError::Cancelled) => return Some(cancelled(st)),
                Err(CallError::Aborted | CallError::Shutdown) => return Some(suspended(job, st.clone())),
            }
            st.history.record(decision);
            None
        }
        _ => {
            let answer = reconcile(inner, job, st, cell).await;
            match answer {
                // A call the shutdown cut off or did not start leaves no trace: resume asks again.
                Err(CallError::Aborted | CallError::Shutdown) => return Some(suspended(job, st.clone())),
                Err(CallError::Cancelled) => return Some(cancelled(st)),
                Ok(Reconciled::Done) => {
                    settle(inner, st, &mut Probe::none(st.failure.downstream()), true, true);
                    return Some(recovered(st, *started, true));
                }
                _ => st.history.record(decision),
            }
            match answer {
                Err(e) => call_failed(inner, st, e, st.failure.downstream()),
                _ => None,
            }
        }
    }
}

/// Asks the host whether the earlier attempt in fact succeeded.
async fn reconcile<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    cell: &JobCell,
) -> Result<Reconciled, CallError> {
    let answer = call(inner, job, HookName::Reconcile, None, cell, || inner.hooks.reconcile(job)).await;
    if !matches!(answer, Err(CallError::Aborted | CallError::Shutdown | CallError::Cancelled)) {
        st.reconciles = st.reconciles.saturating_add(1);
    }
    answer
}

/// A retry the budget refused: the job ends at once, unless its stage asks to reconcile first and the host
/// finds the earlier attempt done (a reconcile takes no token). `None` means: go on (a verdict is set).
async fn refused_retry<H: Hooks>(
    parts: &mut Parts<H>,
    decision: &Decision<'static>,
    refused: super::budget::Refused,
) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    inner.counters.budget_refusal();
    inner.emit(|| Event::BudgetRefused { asset_id: job.id().clone(), available: refused.available });
    if decision.stage_ref().is_some_and(|s| s.reconcile_first()) {
        match reconcile(inner, job, st, cell).await {
            Ok(Reconciled::Done) => {
                settle(inner, st, &mut Probe::none(st.failure.downstream()), true, true);
                return Some(recovered(st, *started, true));
            }
            Err(CallError::Aborted | CallError::Shutdown) => return Some(suspended(job, st.clone())),
            Err(CallError::Cancelled) => return Some(cancelled(st)),
            _ => {}
        }
    }
    let reason = format!("the fleet's retry budget refused another attempt: {refused}");
    st.verdict = Some(verdict(st, VerdictKind::BudgetExhausted, reason, None));
    None
}

/// Carries out a waiting action whose delay is over: reconcile first if the stage asks it, pass the breaker,
/// call the hook. `None` means: decide again.
async fn attempt<H: Hooks>(parts: &mut Parts<H>, decision: &Decision<'static>) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    // The calls are not boxed here: this future is boxed already, and lives only as long as the attempt.
    // The attempt is recorded once its call has answered (or timed out): a call lost to the shutdown deadline
    // leaves no trace, so that resume repeats it, with the same key.
    // The key borrows the id: cloning it would touch the id's allocation on every attempt.
    let key =
        AttemptKey { asset_id: job.asset_id(), job: job.job_id(), attempt: st.history.attempts().saturating_add(1) };
    let n = Some(key.attempt);

    if decision.stage_ref().is_some_and(|s| s.reconcile_first()) {
        match reconcile(inner, job, st, cell).await {
            Ok(Reconciled::Done) => {
                settle(inner, st, &mut Probe::none(st.failure.downstream()), true, true);
                return Some(recovered(st, *started, true));
            }
            Ok(Reconciled::NotDone) => {}
            // No attempt was made: nothing of the decision is recorded.
            Err(e) => return interrupted(inner, job, st, None, e),
        }
    }

    let mut probe = match pass_breaker(inner, job, st, cell).await {
        Ok(probe) => probe,
        Err(held) => {
            give_back(inner, st);
            return match held {
                Held::Cancelled => Some(cancelled(st)),
                Held::Suspended => {
                    // The delay is spent: resume does not wait it again.
                    st.remaining = Some(Duration::ZERO);
                    Some(suspended(job, st.clone()))
                }
                Held::TooLong(reason) => {
                    st.verdict = Some(verdict(st, VerdictKind::CircuitOpen, reason, None));
                    None
                }
            };
        }
    };

    let result = match decision.action() {
        Action::FixCredentials { scope } => {
            let scope = *scope;
            match call(inner, job, HookName::FixCredentials, None, cell, || inner.hooks.fix_credentials(job, scope))
                .await
            {
                Ok(CredentialFix::Fixed) => {
                    st.history.mark_repaired(scope);
                    call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, &NO_CHANGES, &key)).await
                }
                Ok(CredentialFix::CannotFix) => {
                    // Nothing was attempted: give the guards back and go on to the next stage.
                    give_back(inner, st);
                    probe.give_back();
                    st.history.skip_stage(decision);
                    return None;
                }
                Err(e) => Err(e),
            }
        }
        Action::Resubmit { amend } => {
            call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, amend, &key)).await
        }
        Action::Republish { target, new_reference_id } => {
            let hook = || inner.hooks.republish(job, target, *new_reference_id, &key);
            call(inner, job, HookName::Republish, n, cell, hook).await
        }
        _ => call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, &NO_CHANGES, &key)).await,
    };

    match result {
        Ok(Attempt::Succeeded) => {
            st.history.record(decision);
            settle(inner, st, &mut probe, true, true);
            Some(recovered(st, *started, false))
        }
        Ok(Attempt::Failed(next)) => {
            st.history.record(decision);
            // The downstream held if the asset now fails somewhere else; the attempt failed all the same.
            let held = next.downstream() != probe.downstream;
            settle(inner, st, &mut probe, held, false);
            st.failed_again(next);
            None
        }
        Err(CallError::Timeout) => {
            st.history.record(decision);
            settle(inner, st, &mut probe, false, false);
            call_failed(inner, st, CallError::Timeout, probe.downstream)
        }
        Err(e) => interrupted(inner, job, st, Some(decision), e),
    }
}

/// A hook call of an attempt that gave no answer (other than its own timeout): the attempt was not made, or its
/// answer is lost. `made`: the decision whose attempt the call was, if it was the attempt's own call (the
/// attempt is then recorded when the call fails). `None` means: decide again.
fn interrupted<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    made: Option<&Decision<'static>>,
    e: CallError,
) -> Option<Outcome> {
    give_back(inner, st);
    match e {
        CallError::Aborted | CallError::Shutdown => {
            // Not made, or its answer lost: resume repeats it, with the same key, at once.
            st.remaining = Some(Duration::ZERO);
            Some(suspended(job, st.clone()))
        }
        CallError::Cancelled => Some(cancelled(st)),
        e => {
            if let Some(decision) = made {
                st.history.record(decision);
            }
            call_failed(inner, st, e, st.failure.downstream())
        }
    }
}

/// A hook call without an answer: a timeout becomes the failure to decide on next; an error or a panic ends
/// the job (its verdict is set, for the `failed` hook).
fn call_failed<H: Hooks>(inner: &Inner<H>, st: &mut State, e: CallError, downstream: Downstream) -> Option<Outcome> {
    match e {
        CallError::Timeout => {
            let message = format!("a hook did not answer within {}", humantime::format_duration(inner.hook_timeout));
            st.failed_again(Failure::timeout(downstream, message));
        }
        CallError::Error(e) => {
            st.verdict = Some(verdict(st, VerdictKind::HookError, format!("a hook failed: {e}"), None));
        }
        CallError::Panicked(m) => {
            st.verdict = Some(verdict(st, VerdictKind::HookPanicked, format!("a hook panicked: {m}"), None));
        }
        // Handled by the callers, which know what the call was.
        CallError::Cancelled | CallError::Aborted | CallError::Shutdown => {}
    }
    None
}
