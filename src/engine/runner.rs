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
use tracing::Instrument;

use super::cell::{CANCEL, JobCell, LOST};
use super::durable::{Durable, HeldJob, Stored};
use super::ending::internal_failure;
use super::hooks::Hooks;
use super::ledger::write_back;
use super::outcome::Outcome;
use super::parts::Parts;
use super::record::Record;
use super::registry::Entered;
use super::report::Reported;
use super::shared::{Delivery, Inner};
use super::walk::walk;
use crate::store::{Claimed, JobId, Lease, Phase, Save, StoreError, Timestamp};

/// Starts the claimer, the heartbeat and the pruner on the current runtime, unless they run: once, or again
/// after the runtime they ran on was shut down.
pub(crate) fn start<H: Hooks>(inner: &Arc<Inner<H>>) -> bool {
    let d = &inner.durable;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
    let mut tasks = d.tasks.lock().unwrap_or_else(|e| e.into_inner());
    if d.stopping.load(Ordering::SeqCst) || tasks.iter().any(|t| !t.is_finished()) {
        return true;
    }
    d.started.store(true, Ordering::SeqCst);
    tasks.clear();
    let weak = Arc::downgrade(inner);
    let claimer = runtime.spawn(claimer(weak.clone()));
    let heartbeat = runtime.spawn(heartbeat(weak.clone()));
    let pruner = runtime.spawn(pruner(weak));
    tasks.extend([claimer.abort_handle(), heartbeat.abort_handle(), pruner.abort_handle()]);
    true
}

/// Claims due jobs, in batches, and starts a task for each.
///
/// It looks when it is told (a job submitted or reported here, a job let go that is due sooner than it would
/// look, room made for a batch), when the earliest job at rest is due, and at least every poll interval. A
/// busy replica (less room than a batch) waits for the room, or a poll interval, before it claims again.
///
/// When the store fails, it waits before it tries again, longer at each failure in a row (from 50 ms to a
/// cap of 5 s, or the poll interval if that is longer), so that a store that is down is not asked in a hot
/// loop; the first claim that works resets the wait.
async fn claimer<H: Hooks>(weak: Weak<Inner<H>>) {
    // Whether the claimer has waited a poll interval for room: it then takes what room there is.
    let mut waited = false;
    let mut backoff = Backoff::default();
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let d = &inner.durable;
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
        let full;
        let sent = Instant::now();
        let now = d.now();
        let result = d.store.claim(&d.owner, now, d.settings.lease, limit).await;
        d.health.note(&result, now);
        match result {
            Ok(claimed) => {
                backoff.reset();
                full = claimed.len() == limit;
                for c in claimed {
                    hold(&inner, c, sent);
                }
            }
            Err(e) => {
                let wait = backoff.next(poll);
                tracing::warn!(store = %d.store.describe(), error = %e, retry_in = ?wait, "claiming due jobs failed");
                drop(inner);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = woken => {}
                }
                continue;
            }
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

/// How long the claimer waits after failures in a row.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait after one more failure: 50 ms, doubled at each, up to 5 s (or `poll` if longer).
    fn next(&mut self, poll: Duration) -> Duration {
        let cap = poll.max(Duration::from_secs(5));
        let wait = Duration::from_millis(50).saturating_mul(1 << self.failures.min(16)).min(cap);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

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

/// Renews the held jobs' leases every third of the lease; a job whose lease is lost stops at once.
///
/// A renewal waits at most half that long, and never past the moment the first held job must stop: a job
/// whose lease could not be renewed in time is stopped a sixth of the lease before it runs out (on this
/// machine's count, from before the write that last took or renewed it), so that its calls end before another
/// replica can take it over.
async fn heartbeat<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let d = &inner.durable;
        let every = (d.settings.lease / 3).max(Duration::from_millis(10));
        let leases: Vec<Lease> = d.held().values().map(|h| h.lease.clone()).collect();
        if !leases.is_empty() {
            let sent = Instant::now();
            let limit = (every / 2).min(stop_at(d).saturating_duration_since(sent)).max(Duration::from_millis(1));
            let now = d.now();
            let renewal = tokio::time::timeout(limit, d.store.renew(&leases, now, d.settings.lease)).await;
            let renewal = renewal.unwrap_or_else(|_| {
                Err(StoreError::Database {
                    store: d.store.describe(),
                    message: format!("no answer to the renewal within {limit:?}"),
                })
            });
            d.health.note(&renewal, now);
            match renewal {
                Ok(renewed) => {
                    let mut held = d.held();
                    // Only a job still held under the lease renewed: one that was released and claimed again
                    // while the renewal was under way holds a newer lease, which this renewal said nothing of.
                    let same =
                        |id: &JobId, h: &HeldJob| leases.iter().any(|l| l.job == *id && l.epoch == h.lease.epoch);
                    for id in &renewed.lost {
                        if let Some(h) = held.get(id).filter(|h| same(id, h)) {
                            tracing::warn!(job = %id, "lease lost: another replica holds the job now, or it ran out");
                            h.cell.raise(LOST);
                        }
                    }
                    for id in &renewed.cancel_requested {
                        if let Some(h) = held.get(id).filter(|h| same(id, h)) {
                            h.cell.raise(CANCEL);
                        }
                    }
                    for (id, h) in held.iter_mut() {
                        if same(id, h) && !renewed.lost.contains(id) {
                            h.expires = h.expires.max(sent + d.settings.lease);
                        }
                    }
                }
                Err(e) => tracing::warn!(store = %d.store.describe(), error = %e, "renewing leases failed"),
            }
        }
        stop_expiring(d);
        let wait = every.min(stop_at(d).saturating_duration_since(Instant::now())).max(Duration::from_millis(1));
        drop(inner);
        tokio::time::sleep(wait).await;
    }
}

/// When the first held job must stop unless its lease is renewed (far off when none is held).
fn stop_at(d: &Durable) -> Instant {
    let margin = d.stop_margin();
    let first = d.held().values().map(|h| h.expires).min();
    first.map_or_else(|| Instant::now() + d.settings.lease, |at| at.checked_sub(margin).unwrap_or(at))
}

/// Stops the held jobs whose leases run out within the stop margin: their renewals did not come in time.
fn stop_expiring(d: &Durable) {
    let deadline = Instant::now() + d.stop_margin();
    for (id, h) in d.held().iter() {
        if h.expires <= deadline && !h.cell.is(LOST) {
            tracing::warn!(job = %id, "the lease could not be renewed in time: the job stops here before it runs out");
            h.cell.raise(LOST);
        }
    }
}

/// Deletes finished jobs past the retention period, hourly.
async fn pruner<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let d = &inner.durable;
        let before = d.now().before(d.settings.retention);
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
