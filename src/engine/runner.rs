//! The engine on a durable store: jobs at rest are rows, claimed when they are due (or a report arrives),
//! worked on by a task while they are held, and written back after each step; a replica holds in memory only
//! the jobs it is working on.
//!
//! Three tasks per remediator: the **claimer** takes due jobs in batches (up to `max_active_jobs` held at
//! once) and starts a task for each; the **heartbeat** renews the leases of the held jobs and stops a job at
//! once when its lease is lost (another replica took it over); the **pruner** deletes finished jobs after the
//! retention period. A job that rests (a delay, a breaker, an attempt submitted to LightFlow) is released until
//! it is due.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::cell::{CANCEL, JobCell, LOST};
use super::durable::{Durable, HeldJob, Stored};
use super::ending::internal_failure;
use super::hooks::Hooks;
use super::outcome::Outcome;
use super::parts::Parts;
use super::record::{PAYLOAD_VERSION, Record};
use super::registry::Entered;
use super::report::Reported;
use super::shared::{Delivery, Inner};
use super::walk::walk;
use crate::store::{Claimed, JobId, Lease, LedgerWrite, Phase, Save, StoreError, Timestamp};

/// Starts the claimer, the heartbeat and the pruner, once, on the current runtime.
pub(crate) fn start<H: Hooks>(inner: &Arc<Inner<H>>) -> bool {
    let Some(d) = &inner.durable else { return false };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
    if d.started.swap(true, Ordering::SeqCst) {
        return true;
    }
    let weak = Arc::downgrade(inner);
    let claimer = runtime.spawn(claimer(weak.clone()));
    let heartbeat = runtime.spawn(heartbeat(weak.clone()));
    let pruner = runtime.spawn(pruner(weak));
    d.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend([
        claimer.abort_handle(),
        heartbeat.abort_handle(),
        pruner.abort_handle(),
    ]);
    true
}

