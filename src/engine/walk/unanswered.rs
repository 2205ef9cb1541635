//! Hook calls that gave no answer: what a timeout, an error, a panic, a cancellation or the shutdown means for
//! the job.

use std::time::Duration;

use super::call::CallError;
use super::ending::{cancelled, suspended, verdict};
use super::state::State;
use crate::classify::Failure;
use crate::classify::catalogue::Downstream;
use crate::decide::Decision;
use crate::engine::guards::give_back;
use crate::engine::hooks::Hooks;
use crate::engine::job::Job;
use crate::engine::outcome::Outcome;
use crate::engine::shared::Inner;
use crate::engine::verdict::VerdictKind;

/// A hook call of an attempt that gave no answer (other than its own timeout): the attempt was not made, or its
/// answer is lost. `made`: the decision whose attempt the call was, if it was the attempt's own call (the
/// attempt is then recorded when the call fails). `None` means: decide again.
pub(crate) fn interrupted<H: Hooks>(
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
            st.set_remaining(Some(Duration::ZERO));
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
pub(crate) fn call_failed<H: Hooks>(
    inner: &Inner<H>,
    st: &mut State,
    e: CallError,
    downstream: Downstream,
) -> Option<Outcome> {
    match e {
        CallError::Timeout => {
            let message = format!("a hook did not answer within {}", humantime::format_duration(inner.hook_timeout));
            st.failed_again(Failure::timeout(downstream, message));
        }
        CallError::Error(e) => {
            let v = verdict(st, VerdictKind::HookError, format!("a hook failed: {e}"), None);
            st.set_verdict(v);
        }
        CallError::Panicked(m) => {
            let v = verdict(st, VerdictKind::HookPanicked, format!("a hook panicked: {m}"), None);
            st.set_verdict(v);
        }
        // Handled by the callers, which know what the call was.
        CallError::Cancelled | CallError::Aborted | CallError::Shutdown => {}
    }
    None
}
