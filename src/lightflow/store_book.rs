//! An [`AssetBook`] kept in the engine's store: the parameters in its `assets` table, the attempts in its
//! `lineage` table, so that every replica on the store (and a restart) resubmits an asset with what it was
//! created with.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::book::{AssetBook, BookError, BookFuture};
use crate::store::{Clock, Store, SystemClock};

/// The assets of a [`Store`], as an [`AssetBook`].
///
/// ```
/// use lightflow_remedy::lightflow::{AssetBook, StoreBook};
/// use lightflow_remedy::store::MemoryStore;
/// use serde_json::json;
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let book = StoreBook::new(Arc::new(MemoryStore::new()));
/// let params = json!({"input": {"urlPath": "https://example.com/in.mp4"}});
/// book.record_parameters("asset-1", params.as_object().unwrap()).await?;
/// book.record_attempt("asset-1", "asset-1#7.1", "uuid-2").await?;
/// assert_eq!(book.parameters("asset-1").await?.as_ref(), params.as_object());
/// assert_eq!(book.lineage("asset-1").await?, ["uuid-2"]);
/// # Ok::<(), lightflow_remedy::lightflow::BookError>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StoreBook {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl StoreBook {
    /// The book of `store`, on the store's own clock (else the system's).
    pub fn new(store: Arc<dyn Store>) -> Self {
        let clock = store.own_clock().unwrap_or_else(|| Arc::new(SystemClock));
        StoreBook { store, clock }
    }
}

impl std::fmt::Debug for StoreBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBook").field("store", &self.store.describe()).finish()
    }
}

fn failed(e: impl std::fmt::Display) -> BookError {
    BookError(e.to_string())
}

impl AssetBook for StoreBook {
    fn record_parameters<'a>(&'a self, asset_id: &'a str, parameters: &'a Map<String, Value>) -> BookFuture<'a, ()> {
        Box::pin(async move {
            let text = serde_json::to_string(parameters).map_err(failed)?;
            self.store.put_asset(asset_id, None, &text, self.clock.now()).await.map_err(failed)
        })
    }

    fn parameters<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Option<Map<String, Value>>> {
        Box::pin(async move {
            let Some(record) = self.store.asset(asset_id).await.map_err(failed)? else { return Ok(None) };
            match serde_json::from_str(&record.parameters).map_err(failed)? {
                Value::Object(map) => Ok(Some(map)),
                other => Err(BookError(format!("the parameters of `{asset_id}` are not an object: {other}"))),
            }
        })
    }

    fn record_attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str, uuid: &'a str) -> BookFuture<'a, ()> {
        Box::pin(
            async move { self.store.add_lineage(asset_id, uuid, attempt_key, self.clock.now()).await.map_err(failed) },
        )
    }

    fn attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str) -> BookFuture<'a, Option<String>> {
        Box::pin(async move {
            let lineage = self.store.lineage(asset_id).await.map_err(failed)?;
            Ok(lineage.into_iter().find(|l| l.attempt_key == attempt_key).map(|l| l.reference))
        })
    }

    fn lineage<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Vec<String>> {
        Box::pin(async move {
            let lineage = self.store.lineage(asset_id).await.map_err(failed)?;
            Ok(lineage.into_iter().map(|l| l.reference).collect())
        })
    }
}
