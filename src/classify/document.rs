//! The documents LightFlow gives: an asset with `assetError`, a bare `assetError` object, and a failed API call
//! with its body, read into a [`Failure`].
//!
//! An API call's body is taken as it comes: LightFlow documents `{"message": "..."}`, but a proxy in front of
//! it answers with an HTML page or plain text, and such a failure is still an API failure of its status, with
//! an excerpt of the body as its message. An unreadable Retry-After is dropped, not the failure.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::error::ClassifyError;
use super::excerpt::excerpt;
use super::failure::Failure;
use super::key::{check_code, check_status};
use super::retry_after;

impl Failure {
    /// Classifies a JSON document: an asset with `assetError`, a bare `assetError` object, or an API failure
    /// `{"http_status": 429, "body": {"message": "..."}, "retry_after": "30"}` (`body` may also be the
    /// body's text, as [`Failure::from_api_response`] takes it).
    ///
    /// `now` resolves a `retry_after` given as an HTTP date. An error names the field and its line and column.
    ///
    /// ```
    /// use lightflow_remedy::Failure;
    /// use std::time::SystemTime;
    ///
    /// let proxy = r#"{"http_status": 502, "body": "<html><h1>502 Bad Gateway</h1></html>", "retry_after": "soon"}"#;
    /// let f = Failure::from_json(proxy, SystemTime::now())?;
    /// assert_eq!((f.code(), f.message(), f.retry_after()), (502, "502 Bad Gateway", None));
    /// assert!(f.retry_after_ignored().is_some());
    ///
    /// let err = Failure::from_json("{\"assetError\": {\"code\": \"2404\"}}", SystemTime::now()).unwrap_err();
    /// assert!(err.to_string().starts_with("line 1, column 25: `assetError.code` must be an integer"), "{err}");
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn from_json(text: &str, now: SystemTime) -> Result<Self, ClassifyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ClassifyError::malformed(text, &e))?;
        Failure::from_value(&value, now).map_err(|e| e.located_in(text))
    }

    /// Classifies an already-parsed JSON document; see [`Failure::from_json`]. Errors name the field, but
    /// carry no line and column: a `Value` has none.
    pub fn from_value(value: &Value, now: SystemTime) -> Result<Self, ClassifyError> {
        let object = as_object(value, "document")?;
        if let Some(error) = object.get("assetError") {
            if error.is_null() {
                return Err(ClassifyError::MissingAssetError { status: asset_status(object), pos: None });
            }
            return asset_error(as_object(error, "assetError")?, "assetError.code", "assetError.message");
        }
        if let Some(status) = object.get("http_status") {
            let status = integer(status, "http_status")?;
            check_status(status, "http_status")?;
            let failure = match object.get("body") {
                None | Some(Value::Null) => Failure::api(status as u16, "")?,
                Some(Value::String(text)) => api_failure(status as u16, text)?,
                Some(body) => api_failure_of_value(status as u16, body, None)?,
            };
            return Ok(match object.get("retry_after") {
                None | Some(Value::Null) => failure,
                Some(Value::Number(n)) => with_retry_after(failure, &n.to_string(), now),
                Some(Value::String(s)) => with_retry_after(failure, s, now),
                Some(other) => failure.with_retry_after_ignored(retry_after::ignored_note(
                    &other.to_string(),
                    &format!("a Retry-After is a string or a number, not {}", json_type(other)),
                )),
            });
        }
        if object.contains_key("code") {
            return asset_error(object, "code", "message");
        }
        if object.contains_key("id") || object.contains_key("status") {
            return Err(ClassifyError::MissingAssetError { status: asset_status(object), pos: None });
        }
        let keys = object.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        Err(ClassifyError::UnrecognizedShape { keys: if keys.is_empty() { "none".into() } else { keys }, pos: None })
    }

    /// Classifies a failed API call: its HTTP status, its body and the value of its `Retry-After` header, if any
    /// (delay-seconds, or an HTTP date resolved against `now`).
    ///
    /// The message is the body's `message` when the body is LightFlow's JSON (`{"message": "..."}`), nothing
    /// for an empty body, and otherwise a short one-line excerpt of the body (a proxy's HTML page gives its
    /// text), with a note saying so. A Retry-After value that is neither delay-seconds nor an HTTP-date is
    /// dropped, and [`Failure::retry_after_ignored`] says so. The only error is a status outside 400..=599.
    ///
    /// ```
    /// use lightflow_remedy::{Category, Failure};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let now = SystemTime::now();
    /// let f = Failure::from_api_response(404, r#"{"message": "asset not found"}"#, None, now)?;
    /// assert_eq!((f.message(), f.category()), ("asset not found", Category::Api));
    ///
    /// let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    /// let f = Failure::from_api_response(502, html, Some("120"), now)?;
    /// assert_eq!((f.message(), f.retry_after()), ("502 Bad Gateway nginx", Some(Duration::from_secs(120))));
    ///
    /// let f = Failure::from_api_response(429, "", Some("-100"), now)?;
    /// assert_eq!(f.retry_after(), None);
    /// assert!(f.retry_after_ignored().unwrap().contains("negative"));
    ///
    /// assert!(Failure::from_api_response(200, "", None, now).is_err());
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn from_api_response(
        status: u16,
        body: &str,
        retry_after_header: Option<&str>,
        now: SystemTime,
    ) -> Result<Self, ClassifyError> {
        let failure = api_failure(status, body)?;
        Ok(match retry_after_header {
            Some(value) => with_retry_after(failure, value, now),
            None => failure,
        })
    }
}

