//! The lease holder's side: submits, claims of due jobs (and of expired leases) in batches, renewals in
//! batches, and fenced saves with their ledger entries and any held report in the same transaction. Safe from
//! any number of replicas at once: claims skip the rows another transaction has locked, every write of a
//! holder names its lease, and the unique index of active jobs settles two submits of one asset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::Db;
use super::decode::{get, int, job_columns, job_id, job_row};
use super::hints::send_hint;
use crate::store::{
    Claimed, Lease, LedgerWrite, NewJob, Phase, Renewed, Save, Saved, StoreError, Submitted, Timestamp,
};

/// One statement inserts the job unless the asset has an active one or a job has its dedupe key (`$8`; the
/// unique indexes say so), and hints the other replicas (on channel `$7`) when it did.
pub(super) const INSERT: &str = concat!(
    "WITH inserted AS (\
         INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at, \
             dedupe_key) \
         VALUES ($1, 'waiting', $2, $3, $4, $5, $6, $6, $8) \
         ON CONFLICT DO NOTHING RETURNING id) \
     SELECT id, CASE WHEN $7::text IS NOT NULL THEN ",
    send_hint!("7"),
    " END AS hinted FROM inserted"
);

/// The same insert, held by `$7` until `$2` under the job's first epoch, as a claim would leave it: no hint, the
/// job is not due for the other replicas.
pub(super) const INSERT_HELD: &str = concat!(
    "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at, lease_owner, \
     epoch, dedupe_key) VALUES ($1, 'waiting', $2, $3, $4, $5, $6, $6, $7, 1, $8) \
     ON CONFLICT DO NOTHING RETURNING ",
    job_columns!()
);

/// Read after an insert that found the asset's active job: a statement of its own, whose snapshot sees the
/// job that a concurrent submit committed while the insert waited for it.
pub(super) const ACTIVE_OF_ASSET: &str = "SELECT id FROM jobs WHERE asset_id = $1 AND phase <> 'finished'";

const OF_DEDUPE_KEY: &str = "SELECT id FROM jobs WHERE dedupe_key = $1";

/// How often a submit tries again when the active job it joined ended between its two statements.
const SUBMIT_TRIES: usize = 3;

/// One statement per batch, served by the partial index `jobs_due`: due jobs at rest and expired leases are
/// both `wake_at <= now`. `SKIP LOCKED`: two replicas claiming at once take different rows, and neither waits
/// for the other. In `SET`, `lease_owner` is the value before the update: whether the job still had a holder
/// (whose lease had expired).
pub(super) const CLAIM: &str = concat!(
    "WITH due AS (\
         SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= $3 \
         ORDER BY wake_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE jobs SET taken_over = (jobs.lease_owner IS NOT NULL), epoch = jobs.epoch + 1, lease_owner = $1, \
         wake_at = $2, updated_at = $3 \
     FROM due WHERE jobs.id = due.id \
     RETURNING taken_over, ",
    job_columns!()
);

/// One statement per batch: the leases come as three arrays (ids, epochs, owners), joined on the key. An
/// expired lease (`wake_at <= $5`, now) is not renewed: its job is due for another holder.
pub(super) const RENEW: &str = "UPDATE jobs SET wake_at = $1 \
     FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS held (id, epoch, owner) \
     WHERE jobs.id = held.id AND jobs.epoch = held.epoch AND jobs.lease_owner = held.owner \
     AND jobs.phase <> 'finished' AND jobs.wake_at > $5 \
     RETURNING jobs.id, jobs.epoch, jobs.lease_owner, jobs.cancel_requested";

/// Serializes the save that names a reference with a report for it (see [`REFERENCE_LOCKS`]).
pub(super) const LOCK_REFERENCE: &str = "SELECT pg_advisory_xact_lock($1, hashtext($2))";

/// The key space of the advisory locks taken per reference (the two-key form, apart from the migrations').
/// A report for a reference no job names yet is held; the save that names it takes it. Without a lock, each
/// could miss the other: the report reads before the save commits its reference, the save reads before the
/// report commits the held row. With it, the later one's next statement sees what the first committed.
pub(super) const REFERENCE_LOCKS: i32 = 0x4c46_5246;

const TAKE_HELD_REPORT: &str = "DELETE FROM held_reports WHERE reference = $1 RETURNING report";

