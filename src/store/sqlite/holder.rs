//! The lease holder's writes, as the store's writer runs them ([`super::writer`], many in one transaction):
//! submits, claims of due jobs (and of expired leases) in batches, and fenced saves with their ledger entries
//! and any held report. Each statement is prepared once on the writer's connection and bound per write.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, named_params, params};

use super::decode::{bind_id, int, job_columns, job_id, job_row};
use crate::store::group::{OwnedLedger, OwnedNewJob, OwnedSave, Written};
use crate::store::{Claimed, Lease, Saved, StoreError, Submitted, Timestamp};

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

/// The report held for the reference the save names (none when it names none).
macro_rules! held_report {
    () => {
        "(SELECT held_reports.report FROM held_reports WHERE held_reports.reference = :held)"
    };
}

/// A holder's fenced write: refused (no row returned) unless its lease is unexpired until `:fence` (a held
/// row's `wake_at` is its lease's expiry).
///
/// `:held` is the reference of a job that goes to await its result: a report held for it is taken (and its
/// row deleted after, by [`DROP_HELD_REPORT`]); the row's own report goes first unless the holder took it. A
/// release to `awaiting` with a report on the row makes the job due at once (when `:wake_on_report`), as does
/// a release of a job asked to cancel meanwhile. `:attempt` is the attempt under way, and its start is noted
/// when it changes.
pub(super) const SAVE: &str = concat!(
    "UPDATE jobs SET payload = :payload, version = :version, last_code = :last_code, attempts = :attempts, \
         reference = :reference, updated_at = :now, \
         report = CASE WHEN :take_report THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END, \
         phase = :phase, \
         attempt_at = CASE WHEN attempt = :attempt THEN attempt_at WHEN :attempt > 0 THEN :now ELSE NULL END, \
         attempt = :attempt, \
         lease_owner = CASE WHEN :phase = 'finished' OR :release THEN NULL ELSE lease_owner END, \
         wake_at = CASE \
             WHEN :phase = 'finished' OR NOT :release THEN wake_at \
             WHEN cancel_requested THEN :now \
             WHEN :phase = 'awaiting' AND :wake_on_report AND (CASE WHEN :take_report THEN ",
    held_report!(),
    " ELSE COALESCE(report, ",
    held_report!(),
    ") END) IS NOT NULL THEN :now \
             ELSE :wake_at END, \
         finished_at = CASE WHEN :phase = 'finished' THEN :now ELSE finished_at END, \
         outcome = CASE WHEN :phase = 'finished' THEN COALESCE(:outcome, 'finished') ELSE outcome END \
     WHERE id = :id AND epoch = :epoch AND lease_owner = :owner AND phase <> 'finished' AND wake_at > :fence \
     RETURNING cancel_requested, report"
);

/// The held report a save took.
const DROP_HELD_REPORT: &str = "DELETE FROM held_reports WHERE reference = ?1";

/// A reference stays with the job that named it first.
const NAME_REFERENCE: &str =
    "INSERT INTO job_references (reference, job_id) VALUES (?1, ?2) ON CONFLICT (reference) DO NOTHING";

const BEGIN_CALL: &str = "INSERT INTO calls (job_id, key, hook, started_at) VALUES (?1, ?2, ?3, ?4)";

/// Answers the latest unanswered call with this key.
pub(super) const END_CALL: &str = "UPDATE calls SET answered_at = ?3, answer = ?4 WHERE id = \
     (SELECT id FROM calls WHERE job_id = ?1 AND key = ?2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)";

