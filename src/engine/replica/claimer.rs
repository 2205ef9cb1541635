//! The claimer: takes due jobs in batches (up to `max_active_jobs` held at once) and starts a task for each;
//! and the start of this replica's three tasks (claimer, heartbeat, pruner).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::heartbeat::heartbeat;
use super::held::hold;
use super::pruner::pruner;
use crate::engine::hooks::Hooks;
use crate::engine::shared::Inner;
use crate::store::Timestamp;

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
