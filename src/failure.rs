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

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalogue::{self, Category, Downstream};

/// Whether a failure came from an asset's processing, from an API call, or from a hook that did not answer in
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An asset ended in error and carries `assetError.code`.
    Asset,
    /// A LightFlow API call answered with an HTTP error status.
    Api,
    /// A call to one of the host's hooks did not answer in time (the engine's own failure; code 0).
    Timeout,
}

/// A failure's identity for matching and history: an asset code, the HTTP status of an API call, or a hook
/// timeout.
///
/// Written `2404` for an asset code, `http:429` for an API status and `timeout` for a hook timeout, which is
/// also how it parses.
///
/// ```
/// use lightflow_remedy::FailureKey;
/// let key: FailureKey = "http:503".parse()?;
/// assert_eq!(key, FailureKey::api(503));
/// assert_eq!("2404".parse::<FailureKey>()?, FailureKey::asset(2404));
/// assert!("http:200".parse::<FailureKey>().is_err());
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureKey {
    /// Asset, API or timeout.
    pub kind: FailureKind,
    /// The asset code, the HTTP status, or 0 for a timeout.
    pub code: u16,
}

impl FailureKey {
    /// The key of an asset error code.
    pub const fn asset(code: u16) -> Self {
        FailureKey { kind: FailureKind::Asset, code }
    }

    /// The key of a failed API call's HTTP status.
    pub const fn api(status: u16) -> Self {
        FailureKey { kind: FailureKind::Api, code: status }
    }

    /// The key of a hook timeout.
    pub const fn timeout() -> Self {
        FailureKey { kind: FailureKind::Timeout, code: 0 }
    }
}

impl fmt::Display for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FailureKind::Asset => write!(f, "{}", self.code),
            FailureKind::Api => write!(f, "http:{}", self.code),
            FailureKind::Timeout => f.write_str("timeout"),
        }
    }
}

impl FromStr for FailureKey {
    type Err = ClassifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "timeout" {
            return Ok(FailureKey::timeout());
        }
        if let Some(status) = s.strip_prefix("http:") {
            let status = parse_whole(status)
                .ok_or_else(|| ClassifyError::NonIntegerCode { at: "http status", found: format!("`{status}`") })?;
            check_status(status, "http status")?;
            return Ok(FailureKey::api(status as u16));
        }
        let code =
            parse_whole(s).ok_or_else(|| ClassifyError::NonIntegerCode { at: "code", found: format!("`{s}`") })?;
        check_code(code, "code")?;
        Ok(FailureKey::asset(code as u16))
    }
}

/// A whole number as written, however large, so that an error can quote it.
fn parse_whole(s: &str) -> Option<i128> {
    s.parse::<i128>().ok()
}

impl Serialize for FailureKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FailureKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What was wrong with the input given to classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is valid but is not an object.
    #[error("expected a JSON object at `{at}`, found {found}")]
    NotAnObject {
        /// Where in the document.
        at: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// An asset object without an `assetError`: the asset did not fail, or its error is missing.
    #[error("the asset has no `assetError` (status {status}): there is no failure to remediate")]
    MissingAssetError {
        /// The asset's `status`, or `unknown`.
        status: String,
    },
    /// No code where one is required.
    #[error("`{at}` is missing")]
    MissingCode {
        /// Which field.
        at: &'static str,
    },
    /// A code that is not an integer.
    #[error("`{at}` must be an integer, found {found}")]
    NonIntegerCode {
        /// Which field.
        at: &'static str,
        /// What was found, e.g. `string "2404"`.
        found: String,
    },
    /// An asset code outside 1000..=9999.
    #[error("`{at}` = {code} is out of range: LightFlow error codes have four digits (1000..=9999)")]
    CodeOutOfRange {
        /// Which field.
        at: &'static str,
        /// The value found.
        code: String,
    },
    /// An HTTP status that is not an error status.
    #[error("`{at}` = {status} is not an HTTP error status (expected 400..=599)")]
    StatusOutOfRange {
        /// Which field.
        at: &'static str,
        /// The value found.
        status: String,
    },
    /// A message that is not a string.
    #[error("`{at}` must be a string, found {found}")]
    NonStringMessage {
        /// Which field.
        at: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A `Retry-After` value that is neither seconds nor an HTTP date.
    #[error("Retry-After `{value}` is neither a whole number of seconds nor an HTTP date")]
    InvalidRetryAfter {
        /// The value found.
        value: String,
    },
    /// A JSON object that is none of the three known shapes.
    #[error(
        "unrecognised failure document (keys: {keys}): expected an asset with `assetError`, an `assetError` \
         object with `code`, or an API failure with `http_status`"
    )]
    UnrecognizedShape {
        /// The object's keys, comma-separated.
        keys: String,
    },
}

