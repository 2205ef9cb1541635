//! The lease holder's side: submits, claims of due jobs (and of expired leases) in batches, renewals in
//! batches, and fenced saves with their ledger entry and any held report in the same transaction; saves and
//! submits are written by the store's writer, many in one transaction ([`Batch`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{Db, Write};
use super::decode::{bind_id, get, job_columns, job_id, job_row};
use crate::store::group::{self, Batch, BatchFuture, Failed, OwnedLedger, OwnedSave, Written};
use crate::store::{Claimed, Lease, NewJob, Renewed, Saved, StoreError, Submitted, Timestamp};

/// One statement inserts the job unless the asset has an active one or a job has its dedupe key (the unique
/// indexes say so).
pub(super) const INSERT: &str = "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, \
     created_at, updated_at, dedupe_key) VALUES (?1, 'waiting', ?2, ?3, ?4, ?5, ?6, ?6, ?7) \
     ON CONFLICT DO NOTHING RETURNING id";

/// The same insert, held by `?7` until `?2` under the job's first epoch, as a claim would leave it.
pub(super) const INSERT_HELD: &str = concat!(
    "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at, lease_owner, \
     epoch, dedupe_key) VALUES (?1, 'waiting', ?2, ?3, ?4, ?5, ?6, ?6, ?7, 1, ?8) \
     ON CONFLICT DO NOTHING RETURNING ",
    job_columns!()
);

const ACTIVE_OF_ASSET: &str = "SELECT id FROM jobs WHERE asset_id = ?1 AND phase <> 'finished'";

const OF_DEDUPE_KEY: &str = "SELECT id FROM jobs WHERE dedupe_key = ?1";

/// One statement per batch, served by the partial index `jobs_due`: due jobs at rest and expired leases are
/// both `wake_at <= now`. `taken_over` keeps whether the job still had a holder (whose lease had expired):
/// in `SET`, `lease_owner` is the value before the update.
pub(super) const CLAIM: &str = concat!(
    "UPDATE jobs SET taken_over = (lease_owner IS NOT NULL), epoch = epoch + 1, lease_owner = ?1, wake_at = ?2, \
     updated_at = ?3 \
     WHERE id IN (SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= ?3 ORDER BY wake_at LIMIT ?4) \
     RETURNING taken_over, ",
    job_columns!()
);

/// One statement per batch: the leases come as one JSON array of `[id, epoch, owner]`, joined on the key. An
/// expired lease (`wake_at <= ?3`, now) is not renewed: its job is due for another holder.
pub(super) const RENEW: &str = "UPDATE jobs SET wake_at = ?1 \
     FROM (SELECT value ->> 0 AS id, value ->> 1 AS epoch, value ->> 2 AS owner FROM json_each(?2)) AS held \
     WHERE jobs.id = held.id AND jobs.epoch = held.epoch AND jobs.lease_owner = held.owner \
     AND jobs.phase <> 'finished' AND jobs.wake_at > ?3 \
     RETURNING jobs.id, jobs.epoch, jobs.lease_owner, jobs.cancel_requested";

/// The report held for the reference `?11` (none when `?11` is null).
macro_rules! held_report {
    () => {
        "(SELECT report FROM held_reports WHERE reference = ?11)"
    };
}

/// The fenced write of a holder: refused unless the lease is unexpired until `?16` (a held row's `wake_at` is
/// its lease's expiry). `?11` is the reference being saved for a job that goes to await its result: a report
/// held for it is taken (and deleted after, if the save was not refused); the row's own report goes first unless
/// the holder took it. A release to `awaiting` with a report on the row makes the job due at once (when `?18`),
/// as does a release of a job asked to cancel meanwhile. `?17` is the attempt under way, and its start is noted
/// when it changes.
pub(super) const SAVE: &str = concat!(
    "UPDATE jobs SET payload = ?4, version = ?5, last_code = ?6, attempts = ?7, reference = ?8, updated_at = ?9, \
     report = CASE WHEN ?10 THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END, \
     phase = ?12, \
     attempt_at = CASE WHEN attempt = ?17 THEN attempt_at WHEN ?17 > 0 THEN ?9 ELSE NULL END, \
     attempt = ?17, \
     lease_owner = CASE WHEN ?12 = 'finished' OR ?13 THEN NULL ELSE lease_owner END, \
     wake_at = CASE \
         WHEN ?12 = 'finished' OR NOT ?13 THEN wake_at \
         WHEN cancel_requested THEN ?9 \
         WHEN ?12 = 'awaiting' AND ?18 AND (CASE WHEN ?10 THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END) IS NOT NULL THEN ?9 \
         ELSE ?14 END, \
     finished_at = CASE WHEN ?12 = 'finished' THEN ?9 ELSE finished_at END, \
     outcome = CASE WHEN ?12 = 'finished' THEN COALESCE(?15, 'finished') ELSE outcome END \
     WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3 AND phase <> 'finished' AND wake_at > ?16 \
     RETURNING cancel_requested, report"
);

