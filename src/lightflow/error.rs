//! [`ClientError`]: why a call of the LightFlow client gave no answer it could use.

use super::token::TokenError;
use crate::classify::Failure;

/// Why a LightFlow call gave no answer the client could use.
///
/// Only [`ClientError::Failed`] is LightFlow's own answer (or its absence); the others are this side's
/// configuration, or an answer that is not what LightFlow documents. None of them ever carries the token.
///
/// ```
/// use lightflow_remedy::lightflow::{ClientError, LightFlowClient, TokenSource};
///
/// let err = LightFlowClient::builder(TokenSource::fixed("t")).base_url("ftp://example.com").build().unwrap_err();
/// assert!(matches!(err, ClientError::BadBaseUrl { .. }));
/// assert_eq!(err.to_string(), "the LightFlow base URL `ftp://example.com` cannot be used: it is not http or https");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// LightFlow answered with an HTTP error (classified by status, body and Retry-After), or did not answer in
    /// time, or could not be reached (a failure of kind `timeout`).
    #[error("{0}")]
    Failed(Failure),
    /// The base URL (or a webhook's URL) is not an absolute http or https URL this client can call.
    #[error("the {what} `{url}` cannot be used: {reason}")]
    BadBaseUrl {
        /// Which URL: `LightFlow base URL`, `webhook URL`, `callback base URL`.
        what: &'static str,
        /// The URL as given (a webhook's is shortened to its scheme and host: its path may be a secret).
        url: String,
        /// Why.
        reason: String,
    },
    /// The token could not be read from its source.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// LightFlow answered, but not with what it documents: a status that is neither success nor an error,
    /// or a success whose body is not the documented JSON.
    #[error("{call} answered {status}, not as LightFlow documents: {what}")]
    Undocumented {
        /// The call: `POST /assets`, `GET /assets`.
        call: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong, e.g. "the body is not JSON" or "`items` is missing".
        what: String,
    },
    /// The HTTP client could not be set up (its TLS configuration).
    #[error("the HTTP client cannot be set up: {0}")]
    Setup(String),
}

impl From<Failure> for ClientError {
    fn from(failure: Failure) -> Self {
        ClientError::Failed(failure)
    }
}
