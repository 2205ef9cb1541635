//! [`AssetBook`]: what [`LightFlowHooks`](super::LightFlowHooks) must know of an asset that LightFlow does not
//! give back: the parameters it was created with (to post it again), and which LightFlow asset each attempt
//! made (its lineage).
//!
//! LightFlow documents no way to read an asset's parameters back, so whoever creates an asset records them
//! (the service's gateway does, for every `POST /assets` it forwards). [`MemoryAssetBook`] keeps them in this
//! process; a host with a database implements the trait on it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// What an [`AssetBook`] method returns: a boxed future, so that books can be used as `dyn AssetBook`.
pub type BookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BookError>> + Send + 'a>>;

/// A book that could not be read or written (its database's error, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the asset book failed: {0}")]
pub struct BookError(pub String);

/// Where the parameters and attempts of assets are kept: what the hooks must know of an asset that LightFlow
/// does not give back. LightFlow documents no way to read an asset's parameters back, so whoever creates an
/// asset records them (the service's gateway does, for every `POST /assets` it forwards); each attempt's
/// LightFlow uuid is recorded by the hooks, and makes the asset's lineage.
///
/// `asset_id` is the job's asset id ([`Job::asset_id`](crate::engine::Job::asset_id)); `attempt_key` is an
/// attempt key's text (`asset#job.attempt`, [`AttemptKey`](crate::engine::AttemptKey)'s `Display`).
pub trait AssetBook: Send + Sync + 'static {
    /// Records the parameters `asset_id` was created with (the `parameters` object of its `POST /assets`).
    fn record_parameters<'a>(&'a self, asset_id: &'a str, parameters: &'a Map<String, Value>) -> BookFuture<'a, ()>;

    /// The parameters recorded for `asset_id`, if any.
    fn parameters<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Option<Map<String, Value>>>;

    /// Records that attempt `attempt_key` of `asset_id` made the LightFlow asset `uuid`. The first uuid
    /// recorded for an attempt is kept.
    fn record_attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str, uuid: &'a str) -> BookFuture<'a, ()>;

    /// The uuid recorded for attempt `attempt_key` of `asset_id`, if any.
    fn attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str) -> BookFuture<'a, Option<String>>;

    /// The uuids the attempts on `asset_id` made, oldest first: the assets that replaced it.
    fn lineage<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Vec<String>>;
}

/// A book shared behind an `Arc` (the hooks and the host's gateway, or a test, see the same one).
impl<B: AssetBook> AssetBook for Arc<B> {
    fn record_parameters<'a>(&'a self, asset_id: &'a str, parameters: &'a Map<String, Value>) -> BookFuture<'a, ()> {
        (**self).record_parameters(asset_id, parameters)
    }

    fn parameters<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Option<Map<String, Value>>> {
        (**self).parameters(asset_id)
    }

    fn record_attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str, uuid: &'a str) -> BookFuture<'a, ()> {
        (**self).record_attempt(asset_id, attempt_key, uuid)
    }

    fn attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str) -> BookFuture<'a, Option<String>> {
        (**self).attempt(asset_id, attempt_key)
    }

    fn lineage<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Vec<String>> {
        (**self).lineage(asset_id)
    }
}

/// An [`AssetBook`] in this process's memory: nothing survives the process.
///
/// ```
/// use lightflow_remedy::lightflow::{AssetBook, MemoryAssetBook};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let book = MemoryAssetBook::new();
/// let params = json!({"input": {"urlPath": "https://example.com/in.mp4"}});
/// book.record_parameters("asset-1", params.as_object().unwrap()).await?;
/// book.record_attempt("asset-1", "asset-1#7.1", "uuid-2").await?;
/// assert_eq!(book.parameters("asset-1").await?.as_ref(), params.as_object());
/// assert_eq!(book.attempt("asset-1", "asset-1#7.1").await?.as_deref(), Some("uuid-2"));
/// assert_eq!(book.lineage("asset-1").await?, ["uuid-2"]);
/// # Ok::<(), lightflow_remedy::lightflow::BookError>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryAssetBook {
    assets: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    parameters: Option<Map<String, Value>>,
    /// (attempt key, uuid), in the order they were recorded.
    attempts: Vec<(String, String)>,
}

impl MemoryAssetBook {
    /// An empty book.
    pub fn new() -> Self {
        MemoryAssetBook::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        f(&mut self.assets.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl AssetBook for MemoryAssetBook {
    fn record_parameters<'a>(&'a self, asset_id: &'a str, parameters: &'a Map<String, Value>) -> BookFuture<'a, ()> {
        self.with(|assets| assets.entry(asset_id.to_owned()).or_default().parameters = Some(parameters.clone()));
        Box::pin(async { Ok(()) })
    }

    fn parameters<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Option<Map<String, Value>>> {
        let found = self.with(|assets| assets.get(asset_id).and_then(|e| e.parameters.clone()));
        Box::pin(async move { Ok(found) })
    }

    fn record_attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str, uuid: &'a str) -> BookFuture<'a, ()> {
        self.with(|assets| {
            let entry = assets.entry(asset_id.to_owned()).or_default();
            if !entry.attempts.iter().any(|(key, _)| key == attempt_key) {
                entry.attempts.push((attempt_key.to_owned(), uuid.to_owned()));
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn attempt<'a>(&'a self, asset_id: &'a str, attempt_key: &'a str) -> BookFuture<'a, Option<String>> {
        let found = self.with(|assets| {
            let entry = assets.get(asset_id)?;
            entry.attempts.iter().find(|(key, _)| key == attempt_key).map(|(_, uuid)| uuid.clone())
        });
        Box::pin(async move { Ok(found) })
    }

    fn lineage<'a>(&'a self, asset_id: &'a str) -> BookFuture<'a, Vec<String>> {
        let found = self.with(|assets| {
            let mut uuids: Vec<String> = Vec::new();
            for (_, uuid) in assets.get(asset_id).map(|e| e.attempts.as_slice()).unwrap_or_default() {
                if !uuids.contains(uuid) {
                    uuids.push(uuid.clone());
                }
            }
            uuids
        });
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_uuid_of_an_attempt_is_kept() {
        let book = MemoryAssetBook::new();
        assert_eq!(book.parameters("a").await, Ok(None));
        book.record_attempt("a", "a#1.1", "u1").await.unwrap();
        book.record_attempt("a", "a#1.1", "other").await.unwrap();
        book.record_attempt("a", "a#1.2", "u2").await.unwrap();
        book.record_attempt("a", "a#2.1", "u2").await.unwrap();
        assert_eq!(book.attempt("a", "a#1.1").await.unwrap().as_deref(), Some("u1"));
        assert_eq!(book.lineage("a").await.unwrap(), ["u1", "u2"]);
        assert_eq!(book.lineage("b").await.unwrap(), Vec::<String>::new());
    }
}
