//! LightFlow (feature `lightflow`): a client of LightFlow's documented API.
//!
//! - [`LightFlowClient`] (`client.rs`): `POST /assets`, `GET /assets` with its documented filters
//!   ([`ListQuery`]), one asset by the `uuid` filter. A bearer token from a [`TokenSource`] (an environment
//!   variable or a file, read again on demand, never shown), a timeout per call, no retries. Every failed answer
//!   is a [`ClientError::Failed`] with its classified [`Failure`](crate::Failure).
//! - [`CallbackUrls`] (`callback_url.rs`): each attempt's callback entry, whose URL names the attempt and
//!   carries an HMAC token of its job, checked in constant time when LightFlow calls back.
//! - [`merge_patch`] (RFC 7386): how a decision's `amend` changes an asset's parameters.
//! - [`Webhook`] (`notify.rs`): Slack-compatible posts for operators.

mod asset;
mod callback_url;
mod client;
mod error;
mod merge_patch;
mod notify;
mod query;
mod token;

pub use asset::{Asset, AssetPage};
pub use callback_url::{
    ATTEMPT_PARAM, CallbackEntry, CallbackKey, CallbackMethod, CallbackUrls, KeyError, Refused, TOKEN_PARAM,
};
pub use client::{LightFlowClient, LightFlowClientBuilder};
pub use error::ClientError;
pub use merge_patch::{merge_members, merge_patch};
pub use notify::Webhook;
pub use query::{ListQuery, iso_timestamp};
pub use token::{Reloaded, TokenError, TokenSource};
