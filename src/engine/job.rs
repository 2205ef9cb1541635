//! One job's walk: decide, wait, pass the fleet guards, call the hook, and decide again on what comes back,
//! until the job ends in exactly one outcome.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::call::{CallError, call};
use super::cell::{CANCEL, JobCell, SUSPEND};
use super::ending::{cancelled, failed, internal_failure, recovered, suspended};
use super::events::{Event, HookName};
use super::guards::{Cleared, clear_guards, settle};
use super::hooks::{Attempt, AttemptKey, CredentialFix, Hooks, Job, NO_CHANGES, Notice, Reconciled, VerdictKind};
use super::outcome::Outcome;
use super::shared::{Delivery, Inner};
use super::state::State;
use super::wait::{Stop, Wait};
use crate::classify::Failure;
use crate::classify::catalogue::Downstream;
use crate::decide::{Action, Decision};

/// Runs the job to its outcome and delivers it.
///
/// A job spends nearly all its life in a [`Wait`]: everything else is awaited boxed, so that the state a
/// sleeping job keeps (a hundred thousand of them at once in a large fleet) stays small. With tokio 1.54 on
/// x86-64 this future is 536 bytes and the task tokio keeps it in 640 (a multiple of 128); see the sizes with
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
    /// Counts, tells and delivers the job's outcome.
    fn end(&mut self, outcome: Outcome) {
        let inner = &*self.delivery.inner;
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
            if parts.delivery.cell.is(CANCEL) {
                return cancelled(&parts.state);
            }
            if parts.delivery.cell.is(SUSPEND) {
                return suspended(&parts.job, parts.state.clone());
            }
            parts.state.history.set_elapsed(parts.started.elapsed());
            let decision = parts
                .delivery
                .inner
                .policies
                .guard()
                .decide(&parts.state.failure, &parts.state.history, parts.job.context())
                .into_owned();
            note_decision(&parts.delivery.inner, &parts.job, &parts.state.failure, &decision);

            // Borrowed, not cloned: whatever a job holds while it sleeps, a fleet holds a hundred thousand times.
            match decision.action() {
                Action::Fail { reason } => {
                    let kind = if decision.is_exhausted() { VerdictKind::Exhausted } else { VerdictKind::Policy };
                    let rule = Some(decision.rule().origin().to_string());
                    return Box::pin(failed(
                        &parts.delivery.inner,
                        &parts.job,
                        &parts.state,
                        kind,
                        reason.to_string(),
                        rule,
                        &parts.delivery.cell,
                    ))
                    .await;
                }
                Action::Notify { channel, message } => {
                    let notice = Notice {
                        channel: channel.clone(),
                        message: message.clone(),
                        about: parts.state.failure.key().to_string(),
                    };
                    match Box::pin(call(
                        &parts.delivery.inner,
                        &parts.job,
                        HookName::Notify,
                        None,
                        &parts.delivery.cell,
                        || parts.delivery.inner.hooks.notify(&parts.job, &notice),
                    ))
                    .await
                    {
                        // An operator message that cannot be delivered does not stop the remediation.
                        Ok(()) | Err(CallError::Timeout | CallError::Error(_) | CallError::Panicked(_)) => {}
                        Err(CallError::Cancelled) => return cancelled(&parts.state),
                        Err(CallError::Aborted) => return suspended(&parts.job, parts.state.clone()),
                    }
                    parts.state.history.record(&decision);
                }
                Action::Reconcile => {
                    let answer = Box::pin(call(
                        &parts.delivery.inner,
                        &parts.job,
                        HookName::Reconcile,
                        None,
                        &parts.delivery.cell,
                        || parts.delivery.inner.hooks.reconcile(&parts.job),
                    ))
                    .await;
                    match &answer {
                        // A call cut off by the shutdown deadline leaves no trace: resume asks again.
                        Err(CallError::Aborted) => return suspended(&parts.job, parts.state.clone()),
                        Err(CallError::Cancelled) => return cancelled(&parts.state),
                        _ => parts.state.history.record(&decision),
                    }
                    match answer {
                        Ok(Reconciled::Done) => return recovered(&parts.state, parts.started, true),
                        Ok(Reconciled::NotDone) => {}
                        Err(e) => {
                            let downstream = parts.state.failure.downstream();
                            if let Some(end) = Box::pin(call_failed(
                                &parts.delivery.inner,
                                &parts.job,
                                &mut parts.state,
                                e,
                                downstream,
                                &parts.delivery.cell,
                            ))
                            .await
                            {
                                return end;
                            }
                        }
                    }
                }
                _ => {
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
                            parts.state.remaining = Some(left);
                            return suspended(&parts.job, parts.state.clone());
                        }
                    }
                    warm(parts);
                    // The delay is spent: a suspension while the guards hold the job back must not wait it again.
                    parts.state.remaining = Some(Duration::ZERO);
                    let cleared = if parts.delivery.inner.breakers.is_none() && parts.delivery.inner.budget.is_none() {
                        Cleared::new(&parts.delivery.inner, parts.state.failure.downstream(), None, None)
                    } else {
                        match Box::pin(clear_guards(
                            &parts.delivery.inner,
                            &parts.job,
                            &parts.state,
                            &parts.delivery.cell,
                        ))
                        .await
                        {
                            Ok(cleared) => cleared,
                            Err(end) => return end,
                        }
                    };
                    parts.state.remaining = None;
                    let action = decision.action().clone();
                    let attempted = Box::pin(attempt(
                        &parts.delivery.inner,
                        &parts.job,
                        &mut parts.state,
                        &decision,
                        action,
                        cleared,
                        parts.started,
                        &parts.delivery.cell,
                    ))
                    .await;
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

/// Carries out a waiting action (its delay is over and the guards are passed). `None` means: decide again.
#[allow(clippy::too_many_arguments)]
async fn attempt<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    decision: &Decision<'static>,
    action: Action,
    mut cleared: Cleared<'_>,
    started: Instant,
    cell: &JobCell,
) -> Option<Outcome> {
    // The calls are not boxed here: this future is boxed already, and lives only as long as the attempt.
    // The attempt is recorded once its call has answered (or timed out): a call lost to the shutdown deadline
    // leaves no trace, so that resume repeats it, with the same key.
    // The key borrows the id: cloning it would touch the id's allocation on every attempt.
    let key = AttemptKey { asset_id: job.asset_id(), attempt: st.history.attempts().saturating_add(1) };
    let n = Some(key.attempt);

    if decision.stage_ref().is_some_and(|s| s.reconcile_first()) {
        match call(inner, job, HookName::Reconcile, None, cell, || inner.hooks.reconcile(job)).await {
            Ok(Reconciled::Done) => {
                st.history.record(decision);
                settle(inner, &mut cleared, true, true);
                return Some(recovered(st, started, true));
            }
            Ok(Reconciled::NotDone) => {}
            Err(e) => return Box::pin(interrupted(inner, job, st, decision, &mut cleared, e, cell)).await,
        }
    }

    let result = match action {
        Action::FixCredentials { scope } => {
            match call(inner, job, HookName::FixCredentials, None, cell, || inner.hooks.fix_credentials(job, scope))
                .await
            {
                Ok(CredentialFix::Fixed) => {
                    st.history.mark_repaired(scope);
                    call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, &NO_CHANGES, &key)).await
                }
                Ok(CredentialFix::CannotFix) => {
                    // Nothing was attempted: give the guards back and go on to the next stage.
                    cleared.give_back();
                    st.history.skip_stage(decision);
                    return None;
                }
                Err(e) => Err(e),
            }
        }
        Action::Resubmit { amend } => {
            call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, &amend, &key)).await
        }
        Action::Republish { target, new_reference_id } => {
            let hook = || inner.hooks.republish(job, &target, new_reference_id, &key);
            call(inner, job, HookName::Republish, n, cell, hook).await
        }
        _ => call(inner, job, HookName::Resubmit, n, cell, || inner.hooks.resubmit(job, &NO_CHANGES, &key)).await,
    };

    match result {
        Ok(Attempt::Succeeded) => {
            st.history.record(decision);
            settle(inner, &mut cleared, true, true);
            Some(recovered(st, started, false))
        }
        Ok(Attempt::Failed(next)) => {
            st.history.record(decision);
            // The downstream held if the asset now fails somewhere else; the attempt failed all the same.
            let held = next.downstream() != cleared.downstream;
            settle(inner, &mut cleared, held, false);
            st.history.record_failure(&next);
            st.failure = next;
            None
        }
        Err(e) => Box::pin(interrupted(inner, job, st, decision, &mut cleared, e, cell)).await,
    }
}

