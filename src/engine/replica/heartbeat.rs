//! The heartbeat: renews the held jobs' leases, and stops a job at once when its lease is lost (another replica
//! took it over) or could not be renewed in time.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use super::{Durable, HeldJob};
use crate::engine::hooks::Hooks;
use crate::engine::shared::Inner;
use crate::engine::walk::cell::{CANCEL, LOST};
use crate::store::{JobId, Lease, StoreError};

/// Renews the held jobs' leases every third of the lease; a job whose lease is lost stops at once.
///
/// A renewal waits at most half that long, and never past the moment the first held job must stop: a job
/// whose lease could not be renewed in time is stopped a sixth of the lease before it runs out (on this
/// machine's count, from before the write that last took or renewed it), so that its calls end before another
/// replica can take it over.
pub(crate) async fn heartbeat<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let d = &inner.durable;
        let every = (d.settings.lease / 3).max(Duration::from_millis(10));
        let leases: Vec<Lease> = d.held().values().map(|h| h.lease.clone()).collect();
        if !leases.is_empty() {
            let sent_at = Instant::now();
            let limit = (every / 2).min(stop_at(d).saturating_duration_since(sent_at)).max(Duration::from_millis(1));
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
                    // By id, and the lost as a set: a replica may hold a great many jobs.
                    let sent: HashMap<JobId, u64> = leases.iter().map(|l| (l.job, l.epoch)).collect();
                    let same = |id: &JobId, h: &HeldJob| sent.get(id) == Some(&h.lease.epoch);
                    let lost: HashSet<JobId> = renewed.lost.iter().copied().collect();
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
                        if same(id, h) && !lost.contains(id) {
                            h.expires = h.expires.max(sent_at + d.settings.lease);
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
