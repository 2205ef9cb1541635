//! Leases renewed in batches by the heartbeat: one statement for all the leases a replica holds.

use std::collections::HashMap;
use std::time::Duration;

use super::conn::Db;
use super::decode::bind_id;
use crate::store::{Lease, Renewed, StoreError, Timestamp};

/// One statement per batch: the leases come as one JSON array of `[id, epoch, owner]`, joined on the key. An
/// expired lease (`wake_at <= ?3`, now) is not renewed: its job is due for another holder.
pub(super) const RENEW: &str = "UPDATE jobs SET wake_at = ?1 \
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS epoch, value ->> 2 AS owner FROM json_each(?2)) AS held \
     WHERE jobs.id = held.id AND jobs.epoch = held.epoch AND jobs.lease_owner = held.owner \
     AND jobs.phase <> 'finished' AND jobs.wake_at > ?3 \
     RETURNING jobs.id, jobs.epoch, jobs.lease_owner, jobs.cancel_requested";

/// Whole milliseconds and counts as SQLite integers.
fn int<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl Db {
    pub(super) async fn renew(&self, leases: &[Lease], now: Timestamp, lease: Duration) -> Result<Renewed, StoreError> {
        if leases.is_empty() {
            return Ok(Renewed::default());
        }
        let batch: Vec<(u64, u64, &str)> = leases.iter().map(|l| (l.job.0, l.epoch, &*l.owner)).collect();
        let batch = serde_json::to_string(&batch).map_err(|e| self.err(e))?;
        let mut tx = self.write().await?;
        let rows: Vec<(i64, i64, String, bool)> = sqlx::query_as(RENEW)
            .bind(now.after(lease).0)
            .bind(batch)
            .bind(now.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        // Keyed by the whole lease: a batch may name one job under an old lease and under the new one.
        let held: HashMap<(i64, i64, String), bool> =
            rows.into_iter().map(|(id, epoch, owner, cancel)| ((id, epoch, owner), cancel)).collect();
        let mut renewed = Renewed::default();
        for l in leases {
            match held.get(&(bind_id(l.job), int(l.epoch), l.owner.to_string())) {
                None => renewed.lost.push(l.job),
                Some(true) => renewed.cancel_requested.push(l.job),
                Some(false) => {}
            }
        }
        Ok(renewed)
    }
}
