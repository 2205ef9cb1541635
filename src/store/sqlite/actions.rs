//! Operators' actions (the web view's cancel and retry now), logged beside the jobs, and the list of them.

use super::conn::Db;
use crate::store::{ActionRow, NewAction, StoreError, Timestamp};

const LOG: &str =
    "INSERT INTO actions (at, asset_id, job_id, action, role, who, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Served by `actions_of_asset`, or by the primary key for every asset's.
pub(super) const OF_ASSET: &str = "SELECT id, at, asset_id, job_id, action, role, who, answer FROM actions \
     WHERE asset_id = ?1 ORDER BY id DESC LIMIT ?2";
const ALL: &str = "SELECT id, at, asset_id, job_id, action, role, who, answer FROM actions ORDER BY id DESC LIMIT ?1";

/// An action's columns as read.
type Columns = crate::store::actions::ActionColumns;

impl Db {
    pub(super) async fn log_action(&self, action: NewAction<'_>, now: Timestamp) -> Result<(), StoreError> {
        let job = action.job.map(|j| i64::try_from(j.0).unwrap_or(i64::MAX));
        let mut tx = self.write().await?;
        sqlx::query(LOG)
            .bind(now.0)
            .bind(action.asset_id)
            .bind(job)
            .bind(action.action)
            .bind(action.role)
            .bind(action.who)
            .bind(action.answer)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(())
    }

    pub(super) async fn actions(&self, asset_id: Option<&str>, limit: usize) -> Result<Vec<ActionRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Columns> = match asset_id {
            Some(asset) => sqlx::query_as(OF_ASSET).bind(asset).bind(limit).fetch_all(&self.reader).await,
            None => sqlx::query_as(ALL).bind(limit).fetch_all(&self.reader).await,
        }
        .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(ActionRow::from_columns).collect())
    }
}
