//! The fleet guards the replicas share, as rows written compare-and-set on their version.

use super::conn::Db;
use crate::store::{GuardRow, StoreError};

const GUARD: &str = "SELECT value, version FROM guards WHERE name = ?1";

/// The first write of a guard: it must not exist yet.
const CREATE_GUARD: &str = "INSERT INTO guards (name, value, version) VALUES (?1, ?2, 1) ON CONFLICT (name) DO NOTHING";

/// A later write: only over the version the writer read.
const UPDATE_GUARD: &str = "UPDATE guards SET value = ?2, version = version + 1 WHERE name = ?1 AND version = ?3";

impl Db {
    pub(super) async fn guard(&self, name: &str) -> Result<Option<GuardRow>, StoreError> {
        let mut tx = self.read().await?;
        let row: Option<(String, i64)> =
            sqlx::query_as(GUARD).bind(name).fetch_optional(&mut *tx).await.map_err(|e| self.err(e))?;
        Ok(row.map(|(value, version)| GuardRow { value, version: u64::try_from(version).unwrap_or(0) }))
    }

    pub(super) async fn set_guard(&self, name: &str, expected: Option<u64>, value: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = match expected {
            None => sqlx::query(CREATE_GUARD).bind(name).bind(value).execute(&mut *tx).await,
            Some(v) => {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                sqlx::query(UPDATE_GUARD).bind(name).bind(value).bind(v).execute(&mut *tx).await
            }
        }
        .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(done.rows_affected() == 1)
    }
}
