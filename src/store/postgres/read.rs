//! Reads: a job, an asset's job, lists by filter, a ledger, counts, and when the next job is due. Each is one
//! statement (one snapshot), beside any writes.

use super::conn::Db;
use super::decode::{call_row, int, job_columns, job_row, n};
use crate::store::list_sql::{Dialect, ListSql};
use crate::store::{CallRow, JobId, JobRow, ListFilter, Stats, StoreError, Timestamp};

const JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");

/// The finished jobs among the ids `$1`, by id.
pub(super) const ENDED: &str =
    concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ANY($1) AND phase = 'finished' ORDER BY id");

/// The active job of the asset if any, else its newest.
pub(super) const JOB_OF: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE asset_id = $1 ORDER BY phase <> 'finished' DESC, id DESC LIMIT 1"
);

/// How PostgreSQL writes a list's conditions: codes compared in binary order, whatever the database's collation.
const DIALECT: Dialect = Dialect {
    placeholder: |n| format!("${n}"),
    contains: |p| format!("strpos(asset_id, {p}) > 0"),
    code_text: "last_code COLLATE \"C\"",
};

/// The jobs of a filter, newest first: only the conditions it sets (see [`ListSql`]).
pub(super) fn list_sql(filter: &ListFilter) -> (String, Vec<String>) {
    let sql = ListSql::of(filter, &DIALECT);
    let text = format!(
        "SELECT {} FROM jobs WHERE true{} ORDER BY id DESC {}",
        job_columns!(),
        sql.conditions,
        sql.limit_offset(&DIALECT)
    );
    (text, sql.binds)
}

pub(super) const CALLS: &str =
    "SELECT key, hook, started_at, answered_at, answer FROM calls WHERE job_id = $1 ORDER BY id";

/// Every count in one statement: active jobs by phase (held means under a lease that has not expired, due
/// means `wake_at` has come: at rest, or an expired lease), finished jobs by outcome, held reports.
const STATS: &str = "SELECT 'phase' AS kind, phase AS name, COUNT(*) AS count, \
         COUNT(*) FILTER (WHERE lease_owner IS NOT NULL AND wake_at > $1) AS held, \
         COUNT(*) FILTER (WHERE wake_at <= $1) AS due \
     FROM jobs WHERE phase <> 'finished' GROUP BY phase \
     UNION ALL SELECT 'outcome', COALESCE(outcome, 'finished'), COUNT(*), 0, 0 \
     FROM jobs WHERE phase = 'finished' GROUP BY outcome \
     UNION ALL SELECT 'held_reports', '', COUNT(*), 0, 0 FROM held_reports";

/// Served by the partial index `jobs_due`.
pub(super) const NEXT_WAKE: &str = "SELECT MIN(wake_at) FROM jobs WHERE phase <> 'finished'";

/// How many a list gives when its filter names no limit.
const DEFAULT_LIMIT: usize = 100;

impl Db {
    pub(super) async fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(JOB).bind(int(id.0)).fetch_optional(&self.pool).await.map_err(|e| self.err(e))?;
        row.as_ref().map(job_row).transpose()
    }

    pub(super) async fn ended(&self, ids: &[JobId]) -> Result<Vec<JobRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|id| int(id.0)).collect();
        let rows = sqlx::query(ENDED).bind(ids).fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(crate::store::rows::readable(rows.iter().map(job_row), &self.name))
    }

    pub(super) async fn job_of(&self, asset_id: &str) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(JOB_OF).bind(asset_id).fetch_optional(&self.pool).await.map_err(|e| self.err(e))?;
        row.as_ref().map(job_row).transpose()
    }

    pub(super) async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRow>, StoreError> {
        let (sql, binds) = list_sql(filter);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query
            .bind(int(filter.limit.unwrap_or(DEFAULT_LIMIT)))
            .bind(int(filter.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter().map(job_row).collect()
    }

    pub(super) async fn calls(&self, id: JobId) -> Result<Vec<CallRow>, StoreError> {
        let rows = sqlx::query(CALLS).bind(int(id.0)).fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        rows.iter().map(|row| call_row(row, id.0)).collect()
    }

    pub(super) async fn stats(&self, now: Timestamp) -> Result<Stats, StoreError> {
        let rows: Vec<(String, String, i64, i64, i64)> =
            sqlx::query_as(STATS).bind(now.0).fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        let mut stats = Stats {
            held_reports_dropped: self.held_dropped.load(std::sync::atomic::Ordering::Relaxed),
            ..Stats::default()
        };
        for (kind, name, count, held, due) in rows {
            match kind.as_str() {
                "phase" => {
                    stats.by_phase.insert(name, n(count));
                    stats.held += n(held);
                    stats.due_now += n(due);
                }
                "outcome" => *stats.by_outcome.entry(name).or_default() += n(count),
                _ => stats.held_reports += n(count),
            }
        }
        Ok(stats)
    }

    pub(super) async fn next_wake(&self) -> Result<Option<Timestamp>, StoreError> {
        let wake: Option<i64> = sqlx::query_scalar(NEXT_WAKE).fetch_one(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(wake.map(Timestamp))
    }
}
