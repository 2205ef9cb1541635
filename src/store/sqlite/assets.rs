//! Assets as they were created, and their lineage: kept for the gateway and the hooks that resubmit them.

use super::conn::Db;
use crate::store::{AssetRecord, LineageRow, StoreError, Timestamp};

/// A second record of one asset replaces its parameters (and keeps its first alias if the new one has none).
const PUT_ASSET: &str = "INSERT INTO assets (asset_id, alias, parameters, created_at) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (asset_id) DO UPDATE SET parameters = excluded.parameters, \
     alias = COALESCE(excluded.alias, assets.alias)";

const ASSET: &str = "SELECT asset_id, alias, parameters, created_at FROM assets WHERE asset_id = ?1 \
     UNION ALL SELECT asset_id, alias, parameters, created_at FROM assets WHERE alias = ?1 LIMIT 1";

const ADD_LINEAGE: &str = "INSERT INTO lineage (reference, asset_id, attempt_key, at) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (reference) DO NOTHING";

const OPEN_ASSETS: &str = "SELECT asset_id, alias, parameters, created_at FROM assets \
     WHERE NOT settled AND created_at < ?1 ORDER BY created_at LIMIT ?2";

const SETTLE_ASSET: &str = "UPDATE assets SET settled = 1 WHERE asset_id = ?1";

const LINEAGE: &str = "SELECT reference, attempt_key, at FROM lineage WHERE asset_id = ?1 ORDER BY at, reference";

impl Db {
    pub(super) async fn put_asset(
        &self,
        asset_id: &str,
        alias: Option<&str>,
        parameters: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(PUT_ASSET)
            .bind(asset_id)
            .bind(alias)
            .bind(parameters)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(())
    }

    pub(super) async fn asset(&self, id_or_alias: &str) -> Result<Option<AssetRecord>, StoreError> {
        let row: Option<(String, Option<String>, String, i64)> =
            sqlx::query_as(ASSET).bind(id_or_alias).fetch_optional(&self.reader).await.map_err(|e| self.err(e))?;
        Ok(row.map(|(asset_id, alias, parameters, at)| AssetRecord {
            asset_id,
            alias,
            parameters,
            created_at: Timestamp(at),
        }))
    }

    pub(super) async fn add_lineage(
        &self,
        asset_id: &str,
        reference: &str,
        attempt_key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(ADD_LINEAGE)
            .bind(reference)
            .bind(asset_id)
            .bind(attempt_key)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(())
    }

    pub(super) async fn lineage(&self, asset_id: &str) -> Result<Vec<LineageRow>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as(LINEAGE).bind(asset_id).fetch_all(&self.reader).await.map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(reference, attempt_key, at)| LineageRow { reference, attempt_key, at: Timestamp(at) })
            .collect())
    }

    pub(super) async fn open_assets(
        &self,
        created_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<AssetRecord>, StoreError> {
        let rows: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(OPEN_ASSETS)
            .bind(created_before.0)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(asset_id, alias, parameters, at)| AssetRecord {
                asset_id,
                alias,
                parameters,
                created_at: Timestamp(at),
            })
            .collect())
    }

    pub(super) async fn settle_asset(&self, asset_id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(SETTLE_ASSET).bind(asset_id).execute(&mut *tx).await.map_err(|e| self.err(e))?;
        self.commit(tx).await?;
        Ok(())
    }
}
