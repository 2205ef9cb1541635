//! Rows read back into the store's types. A value this build cannot read (a phase it does not know, a
//! negative count) is [`StoreError::Corrupt`] naming the job and the column, never a panic.

use std::str::FromStr;

use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, Type};

use crate::store::{CallRow, JobId, JobRow, Phase, StoreError, Timestamp};

/// The columns of a [`JobRow`], in the order [`job_row`] reads them by name.
macro_rules! job_columns {
    () => {
        "id, asset_id, phase, wake_at, lease_owner, epoch, payload, version, last_code, attempts, attempt, attempt_at, dedupe_key, reference, \
         report, cancel_requested, created_at, updated_at, finished_at, outcome"
    };
}
pub(super) use job_columns;

/// Column `column` of `row`, which belongs to `job` (for the message).
pub(super) fn get<'r, T: Decode<'r, Sqlite> + Type<Sqlite>>(
    row: &'r SqliteRow,
    column: &str,
    job: u64,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(|e| StoreError::Corrupt { job, reason: format!("column `{column}`: {e}") })
}

/// An integer column that must fit `T` (ids, epochs, counts, versions are never negative).
fn count<T: TryFrom<i64>>(row: &SqliteRow, column: &str, job: u64) -> Result<T, StoreError> {
    let value: i64 = get(row, column, job)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt { job, reason: format!("column `{column}`: {value} is out of range") })
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
pub(super) fn job_row(row: &SqliteRow) -> Result<JobRow, StoreError> {
    let id = job_id(get(row, "id", 0)?)?;
    let job = id.0;
    let phase_text: String = get(row, "phase", job)?;
    Ok(JobRow {
        id,
        asset_id: get(row, "asset_id", job)?,
        phase: phase(&phase_text, job)?,
        wake_at: Timestamp(get(row, "wake_at", job)?),
        lease_owner: get(row, "lease_owner", job)?,
        epoch: count(row, "epoch", job)?,
        payload: get(row, "payload", job)?,
        version: count(row, "version", job)?,
        last_code: get(row, "last_code", job)?,
        attempts: count(row, "attempts", job)?,
        attempt: count(row, "attempt", job)?,
        attempt_at: get::<Option<i64>>(row, "attempt_at", job)?.map(Timestamp),
        dedupe_key: get(row, "dedupe_key", job)?,
        reference: get(row, "reference", job)?,
        report: get(row, "report", job)?,
        cancel_requested: get(row, "cancel_requested", job)?,
        created_at: Timestamp(get(row, "created_at", job)?),
        updated_at: Timestamp(get(row, "updated_at", job)?),
        finished_at: get::<Option<i64>>(row, "finished_at", job)?.map(Timestamp),
        outcome: get(row, "outcome", job)?,
    })
}

/// A row of the ledger of `job`.
pub(super) fn call_row(row: &SqliteRow, job: u64) -> Result<CallRow, StoreError> {
    Ok(CallRow {
        key: get(row, "key", job)?,
        hook: get(row, "hook", job)?,
        started_at: Timestamp(get(row, "started_at", job)?),
        answered_at: get::<Option<i64>>(row, "answered_at", job)?.map(Timestamp),
        answer: get(row, "answer", job)?,
    })
}