/// Why a statement failed: the database's error, or a row this build cannot read.
#[derive(Debug)]
pub(super) enum Failure {
    Sql(rusqlite::Error),
    Row(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

/// Inserts `new` (held by `claim`'s owner for its lease when it is due now), or finds the job it joins.
pub(super) fn submit(
    tx: &Transaction<'_>,
    new: &OwnedNewJob,
    claim: Option<&(Arc<str>, Duration)>,
    now: Timestamp,
) -> Result<Written, Failure> {
    let version = i64::from(new.version);
    let Some((owner, lease)) = claim.filter(|_| new.wake_at <= now) else {
        let inserted: Option<i64> = tx
            .prepare_cached(INSERT)?
            .query_row(
                params![&*new.asset_id, new.wake_at.0, &*new.payload, version, &*new.last_code, now.0, new.dedupe_key],
                |row| row.get(0),
            )
            .optional()?;
        let submitted = match inserted {
            Some(id) => Submitted::New(job_id(id).map_err(Failure::Row)?),
            None => existing(tx, new)?,
        };
        return Ok(Written::Submitted(submitted, None));
    };
    let expiry = now.after(*lease).0;
    let mut statement = tx.prepare_cached(INSERT_HELD)?;
    let mut rows = statement.query(params![
        &*new.asset_id,
        expiry,
        &*new.payload,
        version,
        &*new.last_code,
        now.0,
        &**owner,
        new.dedupe_key
    ])?;
    let Some(row) = rows.next()? else {
        drop(rows);
        return Ok(Written::Submitted(existing(tx, new)?, None));
    };
    let row = job_row(row).map_err(Failure::Row)?;
    let lease = Lease { job: row.id, epoch: row.epoch, owner: owner.clone() };
    Ok(Written::Submitted(Submitted::New(row.id), Some(Box::new(Claimed { lease, row, taken_over: false }))))
}

/// The job an insert that did nothing met: the one with the same dedupe key, else the asset's active one.
fn existing(tx: &Transaction<'_>, new: &OwnedNewJob) -> Result<Submitted, Failure> {
    if let Some(key) = &new.dedupe_key {
        let same: Option<i64> =
            tx.prepare_cached(OF_DEDUPE_KEY)?.query_row(params![&**key], |row| row.get(0)).optional()?;
        if let Some(id) = same {
            return Ok(Submitted::Deduplicated(job_id(id).map_err(Failure::Row)?));
        }
    }
    let id: i64 = tx.prepare_cached(ACTIVE_OF_ASSET)?.query_row(params![&*new.asset_id], |row| row.get(0))?;
    Ok(Submitted::Joined(job_id(id).map_err(Failure::Row)?))
}

/// A holder's fenced save with its ledger entries and held report; `None` when its lease is lost.
pub(super) fn save(
    tx: &Transaction<'_>,
    lease: &Lease,
    save: &OwnedSave,
    now: Timestamp,
) -> Result<Option<Written>, Failure> {
    let job = bind_id(lease.job);
    let saved = tx
        .prepare_cached(SAVE)?
        .query_row(
            named_params! {
                ":id": job,
                ":epoch": i64::try_from(lease.epoch).unwrap_or(i64::MAX),
                ":owner": &*lease.owner,
                ":payload": &*save.payload,
                ":version": i64::from(save.version),
                ":last_code": &*save.last_code,
                ":attempts": i64::from(save.attempts),
                ":reference": save.reference.as_deref(),
                ":now": now.0,
                ":take_report": save.take_report,
                ":held": save.awaiting(),
                ":phase": save.phase.as_str(),
                ":release": save.release,
                ":wake_at": save.wake_at.0,
                ":outcome": save.outcome.as_deref(),
                ":fence": save.fence_until.max(now).0,
                ":attempt": i64::from(save.attempt),
                ":wake_on_report": save.wake_on_report,
            },
            |row| Ok((row.get::<_, bool>(0)?, row.get::<_, Option<String>>(1)?)),
        )
        .optional()?;
    let Some((cancel_requested, report)) = saved else { return Ok(None) };
    if let Some(reference) = save.awaiting() {
        tx.prepare_cached(DROP_HELD_REPORT)?.execute(params![reference])?;
        tx.prepare_cached(NAME_REFERENCE)?.execute(params![reference, job])?;
    }
    for entry in &save.ledger {
        match entry {
            OwnedLedger::Begin { key, hook } => {
                tx.prepare_cached(BEGIN_CALL)?.execute(params![job, &**key, &**hook, now.0])?;
            }
            OwnedLedger::End { key, answer } => {
                tx.prepare_cached(END_CALL)?.execute(params![job, &**key, now.0, &**answer])?;
            }
        }
    }
    Ok(Some(Written::Saved(Saved { cancel_requested, report })))
}

/// Claims up to `limit` due jobs for `owner`, oldest id first.
pub(super) fn claim(
    tx: &Transaction<'_>,
    owner: &Arc<str>,
    now: Timestamp,
    lease: Duration,
    limit: usize,
    store: &str,
) -> Result<Written, Failure> {
    let mut statement = tx.prepare_cached(CLAIM)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![&**owner, now.after(lease).0, now.0, limit])?;
    let mut claimed = Vec::new();
    while let Some(row) = rows.next()? {
        // A row this build cannot read is left out (and said): failing the batch would hold back every job
        // claimed with it, at every claim, until the row is repaired.
        let read = job_row(row).and_then(|job| Ok((int(row, "taken_over", job.id.0)? != 0, job)));
        match read {
            Ok((taken_over, row)) => claimed.push(Claimed {
                lease: Lease { job: row.id, epoch: row.epoch, owner: owner.clone() },
                row,
                taken_over,
            }),
            Err(e) => tracing::error!(store = %store, error = %e, "a claimed job's row is unreadable"),
        }
    }
    // SQLite returns updated rows in no set order; ids are the order of submission.
    claimed.sort_by_key(|c| c.row.id);
    Ok(Written::Claimed(claimed))
}
