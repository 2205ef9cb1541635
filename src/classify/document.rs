//! The documents LightFlow gives: an asset with `assetError`, a bare `assetError` object, and a failed API call
//! with its body, read into a [`Failure`].

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::error::ClassifyError;
use super::failure::Failure;
use super::key::{check_code, check_status};
use super::retry_after::retry_after;

impl Failure {
    /// Classifies a JSON document: an asset with `assetError`, a bare `assetError` object, or an API failure
    /// `{"http_status": 429, "body": {"message": "..."}, "retry_after": "30"}`.
    ///
    /// `now` resolves a `retry_after` given as an HTTP date.
    pub fn from_json(text: &str, now: SystemTime) -> Result<Self, ClassifyError> {
        let value: Value = serde_json::from_str(text).map_err(malformed)?;
        Failure::from_value(&value, now)
    }

    /// Classifies an already-parsed JSON document; see [`Failure::from_json`].
    pub fn from_value(value: &Value, now: SystemTime) -> Result<Self, ClassifyError> {
        let object = as_object(value, "document")?;
        if let Some(error) = object.get("assetError") {
            if error.is_null() {
                return Err(ClassifyError::MissingAssetError { status: asset_status(object) });
            }
            return error_object(as_object(error, "assetError")?, "assetError.code", "assetError.message");
        }
        if let Some(status) = object.get("http_status") {
            let status = integer(status, "http_status")?;
            check_status(status, "http_status")?;
            let message = match object.get("body") {
                None | Some(Value::Null) => Arc::from(""),
                Some(Value::String(text)) => body_message(text)?,
                Some(body) => message_of(as_object(body, "body")?, "body.message")?,
            };
            let failure = Failure::api(status as u16, message)?;
            return match object.get("retry_after") {
                None | Some(Value::Null) => Ok(failure),
                Some(Value::Number(n)) => Ok(failure.with_retry_after(retry_after(&n.to_string(), now)?)),
                Some(Value::String(s)) => Ok(failure.with_retry_after(retry_after(s, now)?)),
                Some(other) => Err(ClassifyError::InvalidRetryAfter { value: other.to_string() }),
            };
        }
        if object.contains_key("code") {
            return error_object(object, "code", "message");
        }
        if object.contains_key("id") || object.contains_key("status") {
            return Err(ClassifyError::MissingAssetError { status: asset_status(object) });
        }
        let keys = object.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        Err(ClassifyError::UnrecognizedShape { keys: if keys.is_empty() { "none".into() } else { keys } })
    }

    /// Classifies a failed API call: its HTTP status, its body (`{"message": "..."}`, or empty) and the value of
    /// its `Retry-After` header, if any (seconds, or an HTTP date resolved against `now`).
    pub fn from_api_response(
        status: u16,
        body: &str,
        retry_after_header: Option<&str>,
        now: SystemTime,
    ) -> Result<Self, ClassifyError> {
        let failure = Failure::api(status, body_message(body)?)?;
        match retry_after_header {
            Some(value) => Ok(failure.with_retry_after(retry_after(value, now)?)),
            None => Ok(failure),
        }
    }
}

fn malformed(e: serde_json::Error) -> ClassifyError {
    ClassifyError::MalformedJson { line: e.line(), column: e.column(), message: crate::diagnostic::json_message(&e) }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_object<'v>(value: &'v Value, at: &'static str) -> Result<&'v Map<String, Value>, ClassifyError> {
    value.as_object().ok_or(ClassifyError::NotAnObject { at, found: json_type(value) })
}

fn asset_status(object: &Map<String, Value>) -> String {
    match object.get("status") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "unknown".to_owned(),
    }
}

/// A JSON whole number, however large (the range is checked by the caller, which knows what it holds).
fn integer(value: &Value, at: &'static str) -> Result<i128, ClassifyError> {
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Ok(i.into()),
            (None, Some(u)) => Ok(u.into()),
            (None, None) => Err(ClassifyError::NonIntegerCode { at, found: format!("the number {n}") }),
        },
        Value::String(s) => Err(ClassifyError::NonIntegerCode { at, found: format!("the string {s:?}") }),
        other => Err(ClassifyError::NonIntegerCode { at, found: json_type(other).to_owned() }),
    }
}