/// Claims due jobs, in batches, and starts a task for each.
///
/// It looks when it is told (a job submitted or reported here, a job let go that is due sooner than it would
/// look, room made for a batch), when the earliest job at rest is due, and at least every poll interval. A
/// busy replica (less room than a batch) waits for the room, or a poll interval, before it claims again.
async fn claimer<H: Hooks>(weak: Weak<Inner<H>>) {
    // Whether the claimer has waited a poll interval for room: it then takes what room there is.
    let mut waited = false;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(d) = &inner.durable else { return };
        if d.stopping.load(Ordering::SeqCst) {
            return;
        }
        let poll = d.settings.poll_every.max(Duration::from_millis(1));
        d.looks_at.store(i64::MIN, Ordering::SeqCst);
        d.let_go_due.store(i64::MAX, Ordering::SeqCst);
        let wake = d.wake.clone();
        // Another replica's write that made a job due (PostgreSQL's LISTEN/NOTIFY); polling stays the fallback.
        let hints = d.store.wake_hints();
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let free = d.free();
        if free == 0 || (!d.has_room() && !waited) {
            d.wants_room.store(true, Ordering::SeqCst);
            if d.has_room() {
                // Made before the jobs let go could see that it was wanted.
                continue;
            }
            drop(inner);
            waited = tokio::time::timeout(poll, woken).await.is_err();
            continue;
        }
        waited = false;
        let limit = free.min(d.settings.claim_batch.max(1));
        let mut full = false;
        match d.store.claim(&d.owner, d.now(), d.settings.lease, limit).await {
            Ok(claimed) => {
                full = claimed.len() == limit;
                for c in claimed {
                    hold(&inner, c);
                }
            }
            Err(e) => tracing::warn!(store = %d.store.describe(), error = %e, "claiming due jobs failed"),
        }
        d.tell_ended_elsewhere().await;
        if full {
            // More may be due.
            drop(inner);
            tokio::task::yield_now().await;
            continue;
        }
        let now = d.now();
        let by_poll = now.after(poll);
        let next = match d.store.next_wake().await {
            Ok(Some(at)) => at.min(by_poll),
            _ => by_poll,
        };
        d.looks_at.store(next.0, Ordering::SeqCst);
        // A job let go while the claimer looked, which its reading of the next wake may have missed.
        let next = Timestamp(next.0.min(d.let_go_due.load(Ordering::SeqCst)));
        let wait = next.since(d.now());
        drop(inner);
        if !wait.is_zero() {
            let hinted = async {
                match &hints {
                    Some(hints) => hints.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = woken => {}
                _ = hinted => {}
            }
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Starts the task of a claimed job.
pub(crate) fn hold<H: Hooks>(inner: &Arc<Inner<H>>, claimed: Claimed) {
    let Some(d) = &inner.durable else { return };
    let id = claimed.lease.job;
    if claimed.taken_over {
        tracing::info!(job = %id, "taking over a job whose lease expired");
        inner.counters.takeover();
    }
    let cell = Arc::new(JobCell::new(id));
    d.held().insert(id, HeldJob { lease: claimed.lease.clone(), cell: cell.clone(), task: None });
    let task = tokio::spawn(run_stored(inner.clone(), claimed, cell));
    if let Some(held) = d.held().get_mut(&id) {
        held.task = Some(task.abort_handle());
    }
}

/// Renews the held jobs' leases every third of the lease; a job whose lease is lost stops at once.
async fn heartbeat<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(d) = &inner.durable else { return };
        let every = (d.settings.lease / 3).max(Duration::from_millis(10));
        let leases: Vec<Lease> = d.held().values().map(|h| h.lease.clone()).collect();
        if !leases.is_empty() {
            match d.store.renew(&leases, d.now(), d.settings.lease).await {
                Ok(renewed) => {
                    let held = d.held();
                    // Only a job still held under the lease renewed: one that was released and claimed again
                    // while the renewal was under way holds a newer lease, which this renewal said nothing of.
                    let renewed_lease = |id: &JobId| {
                        held.get(id).filter(|h| leases.iter().any(|l| l.job == *id && l.epoch == h.lease.epoch))
                    };
                    for id in renewed.lost {
                        if let Some(h) = renewed_lease(&id) {
                            tracing::warn!(job = %id, "lease lost: another replica holds the job now");
                            h.cell.raise(LOST);
                        }
                    }
                    for id in renewed.cancel_requested {
                        if let Some(h) = renewed_lease(&id) {
                            h.cell.raise(CANCEL);
                        }
                    }
                }
                Err(e) => tracing::warn!(store = %d.store.describe(), error = %e, "renewing leases failed"),
            }
        }
        drop(inner);
        tokio::time::sleep(every).await;
    }
}

/// Deletes finished jobs past the retention period, hourly.
async fn pruner<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(d) = &inner.durable else { return };
        let before =
            Timestamp(d.now().0.saturating_sub(i64::try_from(d.settings.retention.as_millis()).unwrap_or(i64::MAX)));
        if let Err(e) = d.store.prune(before).await {
            tracing::warn!(store = %d.store.describe(), error = %e, "pruning finished jobs failed");
        }
        drop(inner);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// How many milliseconds a claimed job waits for its previous task here to leave.
const LEAVING_WAITS: u32 = 1000;

/// Works on a claimed job until it rests or ends, and writes it back.
async fn run_stored<H: Hooks>(inner: Arc<Inner<H>>, claimed: Claimed, cell: Arc<JobCell>) {
    let Some(d) = &inner.durable else { return };
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
                reference: row.reference.as_deref(),
                ledger: &[],
                take_report: false,
                outcome: None,
            };
            let _ = d.store.save(&lease, save, d.now()).await;
            d.let_go(id, None);
            return;
        }
    };
    let unanswered = match row.phase {
        Phase::Calling => d
            .store
            .calls(id)
            .await
            .ok()
            .and_then(|calls| calls.into_iter().rev().find(|c| c.answered_at.is_none()).map(|c| c.key)),
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
            Entered::Running(_) if waited < LEAVING_WAITS => {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Entered::Running(_) => {
                tracing::debug!(job = %id, "a stale claim: the job is active here");
                // A stale claim: let it go.
                d.let_go(id, None);
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
    let mut parts = Parts { job, state, started, delivery, stored: Some(Box::new(stored)) };

    if let Some(fleet) = &d.fleet
        && let Some(t) = fleet.before(inner.guards(d), parts.state.failure.downstream()).await
    {
        inner.breaker_seen(t);
    }
    let walked = AssertUnwindSafe(walk(&mut parts)).catch_unwind().await;
    let outcome = walked.unwrap_or_else(|_| internal_failure(&parts.state.failure, parts.state.history.attempts()));
    if cell.is(LOST) {
        parts.leave();
        d.let_go(id, None);
        return;
    }
    // Out of this replica's registry before the job can be claimed again, here or elsewhere.
    match write_back(d, &mut parts, &outcome).await {
        Err(e) => {
            // Not written: the lease expires and the job goes on from its last write, here or elsewhere.
            tracing::error!(store = %d.store.describe(), job = %id, error = %e, "writing a job back failed");
            parts.leave();
            d.let_go(id, None);
        }
        Ok(due) if matches!(outcome, Outcome::Suspended { .. }) => {
            parts.leave();
            d.let_go(id, due);
        }
        Ok(_) => {
            d.tell(id, &outcome);
            parts.end(outcome);
            d.let_go(id, None);
        }
    }
    if let Some(fleet) = &d.fleet {
        fleet.after(inner.guards(d)).await;
    }
}

/// Writes a job back: at rest until it is due (an outcome `Suspended` is a rest), or finished. Returns when
/// a job at rest is due.
async fn write_back<H>(d: &Durable, parts: &mut Parts<H>, outcome: &Outcome) -> Result<Option<Timestamp>, StoreError> {
    let Some(stored) = parts.stored.as_deref_mut() else { return Ok(None) };
    let now = d.now();
    let st = &parts.state;
    let mut record = Record::of(&parts.job, st, stored.first_failure_at);
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
        reference: st.awaiting().map(|a| a.reference.as_str()),
        ledger: &ledger,
        take_report: std::mem::take(&mut stored.clear_report),
        outcome: outcome_name,
    };
    let saved = d.store.save(&stored.lease, save, now).await?;
    Ok(match phase {
        Phase::Finished => None,
        // A report on the row makes a job awaiting it due at once.
        Phase::Awaiting if saved.report.is_some() => Some(now),
        _ => Some(wake_at),
    })
}
