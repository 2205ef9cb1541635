//! How a job ends: the outcomes a job's walk returns, the verdict of a failed job, and its delivery to the
//! `failed` hook (the host's dead-letter queue), exactly once.

use tokio::time::Instant;

use super::call::CallError;
use super::ledger::ledgered;
use super::parts::Parts;
use super::state::State;
use crate::classify::Failure;
use crate::engine::hooks::Hooks;
use crate::engine::job::Job;
use crate::engine::observe::events::HookName;
use crate::engine::outcome::{Outcome, SuspendedJob};
use crate::engine::verdict::{Verdict, VerdictKind};

pub(crate) fn recovered(st: &State, started: Instant, reconciled: bool) -> Outcome {
    Outcome::Recovered {
        attempts: st.history.attempts(),
        reconciles: st.reconciles(),
        elapsed: started.elapsed(),
        reconciled,
    }
}

pub(crate) fn cancelled(st: &State) -> Outcome {
    Outcome::Cancelled { attempts: st.history.attempts() }
}

pub(crate) fn suspended(job: &Job, st: State) -> Outcome {
    Outcome::Suspended { state: Box::new(SuspendedJob::of(job, st)) }
}

/// The verdict of a job that fails now, on its current failure.
pub(crate) fn verdict(st: &State, kind: VerdictKind, reason: String, rule: Option<String>) -> Box<Verdict> {
    Box::new(Verdict {
        kind,
        reason,
        hint: format!("{} {}", st.failure.key(), st.failure.name()),
        last_failure: st.failure.clone(),
        rule,
        attempts: st.history.attempts(),
    })
}

/// Gives the job's verdict to the host's `failed` hook and ends the job failed. The verdict stands whatever
/// the hook answers (its trouble shows in events and counters); but a call the shutdown does not let start, or
/// cuts off at its deadline, has not delivered it: the job is suspended with its verdict, and resume delivers
/// it.
pub(crate) async fn dead_letter<H: Hooks>(parts: &mut Parts<H>) -> Outcome {
    let Parts { job, state: st, delivery, stored, .. } = parts;
    let (inner, cell) = (&*delivery.inner, &*delivery.cell);
    let Some(verdict) = st.more_ref().and_then(|m| m.verdict.clone()) else {
        return internal_failure(&st.failure, st.history.attempts());
    };
    let key = || format!("{}#{}/failed", job.asset_id(), job.job_id());
    let failed = || inner.hooks.failed(job, &verdict);
    let answer = ledgered(inner, job, st, stored, cell, HookName::Failed, None, key, failed).await;
    st.more().verdict = None;
    match answer {
        Err(CallError::Shutdown | CallError::Aborted) => {
            st.set_verdict(verdict);
            suspended(job, st.clone())
        }
        _ => Outcome::Failed { verdict },
    }
}

/// The outcome of a job whose walk panicked inside the engine (a bug): it still ends, failed.
pub(crate) fn internal_failure(failure: &Failure, attempts: u32) -> Outcome {
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