fn message_of(object: &Map<String, Value>, at: &'static str) -> Result<Arc<str>, ClassifyError> {
    match object.get("message") {
        None | Some(Value::Null) => Ok(Arc::from("")),
        Some(Value::String(s)) => Ok(Arc::from(s.as_str())),
        Some(other) => Err(ClassifyError::NonStringMessage { at, found: json_type(other) }),
    }
}

fn error_object(
    object: &Map<String, Value>,
    code_at: &'static str,
    message_at: &'static str,
) -> Result<Failure, ClassifyError> {
    let code = object.get("code").ok_or(ClassifyError::MissingCode { at: code_at })?;
    let code = integer(code, code_at)?;
    check_code(code, code_at)?;
    Failure::asset(code as u16, message_of(object, message_at)?)
}

/// The `message` of an API response body; an empty body has none.
fn body_message(body: &str) -> Result<Arc<str>, ClassifyError> {
    if body.trim().is_empty() {
        return Ok(Arc::from(""));
    }
    let value: Value = serde_json::from_str(body).map_err(malformed)?;
    message_of(as_object(&value, "body")?, "body.message")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::classify::{Category, Downstream, FailureKey};

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    fn classify(text: &str) -> Result<Failure, ClassifyError> {
        Failure::from_json(text, NOW)
    }

    #[test]
    fn each_bad_input_has_its_own_error() {
        use ClassifyError as E;
        type IsExpected = fn(&ClassifyError) -> bool;
        let cases: &[(&str, IsExpected)] = &[
            ("{", |e| matches!(e, E::MalformedJson { line: 1, .. })),
            ("[1]", |e| matches!(e, E::NotAnObject { found: "an array", .. })),
            (
                r#"{"id": "a", "status": "ready"}"#,
                |e| matches!(e, E::MissingAssetError { status } if status == "ready"),
            ),
            (r#"{"id": "a", "assetError": null}"#, |e| matches!(e, E::MissingAssetError { .. })),
            (r#"{"assetError": {"message": "x"}}"#, |e| matches!(e, E::MissingCode { at: "assetError.code" })),
            (r#"{"code": "2404"}"#, |e| matches!(e, E::NonIntegerCode { at: "code", .. })),
            (r#"{"code": 2404.5}"#, |e| matches!(e, E::NonIntegerCode { .. })),
            (r#"{"code": 99}"#, |e| matches!(e, E::CodeOutOfRange { code, .. } if code == "99")),
            (r#"{"code": -1}"#, |e| matches!(e, E::CodeOutOfRange { .. })),
            (
                r#"{"code": 18446744073709551615}"#,
                |e| matches!(e, E::CodeOutOfRange { code, .. } if code == "18446744073709551615"),
            ),
            (r#"{"http_status": 18446744073709551615}"#, |e| matches!(e, E::StatusOutOfRange { .. })),
            (r#"{"code": 2404, "message": 7}"#, |e| matches!(e, E::NonStringMessage { .. })),
            (r#"{"http_status": 200}"#, |e| matches!(e, E::StatusOutOfRange { .. })),
            (r#"{"http_status": 503, "retry_after": "later"}"#, |e| matches!(e, E::InvalidRetryAfter { .. })),
            (r#"{"http_status": 503, "body": "<html>"}"#, |e| matches!(e, E::MalformedJson { .. })),
            (r#"{"hello": 1}"#, |e| matches!(e, E::UnrecognizedShape { keys } if keys == "hello")),
        ];
        for (input, is_expected) in cases {
            let err = classify(input).expect_err(input);
            assert!(is_expected(&err), "{input}: got {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn the_three_shapes_classify() {
        let asset = classify(r#"{"id":"x","status":"error","assetError":{"code":3003,"message":"in use"}}"#).unwrap();
        assert_eq!((asset.key(), asset.message()), (FailureKey::asset(3003), "in use"));
        assert_eq!(asset.downstream(), Downstream::Brightcove);

        let bare = classify(r#"{"code": 2099}"#).unwrap();
        assert_eq!((bare.category(), bare.message()), (Category::Unknown, ""));

        let api = classify(r#"{"http_status": 429, "body": {"message": "busy"}, "retry_after": 7}"#).unwrap();
        assert_eq!(api.key(), FailureKey::api(429));
        assert_eq!(api.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(api.message(), "busy");
    }
}