/// A hook call of an attempt that gave no answer.
async fn interrupted<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    decision: &Decision<'static>,
    cleared: &mut Cleared<'_>,
    e: CallError,
    cell: &JobCell,
) -> Option<Outcome> {
    if let CallError::Aborted = e {
        // The call's answer is lost: resume repeats it.
        cleared.give_back();
        st.remaining = Some(Duration::ZERO);
        return Some(suspended(job, st.clone()));
    }
    st.history.record(decision);
    match e {
        CallError::Cancelled => {
            cleared.give_back();
            Some(cancelled(st))
        }
        CallError::Timeout => {
            settle(inner, cleared, false, false);
            Box::pin(call_failed(inner, job, st, e, cleared.downstream, cell)).await
        }
        _ => {
            cleared.give_back();
            Box::pin(call_failed(inner, job, st, e, cleared.downstream, cell)).await
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
    cell: &JobCell,
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
            Some(failed(inner, job, st, VerdictKind::HookError, reason, None, cell).await)
        }
        CallError::Panicked(m) => {
            let reason = format!("a hook panicked: {m}");
            Some(failed(inner, job, st, VerdictKind::HookPanicked, reason, None, cell).await)
        }
        CallError::Cancelled => Some(cancelled(st)),
        CallError::Aborted => Some(suspended(job, st.clone())),
    }
}
