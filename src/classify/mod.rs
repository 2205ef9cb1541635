//! Classify: turn what LightFlow returned into a [`Failure`].
//!
//! Three shapes are understood: a whole asset object that carries `assetError`, a bare `assetError` object
//! (`{"code": 2404, "message": "..."}`), and a failed API call (an HTTP status, its JSON body
//! `{"message": "..."}` and an optional `Retry-After`). Bad input is a [`ClassifyError`] that says what was wrong
//! and where; nothing here panics.
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

pub mod catalogue;
mod document;
mod error;
mod excerpt;
mod failure;
mod http_date;
mod key;
mod locate;
mod retry_after;

pub use catalogue::{Category, Downstream, UnknownCategory};
pub use error::ClassifyError;
pub use failure::Failure;
pub use key::{FailureKey, FailureKind};
pub use retry_after::{MAX_RETRY_AFTER, retry_after};
