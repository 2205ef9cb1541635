//! LightFlow (feature `lightflow`): a client of LightFlow's documented API.
//!
//! - [`LightFlowClient`] (`client.rs`): `POST /assets`, `GET /assets` with its documented filters
//!   ([`ListQuery`]), one asset by the `uuid` filter. A bearer token from a [`TokenSource`] (an environment
//!   variable or a file, read again on demand, never shown), a timeout per call, no retries. Every failed answer
//!   is a [`ClientError::Failed`] with its classified [`Failure`](crate::Failure).
//! - [`Webhook`] (`notify.rs`): Slack-compatible posts for operators.

mod asset;
mod client;
mod error;
mod notify;
mod query;
mod token;

pub use asset::{Asset, AssetPage};
pub use client::{LightFlowClient, LightFlowClientBuilder};
pub use error::ClientError;
pub use notify::Webhook;
pub use query::{ListQuery, iso_timestamp};
pub use token::{Reloaded, TokenError, TokenSource};
