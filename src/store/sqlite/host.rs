//! What comes from outside the lease holders: reports of attempts that finish later, cancellations,
//! "retry now", and pruning finished jobs past their retention.

use std::sync::atomic::Ordering;

use super::conn::{Db, Write};
use super::decode::{bind_id, job_id};
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
    " FROM jobs WHERE asset_id = ?1 ORDER BY phase <> 'finished' DESC, id DESC LIMIT 1"
);

pub(super) const REPORTED_BY_REFERENCE: &str = concat!(
    "SELECT ",
    reported_columns!(),
    " FROM job_references JOIN jobs ON jobs.id = job_references.job_id WHERE job_references.reference = ?1"
);

const REPORTED_BY_ID: &str = concat!("SELECT ", reported_columns!(), " FROM jobs WHERE id = ?1");

/// Held reports past their life go first.
const EXPIRE_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE at < ?1";

const COUNT_HELD_REPORTS: &str = "SELECT COUNT(*) FROM held_reports WHERE reference <> ?1";

/// The oldest held reports, to make room.
const DROP_OLDEST_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE reference IN \
     (SELECT reference FROM held_reports WHERE reference <> ?2 ORDER BY at LIMIT ?1)";

const HOLD_REPORT: &str = "INSERT INTO held_reports (reference, report, at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (reference) DO UPDATE SET report = excluded.report, at = excluded.at";

/// The result the job awaits: a job at rest is due at once.
const APPLY_REPORT: &str = "UPDATE jobs SET report = ?2, updated_at = ?3, \
     wake_at = CASE WHEN lease_owner IS NULL THEN ?3 ELSE wake_at END WHERE id = ?1";

/// Kept for when the hook answers `Submitted`.
const KEEP_EARLY_REPORT: &str = "UPDATE jobs SET report = ?2 WHERE id = ?1";

/// A job at rest awaiting a result is due at once, to ask `check`.
const CHECK_NOW: &str =
    "UPDATE jobs SET wake_at = MIN(wake_at, ?2) WHERE id = ?1 AND lease_owner IS NULL AND phase <> 'finished'";

/// The active job, and whether a live lease holds it.
const ACTIVE: &str = "SELECT id, lease_owner IS NOT NULL AND wake_at > ?2 FROM jobs \
     WHERE asset_id = ?1 AND phase <> 'finished'";

const REQUEST_CANCEL: &str = "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1";

const CANCEL: &str = "UPDATE jobs SET phase = 'finished', outcome = 'cancelled', finished_at = ?2, updated_at = ?2, \
     lease_owner = NULL WHERE id = ?1";

pub(super) const RETRY_NOW: &str =
    "UPDATE jobs SET wake_at = ?2 WHERE asset_id = ?1 AND phase <> 'finished' AND lease_owner IS NULL";

/// Their ledgers and references go with them (`ON DELETE CASCADE`): a batch at a time, each its own
/// transaction, so that the one writer is never taken for long.
pub(super) const PRUNE_JOBS: &str = "DELETE FROM jobs WHERE id IN \
     (SELECT id FROM jobs WHERE phase = 'finished' AND finished_at < ?1 LIMIT ?2)";

const PRUNE_HELD_REPORTS: &str = "DELETE FROM held_reports WHERE reference IN \
     (SELECT reference FROM held_reports WHERE at < ?1 LIMIT ?2)";

/// Assets recorded before the time whose end is known and that have no active job, with their lineage.
const PRUNE_LINEAGE: &str = "DELETE FROM lineage WHERE asset_id IN (SELECT asset_id FROM assets WHERE created_at < ?1 \
     AND settled AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.asset_id = assets.asset_id AND jobs.phase <> 'finished') \
     LIMIT ?2)";

const PRUNE_ASSETS: &str = "DELETE FROM assets WHERE asset_id IN (SELECT asset_id FROM assets WHERE created_at < ?1 \
     AND settled AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.asset_id = assets.asset_id AND jobs.phase <> 'finished') \
     LIMIT ?2)";

const PRUNE_ACTIONS: &str = "DELETE FROM actions WHERE id IN (SELECT id FROM actions WHERE at < ?1 LIMIT ?2)";

/// How many rows one pruning transaction deletes.
const PRUNE_BATCH: i64 = 500;

impl Db {
    pub(super) async fn report(
        &self,
        target: ReportTarget<'_>,
        result: &str,
        now: Timestamp,
    ) -> Result<ReportAnswer, StoreError> {
        let mut tx = self.write().await?;
        let query = match target {
            ReportTarget::Asset(asset) | ReportTarget::AssetEndedAt(asset, _) => {
                sqlx::query_as(REPORTED_BY_ASSET).bind(asset)
            }
            ReportTarget::Reference(reference) => sqlx::query_as(REPORTED_BY_REFERENCE).bind(reference),
            ReportTarget::Attempt { job, .. } => sqlx::query_as(REPORTED_BY_ID).bind(bind_id(job)),
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
            Effect::Apply => Some(sqlx::query(APPLY_REPORT).bind(id).bind(result).bind(now.0)),
            Effect::Keep => Some(sqlx::query(KEEP_EARLY_REPORT).bind(id).bind(result)),
            Effect::Check => Some(sqlx::query(CHECK_NOW).bind(id).bind(now.0)),
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
        tx: &mut Write,
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
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
        let done =
            sqlx::query(RETRY_NOW).bind(asset_id).bind(now.0).execute(&mut *tx).await.map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut jobs = 0;
        for sql in [PRUNE_JOBS, PRUNE_HELD_REPORTS, PRUNE_LINEAGE, PRUNE_ASSETS, PRUNE_ACTIONS] {
            loop {
                let mut tx = self.write().await?;
                let done = sqlx::query(sql)
                    .bind(before.0)
                    .bind(PRUNE_BATCH)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                self.commit(tx).await?;
                if sql == PRUNE_JOBS {
                    jobs += done.rows_affected();
                }
                if done.rows_affected() < PRUNE_BATCH as u64 {
                    break;
                }
                // Other writes go between batches.
                tokio::task::yield_now().await;
            }
        }
        Ok(jobs)
    }
}
