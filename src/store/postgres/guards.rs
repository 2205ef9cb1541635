//! The fleet guards the replicas share, as rows written compare-and-set on their version. Each write is one
//! statement: two replicas that read one version cannot both write over it.

use super::conn::Db;
use super::decode::{int, n};
use crate::store::{GuardRow, StoreError};

const GUARD: &str = "SELECT value, version FROM guards WHERE name = $1";

/// The first write of a guard: it must not exist yet.
const CREATE_GUARD: &str = "INSERT INTO guards (name, value, version) VALUES ($1, $2, 1) ON CONFLICT (name) DO NOTHING";

/// A later write: only over the version the writer read.
const UPDATE_GUARD: &str = "UPDATE guards SET value = $2, version = version + 1 WHERE name = $1 AND version = $3";

impl Db {
    pub(super) async fn guard(&self, name: &str) -> Result<Option<GuardRow>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as(GUARD).bind(name).fetch_optional(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(row.map(|(value, version)| GuardRow { value, version: n(version) }))
    }

    pub(super) async fn set_guard(&self, name: &str, expected: Option<u64>, value: &str) -> Result<bool, StoreError> {
        let done = match expected {
            None => sqlx::query(CREATE_GUARD).bind(name).bind(value).execute(&self.pool).await,
            Some(v) => sqlx::query(UPDATE_GUARD).bind(name).bind(value).bind(int(v)).execute(&self.pool).await,
        }
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }
}