/// The hint of a Retry-After value, or, when it cannot be read, the failure without one and a note why.
fn with_retry_after(failure: Failure, value: &str, now: SystemTime) -> Failure {
    match retry_after::parse(value, now) {
        Ok(wait) => failure.with_retry_after(wait),
        Err(reason) => failure.with_retry_after_ignored(retry_after::ignored_note(value, reason)),
    }
}

/// An API failure of `status` with the message its body's text gives.
fn api_failure(status: u16, body: &str) -> Result<Failure, ClassifyError> {
    if body.trim().is_empty() {
        return Failure::api(status, "");
    }
    match serde_json::from_str::<Value>(body) {
        Ok(value) => api_failure_of_value(status, &value, Some(body)),
        Err(_) => Ok(Failure::api(status, excerpt(body))?.with_note("the body is not JSON: the message is an excerpt")),
    }
}

/// An API failure of `status` with the message a JSON body gives; `text` is the body as received, if it was.
fn api_failure_of_value(status: u16, body: &Value, text: Option<&str>) -> Result<Failure, ClassifyError> {
    let excerpted = |note: &str| -> Result<Failure, ClassifyError> {
        let text = match text {
            Some(text) => excerpt(text),
            None => excerpt(&body.to_string()),
        };
        Ok(Failure::api(status, text)?.with_note(note))
    };
    match body {
        Value::Object(object) => match object.get("message") {
            Some(Value::String(message)) => Failure::api(status, message.as_str()),
            // `{}` or `{"message": null}`: nothing to say.
            None | Some(Value::Null) if object.values().all(Value::is_null) => Failure::api(status, ""),
            None | Some(Value::Null) => excerpted("the body has no `message`: the message is an excerpt of it"),
            Some(other) => excerpted(&format!(
                "the body's `message` is {}, not a string: the message is an excerpt of the body",
                json_type(other)
            )),
        },
        // A JSON string is text already.
        Value::String(message) => {
            Ok(Failure::api(status, excerpt(message))?.with_note("the body is a JSON string, not an object"))
        }
        other => {
            excerpted(&format!("the body is {}, not an object: the message is an excerpt of it", json_type(other)))
        }
    }
}

/// The JSON type of `value`, as an error names it (`a string`, `an array`).
pub(crate) fn json_type(value: &Value) -> &'static str {
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
    value.as_object().ok_or(ClassifyError::NotAnObject { at, found: json_type(value), pos: None })
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
    let wrong = |found: String| ClassifyError::NonIntegerCode { at, found, pos: None };
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Ok(i.into()),
            (None, Some(u)) => Ok(u.into()),
            (None, None) => Err(wrong(format!("the number {n}"))),
        },
        Value::String(s) => Err(wrong(format!("the string {s:?}"))),
        other => Err(wrong(json_type(other).to_owned())),
    }
}

