//! The ledger of side-effecting calls: on a durable store, a job's state and the call's key are written before
//! the call starts, so that a replica that takes the job over knows an attempt was under way, reconciles it,
//! and repeats it with the same key. A call's answer is written with the job's next write, which comes before
//! any other hook call.

use std::future::Future;

use super::call::{Answer, CallError, call};
use super::cell::{CANCEL, JobCell, LOST};
use super::state::State;
use crate::engine::hooks::{HookError, Hooks};
use crate::engine::job::Job;
use crate::engine::observe::events::HookName;
use crate::engine::outcome::Outcome;
use crate::engine::replica::record::{PAYLOAD_VERSION, Record};
use crate::engine::replica::{Durable, Stored};
use crate::engine::shared::Inner;
use crate::store::{LedgerWrite, Phase, Save, StoreError, Timestamp};

/// Before a side-effecting hook call: the job's state and the call's key are written, fenced by the lease, so
/// that a replica that takes the job over knows the call was started. The last call's answer goes in the same
/// write. A lease that is gone stops the job at once.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn begin_call<H>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    stored: &mut Stored,
    cell: &JobCell,
    hook: &str,
    key: &str,
    attempt: Option<u32>,
) -> Result<(), StoreError> {
    write_held(inner, job, st, stored, cell, Some((hook, key, attempt.unwrap_or(0)))).await
}

/// Before a hook call that is not in the ledger (a reconcile): the last side-effecting call's answer, if it is
/// not written yet, is written now with the job's state (past its wait), so that a replica that takes the job
/// over after a crash during that call goes on from the answer rather than repeat the answered call. A lease
/// that is gone stops the job at once.
pub(crate) async fn write_answer<H>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    stored: &mut Stored,
    cell: &JobCell,
) -> Result<(), StoreError> {
    if stored.answered.is_none() {
        return Ok(());
    }
    write_held(inner, job, st, stored, cell, None).await
}

/// A write of a job its replica keeps holding: the last call's answer, then the start of the call `begin`
/// (`(hook, key, attempt)`; the attempt 0 for a call of no attempt), if any. The start of a call is refused
/// unless the lease has a margin left beyond the write ([`Durable::call_margin`](crate::engine::replica::Durable)): a
/// call is never begun under a lease about to run out.
async fn write_held<H>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    stored: &mut Stored,
    cell: &JobCell,
    begin: Option<(&str, &str, u32)>,
) -> Result<(), StoreError> {
    let d = &inner.durable;
    let now = d.now();
    let mut record = Record::of(job, st, stored.first_failure_at);
    record.unanswered = stored.unanswered.clone();
    if begin.is_none() {
        // Between steps, past the wait: taken over, the job decides again and goes on at once.
        record.remaining = Some(std::time::Duration::ZERO);
    }
    let payload = record.encode();
    let last_code = st.failure.key().to_string();
    let answered = stored.answered.take();
    let mut ledger: Vec<LedgerWrite<'_>> =
        answered.iter().map(|(key, answer)| LedgerWrite::End { key, answer }).collect();
    if let Some((hook, key, _)) = begin {
        ledger.push(LedgerWrite::Begin { key, hook });
    }
    let save = Save {
        phase: if begin.is_some() { Phase::Calling } else { Phase::Waiting },
        wake_at: now,
        release: false,
        payload: &payload,
        version: PAYLOAD_VERSION,
        last_code: &last_code,
        attempts: st.history.attempts(),
        attempt: begin.map_or(0, |(_, _, attempt)| attempt),
        fence_until: if begin.is_some() { now.after(d.call_margin()) } else { now },
        wake_on_report: true,
        reference: None,
        ledger: &ledger,
        take_report: std::mem::take(&mut stored.clear_report),
        outcome: None,
    };
    match d.store.save(&stored.lease, save, now).await {
        Ok(saved) => {
            if saved.cancel_requested {
                cell.raise(CANCEL);
            }
            Ok(())
        }
        Err(e) => {
            tracing::warn!(store = %d.store.describe(), asset = job.asset_id(), error = %e, "the job stops here");
            cell.raise(LOST);
            Err(e)
        }
    }
}

