//! How a job ends: the outcomes a job's walk returns, and the verdict a failed job gives the `failed` hook.

use tokio::time::Instant;

use super::call::call;
use super::cell::JobCell;
use super::events::HookName;
use super::hooks::{Hooks, Job, Verdict, VerdictKind};
use super::outcome::{Outcome, SuspendedJob};
use super::shared::Inner;
use super::state::State;
use crate::classify::Failure;

pub(super) fn recovered(st: &State, started: Instant, reconciled: bool) -> Outcome {
    Outcome::Recovered { attempts: st.history.attempts(), elapsed: started.elapsed(), reconciled }
}

pub(super) fn cancelled(st: &State) -> Outcome {
    Outcome::Cancelled { attempts: st.history.attempts() }
}

pub(super) fn suspended(job: &Job, st: State) -> Outcome {
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
pub(super) async fn failed<H: Hooks>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    kind: VerdictKind,
    reason: String,
    rule: Option<String>,
    cell: &JobCell,
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
    let _ = call(inner, job, HookName::Failed, None, cell, || inner.hooks.failed(job, &verdict)).await;
    Outcome::Failed { verdict: Box::new(verdict) }
}

/// The outcome of a job whose walk panicked inside the engine (a bug): it still ends, failed.
pub(super) fn internal_failure(failure: &Failure, attempts: u32) -> Outcome {
    Outcome::Failed {
        verdict: Box::new(Verdict {
            kind: VerdictKind::Internal,
            reason: "the remediation engine failed on this job (please report it)".to_owned(),
            hint: format!("{} {}", failure.key(), failure.name()),
            last_failure: failure.clone(),
            rule: None,
            attempts,
        }),
    }
}
