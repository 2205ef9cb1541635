//! What comes from outside the lease holders: reports of attempts that finish later, cancellations,
//! "retry now", and pruning finished jobs past their retention. Each reads the job with its row locked, so
//! that a holder's save and a report (or a cancel) about one job take turns.

use super::conn::Db;
use super::decode::{job_id, phase};
use super::hints::send_hint;
use super::holder::{LOCK_REFERENCE, REFERENCE_LOCKS};
use crate::store::{CancelAnswer, Phase, ReportAnswer, ReportTarget, StoreError, Timestamp};

/// The active job of the asset if any, else its newest.
pub(super) const REPORTED_BY_ASSET: &str = "SELECT id, phase, reference, report IS NOT NULL FROM jobs \
     WHERE asset_id = $1 ORDER BY phase <> 'finished' DESC, id DESC LIMIT 1 FOR UPDATE";

pub(super) const REPORTED_BY_REFERENCE: &str = "SELECT jobs.id, jobs.phase, jobs.reference, jobs.report IS NOT NULL \
     FROM job_references JOIN jobs ON jobs.id = job_references.job_id WHERE job_references.reference = $1 \
     FOR UPDATE OF jobs";

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
pub(super) const PRUNE: &str = "WITH held AS (DELETE FROM held_reports WHERE at < $1) \
     DELETE FROM jobs WHERE phase = 'finished' AND finished_at < $1";

impl Db {
    pub(super) async fn report(
        &self,
        target: ReportTarget<'_>,
        result: &str,
        now: Timestamp,
    ) -> Result<ReportAnswer, StoreError> {
        let mut tx = self.begin().await?;
        let (sql, key) = match target {
            ReportTarget::Asset(asset) => (REPORTED_BY_ASSET, asset),
            ReportTarget::Reference(reference) => {
                // Taken turns with the save that names this reference (see `REFERENCE_LOCKS`).
                sqlx::query(LOCK_REFERENCE)
                    .bind(REFERENCE_LOCKS)
                    .bind(reference)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                (REPORTED_BY_REFERENCE, reference)
            }
        };
        let found: Option<(i64, String, Option<String>, bool)> =
            sqlx::query_as(sql).bind(key).fetch_optional(&mut *tx).await.map_err(|e| self.err(e))?;
        let Some((id, phase_text, reference, has_report)) = found else {
            let answer = match target {
                ReportTarget::Asset(_) => ReportAnswer::Unknown,
                ReportTarget::Reference(reference) => {
                    sqlx::query(HOLD_REPORT)
                        .bind(reference)
                        .bind(result)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                    ReportAnswer::Held
                }
            };
            self.commit(tx).await?;
            return Ok(answer);
        };
        let job = job_id(id)?;
        let current = match target {
            ReportTarget::Reference(r) => reference.as_deref() == Some(r),
            ReportTarget::Asset(_) => true,
        };
        let answer = match (phase(&phase_text, job.0)?, current) {
            (Phase::Finished, _) => ReportAnswer::Finished { job },
            (_, false) | (Phase::Waiting, _) => ReportAnswer::OlderAttempt { job },
            _ if has_report => ReportAnswer::Duplicate { job },
            (Phase::Awaiting, true) => {
                sqlx::query(APPLY_REPORT)
                    .bind(id)
                    .bind(result)
                    .bind(now.0)
                    .bind(self.hints.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                ReportAnswer::Applied { job }
            }
            (Phase::Calling, true) => {
                sqlx::query(KEEP_EARLY_REPORT)
                    .bind(id)
                    .bind(result)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                ReportAnswer::Early { job }
            }
        };
        self.commit(tx).await?;
        Ok(answer)
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
