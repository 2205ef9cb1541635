//! The jobs submitted over the last hours, counted by interval, failure and state in one statement over the
//! covering index `jobs_created` (the payloads are never read).

use std::time::Duration;

use super::conn::Db;
use super::decode::n;
use crate::store::{StoreError, TallyRow, Timestamp};

pub(super) const TALLY: &str = "SELECT (created_at / $2) * $2, last_code, \
     CASE WHEN phase = 'finished' THEN COALESCE(outcome, 'finished') ELSE 'running' END, COUNT(*) \
     FROM jobs WHERE created_at >= $1 GROUP BY 1, 2, 3";

impl Db {
    pub(super) async fn tally(&self, since: Timestamp, bucket: Duration) -> Result<Vec<TallyRow>, StoreError> {
        let width = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows: Vec<(i64, String, String, i64)> =
            sqlx::query_as(TALLY).bind(since.0).bind(width).fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(at, code, state, jobs)| TallyRow { bucket: Timestamp(at), code, state, jobs: n(jobs) })
            .collect())
    }
}