const DROP_HELD_REPORT: &str = "DELETE FROM held_reports WHERE reference = ?1";

/// A reference stays with the job that named it first.
const NAME_REFERENCE: &str = "INSERT INTO job_references (reference, job_id) VALUES (?1, ?2) \
     ON CONFLICT (reference) DO NOTHING";

const BEGIN_CALL: &str = "INSERT INTO calls (job_id, key, hook, started_at) VALUES (?1, ?2, ?3, ?4)";

/// Answers the latest unanswered call with this key.
pub(super) const END_CALL: &str = "UPDATE calls SET answered_at = ?3, answer = ?4 WHERE id = \
     (SELECT id FROM calls WHERE job_id = ?1 AND key = ?2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)";

/// Whole milliseconds and counts as SQLite integers.
fn int<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl Db {
    /// Inserts `new` in `tx` (held by `claim`'s owner for its lease when it is due now), or finds the job it
    /// joins.
    pub(super) async fn submit_in(
        &self,
        tx: &mut Write,
        new: NewJob<'_>,
        claim: Option<(&str, Duration)>,
        now: Timestamp,
    ) -> Result<(Submitted, Option<Claimed>), StoreError> {
        let claim = claim.filter(|_| new.wake_at <= now);
        let Some((owner, lease)) = claim else {
            let inserted: Option<i64> = sqlx::query_scalar(INSERT)
                .bind(new.asset_id)
                .bind(new.wake_at.0)
                .bind(new.payload)
                .bind(i64::from(new.version))
                .bind(new.last_code)
                .bind(now.0)
                .bind(new.dedupe_key)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            return Ok(match inserted {
                Some(id) => (Submitted::New(job_id(id)?), None),
                None => (self.existing(tx, &new).await?, None),
            });
        };
        let inserted = sqlx::query(INSERT_HELD)
            .bind(new.asset_id)
            .bind(now.after(lease).0)
            .bind(new.payload)
            .bind(i64::from(new.version))
            .bind(new.last_code)
            .bind(now.0)
            .bind(owner)
            .bind(new.dedupe_key)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(match inserted {
            Some(row) => {
                let row = job_row(&row)?;
                let lease = Lease { job: row.id, epoch: row.epoch, owner: Arc::from(owner) };
                (Submitted::New(row.id), Some(Claimed { lease, row, taken_over: false }))
            }
            None => (self.existing(tx, &new).await?, None),
        })
    }

    /// The job an insert that did nothing met: the one with the same dedupe key, else the asset's active one.
    async fn existing(&self, tx: &mut Write, new: &NewJob<'_>) -> Result<Submitted, StoreError> {
        if let Some(key) = new.dedupe_key {
            let same: Option<i64> =
                sqlx::query_scalar(OF_DEDUPE_KEY).bind(key).fetch_optional(&mut **tx).await.map_err(|e| self.err(e))?;
            if let Some(id) = same {
                return Ok(Submitted::Deduplicated(job_id(id)?));
            }
        }
        let id: i64 = sqlx::query_scalar(ACTIVE_OF_ASSET)
            .bind(new.asset_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Submitted::Joined(job_id(id)?))
    }

    pub(super) async fn claim(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let rows = sqlx::query(CLAIM)
            .bind(owner)
            .bind(now.after(lease).0)
            .bind(now.0)
            .bind(int(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        let owner: Arc<str> = Arc::from(owner);
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            // A row this build cannot read is left out (and said): failing the batch would hold back every
            // job claimed with it, at every claim, until the row is repaired.
            let read = job_row(row).and_then(|job| Ok((get::<bool>(row, "taken_over", job.id.0)?, job)));
            match read {
                Ok((taken_over, row)) => claimed.push(Claimed {
                    lease: Lease { job: row.id, epoch: row.epoch, owner: owner.clone() },
                    row,
                    taken_over,
                }),
                Err(e) => tracing::error!(store = %self.name, error = %e, "a claimed job's row is unreadable"),
            }
        }
        // SQLite returns updated rows in no set order; ids are the order of submission.
        claimed.sort_by_key(|c| c.row.id);
        Ok(claimed)
    }

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

    /// The fenced write of `save` in `tx`: [`StoreError::LeaseLost`] (and nothing written) when the lease is
    /// no longer the holder's; the transaction goes on for the other writes of its batch.
    pub(super) async fn save_in(
        &self,
        tx: &mut Write,
        lease: &Lease,
        save: &OwnedSave,
        now: Timestamp,
    ) -> Result<Saved, StoreError> {
        let id = bind_id(lease.job);
        let awaiting = save.awaiting();
        let saved: Option<(bool, Option<String>)> = sqlx::query_as(SAVE)
            .bind(id)
            .bind(int(lease.epoch))
            .bind(&*lease.owner)
            .bind(&*save.payload)
            .bind(i64::from(save.version))
            .bind(&*save.last_code)
            .bind(i64::from(save.attempts))
            .bind(save.reference.as_deref())
            .bind(now.0)
            .bind(save.take_report)
            .bind(awaiting)
            .bind(save.phase.as_str())
            .bind(save.release)
            .bind(save.wake_at.0)
            .bind(save.outcome.as_deref())
            .bind(save.fence_until.max(now).0)
            .bind(i64::from(save.attempt))
            .bind(save.wake_on_report)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let Some((cancel_requested, report)) = saved else { return Err(OwnedSave::lost(lease)) };
        if let Some(reference) = awaiting {
            sqlx::query(DROP_HELD_REPORT).bind(reference).execute(&mut **tx).await.map_err(|e| self.err(e))?;
            sqlx::query(NAME_REFERENCE).bind(reference).bind(id).execute(&mut **tx).await.map_err(|e| self.err(e))?;
        }
        for entry in &save.ledger {
            match entry {
                OwnedLedger::Begin { key, hook } => {
                    sqlx::query(BEGIN_CALL).bind(id).bind(&**key).bind(&**hook).bind(now.0).execute(&mut **tx).await
                }
                OwnedLedger::End { key, answer } => {
                    sqlx::query(END_CALL).bind(id).bind(&**key).bind(now.0).bind(&**answer).execute(&mut **tx).await
                }
            }
            .map_err(|e| self.err(e))?;
        }
        Ok(Saved { cancel_requested, report })
    }
}

impl Batch for Db {
    fn run<'a>(&'a self, writes: &'a [group::Write]) -> BatchFuture<'a> {
        Box::pin(async move {
            let mut tx = self.write().await.map_err(Failed::All)?;
            let mut results = Vec::with_capacity(writes.len());
            for (i, write) in writes.iter().enumerate() {
                let result = match write {
                    group::Write::Save { lease, save, now } => {
                        self.save_in(&mut tx, lease, save, *now).await.map(Written::Saved)
                    }
                    group::Write::Submit { new, claim, now } => {
                        let claim = claim.as_ref().map(|(owner, lease)| (&**owner, *lease));
                        self.submit_in(&mut tx, new.borrowed(), claim, *now)
                            .await
                            .map(|(submitted, claimed)| Written::Submitted(submitted, claimed))
                    }
                };
                match result {
                    Ok(_) | Err(StoreError::LeaseLost { .. }) => results.push(result),
                    Err(e) => {
                        // The others run again without it; a connection that cannot roll back is replaced.
                        let _ = tx.rollback(self).await;
                        return Err(Failed::At(i, e));
                    }
                }
            }
            self.commit(tx).await.map_err(Failed::All)?;
            Ok(results)
        })
    }
}
