//! The lease holder's side: submits, claims of due jobs (and of expired leases) in batches, renewals in
//! batches, and fenced saves with their ledger entry and any held report in the same transaction; saves and
//! submits are written by the store's writer, many in one transaction ([`Batch`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{Db, Write};
use super::decode::{bind_id, get, job_columns, job_id, job_row};
use crate::store::group::{self, Batch, BatchFuture, Failed, OwnedLedger, OwnedSave, Saves, Written};
use crate::store::{Claimed, JobRow, Lease, NewJob, Renewed, Saved, StoreError, Submitted, Timestamp};

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

/// [`INSERT`] and [`INSERT_HELD`] of many jobs in one statement, in order (`?1`: a JSON array of `[asset,
/// wake_at, payload, version, last_code, now, dedupe_key, owner]`, the owner `null` for a job not held, and
/// `wake_at` a held job's lease expiry).
const INSERT_MANY: &str = concat!(
    "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at, lease_owner, \
     epoch, dedupe_key) \
     SELECT value ->> 0, 'waiting', value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 5, \
     value ->> 7, CASE WHEN value ->> 7 IS NULL THEN 0 ELSE 1 END, value ->> 6 \
     FROM json_each(?1) WHERE true ORDER BY json_each.key \
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

/// The report held for the reference the save names (none when it names none).
macro_rules! held_report {
    () => {
        "(SELECT held_reports.report FROM held_reports WHERE held_reports.reference = s_held)"
    };
}

/// The fenced writes of holders, any number in one statement: `?1` is a JSON array with one array per save
/// ([`save_row`]). Each is refused (no row returned) unless its lease is unexpired until `fence` (a held row's
/// `wake_at` is its lease's expiry).
///
/// `held` is the reference of a job that goes to await its result: a report held for it is taken (and its
/// row deleted after, by [`DROP_HELD_REPORTS`]); the row's own report goes first unless the holder took it. A
/// release to `awaiting` with a report on the row makes the job due at once (when `wake_on_report`), as does
/// a release of a job asked to cancel meanwhile. `attempt` is the attempt under way, and its start is noted
/// when it changes.
pub(super) const SAVES: &str = concat!(
    "UPDATE jobs SET payload = s_payload, version = s_version, last_code = s_last_code, attempts = s_attempts, \
         reference = s_reference, updated_at = s_now, \
         report = CASE WHEN s_take_report THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END, \
         phase = s_phase, \
         attempt_at = CASE WHEN attempt = s_attempt THEN attempt_at WHEN s_attempt > 0 THEN s_now ELSE NULL END, \
         attempt = s_attempt, \
         lease_owner = CASE WHEN s_phase = 'finished' OR s_release THEN NULL ELSE lease_owner END, \
         wake_at = CASE \
             WHEN s_phase = 'finished' OR NOT s_release THEN wake_at \
             WHEN cancel_requested THEN s_now \
             WHEN s_phase = 'awaiting' AND s_wake_on_report AND (CASE WHEN s_take_report THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END) IS NOT NULL THEN s_now \
             ELSE s_wake_at END, \
         finished_at = CASE WHEN s_phase = 'finished' THEN s_now ELSE finished_at END, \
         outcome = CASE WHEN s_phase = 'finished' THEN COALESCE(s_outcome, 'finished') ELSE outcome END \
     FROM (SELECT value ->> 0 AS s_id, value ->> 1 AS s_epoch, value ->> 2 AS s_owner, value ->> 3 AS s_payload, \
         value ->> 4 AS s_version, value ->> 5 AS s_last_code, value ->> 6 AS s_attempts, \
         value ->> 7 AS s_reference, value ->> 8 AS s_now, value ->> 9 AS s_take_report, value ->> 10 AS s_held, \
         value ->> 11 AS s_phase, value ->> 12 AS s_release, value ->> 13 AS s_wake_at, value ->> 14 AS s_outcome, \
         value ->> 15 AS s_fence, value ->> 16 AS s_attempt, value ->> 17 AS s_wake_on_report \
         FROM json_each(?1)) AS saves \
     WHERE jobs.id = s_id AND jobs.epoch = s_epoch AND jobs.lease_owner = s_owner AND jobs.phase <> 'finished' \
         AND jobs.wake_at > s_fence \
     RETURNING jobs.id, jobs.cancel_requested, jobs.report"
);

/// The held reports the saves took (`?1`: a JSON array of references).
const DROP_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE reference IN (SELECT value FROM json_each(?1))";

/// A reference stays with the job that named it first (`?1`: a JSON array of `[reference, job]`).
const NAME_REFERENCES: &str = "INSERT INTO job_references (reference, job_id) \
     SELECT value ->> 0, value ->> 1 FROM json_each(?1) WHERE true ON CONFLICT (reference) DO NOTHING";

/// Calls begun (`?1`: a JSON array of `[job, key, hook, at]`), in order.
const BEGIN_CALLS: &str = "INSERT INTO calls (job_id, key, hook, started_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1) WHERE true ORDER BY json_each.key";

/// Calls answered (`?1`: a JSON array of `[job, key, answer, at]`): each the latest unanswered one with its key.
pub(super) const END_CALLS: &str = "UPDATE calls SET answered_at = e_at, answer = e_answer \
     FROM (SELECT value ->> 0 AS e_job, value ->> 1 AS e_key, value ->> 2 AS e_answer, value ->> 3 AS e_at \
         FROM json_each(?1)) AS answered \
     WHERE calls.id = (SELECT c.id FROM calls AS c WHERE c.job_id = e_job AND c.key = e_key \
         AND c.answered_at IS NULL ORDER BY c.id DESC LIMIT 1)";

/// A save as a row of [`SAVES`].
fn save_row(lease: &Lease, save: &OwnedSave, now: Timestamp) -> serde_json::Value {
    serde_json::json!([
        lease.job.0,
        lease.epoch,
        &*lease.owner,
        &*save.payload,
        save.version,
        &*save.last_code,
        save.attempts,
        save.reference.as_deref(),
        now.0,
        save.take_report,
        save.awaiting(),
        save.phase.as_str(),
        save.release,
        save.wake_at.0,
        save.outcome.as_deref(),
        save.fence_until.max(now).0,
        save.attempt,
        save.wake_on_report,
    ])
}

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

    /// The submits at `which` (indexes into `writes`, each a [`group::Write::Submit`]) in `tx`: the new jobs
    /// in one statement, in order, then, one by one, the job each insert that did nothing met. Each its answer,
    /// by its index in the batch.
    async fn submits_in(
        &self,
        tx: &mut Write,
        writes: &[group::Write],
        which: &[usize],
    ) -> Result<Vec<(usize, Written)>, StoreError> {
        let mut rows = Vec::with_capacity(which.len());
        let mut owners: Vec<Option<Arc<str>>> = Vec::with_capacity(which.len());
        for &i in which {
            let group::Write::Submit { new, claim, now } = &writes[i] else { continue };
            // Held by its owner for its lease when it is due now.
            let held = claim.as_ref().filter(|_| new.wake_at <= *now);
            let wake_at = held.map_or(new.wake_at, |(_, lease)| now.after(*lease));
            rows.push(serde_json::json!([
                &*new.asset_id,
                wake_at.0,
                &*new.payload,
                new.version,
                &*new.last_code,
                now.0,
                new.dedupe_key.as_deref(),
                held.map(|(owner, _)| &**owner),
            ]));
            owners.push(held.map(|(owner, _)| owner.clone()));
        }
        let returned = sqlx::query(INSERT_MANY)
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let mut inserted = returned.iter().map(job_row).collect::<Result<Vec<JobRow>, _>>()?;
        let mut answers = Vec::with_capacity(which.len());
        for (&i, owner) in which.iter().zip(owners) {
            let group::Write::Submit { new, .. } = &writes[i] else { continue };
            // Its row, if it was inserted: the first with its asset, dedupe key and holder (rows that conflict
            // with one inserted before them in the statement are not inserted).
            let mine = inserted.iter().position(|row| {
                *row.asset_id == *new.asset_id
                    && row.dedupe_key.as_deref() == new.dedupe_key.as_deref()
                    && row.lease_owner.as_deref() == owner.as_deref()
            });
            let written = match (mine.map(|k| inserted.swap_remove(k)), owner) {
                (Some(row), Some(owner)) => {
                    let lease = Lease { job: row.id, epoch: row.epoch, owner };
                    let id = row.id;
                    Written::Submitted(Submitted::New(id), Some(Box::new(Claimed { lease, row, taken_over: false })))
                }
                (Some(row), None) => Written::Submitted(Submitted::New(row.id), None),
                (None, _) => Written::Submitted(self.existing(tx, &new.borrowed()).await?, None),
            };
            answers.push((i, written));
        }
        Ok(answers)
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

    /// Claims up to `limit` due jobs for `owner` in `tx` (with the saves of its batch: a job one of them
    /// released due now can be claimed in the same transaction).
    async fn claim_in(
        &self,
        tx: &mut Write,
        owner: &Arc<str>,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(CLAIM)
            .bind(&**owner)
            .bind(now.after(lease).0)
            .bind(now.0)
            .bind(int(limit))
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
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

    /// The saves `which` (indexes into `saves.all`) in `tx`, in one statement, with their ledgers and held
    /// reports: each its answer, by its index in the batch (a lost lease is its own `Err`, and writes nothing).
    async fn saves_in(
        &self,
        tx: &mut Write,
        saves: &Saves<'_>,
        which: &[usize],
    ) -> Result<Vec<(usize, Result<Saved, StoreError>)>, StoreError> {
        let rows: Vec<serde_json::Value> = which
            .iter()
            .map(|&k| {
                let (_, lease, save, now) = saves.all[k];
                save_row(lease, save, now)
            })
            .collect();
        let returned: Vec<(i64, bool, Option<String>)> = sqlx::query_as(SAVES)
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let answers = saves.answers(which, &returned);
        let (mut held, mut named, mut begun, mut ended) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut in_order = Vec::new();
        for (&k, (_, answer)) in which.iter().zip(&answers) {
            let (_, lease, save, now) = saves.all[k];
            if answer.is_err() {
                continue;
            }
            if let Some(reference) = save.awaiting() {
                held.push(serde_json::json!(reference));
                named.push(serde_json::json!([reference, lease.job.0]));
            }
            if !save.ledger_at_once() {
                in_order.push(k);
                continue;
            }
            for entry in &save.ledger {
                match entry {
                    OwnedLedger::Begin { key, hook } => {
                        begun.push(serde_json::json!([lease.job.0, &**key, &**hook, now.0]))
                    }
                    OwnedLedger::End { key, answer } => {
                        ended.push(serde_json::json!([lease.job.0, &**key, &**answer, now.0]))
                    }
                }
            }
        }
        // Answers first: the calls they answer were begun before this batch.
        for (sql, rows) in
            [(DROP_HELD_REPORTS, held), (NAME_REFERENCES, named), (END_CALLS, ended), (BEGIN_CALLS, begun)]
        {
            if !rows.is_empty() {
                let rows = serde_json::Value::Array(rows).to_string();
                sqlx::query(sql).bind(rows).execute(&mut **tx).await.map_err(|e| self.err(e))?;
            }
        }
        for k in in_order {
            let (_, lease, save, now) = saves.all[k];
            let id = bind_id(lease.job);
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
        }
        Ok(answers)
    }
}

impl Batch for Db {
    fn run<'a>(&'a self, writes: &'a [group::Write]) -> BatchFuture<'a> {
        Box::pin(async move {
            let mut tx = self.write().await.map_err(Failed::All)?;
            let mut results: Vec<Option<Result<Written, StoreError>>> = writes.iter().map(|_| None).collect();
            // Submits first: a job is saved only once its submit has answered. Many in one statement.
            let submits: Vec<usize> =
                (0..writes.len()).filter(|&i| matches!(writes[i], group::Write::Submit { .. })).collect();
            if submits.len() > 1 {
                match self.submits_in(&mut tx, writes, &submits).await {
                    Ok(answers) => answers.into_iter().for_each(|(i, written)| results[i] = Some(Ok(written))),
                    Err(e) => {
                        let _ = tx.rollback(self).await;
                        return Err(Failed::Each(e));
                    }
                }
            }
            for (i, write) in writes.iter().enumerate().filter(|_| submits.len() == 1) {
                let group::Write::Submit { new, claim, now } = write else { continue };
                let claim = claim.as_ref().map(|(owner, lease)| (&**owner, *lease));
                match self.submit_in(&mut tx, new.borrowed(), claim, *now).await {
                    Ok((submitted, claimed)) => {
                        results[i] = Some(Ok(Written::Submitted(submitted, claimed.map(Box::new))))
                    }
                    Err(e) => {
                        // The others run again without it; a connection that cannot roll back is replaced.
                        let _ = tx.rollback(self).await;
                        return Err(Failed::At(i, e));
                    }
                }
            }
            let saves = Saves::of(writes);
            let mut rounds = vec![saves.first.clone()];
            rounds.extend(saves.again.iter().map(|&k| vec![k]));
            for which in rounds.iter().filter(|which| !which.is_empty()) {
                match self.saves_in(&mut tx, &saves, which).await {
                    Ok(answers) => {
                        for (i, answer) in answers {
                            results[i] = Some(answer.map(Written::Saved));
                        }
                    }
                    Err(e) => {
                        let _ = tx.rollback(self).await;
                        return Err(if writes.len() == 1 { Failed::At(0, e) } else { Failed::Each(e) });
                    }
                }
            }
            // Claims last: a job a save of this batch released due now is claimable at once.
            for (i, write) in writes.iter().enumerate() {
                let group::Write::Claim { owner, now, lease, limit } = write else { continue };
                match self.claim_in(&mut tx, owner, *now, *lease, *limit).await {
                    Ok(claimed) => results[i] = Some(Ok(Written::Claimed(claimed))),
                    Err(e) => {
                        let _ = tx.rollback(self).await;
                        return Err(Failed::At(i, e));
                    }
                }
            }
            self.commit(tx).await.map_err(Failed::All)?;
            Ok(results.into_iter().map(|r| r.expect("every write has its answer")).collect())
        })
    }
}