/// An `assetError` object (`{"code": 2404, "message": "..."}`), with the paths of its fields for errors.
pub(crate) fn asset_error(
    object: &Map<String, Value>,
    code_at: &'static str,
    message_at: &'static str,
) -> Result<Failure, ClassifyError> {
    let code = object.get("code").ok_or(ClassifyError::MissingCode { at: code_at, pos: None })?;
    let code = integer(code, code_at)?;
    check_code(code, code_at)?;
    let message: Arc<str> = match object.get("message") {
        None | Some(Value::Null) => Arc::from(""),
        Some(Value::String(s)) => Arc::from(s.as_str()),
        Some(other) => {
            return Err(ClassifyError::NonStringMessage { at: message_at, found: json_type(other), pos: None });
        }
    };
    Failure::asset(code as u16, message)
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
                |e| matches!(e, E::MissingAssetError { status, .. } if status == "ready"),
            ),
            (r#"{"id": "a", "assetError": null}"#, |e| matches!(e, E::MissingAssetError { .. })),
            (r#"{"assetError": {"message": "x"}}"#, |e| matches!(e, E::MissingCode { at: "assetError.code", .. })),
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
            (r#"{"http_status": "503"}"#, |e| matches!(e, E::NonIntegerCode { at: "http_status", .. })),
            (r#"{"hello": 1}"#, |e| matches!(e, E::UnrecognizedShape { keys, .. } if keys == "hello")),
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

    #[test]
    fn whatever_can_be_classified_is() {
        // (document, message, notes) of API failures whose body or Retry-After is not what LightFlow documents.
        let table: &[(&str, &str, usize)] = &[
            (r#"{"http_status": 502, "body": "<html><title>502 Bad Gateway</title></html>"}"#, "502 Bad Gateway", 1),
            (r#"{"http_status": 503, "body": "Service Unavailable"}"#, "Service Unavailable", 1),
            (r#"{"http_status": 503, "body": "{\"message\": \"busy\"}"}"#, "busy", 0),
            (r#"{"http_status": 503, "body": [1, 2]}"#, "[1,2]", 1),
            (r#"{"http_status": 503, "body": {"message": {"text": "x"}}}"#, r#"{"message":{"text":"x"}}"#, 1),
            (r#"{"http_status": 503, "body": {"error": "down"}}"#, r#"{"error":"down"}"#, 1),
            (r#"{"http_status": 503, "body": {"message": null}}"#, "", 0),
            (r#"{"http_status": 503, "body": {}}"#, "", 0),
            (r#"{"http_status": 503, "body": 7}"#, "7", 1),
            (r#"{"http_status": 429, "retry_after": "later"}"#, "", 1),
            (r#"{"http_status": 429, "retry_after": -100}"#, "", 1),
            (r#"{"http_status": 429, "retry_after": 1.5}"#, "", 1),
            (r#"{"http_status": 429, "retry_after": true}"#, "", 1),
            (r#"{"http_status": 429, "retry_after": ""}"#, "", 1),
        ];
        for (text, message, notes) in table {
            let f = classify(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((f.kind(), f.message(), f.notes().len()), (crate::FailureKind::Api, *message, *notes), "{text}");
            assert_eq!(f.retry_after(), None, "{text}");
        }
        let ignored = classify(r#"{"http_status": 429, "retry_after": "soon"}"#).unwrap();
        assert!(ignored.retry_after_ignored().unwrap().starts_with("Retry-After `soon` ignored: "), "{ignored:?}");
    }

    #[test]
    fn api_responses_of_every_body() {
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("   \n", ""),
            (r#"{"message": "asset not found"}"#, "asset not found"),
            ("<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>", "502 Bad Gateway nginx"),
            ("Service Unavailable", "Service Unavailable"),
            (r#""quoted text""#, "quoted text"),
            ("[]", "[]"),
            (r#"{"message": 5}"#, r#"{"message": 5}"#),
            ("{not json", "{not json"),
        ];
        for (body, message) in table {
            let f = Failure::from_api_response(503, body, None, NOW).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(f.message(), *message, "{body:?}");
        }
    }

    #[test]
    fn errors_point_at_the_value_they_are_about() {
        use crate::Pos;
        let at = |line, column| Some(Pos { line, column });
        let table: &[(&str, Option<Pos>)] = &[
            ("\n\n   [1]", at(3, 4)),
            ("{\n  \"assetError\": {\"code\": 99, \"message\": \"x\"}\n}", at(2, 26)),
            ("{\"assetError\": {\"message\": 5, \"code\": 2404}}", at(1, 28)),
            ("{\"assetError\":\n   {\"message\": \"x\"}}", at(2, 4)),
            ("{\"assetError\": [2404]}", at(1, 16)),
            ("{\"id\": \"a\", \"assetError\": null}", at(1, 27)),
            ("{\"id\": \"a\",\n \"status\": \"ready\"}", at(2, 12)),
            ("{\"id\": \"a\"}", at(1, 1)),
            ("  {\"http_status\": 200}", at(1, 19)),
            ("{\"http_status\": \"x\"}", at(1, 17)),
            ("{\"é\": 1, \"code\": 1.5}", at(1, 18)),
            ("{\"hello\": 1}", at(1, 1)),
            ("{\"a\": 1,, }", at(1, 9)),
        ];
        for (text, expected) in table {
            let err = classify(text).expect_err(text);
            assert_eq!(err.position(), *expected, "{text}: {err}");
            let p = expected.unwrap();
            assert!(err.to_string().contains(&format!("line {}, column {}", p.line, p.column)), "{err}");
        }
        // Classified from a `Value`, an error names the field but has no position.
        let err = Failure::from_value(&serde_json::json!({"code": 12}), NOW).unwrap_err();
        assert_eq!((err.field(), err.position()), (Some("code"), None));
    }
}
