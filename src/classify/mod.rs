//! Classify: turn what LightFlow returned into a [`Failure`].
//!
//! Three shapes are understood: a whole asset object that carries `assetError`, a bare `assetError` object
//! (`{"code": 2404, "message": "..."}`), and a failed API call (an HTTP status, its body and an optional
//! `Retry-After`). Bad input is a [`ClassifyError`] that names the field and, for text, its line and column;
//! nothing here panics. What can still be classified is: a body that is not LightFlow's JSON (a proxy's HTML
//! page) gives an API failure of its status with an excerpt as message, and an unreadable Retry-After is
//! dropped and said in [`Failure::notes`].
//!
//! A LightFlow callback (the `POST` body or the `GET` query LightFlow calls the host with when an asset ends)
//! is read into a [`Callback`], whose [`Callback::result`] says what it means for a remediation.
//!
//! ```
//! use lightflow_remedy::{Category, Failure, FailureKind};
//! use std::time::{Duration, SystemTime};
//!
//! let asset = r#"{"id": "a1", "status": "error",
//!                 "assetError": {"code": 2404, "message": "remote server returned HTTP 404"}}"#;
//! let failure = Failure::from_json(asset, SystemTime::now())?;
//! assert_eq!(failure.code(), 2404);
//! assert_eq!(failure.kind(), FailureKind::Asset);
//! assert_eq!(failure.category(), Category::Storage);
//!
//! let api = Failure::from_api_response(429, r#"{"message": "slow down"}"#, Some("30"), SystemTime::now())?;
//! assert_eq!(api.retry_after(), Some(Duration::from_secs(30)));
//!
//! // Bad input is a typed error, never a panic.
//! assert!(Failure::from_json(r#"{"code": "2404"}"#, SystemTime::now()).is_err());
//! # Ok::<(), lightflow_remedy::ClassifyError>(())
//! ```

mod asset_status;
mod callback;
mod callback_error;
pub mod catalogue;
mod document;
mod error;
mod excerpt;
mod failure;
mod http_date;
mod key;
mod locate;
mod retry_after;
mod timestamp;

pub use asset_status::{AssetStatus, UnknownStatus};
pub use callback::{Callback, CallbackResult};
pub use callback_error::{CallbackError, CallbackPos};
pub use catalogue::{Category, Downstream, UnknownCategory};
pub use error::ClassifyError;
pub use failure::Failure;
pub use key::{FailureKey, FailureKind};
pub use retry_after::{MAX_RETRY_AFTER, retry_after};
