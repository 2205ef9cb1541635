//! A held job: its task works on it from its claim until it rests (a delay, a breaker, an attempt submitted to
//! LightFlow) or ends, and writes it back.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::record::Record;
use super::registry::Entered;
use super::{HeldJob, Stored};
use crate::engine::hooks::Hooks;
use crate::engine::outcome::Outcome;
use crate::engine::report::Reported;
use crate::engine::shared::{Delivery, Inner};
use crate::engine::walk::cell::{CANCEL, JobCell, LOST};
use crate::engine::walk::ending::internal_failure;
use crate::engine::walk::ledger::write_back;
use crate::engine::walk::parts::Parts;
use crate::engine::walk::walk;
use crate::store::{Claimed, Phase, Save};

/// Starts the task of a claimed job, whose claim was sent at `sent` (its lease is counted from then).
pub(crate) fn hold<H: Hooks>(inner: &Arc<Inner<H>>, claimed: Claimed, sent: Instant) {
    let d = &inner.durable;
    let id = claimed.lease.job;
    let epoch = claimed.lease.epoch;
    if claimed.taken_over {
        tracing::info!(job = %id, "taking over a job whose lease expired");
        inner.counters.takeover();
    }
    let cell = Arc::new(JobCell::default());
    let expires = sent + d.settings.lease;
    d.held().insert(id, HeldJob { lease: claimed.lease.clone(), cell: cell.clone(), task: None, expires });
    let asset = claimed.row.asset_id.clone();
    let walked = run_stored(inner.clone(), claimed, cell);
    // The span only when someone records it: a disabled one would cost every job its room and every poll. With
    // no subscriber set at all nothing can record it, and it is not even built (tracing's `log` fallback,
    // which a dependency turns on, would format it on every claim).
    let span = tracing::dispatcher::has_been_set().then(|| tracing::info_span!("remediation", asset = %asset));
    let task = match span {
        Some(span) if !span.is_disabled() => tokio::spawn(walked.instrument(span)),
        _ => tokio::spawn(walked),
    };
    if let Some(held) = d.held().get_mut(&id).filter(|h| h.lease.epoch == epoch) {
        held.task = Some(task.abort_handle());
    }
}

/// How many milliseconds a claimed job waits for its previous task here to leave.
const LEAVING_WAITS: u32 = 1000;

