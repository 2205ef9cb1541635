//! Rows read back into the store's types, from either driver's rows: the store reads with sqlx and writes with
//! its writer's rusqlite connection ([`Columns`]). A value this build cannot read (a phase it does not know, a
//! negative count) is [`StoreError::Corrupt`] naming the job and the column, never a panic.

use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::store::{CallRow, JobId, JobRow, Phase, StoreError, Timestamp};

/// The columns of a [`JobRow`], in the order [`job_row`] reads them by name.
macro_rules! job_columns {
    () => {
        "id, asset_id, phase, wake_at, lease_owner, epoch, payload, version, last_code, attempts, attempt, attempt_at, dedupe_key, reference, \
         report, cancel_requested, created_at, updated_at, finished_at, outcome"
    };
}
pub(super) use job_columns;

/// A row's columns by name, as integers or text (`None` for NULL); `Err` says why a column cannot be read.
pub(super) trait Columns {
    fn int(&self, column: &str) -> Result<Option<i64>, String>;
    fn text(&self, column: &str) -> Result<Option<String>, String>;
}

impl Columns for SqliteRow {
    fn int(&self, column: &str) -> Result<Option<i64>, String> {
        self.try_get(column).map_err(|e| e.to_string())
    }
    fn text(&self, column: &str) -> Result<Option<String>, String> {
        self.try_get(column).map_err(|e| e.to_string())
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> Result<Option<i64>, String> {
        self.get(column).map_err(|e| e.to_string())
    }
    fn text(&self, column: &str) -> Result<Option<String>, String> {
        self.get(column).map_err(|e| e.to_string())
    }
}

fn corrupt(job: u64, column: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { job, reason: format!("column `{column}`: {reason}") }
}

/// Column `column` of `row`, which belongs to `job` (for the message), that may be NULL.
fn maybe_int(row: &impl Columns, column: &str, job: u64) -> Result<Option<i64>, StoreError> {
    row.int(column).map_err(|e| corrupt(job, column, e))
}

fn maybe_text(row: &impl Columns, column: &str, job: u64) -> Result<Option<String>, StoreError> {
    row.text(column).map_err(|e| corrupt(job, column, e))
}

/// An integer column that is never NULL.
pub(super) fn int(row: &impl Columns, column: &str, job: u64) -> Result<i64, StoreError> {
    maybe_int(row, column, job)?.ok_or_else(|| corrupt(job, column, "NULL"))
}

fn text(row: &impl Columns, column: &str, job: u64) -> Result<String, StoreError> {
    maybe_text(row, column, job)?.ok_or_else(|| corrupt(job, column, "NULL"))
}

/// An integer column that must fit `T` (ids, epochs, counts, versions are never negative).
fn count<T: TryFrom<i64>>(row: &impl Columns, column: &str, job: u64) -> Result<T, StoreError> {
    let value = int(row, column, job)?;
    T::try_from(value).map_err(|_| corrupt(job, column, format_args!("{value} is out of range")))
}

/// A job id as stored (SQLite integers are signed; ids start at 1).
pub(super) fn job_id(id: i64) -> Result<JobId, StoreError> {
    u64::try_from(id).map(JobId).map_err(|_| StoreError::Corrupt { job: 0, reason: format!("job id {id}") })
}

/// A job id as bound (ids this store gave out fit; a larger one matches no row).
pub(super) fn bind_id(id: JobId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

/// A phase as stored.
pub(super) fn phase(text: &str, job: u64) -> Result<Phase, StoreError> {
    Phase::from_str(text).map_err(|reason| StoreError::Corrupt { job, reason: format!("column `phase`: {reason}") })
}

/// A row selected with [`job_columns`].
pub(super) fn job_row(row: &impl Columns) -> Result<JobRow, StoreError> {
    let id = job_id(int(row, "id", 0)?)?;
    let job = id.0;
    Ok(JobRow {
        id,
        asset_id: text(row, "asset_id", job)?,
        phase: phase(&text(row, "phase", job)?, job)?,
        wake_at: Timestamp(int(row, "wake_at", job)?),
        lease_owner: maybe_text(row, "lease_owner", job)?,
        epoch: count(row, "epoch", job)?,
        payload: text(row, "payload", job)?,
        version: count(row, "version", job)?,
        last_code: text(row, "last_code", job)?,
        attempts: count(row, "attempts", job)?,
        attempt: count(row, "attempt", job)?,
        attempt_at: maybe_int(row, "attempt_at", job)?.map(Timestamp),
        dedupe_key: maybe_text(row, "dedupe_key", job)?,
        reference: maybe_text(row, "reference", job)?,
        report: maybe_text(row, "report", job)?,
        cancel_requested: int(row, "cancel_requested", job)? != 0,
        created_at: Timestamp(int(row, "created_at", job)?),
        updated_at: Timestamp(int(row, "updated_at", job)?),
        finished_at: maybe_int(row, "finished_at", job)?.map(Timestamp),
        outcome: maybe_text(row, "outcome", job)?,
    })
}

/// A row of the ledger of `job`.
pub(super) fn call_row(row: &impl Columns, job: u64) -> Result<CallRow, StoreError> {
    Ok(CallRow {
        key: text(row, "key", job)?,
        hook: text(row, "hook", job)?,
        started_at: Timestamp(int(row, "started_at", job)?),
        answered_at: maybe_int(row, "answered_at", job)?.map(Timestamp),
        answer: maybe_text(row, "answer", job)?,
    })
}
