//! A submitted attempt: the job waits, holding no hook slot, for its reported result, or asks `check` when
//! `await_result` runs out.

use std::sync::Arc;
use std::time::Duration;

use super::call::{CallError, call};
use super::cell::{JobCell, REPORT};
use super::ending::{cancelled, recovered, suspended};
use super::ledger;
use super::parts::Parts;
use super::state::{Awaiting, State};
use super::unanswered::call_failed;
use crate::classify::Failure;
use crate::engine::guards::{Probe, give_back, settle};
use crate::engine::hooks::{Checked, Hooks, Pending};
use crate::engine::job::{AttemptKey, Job};
use crate::engine::observe::events::HookName;
use crate::engine::outcome::Outcome;
use crate::engine::report::Reported;
use crate::engine::shared::Inner;

/// The attempt was submitted: the job awaits its result, for its stage's `await_result` (`wait`) or else the
/// remediator's. A report the claim found on the job's row for this attempt is the job's at once.
pub(crate) fn submitted<H>(
    inner: &Inner<H>,
    st: &mut State,
    cell: &Arc<JobCell>,
    attempt: u32,
    reference: String,
    wait: Option<Duration>,
) {
    if let Some(report) = cell.await_attempt(attempt) {
        cell.offer(Some(attempt), report);
    }
    let left = wait.unwrap_or(inner.await_result);
    st.set_awaiting(Some(Box::new(Awaiting { attempt, reference, left, wait })));
}

/// Waits for the result of the submitted attempt: a report, or, when `await_result` runs out, the host's
/// `check`. `None` means: decide again (or go on awaiting).
pub(crate) async fn await_result<H: Hooks>(parts: &mut Parts<H>) -> Option<Outcome> {
    let Parts { job, state: st, started, delivery, stored } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    let awaiting = st.awaiting().cloned()?;
    // The job does not wait here: it rests as a row until a report comes or it is time to check. Claimed
    // again, it has its report, or it checks now. The claim woke the attempt it found awaited, this first wait
    // after it: a later attempt submitted while the job is held waits as well.
    let woke = std::mem::take(&mut stored.woke_awaiting);
    let reported = if cell.is(REPORT) {
        cell.take_report()
    } else if woke {
        None
    } else {
        return Some(suspended(job, st.clone()));
    };
    let report = match reported {
        Some(Reported::Failed { failure }) if failure.carries_no_code() => {
            match ask_for_the_code(inner, job, st, cell, &awaiting).await {
                Ok(Some(report)) => report,
                Ok(None) => Reported::Failed { failure },
                Err(ended) => return Some(ended),
            }
        }
        Some(report) => report,
        None => {
            let key = AttemptKey { asset_id: job.asset_id(), job: job.job_id(), attempt: awaiting.attempt };
            let pending = Pending { key, reference: &awaiting.reference };
            match call(inner, job, HookName::Check, None, cell, || inner.hooks.check(job, &pending)).await {
                Ok(Checked::Succeeded) => Reported::Succeeded,
                Ok(Checked::Failed(failure)) => Reported::Failed { failure },
                Ok(Checked::Canceled) => Reported::Canceled,
                Ok(Checked::Running) => {
                    if let Some(a) = st.awaiting_mut() {
                        a.left = a.wait_or(inner.await_result);
                    }
                    return None;
                }
                Ok(Checked::Unknown) | Err(CallError::Timeout) => {
                    let message = format!(
                        "attempt {} ({}) reported no result within {}",
                        awaiting.attempt,
                        awaiting.reference,
                        humantime::format_duration(awaiting.left)
                    );
                    Reported::Failed { failure: Failure::timeout(st.failure.downstream(), message) }
                }
                Err(CallError::Cancelled) => return Some(cancelled(st)),
                Err(CallError::Aborted | CallError::Shutdown) => return Some(suspended(job, st.clone())),
                Err(e) => {
                    st.set_awaiting(None);
                    cell.attempt_settled();
                    ledger::attempt_settled(stored);
                    give_back(inner, st);
                    return call_failed(inner, st, e, st.failure.downstream());
                }
            }
        }
    };
    st.set_awaiting(None);
    cell.attempt_settled();
    ledger::attempt_settled(stored);
    let mut probe = Probe::none(st.failure.downstream());
    match report {
        Reported::Succeeded => {
            settle(inner, st, &mut probe, true, true);
            Some(recovered(st, *started, false))
        }
        Reported::Failed { failure } => {
            let held = failure.downstream() != st.failure.downstream();
            settle(inner, st, &mut probe, held, false);
            st.failed_again(failure);
            None
        }
        Reported::Canceled => Some(cancelled(st)),
    }
}

/// Asks the host's `check` what the attempt's asset failed with, for a report that said only that it failed:
/// the report `check` gives (`None`: it could not say; decide on the report as it came), or the job's end (a
/// cancellation meanwhile).
async fn ask_for_the_code<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &mut State,
    cell: &JobCell,
    awaiting: &Awaiting,
) -> Result<Option<Reported>, Outcome> {
    let key = AttemptKey { asset_id: job.asset_id(), job: job.job_id(), attempt: awaiting.attempt };
    let pending = Pending { key, reference: &awaiting.reference };
    match call(inner, job, HookName::Check, None, cell, || inner.hooks.check(job, &pending)).await {
        Ok(Checked::Failed(failure)) => Ok(Some(Reported::Failed { failure })),
        Ok(Checked::Succeeded) => Ok(Some(Reported::Succeeded)),
        Ok(Checked::Canceled) => Ok(Some(Reported::Canceled)),
        Err(CallError::Cancelled) => Err(cancelled(st)),
        _ => Ok(None),
    }
}
