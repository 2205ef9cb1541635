//! What comes from outside the lease holders: reports of attempts that finish later, cancellations,
//! "retry now", and pruning finished jobs past their retention. Each reads the job with its row locked, so
//! that a holder's save and a report (or a cancel) about one job take turns.

use std::sync::atomic::Ordering;

use sqlx::Transaction;
use sqlx::postgres::Postgres;

use super::conn::Db;
use super::decode::{int, job_id};
use super::hints::send_hint;
use super::holder::{LOCK_REFERENCE, REFERENCE_LOCKS};
use crate::store::judge::{Effect, Reported, ReportedColumns, judge};
use crate::store::{CancelAnswer, ReportAnswer, ReportTarget, StoreError, Timestamp};

/// The columns a report is judged against ([`judge`]).
macro_rules! reported_columns {
    () => {
        "jobs.id, jobs.phase, jobs.attempts, jobs.attempt, jobs.attempt_at, jobs.reference, \
         jobs.report IS NOT NULL AS has_report, jobs.lease_owner IS NOT NULL AS held"
    };
}

/// The active job of the asset if any, else its newest.
pub(super) const REPORTED_BY_ASSET: &str = concat!(
    "SELECT ",
    reported_columns!(),
    " FROM jobs WHERE asset_id = $1 ORDER BY phase <> 'finished' DESC, id DESC LIMIT 1 FOR UPDATE"
);

pub(super) const REPORTED_BY_REFERENCE: &str = concat!(
    "SELECT ",
    reported_columns!(),
    " FROM job_references JOIN jobs ON jobs.id = job_references.job_id WHERE job_references.reference = $1 \
     FOR UPDATE OF jobs"
);

const REPORTED_BY_ID: &str = concat!("SELECT ", reported_columns!(), " FROM jobs WHERE id = $1 FOR UPDATE");

/// Held reports past their life go first; then, past the cap, the oldest others (`$3` of them).
const EXPIRE_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE at < $1";

const COUNT_HELD_REPORTS: &str = "SELECT COUNT(*) FROM held_reports WHERE reference <> $1";

const DROP_OLDEST_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE reference IN \
     (SELECT reference FROM held_reports WHERE reference <> $2 ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED)";

const HOLD_REPORT: &str = "INSERT INTO held_reports (reference, report, at) VALUES ($1, $2, $3) \
     ON CONFLICT (reference) DO UPDATE SET report = excluded.report, at = excluded.at";

/// The result the job awaits: a job at rest is due at once, and the other replicas are hinted (on channel
/// `$4`).
const APPLY_REPORT: &str = concat!(
    "UPDATE jobs SET report = $2, updated_at = $3, \
         wake_at = CASE WHEN lease_owner IS NULL THEN $3 ELSE wake_at END WHERE id = $1 \
     RETURNING CASE WHEN $4::text IS NOT NULL AND lease_owner IS NULL THEN ",
    send_hint!("4"),
    " END AS hinted"
);

/// Kept for when the hook answers `Submitted`.
const KEEP_EARLY_REPORT: &str = "UPDATE jobs SET report = $2 WHERE id = $1";

/// A job at rest awaiting a result is due at once, to ask `check`, and the other replicas are hinted.
const CHECK_NOW: &str = concat!(
    "UPDATE jobs SET wake_at = LEAST(wake_at, $2) WHERE id = $1 AND lease_owner IS NULL AND phase <> 'finished' \
     RETURNING CASE WHEN $3::text IS NOT NULL THEN ",
    send_hint!("3"),
    " END AS hinted"
);

/// The active job, and whether a live lease holds it.
const ACTIVE: &str = "SELECT id, lease_owner IS NOT NULL AND wake_at > $2 FROM jobs \
     WHERE asset_id = $1 AND phase <> 'finished' FOR UPDATE";

const REQUEST_CANCEL: &str = "UPDATE jobs SET cancel_requested = true WHERE id = $1";

const CANCEL: &str = "UPDATE jobs SET phase = 'finished', outcome = 'cancelled', finished_at = $2, updated_at = $2, \
     lease_owner = NULL WHERE id = $1";

pub(super) const RETRY_NOW: &str = concat!(
    "UPDATE jobs SET wake_at = $2 WHERE asset_id = $1 AND phase <> 'finished' AND lease_owner IS NULL \
     RETURNING CASE WHEN $3::text IS NOT NULL THEN ",
    send_hint!("3"),
    " END AS hinted"
);

/// Finished jobs, with their ledgers and references (`ON DELETE CASCADE`), and held reports, in one
/// statement.
/// Assets recorded before the same time whose end is known and that have no active job go too, with their
/// lineage.
pub(super) const PRUNE: &str = "WITH held AS (DELETE FROM held_reports WHERE at < $1), \
     gone AS (DELETE FROM assets WHERE created_at < $1 AND settled \
         AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.asset_id = assets.asset_id AND jobs.phase <> 'finished') \
         RETURNING asset_id), \
     lineage AS (DELETE FROM lineage WHERE asset_id IN (SELECT asset_id FROM gone)), \
     acted AS (DELETE FROM actions WHERE at < $1) \
     DELETE FROM jobs WHERE phase = 'finished' AND finished_at < $1";