/// The fenced write of a holder: refused unless the lease is unexpired until `$17` (a held row's `wake_at` is
/// its lease's expiry). `$11` is a report held for the reference being saved; the row's own report goes first
/// unless the holder took it. A release to `awaiting` with a report on the row makes the job due at once (when
/// `$19`), as does a release of a job asked to cancel meanwhile. `$18` is the attempt under way, and its start
/// is noted when it changes. A job released due now hints the other replicas (on channel `$16`).
pub(super) const SAVE: &str = concat!(
    "UPDATE jobs SET payload = $4, version = $5, last_code = $6, attempts = $7, reference = $8, updated_at = $9, \
         report = CASE WHEN $10 THEN $11 ELSE COALESCE(report, $11) END, \
         phase = $12, \
         attempt_at = CASE WHEN attempt = $18 THEN attempt_at WHEN $18 > 0 THEN $9 ELSE NULL END, \
         attempt = $18, \
         lease_owner = CASE WHEN $12 = 'finished' OR $13 THEN NULL ELSE lease_owner END, \
         wake_at = CASE \
             WHEN $12 = 'finished' OR NOT $13 THEN wake_at \
             WHEN cancel_requested THEN $9 \
             WHEN $12 = 'awaiting' AND $19 AND (CASE WHEN $10 THEN $11 ELSE COALESCE(report, $11) END) IS NOT NULL \
                 THEN $9 \
             ELSE $14 END, \
         finished_at = CASE WHEN $12 = 'finished' THEN $9 ELSE finished_at END, \
         outcome = CASE WHEN $12 = 'finished' THEN COALESCE($15, 'finished') ELSE outcome END \
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND phase <> 'finished' AND wake_at > $17 \
     RETURNING cancel_requested, report, \
         CASE WHEN $16::text IS NOT NULL AND lease_owner IS NULL AND phase <> 'finished' AND wake_at <= $9 THEN ",
    send_hint!("16"),
    " END AS hinted"
);

/// A reference stays with the job that named it first.
const NAME_REFERENCE: &str = "INSERT INTO job_references (reference, job_id) VALUES ($1, $2) \
     ON CONFLICT (reference) DO NOTHING";

const BEGIN_CALL: &str = "INSERT INTO calls (job_id, key, hook, started_at) VALUES ($1, $2, $3, $4)";

/// Answers the latest unanswered call with this key.
pub(super) const END_CALL: &str = "UPDATE calls SET answered_at = $3, answer = $4 WHERE id = \
     (SELECT id FROM calls WHERE job_id = $1 AND key = $2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)";

