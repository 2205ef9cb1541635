//! Submits: a job inserted unless its asset has an active one (or its dedupe key a job), held at once by its
//! submitter when it is due now, and many at once in one statement. The unique index of active jobs settles
//! two submits of one asset, from any number of replicas.

use std::sync::Arc;
use std::time::Duration;

use super::conn::Db;
use super::decode::{job_columns, job_id, job_row};
use super::hints::send_hint;
use crate::store::group::{self, Written};
use crate::store::{Claimed, JobRow, Lease, NewJob, StoreError, Submitted, Timestamp};

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

/// The submits of a batch in one statement: [`INSERT`] and [`INSERT_HELD`] of many jobs (arrays, one element a
/// job; the owner `NULL` for a job not held, and `wake_at` a held job's lease expiry), in the order of their
/// assets (so that replicas inserting at once lock the unique index in one order), with one hint (channel `$9`)
/// when a job not held was inserted. A job whose insert did nothing is submitted again alone.
pub(super) const INSERT_MANY: &str = concat!(
    "WITH inserted AS (\
         INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at, \
             lease_owner, epoch, dedupe_key) \
         SELECT n.asset, 'waiting', n.wake, n.payload, n.version, n.code, n.now, n.now, n.owner, \
             CASE WHEN n.owner IS NULL THEN 0 ELSE 1 END, n.dedupe \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], \
             $8::text[]) AS n(asset, wake, payload, version, code, now, owner, dedupe) \
         ORDER BY n.asset \
         ON CONFLICT DO NOTHING RETURNING ",
    job_columns!(),
    "), hinted AS (SELECT CASE WHEN $9::text IS NOT NULL THEN ",
    send_hint!("9"),
    " END FROM (SELECT 1 FROM inserted WHERE lease_owner IS NULL LIMIT 1) AS due) \
     SELECT inserted.*, (SELECT count(*) FROM hinted) AS hints FROM inserted"
);

/// Read after an insert that found the asset's active job: a statement of its own, whose snapshot sees the
/// job that a concurrent submit committed while the insert waited for it.
pub(super) const ACTIVE_OF_ASSET: &str = "SELECT id FROM jobs WHERE asset_id = $1 AND phase <> 'finished'";

const OF_DEDUPE_KEY: &str = "SELECT id FROM jobs WHERE dedupe_key = $1";

/// How often a submit tries again when the active job it joined ended between its two statements.
const SUBMIT_TRIES: usize = 3;

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

    /// The submits at `which` (indexes into `writes`) in one statement; each its answer, by its index. A
    /// submit whose insert did nothing (its asset has an active job, or its dedupe key a job) is made again
    /// alone, which finds the job it meets.
    pub(super) async fn submits_in(
        &self,
        writes: &[group::Write],
        which: &[usize],
    ) -> Result<Vec<(usize, Result<Written, StoreError>)>, StoreError> {
        let n = which.len();
        let (mut asset, mut wake, mut payload, mut version) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut code, mut at, mut owner, mut dedupe) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let mut holders: Vec<Option<&Arc<str>>> = Vec::with_capacity(n);
        for &i in which {
            let group::Write::Submit { new, claim, now } = &writes[i] else { continue };
            // Held by its owner for its lease when it is due now.
            let held = claim.as_ref().filter(|_| new.wake_at <= *now);
            asset.push(&*new.asset_id);
            wake.push(held.map_or(new.wake_at, |(_, lease)| now.after(*lease)).0);
            payload.push(&*new.payload);
            version.push(i64::from(new.version));
            code.push(&*new.last_code);
            at.push(now.0);
            owner.push(held.map(|(owner, _)| &**owner));
            dedupe.push(new.dedupe_key.as_deref());
            holders.push(held.map(|(owner, _)| owner));
        }
        let rows = sqlx::query(INSERT_MANY)
            .bind(&asset)
            .bind(&wake)
            .bind(&payload)
            .bind(&version)
            .bind(&code)
            .bind(&at)
            .bind(&owner)
            .bind(&dedupe)
            .bind(self.hints.as_deref())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut inserted = rows.iter().map(job_row).collect::<Result<Vec<JobRow>, _>>()?;
        let mut answers = Vec::with_capacity(n);
        for (&i, holder) in which.iter().zip(holders) {
            let group::Write::Submit { new, claim, now } = &writes[i] else { continue };
            // Its row, if it was inserted: one asset has at most one active job, so at most one row.
            let mine = inserted.iter().position(|row| {
                *row.asset_id == *new.asset_id
                    && row.dedupe_key.as_deref() == new.dedupe_key.as_deref()
                    && row.lease_owner.as_deref() == holder.map(|h| &**h)
            });
            let answer = match (mine.map(|k| inserted.swap_remove(k)), holder) {
                (Some(row), Some(owner)) => {
                    let lease = Lease { job: row.id, epoch: row.epoch, owner: owner.clone() };
                    let id = row.id;
                    Ok(Written::Submitted(
                        Submitted::New(id),
                        Some(Box::new(Claimed { lease, row, taken_over: false })),
                    ))
                }
                (Some(row), None) => Ok(Written::Submitted(Submitted::New(row.id), None)),
                (None, _) => {
                    let new = new.borrowed();
                    match claim {
                        Some((owner, lease)) => self
                            .submit_and_claim(new, owner, *lease, *now)
                            .await
                            .map(|(submitted, claimed)| Written::Submitted(submitted, claimed.map(Box::new))),
                        None => self.submit(new, *now).await.map(|submitted| Written::Submitted(submitted, None)),
                    }
                }
            };
            answers.push((i, answer));
        }
        Ok(answers)
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
}
