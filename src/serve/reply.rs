//! The service's answers: JSON, with a `message` when something was refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A JSON answer.
pub(crate) struct Reply;

impl Reply {
    /// `body` with `status`.
    pub(crate) fn json(status: StatusCode, body: Value) -> Response {
        (status, axum::Json(body)).into_response()
    }
}

/// `{"message": message}` with `status`.
pub(crate) fn reply(status: StatusCode, message: &str) -> Response {
    Reply::json(status, json!({ "message": message }))
}