impl Db {
    pub(super) async fn submit(&self, new: NewJob<'_>, now: Timestamp) -> Result<Submitted, StoreError> {
        for _ in 0..SUBMIT_TRIES {
            let inserted: Option<i64> = sqlx::query_scalar(INSERT)
                .bind(new.asset_id)
                .bind(new.wake_at.0)
                .bind(new.payload)
                .bind(i64::from(new.version))
                .bind(new.last_code)
                .bind(now.0)
                .bind(self.hints.as_deref())
                .bind(new.dedupe_key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            if let Some(id) = inserted {
                return Ok(Submitted::New(job_id(id)?));
            }
            if let Some(existing) = self.existing(&new).await? {
                return Ok(existing);
            }
            // The job it would have joined ended in between: the asset may have a new one now.
        }
        Err(self.err(format!("submitting for asset `{}`: its active job kept ending and starting", new.asset_id)))
    }

    pub(super) async fn submit_and_claim(
        &self,
        new: NewJob<'_>,
        owner: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<(Submitted, Option<Claimed>), StoreError> {
        if new.wake_at > now {
            return Ok((self.submit(new, now).await?, None));
        }
        for _ in 0..SUBMIT_TRIES {
            let inserted = sqlx::query(INSERT_HELD)
                .bind(new.asset_id)
                .bind(now.after(lease).0)
                .bind(new.payload)
                .bind(i64::from(new.version))
                .bind(new.last_code)
                .bind(now.0)
                .bind(owner)
                .bind(new.dedupe_key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            if let Some(row) = inserted {
                let row = job_row(&row)?;
                let lease = Lease { job: row.id, epoch: row.epoch, owner: Arc::from(owner) };
                return Ok((Submitted::New(row.id), Some(Claimed { lease, row, taken_over: false })));
            }
            if let Some(existing) = self.existing(&new).await? {
                return Ok((existing, None));
            }
        }
        Err(self.err(format!("submitting for asset `{}`: its active job kept ending and starting", new.asset_id)))
    }

    /// The job an insert that did nothing met: the one with the same dedupe key, else the asset's active one;
    /// `None` if it ended (or was pruned) in between.
    async fn existing(&self, new: &NewJob<'_>) -> Result<Option<Submitted>, StoreError> {
        if let Some(key) = new.dedupe_key {
            let same: Option<i64> = sqlx::query_scalar(OF_DEDUPE_KEY)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            if let Some(id) = same {
                return Ok(Some(Submitted::Deduplicated(job_id(id)?)));
            }
        }
        let active: Option<i64> = sqlx::query_scalar(ACTIVE_OF_ASSET)
            .bind(new.asset_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        active.map(|id| job_id(id).map(Submitted::Joined)).transpose()
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
        let rows = sqlx::query(CLAIM)
            .bind(owner)
            .bind(now.after(lease).0)
            .bind(now.0)
            .bind(int(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
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
        // `UPDATE … RETURNING` gives rows in no set order; ids are the order of submission.
        claimed.sort_by_key(|c| c.row.id);
        Ok(claimed)
    }

    pub(super) async fn renew(&self, leases: &[Lease], now: Timestamp, lease: Duration) -> Result<Renewed, StoreError> {
        if leases.is_empty() {
            return Ok(Renewed::default());
        }
        let ids: Vec<i64> = leases.iter().map(|l| int(l.job.0)).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| int(l.epoch)).collect();
        let owners: Vec<&str> = leases.iter().map(|l| &*l.owner).collect();
        let rows: Vec<(i64, i64, String, bool)> = sqlx::query_as(RENEW)
            .bind(now.after(lease).0)
            .bind(ids)
            .bind(epochs)
            .bind(owners)
            .bind(now.0)
            .fetch_all(&self.renewals)
            .await
            .map_err(|e| self.err(e))?;
        // Keyed by the whole lease: a batch may name one job under an old lease and under the new one.
        let held: HashMap<(i64, i64, String), bool> =
            rows.into_iter().map(|(id, epoch, owner, cancel)| ((id, epoch, owner), cancel)).collect();
        let mut renewed = Renewed::default();
        for l in leases {
            match held.get(&(int(l.job.0), int(l.epoch), l.owner.to_string())) {
                None => renewed.lost.push(l.job),
                Some(true) => renewed.cancel_requested.push(l.job),
                Some(false) => {}
            }
        }
        Ok(renewed)
    }

    pub(super) async fn save(&self, lease: &Lease, save: Save<'_>, now: Timestamp) -> Result<Saved, StoreError> {
        let id = int(lease.job.0);
        let lost = || StoreError::LeaseLost { job: lease.job.0, epoch: lease.epoch };
        let awaiting = match (save.phase, save.reference) {
            (Phase::Awaiting, Some(reference)) => Some(reference),
            _ => None,
        };
        let update = |held: Option<String>| {
            sqlx::query_as::<_, (bool, Option<String>, Option<bool>)>(SAVE)
                .bind(id)
                .bind(int(lease.epoch))
                .bind(&*lease.owner)
                .bind(save.payload)
                .bind(i64::from(save.version))
                .bind(save.last_code)
                .bind(i64::from(save.attempts))
                .bind(save.reference)
                .bind(now.0)
                .bind(save.take_report)
                .bind(held)
                .bind(save.phase.as_str())
                .bind(save.release)
                .bind(save.wake_at.0)
                .bind(save.outcome)
                .bind(self.hints.as_deref())
                .bind(save.fence_until.max(now).0)
                .bind(i64::from(save.attempt))
                .bind(save.wake_on_report)
        };
        if awaiting.is_none() && save.ledger.is_empty() {
            // One statement is a transaction of its own.
            let saved = update(None).fetch_optional(&self.pool).await.map_err(|e| self.err(e))?;
            let (cancel_requested, report, _) = saved.ok_or_else(lost)?;
            return Ok(Saved { cancel_requested, report });
        }
        let mut tx = self.begin().await?;
        // Taken before the fenced update, which keeps it; a lost lease rolls the whole transaction back.
        let held: Option<String> = match awaiting {
            Some(reference) => {
                sqlx::query(LOCK_REFERENCE)
                    .bind(REFERENCE_LOCKS)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                sqlx::query_scalar(TAKE_HELD_REPORT)
                    .bind(reference)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?
            }
            None => None,
        };
        let saved = update(held).fetch_optional(&mut *tx).await.map_err(|e| self.err(e))?;
        let Some((cancel_requested, report, _)) = saved else {
            tx.rollback().await.map_err(|e| self.err(e))?;
            return Err(lost());
        };
        if let Some(reference) = awaiting {
            sqlx::query(NAME_REFERENCE).bind(reference).bind(id).execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        for entry in save.ledger {
            match *entry {
                LedgerWrite::Begin { key, hook } => {
                    sqlx::query(BEGIN_CALL).bind(id).bind(key).bind(hook).bind(now.0).execute(&mut *tx).await
                }
                LedgerWrite::End { key, answer } => {
                    sqlx::query(END_CALL).bind(id).bind(key).bind(now.0).bind(answer).execute(&mut *tx).await
                }
            }
            .map_err(|e| self.err(e))?;
        }
        self.commit(tx).await?;
        Ok(Saved { cancel_requested, report })
    }
}