impl Db {
    pub(super) async fn report(
        &self,
        target: ReportTarget<'_>,
        result: &str,
        now: Timestamp,
    ) -> Result<ReportAnswer, StoreError> {
        let mut tx = self.begin().await?;
        if let ReportTarget::Reference(reference) = target {
            // Taken turns with the save that names this reference (see `REFERENCE_LOCKS`).
            sqlx::query(LOCK_REFERENCE)
                .bind(REFERENCE_LOCKS)
                .bind(reference)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let query = match target {
            ReportTarget::Asset(asset) | ReportTarget::AssetEndedAt(asset, _) => {
                sqlx::query_as(REPORTED_BY_ASSET).bind(asset.to_owned())
            }
            ReportTarget::Reference(reference) => sqlx::query_as(REPORTED_BY_REFERENCE).bind(reference.to_owned()),
            ReportTarget::Attempt { job, .. } => sqlx::query_as(REPORTED_BY_ID).bind(int(job.0)),
        };
        let found: Option<ReportedColumns> = query.fetch_optional(&mut *tx).await.map_err(|e| self.err(e))?;
        let Some(columns) = found else {
            let answer = match target {
                ReportTarget::Reference(reference) => self.hold_report(&mut tx, reference, result, now).await?,
                _ => ReportAnswer::Unknown,
            };
            self.commit(tx).await?;
            return Ok(answer);
        };
        let row = Reported::from_columns(&columns)?;
        let id = columns.0;
        let (answer, effect) = judge(target, &row);
        let update = match effect {
            Effect::None => None,
            Effect::Apply => {
                Some(sqlx::query(APPLY_REPORT).bind(id).bind(result).bind(now.0).bind(self.hints.as_deref()))
            }
            Effect::Keep => Some(sqlx::query(KEEP_EARLY_REPORT).bind(id).bind(result)),
            Effect::Check => Some(sqlx::query(CHECK_NOW).bind(id).bind(now.0).bind(self.hints.as_deref())),
        };
        if let Some(update) = update {
            update.execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        self.commit(tx).await?;
        Ok(answer)
    }

    /// Holds a report for a reference no job has named yet, within the cap and life of held reports; answers
    /// [`ReportAnswer::Unknown`] when it had to drop older ones to make room.
    async fn hold_report(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        reference: &str,
        result: &str,
        now: Timestamp,
    ) -> Result<ReportAnswer, StoreError> {
        let oldest_kept = now.before(self.held_life).0;
        sqlx::query(EXPIRE_HELD_REPORTS).bind(oldest_kept).execute(&mut **tx).await.map_err(|e| self.err(e))?;
        let others: i64 = sqlx::query_scalar(COUNT_HELD_REPORTS)
            .bind(reference)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let max = i64::try_from(self.max_held).unwrap_or(i64::MAX);
        let over = (others + 1).saturating_sub(max);
        if over > 0 {
            let dropped = sqlx::query(DROP_OLDEST_HELD_REPORTS)
                .bind(over)
                .bind(reference)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            self.held_dropped.fetch_add(dropped.rows_affected(), Ordering::Relaxed);
        }
        sqlx::query(HOLD_REPORT)
            .bind(reference)
            .bind(result)
            .bind(now.0)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(if over > 0 { ReportAnswer::Unknown } else { ReportAnswer::Held })
    }

    pub(super) async fn cancel(&self, asset_id: &str, now: Timestamp) -> Result<CancelAnswer, StoreError> {
        let mut tx = self.begin().await?;
        let active: Option<(i64, bool)> = sqlx::query_as(ACTIVE)
            .bind(asset_id)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let answer = match active {
            None => CancelAnswer::NoJob,
            Some((id, true)) => {
                sqlx::query(REQUEST_CANCEL).bind(id).execute(&mut *tx).await.map_err(|e| self.err(e))?;
                CancelAnswer::Requested { job: job_id(id)? }
            }
            Some((id, false)) => {
                sqlx::query(CANCEL).bind(id).bind(now.0).execute(&mut *tx).await.map_err(|e| self.err(e))?;
                CancelAnswer::Cancelled { job: job_id(id)? }
            }
        };
        self.commit(tx).await?;
        Ok(answer)
    }

    pub(super) async fn retry_now(&self, asset_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(RETRY_NOW)
            .bind(asset_id)
            .bind(now.0)
            .bind(self.hints.as_deref())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        let jobs = sqlx::query(PRUNE).bind(before.0).execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(jobs.rows_affected())
    }
}