/// Works on a claimed job until it rests or ends, and writes it back.
async fn run_stored<H: Hooks>(inner: Arc<Inner<H>>, claimed: Claimed, cell: Arc<JobCell>) {
    let d = &inner.durable;
    let Claimed { lease, row, taken_over: _ } = claimed;
    let id = lease.job;
    let record = match Record::decode(&row) {
        Ok(record) => record,
        Err(e) => {
            // Left for a build that reads it (a newer replica in a rolling deploy): untouched, due later.
            tracing::error!(store = %d.store.describe(), error = %e, "a job this build cannot read is left alone");
            let save = Save {
                phase: row.phase,
                wake_at: d.now().after(d.settings.lease * 10),
                release: true,
                payload: &row.payload,
                version: row.version,
                last_code: &row.last_code,
                attempts: row.attempts,
                attempt: row.attempt,
                fence_until: d.now(),
                // Not due again at once for a report on it: this build would only leave it again.
                wake_on_report: false,
                reference: row.reference.as_deref(),
                ledger: &[],
                take_report: false,
                outcome: None,
            };
            let _ = d.store.save(&lease, save, d.now()).await;
            d.let_go(id, lease.epoch, None);
            return;
        }
    };
    let unanswered = match row.phase {
        Phase::Calling => match d.store.calls(id).await {
            Ok(calls) => calls.into_iter().rev().find(|c| c.answered_at.is_none()).map(|c| c.key),
            Err(e) => {
                // Without the ledger, the call that was begun cannot be reconciled: nothing is called; the lease
                // runs out and the job is taken over again later.
                tracing::warn!(store = %d.store.describe(), job = %id, error = %e, "a taken-over job's ledger is unreadable: left for later");
                d.let_go(id, lease.epoch, None);
                return;
            }
        },
        _ => None,
    };
    let first_failure_at = record.first_failure_at;
    let unanswered = unanswered.or_else(|| record.unanswered.clone());
    let rested = record.remaining;
    let (job, mut state) = record.into_state();
    state.set_remaining(match row.phase {
        // Taken over in the middle of a call: the delay before it was spent.
        Phase::Calling => Some(Duration::ZERO),
        // Claimed because it is due: the delay it rested for is spent. One that had no delay to wait (just
        // enqueued, or stopped by a shutdown before its next decision) decides, and waits its delay.
        Phase::Waiting => rested.map(|_| Duration::ZERO),
        Phase::Awaiting | Phase::Finished => None,
    });
    let report: Option<Reported> = row.report.as_deref().and_then(|r| serde_json::from_str(r).ok());
    if row.cancel_requested {
        cell.raise(CANCEL);
    }
    let mut waited = 0;
    let hash = loop {
        let entered = inner.jobs().enter(job.id(), &cell);
        match entered {
            Entered::New { hash } => break hash,
            // The store keeps one active job per asset: the one here is this job's previous task, which has
            // written it back and is about to leave (the job was due again before it could).
            Entered::Running if waited < LEAVING_WAITS => {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Entered::Running => {
                tracing::debug!(job = %id, "a stale claim: the job is active here");
                // A stale claim: let it go.
                d.let_go(id, lease.epoch, None);
                return;
            }
        }
    };
    let mut clear_report = false;
    if let (Some(report), Some(awaiting)) = (report, state.awaiting()) {
        cell.await_attempt(awaiting.attempt);
        cell.offer(Some(awaiting.attempt), report);
        clear_report = true;
    }
    let now = Instant::now();
    let started = now.checked_sub(d.now().since(first_failure_at)).unwrap_or(now);
    // As of now: the walk's first decision takes it.
    state.history.set_elapsed(now.saturating_duration_since(started));
    let delivery = Delivery { inner: inner.clone(), hash, cell: cell.clone(), finished: false };
    let woke_awaiting = row.phase == Phase::Awaiting;
    let stored =
        Stored { lease: lease.clone(), first_failure_at, unanswered, answered: None, clear_report, woke_awaiting };
    let mut parts = Parts { job, state, started, delivery, stored: Box::new(stored) };

    if let Some(fleet) = &d.fleet
        && let Some(t) = fleet.before(inner.guards(), parts.state.failure.downstream()).await
    {
        inner.breaker_seen(t);
    }
    let walked = AssertUnwindSafe(walk(&mut parts)).catch_unwind().await;
    let outcome = walked.unwrap_or_else(|_| internal_failure(&parts.state.failure, parts.state.history.attempts()));
    let epoch = lease.epoch;
    if cell.is(LOST) {
        parts.leave();
        d.let_go(id, epoch, None);
        return;
    }
    // Out of this replica's registry before the job can be claimed again, here or elsewhere.
    match write_back(d, &parts.job, &parts.state, &mut parts.stored, &outcome).await {
        Err(e) => {
            // Not written: the lease expires and the job goes on from its last write, here or elsewhere.
            tracing::error!(store = %d.store.describe(), job = %id, error = %e, "writing a job back failed");
            parts.leave();
            d.let_go(id, epoch, None);
        }
        Ok(due) if matches!(outcome, Outcome::Suspended { .. }) => {
            parts.leave();
            d.let_go(id, epoch, due);
        }
        Ok(_) => {
            d.tell(id, &outcome);
            parts.end(outcome);
            d.let_go(id, epoch, None);
        }
    }
    if let Some(fleet) = &d.fleet {
        fleet.after(inner.guards()).await;
    }
}
