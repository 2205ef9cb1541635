//! The steps of a job that call the host: `notify` and `reconcile` stages, a retry the budget refused, and an
//! attempt (reconcile first if asked, the breaker, the hook).

use super::awaiting::submitted;
use super::call::{CallError, call};
use super::cell::{CALLING, JobCell};
use super::ending::{cancelled, recovered, suspended, verdict};
use super::ledger::{self, ledgered, write_answer};
use super::parts::Parts;
use super::state::State;
use super::unanswered::{call_failed, interrupted};
use crate::decide::{Action, Decision};
use crate::engine::guards::{Held, Probe, give_back, pass_breaker, settle};
use crate::engine::hooks::{Attempt, CredentialFix, Hooks, NO_CHANGES, Notice, Reconciled};
use crate::engine::job::{AttemptKey, Job};
use crate::engine::observe::events::{Event, HookName};
use crate::engine::outcome::Outcome;
use crate::engine::replica::{FIX_SUFFIX, Stored};
use crate::engine::report::Reported;
use crate::engine::shared::Inner;
use crate::engine::verdict::VerdictKind;

/// A step that does not resubmit: `notify` or `reconcile`. `None` means: decide again.
pub(crate) async fn side_step<H: Hooks>(parts: &mut Parts<H>, decision: &Decision<'static>) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery, stored } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    match decision.action() {
        Action::Notify { channel, message } => {
            let notice =
                Notice { channel: channel.clone(), message: message.clone(), about: st.failure.key().to_string() };
            // One key per notification step: a repeated one is the same notice.
            let key = || format!("{}#{}/notify.{}", job.asset_id(), job.job_id(), st.history.decisions());
            let notify = || inner.hooks.notify(job, &notice);
            match ledgered(inner, job, st, stored, cell, HookName::Notify, None, key, notify).await {
                // An operator message that cannot be delivered does not stop the remediation.
                Ok(()) | Err(CallError::Timeout | CallError::Error(_) | CallError::Panicked(_)) => {}
                Err(CallError::Cancelled) => return Some(cancelled(st)),
                Err(CallError::Aborted | CallError::Shutdown) => return Some(suspended(job, st.clone())),
            }
            st.history.record(decision);
            None
        }
        _ => {
            let answer = reconcile(inner, job, st, stored, cell).await;
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

/// Asks the host whether the last attempt made (0: the host's own submission) in fact succeeded.
pub(crate) async fn reconcile<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    stored: &mut Stored,
    cell: &JobCell,
) -> Result<Reconciled, CallError> {
    let last = st.history.attempts();
    reconcile_attempt(inner, job, st, stored, cell, last).await
}

/// Asks the host whether attempt `attempt` in fact succeeded.
async fn reconcile_attempt<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    stored: &mut Stored,
    cell: &JobCell,
    attempt: u32,
) -> Result<Reconciled, CallError> {
    // The reconcile is not in the ledger: the answer it follows is written first.
    if write_answer(inner, job, st, stored, cell).await.is_err() {
        return Err(CallError::Aborted);
    }
    let key = AttemptKey { asset_id: job.asset_id(), job: job.job_id(), attempt };
    let answer = call(inner, job, HookName::Reconcile, None, cell, || inner.hooks.reconcile(job, &key)).await;
    if !matches!(answer, Err(CallError::Aborted | CallError::Shutdown | CallError::Cancelled)) {
        let more = st.more();
        more.reconciles = more.reconciles.saturating_add(1);
    }
    answer
}

