//! Reads: a job, an asset's job, lists by filter, a ledger, counts, and when the next job is due. They run on
//! the read connections, beside writes (WAL).

use super::conn::Db;
use super::decode::{bind_id, call_row, job_columns, job_row};
use crate::store::list_sql::{Dialect, ListSql};
use crate::store::{CallRow, JobId, JobRow, ListFilter, Stats, StoreError, Timestamp};

const JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

/// The finished jobs among the ids `?1`, by id.
pub(super) const ENDED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) AND phase = 'finished' ORDER BY id"
);

/// The active job of the asset if any, else its newest.
pub(super) const JOB_OF: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE asset_id = ?1 ORDER BY phase <> 'finished' DESC, id DESC LIMIT 1"
);

/// How SQLite writes a list's conditions.
const DIALECT: Dialect = Dialect {
    placeholder: |n| format!("?{n}"),
    contains: |p| format!("instr(asset_id, {p}) > 0"),
    code_text: "last_code",
};

/// The jobs of a filter, newest first: only the conditions it sets (see [`ListSql`]).
pub(super) fn list_sql(filter: &ListFilter) -> (String, Vec<String>) {
    let sql = ListSql::of(filter, &DIALECT);
    let text = format!(
        "SELECT {} FROM jobs WHERE 1 = 1{} ORDER BY id DESC {}",
        job_columns!(),
        sql.conditions,
        sql.limit_offset(&DIALECT)
    );
    (text, sql.binds)
}

const CALLS: &str = "SELECT key, hook, started_at, answered_at, answer FROM calls WHERE job_id = ?1 ORDER BY id";

/// Active jobs by phase; held means under a lease that has not expired, due means `wake_at` has come (at
/// rest, or an expired lease).
const ACTIVE_COUNTS: &str = "SELECT phase, COUNT(*), SUM(lease_owner IS NOT NULL AND wake_at > ?1), \
     SUM(wake_at <= ?1) FROM jobs WHERE phase <> 'finished' GROUP BY phase";

const FINISHED_COUNTS: &str = "SELECT outcome, COUNT(*) FROM jobs WHERE phase = 'finished' GROUP BY outcome";

const HELD_REPORTS: &str = "SELECT COUNT(*) FROM held_reports";

/// Served by the partial index `jobs_due`.
pub(super) const NEXT_WAKE: &str = "SELECT MIN(wake_at) FROM jobs WHERE phase <> 'finished'";

/// How many a list gives when its filter names no limit.
const DEFAULT_LIMIT: usize = 100;

impl Db {
    pub(super) async fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(JOB).bind(bind_id(id)).fetch_optional(&self.reader).await.map_err(|e| self.err(e))?;
        row.as_ref().map(job_row).transpose()
    }

    pub(super) async fn ended(&self, ids: &[JobId]) -> Result<Vec<JobRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&ids.iter().map(|id| id.0).collect::<Vec<u64>>()).map_err(|e| self.err(e))?;
        let rows = sqlx::query(ENDED).bind(ids).fetch_all(&self.reader).await.map_err(|e| self.err(e))?;
        Ok(crate::store::rows::readable(rows.iter().map(job_row), &self.name))
    }

    pub(super) async fn job_of(&self, asset_id: &str) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(JOB_OF).bind(asset_id).fetch_optional(&self.reader).await.map_err(|e| self.err(e))?;
        row.as_ref().map(job_row).transpose()
    }

    pub(super) async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRow>, StoreError> {
        let limit = i64::try_from(filter.limit.unwrap_or(DEFAULT_LIMIT)).unwrap_or(i64::MAX);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let (sql, binds) = list_sql(filter);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&self.reader).await.map_err(|e| self.err(e))?;
        rows.iter().map(job_row).collect()
    }

    pub(super) async fn calls(&self, id: JobId) -> Result<Vec<CallRow>, StoreError> {
        let rows = sqlx::query(CALLS).bind(bind_id(id)).fetch_all(&self.reader).await.map_err(|e| self.err(e))?;
        rows.iter().map(|row| call_row(row, id.0)).collect()
    }

    pub(super) async fn stats(&self, now: Timestamp) -> Result<Stats, StoreError> {
        let mut tx = self.read().await?;
        let active: Vec<(String, i64, i64, i64)> =
            sqlx::query_as(ACTIVE_COUNTS).bind(now.0).fetch_all(&mut *tx).await.map_err(|e| self.err(e))?;
        let finished: Vec<(Option<String>, i64)> =
            sqlx::query_as(FINISHED_COUNTS).fetch_all(&mut *tx).await.map_err(|e| self.err(e))?;
        let held_reports: i64 = sqlx::query_scalar(HELD_REPORTS).fetch_one(&mut *tx).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut stats = Stats {
            held_reports: n(held_reports),
            held_reports_dropped: self.held_dropped.load(std::sync::atomic::Ordering::Relaxed),
            commits: self.commits.load(std::sync::atomic::Ordering::Relaxed),
            ..Stats::default()
        };
        for (phase, count, held, due) in active {
            stats.by_phase.insert(phase, n(count));
            stats.held += n(held);
            stats.due_now += n(due);
        }
        for (outcome, count) in finished {
            *stats.by_outcome.entry(outcome.unwrap_or_else(|| "finished".to_owned())).or_default() += n(count);
        }
        Ok(stats)
    }

    pub(super) async fn next_wake(&self) -> Result<Option<Timestamp>, StoreError> {
        let wake: Option<i64> = sqlx::query_scalar(NEXT_WAKE).fetch_one(&self.reader).await.map_err(|e| self.err(e))?;
        Ok(wake.map(Timestamp))
    }
}
