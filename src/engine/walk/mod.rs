//! A held job's walk, step by step, until it rests in its store or ends in exactly one outcome. A step is:
//! decide ▶ (the retry budget asked, at decision time) ▶ wait ▶ reconcile if the stage asks it ▶ the
//! downstream's breaker ▶ the hook; then decide again on what came back.

pub(crate) mod awaiting;
pub(crate) mod call;
pub(crate) mod cell;
pub(crate) mod ending;
pub(crate) mod ledger;
pub(crate) mod parts;
pub(crate) mod state;
pub(crate) mod steps;
pub(crate) mod unanswered;
pub(crate) mod wait;

use std::future::Future;

use tokio::time::Instant;

use self::awaiting::await_result;
use self::cell::{CANCEL, SUSPEND};
use self::ending::{cancelled, dead_letter, suspended, verdict};
use self::parts::Parts;
use self::state::MAX_STEPS_PER_FAILURE;
use self::steps::{attempt, refused_retry, side_step};
use self::wait::{Stop, Wait};
use crate::classify::Failure;
use crate::decide::{Action, Decision};
use crate::engine::guards::{ask_budget, give_back, sync_fleet};
use crate::engine::hooks::Hooks;
use crate::engine::job::Job;
use crate::engine::observe::events::Event;
use crate::engine::outcome::Outcome;
use crate::engine::shared::Inner;
use crate::engine::verdict::VerdictKind;

/// The job's loop, from its claim to its outcome or its next rest in the store.
///
/// A held job spends much of its life in a [`Wait`] (a delay within
/// [`StoreSettings::hold_within`](super::StoreSettings)): everything else is awaited boxed, so that the state a
/// waiting job keeps stays small. An async block, not an async fn, so that its captures are kept once
/// (rust-lang/rust#62958).
#[expect(clippy::manual_async_fn, reason = "an async fn would keep its arguments twice")]
pub(crate) fn walk<H: Hooks>(parts: &mut Parts<H>) -> impl Future<Output = Outcome> + Send + '_ {
    async move {
        // Fields reached through `parts` rather than bound to locals: a local that lives across an await is kept
        // in the job's future, and a fleet keeps a hundred thousand of them.
        // The job's elapsed time was read off the clock as it was handed to this task: a decision on the first
        // turn takes that reading (reading the clock costs a lock when time is paused); any later turn follows a
        // step that took time.
        let mut first_turn = true;
        loop {
            // Hooks that answer at once would otherwise let this loop run without giving the runtime back.
            tokio::task::consume_budget().await;
            let first = std::mem::take(&mut first_turn);
            // A verdict stands: not even a cancellation keeps it from the `failed` hook.
            if parts.state.has_verdict() {
                return Box::pin(dead_letter(parts)).await;
            }
            if parts.delivery.cell.is(CANCEL) {
                return cancelled(&parts.state);
            }
            if parts.state.awaiting().is_some() {
                if let Some(end) = Box::pin(await_result(parts)).await {
                    return end;
                }
                continue;
            }
            if !first {
                parts.state.history.set_elapsed(parts.started.elapsed());
            }
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
                let v = verdict(&parts.state, VerdictKind::NoProgress, reason, None);
                parts.state.set_verdict(v);
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
                    let v = verdict(&parts.state, kind, reason.to_string(), rule);
                    parts.state.set_verdict(v);
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
                        && parts.state.lent().is_none()
                        && let Err(refused) = ask_budget(budget, &mut parts.state, &decision)
                    {
                        if let Some(end) = Box::pin(refused_retry(parts, &decision, refused)).await {
                            return end;
                        }
                        continue;
                    }
                    // The delay is read (and borrowed) in this block only, so the job does not keep it beside the
                    // wait while it sleeps.
                    let wait = {
                        let remaining = parts.state.take_remaining();
                        let delay = remaining.unwrap_or(decision.delay().unwrap_or_default());
                        if delay > parts.delivery.inner.durable.settings.hold_within {
                            // The job rests as a row until it is due, holding nothing here.
                            parts.state.set_remaining(Some(delay));
                            return suspended(&parts.job, parts.state.clone());
                        }
                        // The clock as it was read just before the decision (reading it again costs a lock when
                        // time is paused).
                        let now = parts.started.checked_add(parts.state.history.elapsed()).unwrap_or_else(Instant::now);
                        (Wait::new(&parts.delivery.cell, now, delay), !delay.is_zero())
                    };
                    if wait.1 {
                        Box::pin(sync_fleet(&parts.delivery.inner, &parts.state, false)).await;
                    }
                    match wait.0.await {
                        Ok(()) if wait.1 => Box::pin(sync_fleet(&parts.delivery.inner, &parts.state, true)).await,
                        Ok(()) => {}
                        Err(Stop::Cancelled) => return cancelled(&parts.state),
                        Err(Stop::Suspend { left }) => {
                            // Decided again on resume, and the budget asked again then.
                            give_back(&parts.delivery.inner, &mut parts.state);
                            parts.state.set_remaining(Some(left));
                            return suspended(&parts.job, parts.state.clone());
                        }
                    }
                    let attempted = Box::pin(attempt(parts, &decision)).await;
                    if let Some(end) = attempted {
                        return end;
                    }
                }
            }
        }
    }
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