/// A retry the budget refused: the job ends at once, unless its stage asks to reconcile first and the host
/// finds the earlier attempt done (a reconcile takes no token). `None` means: go on (a verdict is set).
pub(crate) async fn refused_retry<H: Hooks>(
    parts: &mut Parts<H>,
    decision: &Decision<'static>,
    refused: crate::engine::guards::budget::Refused,
) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery, stored } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    inner.counters.budget_refusal();
    inner.emit(|| Event::BudgetRefused { asset_id: job.id().clone(), available: refused.available });
    if decision.stage_ref().is_some_and(|s| s.reconcile_first()) {
        match reconcile(inner, job, st, stored, cell).await {
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
    let v = verdict(st, VerdictKind::BudgetExhausted, reason, None);
    st.set_verdict(v);
    None
}

/// Carries out a waiting action whose delay is over: reconcile first if the stage asks it, pass the breaker,
/// call the hook. `None` means: decide again.
pub(crate) async fn attempt<H: Hooks>(parts: &mut Parts<H>, decision: &Decision<'static>) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery, stored } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    // The calls are not boxed here: this future is boxed already, and lives only as long as the attempt.
    // The attempt is recorded once its call has answered (or timed out): a call lost to the shutdown deadline
    // leaves no trace, so that resume repeats it, with the same key.
    // The key borrows the id: cloning it would touch the id's allocation on every attempt.
    let key =
        AttemptKey { asset_id: job.asset_id(), job: job.job_id(), attempt: st.history.attempts().saturating_add(1) };
    let n = Some(key.attempt);

    // An attempt whose call (its credential fix included) an earlier holder started and never saw answered is
    // reconciled before it is repeated, with the same key.
    let unanswered = stored.take_unanswered(&key.to_string());
    // Back from a rest for the breaker, the reconcile the stage asks for was asked before it.
    let rested = st.more_ref().is_some_and(|m| m.breaker_rest) && std::mem::take(&mut st.more().breaker_rest);
    if unanswered || (!rested && decision.stage_ref().is_some_and(|s| s.reconcile_first())) {
        let about = if unanswered { key.attempt } else { key.attempt - 1 };
        // Boxed: most attempts reconcile nothing, and this call's future would make every attempt's larger.
        match Box::pin(reconcile_attempt(inner, job, st, stored, cell, about)).await {
            Ok(Reconciled::Done) => {
                if unanswered {
                    // The lost call had in fact been made, and succeeded.
                    st.history.record(decision);
                }
                settle(inner, st, &mut Probe::none(st.failure.downstream()), true, true);
                return Some(recovered(st, *started, true));
            }
            Ok(Reconciled::NotDone) => {}
            // No attempt was made: nothing of the decision is recorded.
            Err(e) => return interrupted(inner, job, st, None, e),
        }
    }

    let mut probe = match pass_breaker(inner, job, st) {
        Ok(probe) => probe,
        Err(held) => {
            return match held {
                Held::TooLong(reason) => {
                    give_back(inner, st);
                    let v = verdict(st, VerdictKind::CircuitOpen, reason, None);
                    st.set_verdict(v);
                    None
                }
                Held::Rest(wait) => {
                    // Decided again when it is due; what the budget lent for this retry stays lent meanwhile.
                    st.set_remaining(Some(wait));
                    st.more().breaker_rest = true;
                    Some(suspended(job, st.clone()))
                }
            };
        }
    };

    cell.set_attempt(CALLING);
    if let Some(report) = st.take_early_report() {
        keep_early(cell, report);
    }
    let result = match decision.action() {
        Action::FixCredentials { scope } => {
            let scope = *scope;
            let fix_key = || format!("{key}{FIX_SUFFIX}");
            let fix = || inner.hooks.fix_credentials(job, scope);
            match ledgered(inner, job, st, stored, cell, HookName::FixCredentials, None, fix_key, fix).await {
                Ok(CredentialFix::Fixed) => {
                    st.history.mark_repaired(scope);
                    let resubmit = || inner.hooks.resubmit(job, &NO_CHANGES, &key);
                    ledgered(inner, job, st, stored, cell, HookName::Resubmit, n, || key.to_string(), resubmit).await
                }
                Ok(CredentialFix::CannotFix) => {
                    // Nothing was attempted: give the guards back and go on to the next stage.
                    cell.attempt_settled();
                    ledger::attempt_settled(stored);
                    give_back(inner, st);
                    probe.give_back();
                    st.history.skip_stage(decision);
                    return None;
                }
                Err(e) => Err(e),
            }
        }
        Action::Resubmit { amend } => {
            let resubmit = || inner.hooks.resubmit(job, amend, &key);
            ledgered(inner, job, st, stored, cell, HookName::Resubmit, n, || key.to_string(), resubmit).await
        }
        Action::Republish { target, new_reference_id } => {
            let hook = || inner.hooks.republish(job, target, *new_reference_id, &key);
            ledgered(inner, job, st, stored, cell, HookName::Republish, n, || key.to_string(), hook).await
        }
        _ => {
            let resubmit = || inner.hooks.resubmit(job, &NO_CHANGES, &key);
            ledgered(inner, job, st, stored, cell, HookName::Resubmit, n, || key.to_string(), resubmit).await
        }
    };

    if !matches!(result, Ok(Attempt::Submitted { .. })) {
        cell.attempt_settled();
    }
    // A report the row kept for this attempt is stale once its call has answered otherwise; one for a call cut
    // off is kept: the call is reconciled and repeated, and may yet answer `Submitted`.
    if matches!(
        result,
        Ok(Attempt::Succeeded | Attempt::Failed(_))
            | Err(CallError::Timeout | CallError::Error(_) | CallError::Panicked(_))
    ) {
        ledger::attempt_settled(stored);
    }
    match result {
        Ok(Attempt::Succeeded) => {
            st.history.record(decision);
            settle(inner, st, &mut probe, true, true);
            Some(recovered(st, *started, false))
        }
        Ok(Attempt::Submitted { reference }) => {
            st.history.record(decision);
            // The downstream took the attempt; its result (and the budget's tokens) settle when it reports.
            probe.give_back();
            let wait = decision.stage_ref().and_then(|s| s.await_result());
            submitted(inner, st, &delivery.cell, key.attempt, reference, wait);
            None
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

/// A report that came while the call this attempt repeats was under way: kept as if it had come during this one.
/// Out of line: only a job resumed after a shutdown cut its call off has one.
#[cold]
fn keep_early(cell: &JobCell, report: Reported) {
    let _ = cell.offer(None, report);
}