/// After a side-effecting hook call: its answer, written with the job's next write.
pub(crate) fn answered(stored: &mut Stored, key: String, answer: String) {
    stored.answered = Some((key, answer));
}

/// The job's attempt has settled without the report its row may hold (its call answered at once, or `check`
/// answered): such a report is of this attempt, and the next write clears it, so that it is never taken for the
/// result of a later attempt. That write comes before the next hook call (`begin_call`), so no report of a later
/// attempt can be on the row yet.
pub(crate) fn attempt_settled(stored: &mut Stored) {
    stored.clear_report = true;
}

/// A side-effecting hook call: begun in the ledger (its key from `key`), made, and its answer noted for the
/// job's next write.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ledgered<H: Hooks, T: Answer, F: Future<Output = Result<T, HookError>>>(
    inner: &Inner<H>,
    job: &Job,
    st: &State,
    stored: &mut Stored,
    cell: &JobCell,
    hook: HookName,
    attempt: Option<u32>,
    key: impl FnOnce() -> String,
    make: impl FnOnce() -> F,
) -> Result<T, CallError> {
    let key = key();
    if begin_call(inner, job, st, stored, cell, hook.as_str(), &key, attempt).await.is_err() {
        return Err(CallError::Aborted);
    }
    let result = call(inner, job, hook, attempt, cell, make).await;
    let answer = match &result {
        Ok(answer) => Some(answer.describe()),
        Err(CallError::Timeout) => Some("timeout".to_owned()),
        Err(CallError::Error(e)) => Some(format!("error: {e}")),
        Err(CallError::Panicked(m)) => Some(format!("panic: {m}")),
        Err(CallError::Shutdown) => Some("not started: shutting down".to_owned()),
        // Cut off: whether the host acted is unknown, so the call stays unanswered and is reconciled.
        Err(CallError::Cancelled | CallError::Aborted) => None,
    };
    if let Some(answer) = answer {
        answered(stored, key, answer);
    }
    result
}

/// Writes a job back: at rest until it is due (an outcome `Suspended` is a rest), or finished. Returns when
/// a job at rest is due.
pub(crate) async fn write_back(
    d: &Durable,
    job: &Job,
    st: &State,
    stored: &mut Stored,
    outcome: &Outcome,
) -> Result<Option<Timestamp>, StoreError> {
    let now = d.now();
    let mut record = Record::of(job, st, stored.first_failure_at);
    record.unanswered = stored.unanswered.clone();
    let (phase, wake_at, outcome_name) = match outcome {
        Outcome::Suspended { .. } => match st.awaiting() {
            Some(a) => (Phase::Awaiting, now.after(a.left), None),
            None => (Phase::Waiting, now.after(st.remaining().unwrap_or_default()), None),
        },
        ended => {
            record.outcome = Some(ended.clone());
            (Phase::Finished, now, Some(ended.kind().as_str()))
        }
    };
    let payload = record.encode();
    let last_code = st.failure.key().to_string();
    let answered = stored.answered.take();
    let ledger: Vec<LedgerWrite<'_>> = answered.iter().map(|(key, answer)| LedgerWrite::End { key, answer }).collect();
    let save = Save {
        phase,
        wake_at,
        release: true,
        payload: &payload,
        version: PAYLOAD_VERSION,
        last_code: &last_code,
        attempts: st.history.attempts(),
        attempt: st.awaiting().map_or(0, |a| a.attempt),
        fence_until: now,
        wake_on_report: true,
        reference: st.awaiting().map(|a| a.reference.as_str()),
        ledger: &ledger,
        take_report: std::mem::take(&mut stored.clear_report),
        outcome: outcome_name,
    };
    let saved = d.store.save(&stored.lease, save, now).await;
    d.health.note(&saved, now);
    let saved = saved?;
    Ok(match phase {
        Phase::Finished => None,
        // A cancellation asked while the job was held is seen at once.
        _ if saved.cancel_requested => Some(now),
        // A report on the row makes a job awaiting it due at once.
        Phase::Awaiting if saved.report.is_some() => Some(now),
        _ => Some(wake_at),
    })
}
