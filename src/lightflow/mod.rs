//! LightFlow (feature `lightflow`): a client of LightFlow's documented API, and the engine's
//! [`Hooks`](crate::engine::Hooks) carried out on it.
//!
//! - [`LightFlowClient`] (`client.rs`): `POST /assets`, `GET /assets` with its documented filters
//!   ([`ListQuery`]), one asset by the `uuid` filter. A bearer token from a [`TokenSource`] (an environment
//!   variable or a file, read again on demand, never shown), a timeout per call, no retries. Every failed answer
//!   is a [`ClientError::Failed`] with its classified [`Failure`](crate::Failure).
//! - [`CallbackUrls`] (`callback_url.rs`): each attempt's callback entry, whose URL names the attempt and
//!   carries an HMAC token of its job, checked in constant time when LightFlow calls back.
//! - [`LightFlowHooks`] (`hooks.rs`): `resubmit` posts the asset's recorded parameters (an [`AssetBook`]) with
//!   the decision's `amend` merged ([`merge_patch`], RFC 7386) and the attempt's callback entry; `check`,
//!   `reconcile`, `republish`, `fix_credentials("api")`, and `notify`/`failed` to logs and a [`Webhook`].
//!
//! Only what LightFlow documents is called (see `shared/lightflow-api.md` of the project). What is assumed
//! where its documentation is silent is said where it is used:
//!
//! - the answer of `POST /assets` is an asset object with `uuid` ([`LightFlowClient::create_asset`]);
//! - `creationDateFrom` takes a time of day, and the first page is `pageIndex` 0 ([`ListQuery`]);
//! - a callback `POST` body carries `status` and `assetError` ([`CallbackUrls`]);
//! - a reference id is the parameters' `referenceId` ([`LightFlowHooks::DEFAULT_REFERENCE_ID_FIELD`]);
//! - how a lost attempt is found again ([`reconcile`]).
//!
//! ```
//! use lightflow_remedy::classify::Callback;
//! use lightflow_remedy::engine::{AttemptKey, JobId};
//! use lightflow_remedy::lightflow::{CallbackKey, CallbackUrls, merge_patch};
//! use serde_json::json;
//!
//! // The parameters LightFlow is given for attempt 2 of job 7: the recorded ones, amended, with a callback.
//! let mut params = json!({"input": {"urlPath": "https://example.com/in.mp4"}, "4k": true});
//! merge_patch(&mut params, &json!({"4k": false}));
//! let urls = CallbackUrls::new("https://remedy.example.com/callbacks", CallbackKey::generate()?)?;
//! let entry = urls.entry(JobId(7), &AttemptKey { asset_id: "a1", job: JobId(7), attempt: 2 });
//! params["callbacks"] = json!([entry.to_json()]);
//! assert_eq!(params["callbacks"][0]["method"], "POST");
//!
//! // LightFlow's callback comes back to that URL; its token proves it is ours.
//! let callback = Callback::from_request(Some(&entry.url), Some(r#"{"uuid": "u2", "status": "finished"}"#))?;
//! assert!(urls.authenticate(&callback, []).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod asset;
mod book;
mod callback_url;
mod client;
mod error;
mod hooks;
mod merge_patch;
mod notify;
mod query;
pub mod reconcile;
mod store_book;
mod token;

pub use asset::{Asset, AssetPage};
pub use book::{AssetBook, BookError, BookFuture, MemoryAssetBook};
pub use callback_url::{
    ASSET_PARAM, ATTEMPT_PARAM, CallbackEntry, CallbackKey, CallbackMethod, CallbackUrls, KeyError, Refused,
    TOKEN_PARAM,
};
pub use client::{LightFlowClient, LightFlowClientBuilder};
pub use error::ClientError;
pub(crate) use hooks::callbacks_of;
pub use hooks::{LightFlowHooks, UUID_META};
pub use merge_patch::{merge_members, merge_patch};
pub use notify::Webhook;
pub use query::{ListQuery, iso_timestamp};
pub use store_book::StoreBook;
pub use token::{Reloaded, TokenError, TokenSource};