/// A classified failure: what failed, with its catalogue category and downstream.
///
/// Build one with [`Failure::from_json`], [`Failure::from_api_response`], [`Failure::asset`],
/// [`Failure::api`] or [`Failure::timeout`]. The code is always valid: asset codes are four digits, API
/// statuses are 400..=599, and a timeout has none (0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    key: FailureKey,
    message: Arc<str>,
    category: Category,
    downstream: Downstream,
    retry_after: Option<Duration>,
}

impl Failure {
    /// A failure of an asset with the given `assetError.code`.
    ///
    /// ```
    /// use lightflow_remedy::{Failure, catalogue::Category};
    /// let f = Failure::asset(3005, "publishing failed")?;
    /// assert_eq!(f.category(), Category::Brightcove);
    /// assert!(Failure::asset(99, "").is_err());
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn asset(code: u16, message: impl Into<Arc<str>>) -> Result<Self, ClassifyError> {
        check_code(code.into(), "code")?;
        let info = catalogue::describe(code);
        Ok(Failure {
            key: FailureKey::asset(code),
            message: message.into(),
            category: info.category,
            downstream: info.downstream,
            retry_after: None,
        })
    }

    /// A failed LightFlow API call with the given HTTP status.
    ///
    /// ```
    /// use lightflow_remedy::{Failure, FailureKind};
    /// let f = Failure::api(503, "unavailable")?;
    /// assert_eq!(f.kind(), FailureKind::Api);
    /// assert_eq!(f.http_status(), Some(503));
    /// assert!(Failure::api(200, "ok").is_err());
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn api(status: u16, message: impl Into<Arc<str>>) -> Result<Self, ClassifyError> {
        check_status(status.into(), "http_status")?;
        Ok(Failure {
            key: FailureKey::api(status),
            message: message.into(),
            category: Category::Api,
            downstream: Downstream::LightflowApi,
            retry_after: None,
        })
    }

    /// A hook call that did not answer in time; `downstream` is what the hook was talking to.
    ///
    /// ```
    /// use lightflow_remedy::{Category, Downstream, Failure, FailureKey};
    /// let f = Failure::timeout(Downstream::Brightcove, "republish took longer than 30s");
    /// assert_eq!((f.key(), f.category()), (FailureKey::timeout(), Category::Timeout));
    /// ```
    pub fn timeout(downstream: Downstream, message: impl Into<Arc<str>>) -> Self {
        Failure {
            key: FailureKey::timeout(),
            message: message.into(),
            category: Category::Timeout,
            downstream,
            retry_after: None,
        }
    }

    /// A failure with the given key and message (a timeout's downstream is the LightFlow API).
    pub fn from_key(key: FailureKey, message: impl Into<Arc<str>>) -> Result<Self, ClassifyError> {
        match key.kind {
            FailureKind::Asset => Failure::asset(key.code, message),
            FailureKind::Api => Failure::api(key.code, message),
            FailureKind::Timeout => Ok(Failure::timeout(Downstream::LightflowApi, message)),
        }
    }

    /// The same failure with a server hint of how long to wait before trying again.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

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

    /// Asset code or API status, with the kind.
    pub fn key(&self) -> FailureKey {
        self.key
    }

    /// Asset, API or timeout.
    pub fn kind(&self) -> FailureKind {
        self.key.kind
    }

    /// The asset error code, or the HTTP status of an API failure.
    pub fn code(&self) -> u16 {
        self.key.code
    }

    /// The message LightFlow gave.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The catalogue category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// What the failure points at.
    pub fn downstream(&self) -> Downstream {
        self.downstream
    }

    /// The server's hint of how long to wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status: of the API call, or of the remote server for codes 24xx and 25xx.
    pub fn http_status(&self) -> Option<u16> {
        match self.key.kind {
            FailureKind::Api => Some(self.key.code),
            FailureKind::Asset => catalogue::remote_http_status(self.key.code),
            FailureKind::Timeout => None,
        }
    }

    /// The catalogue's name for the code.
    pub fn name(&self) -> Cow<'static, str> {
        match self.key.kind {
            FailureKind::Asset => catalogue::describe(self.key.code).name,
            FailureKind::Api => Cow::Owned(format!("LightFlow API call failed with HTTP {}", self.key.code)),
            FailureKind::Timeout => Cow::Borrowed("A call to the host's hook did not answer in time"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.name())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The serialized form: everything a reader needs, and enough to rebuild the failure.
#[derive(Serialize, Deserialize)]
struct FailureRepr<'a> {
    kind: FailureKind,
    code: u16,
    #[serde(default, skip_deserializing)]
    name: Cow<'a, str>,
    #[serde(default)]
    message: Cow<'a, str>,
    #[serde(default, skip_deserializing)]
    category: Option<Category>,
    #[serde(default)]
    downstream: Option<Downstream>,
    #[serde(default, skip_deserializing)]
    http_status: Option<u16>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FailureRepr {
            kind: self.kind(),
            code: self.code(),
            name: self.name(),
            message: Cow::Borrowed(&self.message),
            category: Some(self.category),
            downstream: Some(self.downstream),
            http_status: self.http_status(),
            retry_after_ms: self.retry_after.map(crate::millis::millis),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = FailureRepr::deserialize(d)?;
        let failure = match (repr.kind, repr.downstream) {
            (FailureKind::Timeout, Some(downstream)) => Failure::timeout(downstream, repr.message.as_ref()),
            (kind, _) => Failure::from_key(FailureKey { kind, code: repr.code }, repr.message.as_ref())
                .map_err(serde::de::Error::custom)?,
        };
        Ok(match repr.retry_after_ms {
            Some(ms) => failure.with_retry_after(Duration::from_millis(ms)),
            None => failure,
        })
    }
}

/// Parses a `Retry-After` value: a whole number of seconds, or an HTTP date (a date in the past means now).
///
/// ```
/// use lightflow_remedy::failure::retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(retry_after("120", now)?, Duration::from_secs(120));
/// assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now)?, Duration::from_secs(60));
/// assert!(retry_after("soon", now).is_err());
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
pub fn retry_after(value: &str, now: SystemTime) -> Result<Duration, ClassifyError> {
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number of seconds is still a wait; it is clamped by the policy's `max_hint`.
        let seconds = trimmed.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(seconds));
    }
    let at =
        httpdate::parse_http_date(trimmed).map_err(|_| ClassifyError::InvalidRetryAfter { value: value.to_owned() })?;
    Ok(at.duration_since(now).unwrap_or(Duration::ZERO))
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

fn check_code(code: i128, at: &'static str) -> Result<(), ClassifyError> {
    if (i128::from(catalogue::MIN_ASSET_CODE)..=i128::from(catalogue::MAX_ASSET_CODE)).contains(&code) {
        Ok(())
    } else {
        Err(ClassifyError::CodeOutOfRange { at, code: code.to_string() })
    }
}

fn check_status(status: i128, at: &'static str) -> Result<(), ClassifyError> {
    if (i128::from(catalogue::MIN_HTTP_ERROR)..=i128::from(catalogue::MAX_HTTP_ERROR)).contains(&status) {
        Ok(())
    } else {
        Err(ClassifyError::StatusOutOfRange { at, status: status.to_string() })
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
    use super::*;

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

    #[test]
    fn retry_after_dates_resolve_against_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&later, now).unwrap(), Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&earlier, now).unwrap(), Duration::ZERO);
        assert_eq!(retry_after("99999999999999999999999", now).unwrap(), Duration::from_secs(u64::MAX));
    }

    #[test]
    fn serde_round_trip_rebuilds_the_catalogue_fields() {
        let f = Failure::asset(2429, "busy").unwrap().with_retry_after(Duration::from_millis(1500));
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""category":"storage""#), "{json}");
        assert!(json.contains(r#""http_status":429"#), "{json}");
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(serde_json::from_str::<Failure>(r#"{"kind":"asset","code":5}"#).is_err());
    }

    #[test]
    fn keys_parse_and_print() {
        for text in ["2404", "http:429", "1001", "http:599", "timeout"] {
            assert_eq!(text.parse::<FailureKey>().unwrap().to_string(), text);
        }
        for bad in ["", "abc", "http:", "http:99", "99999999999", "999"] {
            assert!(bad.parse::<FailureKey>().is_err(), "{bad}");
        }
        // Out of range, the error quotes the number as written.
        for (bad, quoted) in [("99999999999", "99999999999"), ("http:70000", "70000")] {
            let err = bad.parse::<FailureKey>().unwrap_err().to_string();
            assert!(err.contains(quoted), "{bad}: {err}");
        }
    }
}
