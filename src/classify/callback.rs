//! LightFlow callbacks: LightFlow's notice that an asset's processing ended, read into a [`Callback`], and what
//! it means for a remediation ([`Callback::result`]).
//!
//! A host names its callback URLs in an asset's `parameters.callbacks`, and LightFlow calls them:
//!
//! - **`POST`** (the default): a JSON body that begins with `uuid`, `assetName`, `inputUrl`, `username` and
//!   `startDate`, and is read here with `endDate`, `status` and `assetError` too. Fields it does not know are
//!   passed over. A body without `status` but with an `assetError` is taken as `error`.
//! - **`GET`**: no body; LightFlow appends `status` and `endDate` to the URL's query, beside whatever the host
//!   put there to know the asset again. `asset` (the host's own id) and `uuid` are read as such; every other
//!   parameter is kept in [`Callback::params`]. Names and values are percent-decoded (`+` is a space).
//!
//! Delivery is not documented to be guaranteed, ordered or unique: a callback is best taken as a hint, and a
//! duplicate or late one as harmless (the engine answers a report for an older attempt as such).
//!
//! ```
//! use lightflow_remedy::classify::{AssetStatus, Callback, CallbackResult};
//!
//! let body = r#"{"uuid": "0b5c", "assetName": "trailer", "inputUrl": "https://example.com/in.mp4",
//!                "username": "ops@example.com", "startDate": "2019-02-14T20:32:48.898Z",
//!                "endDate": "2019-02-14T20:40:02.113Z", "status": "error",
//!                "assetError": {"code": 2404, "message": "remote server returned HTTP 404"}}"#;
//! let callback = Callback::from_json(body)?;
//! assert_eq!((callback.uuid.as_deref(), callback.status), (Some("0b5c"), AssetStatus::Error));
//! match callback.result() {
//!     CallbackResult::Failed(failure) => assert_eq!(failure.code(), 2404),
//!     other => panic!("{other:?}"),
//! }
//!
//! let get = Callback::from_query("asset=job-42&status=finished&endDate=2019-02-14T20%3A40%3A02.113Z")?;
//! assert_eq!((get.asset.as_deref(), get.result()), (Some("job-42"), CallbackResult::Succeeded));
//! assert!(get.end_time().is_some());
//!
//! // Bad input is a typed error that says where.
//! let err = Callback::from_json(r#"{"uuid": "0b5c", "status": "done"}"#).unwrap_err();
//! assert_eq!(err.to_string(), "line 1, column 28: `status` = \"done\" is not an asset status \
//!                              (expected queued, running, finished, error or canceled)");
//! # Ok::<(), lightflow_remedy::classify::CallbackError>(())
//! ```

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::asset_status::AssetStatus;
use super::callback_error::{CallbackError, CallbackPos};
use super::document::{asset_error, json_type};
use super::error::ClassifyError;
use super::failure::Failure;
use super::timestamp;

/// A LightFlow callback, as read from its `POST` body or its `GET` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Callback {
    /// The LightFlow asset's uuid (the body's `uuid`, or a `uuid` query parameter).
    pub uuid: Option<String>,
    /// The host's own id of the asset, from an `asset` query parameter of its callback URL.
    pub asset: Option<String>,
    /// Where the asset stands.
    pub status: AssetStatus,
    /// `assetName`.
    pub asset_name: Option<String>,
    /// `inputUrl`.
    pub input_url: Option<String>,
    /// `username`: the LightFlow account's user name.
    pub username: Option<String>,
    /// `startDate`, as written (ISO 8601 in LightFlow's sample).
    pub start_date: Option<String>,
    /// `endDate`, as written.
    pub end_date: Option<String>,
    /// The `assetError`, classified, when the callback carries one.
    pub failure: Option<Failure>,
    /// The query's other parameters, decoded, in order: whatever else the host put in its callback URL.
    pub params: Vec<(String, String)>,
}

/// What a callback means for the remediation of its asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackResult {
    /// `finished`: the attempt succeeded.
    Succeeded,
    /// `error`: the attempt failed with this failure: the `assetError`, or, when the callback has none, a
    /// failure of code [`Failure::NO_CODE`] (category unknown) that says the callback carried no code.
    Failed(Failure),
    /// `canceled`: the asset was canceled; it will not end by itself.
    Canceled,
    /// `queued` or `running`: not an end; there is nothing to report yet.
    NotFinished,
}

impl Callback {
    /// Reads the JSON body of a `POST` callback.
    pub fn from_json(body: &str) -> Result<Callback, CallbackError> {
        let value: Value = serde_json::from_str(body).map_err(|e| CallbackError::malformed(body, &e))?;
        Callback::from_value(&value).map_err(|e| e.located_in(body))
    }

    /// Reads an already-parsed `POST` body; see [`Callback::from_json`]. Errors carry no position.
    pub fn from_value(body: &Value) -> Result<Callback, CallbackError> {
        let object = body.as_object().ok_or(CallbackError::NotAnObject { found: json_type(body), pos: None })?;
        Callback::build(Some(object), Query::default())
    }

    /// Reads a `GET` callback from its query: `status=finished&endDate=...`, with or without the leading
    /// `?`, or the whole URL or path and query the request asked for.
    pub fn from_query(query: &str) -> Result<Callback, CallbackError> {
        Callback::build(None, Query::parse(query)?)
    }

    /// Reads a callback request of either form: the body when there is one (with what the URL's query adds:
    /// the host's `asset`, its other parameters, and anything the body lacks), the query alone otherwise.
    ///
    /// ```
    /// use lightflow_remedy::classify::{Callback, CallbackResult};
    ///
    /// let post = Callback::from_request(Some("asset=job-42"), Some(r#"{"uuid": "0b5c", "status": "canceled"}"#))?;
    /// assert_eq!((post.asset.as_deref(), post.uuid.as_deref()), (Some("job-42"), Some("0b5c")));
    /// assert_eq!(post.result(), CallbackResult::Canceled);
    /// let get = Callback::from_request(Some("/lightflow?asset=job-42&status=running"), None)?;
    /// assert_eq!(get.result(), CallbackResult::NotFinished);
    /// # Ok::<(), lightflow_remedy::classify::CallbackError>(())
    /// ```
    pub fn from_request(query: Option<&str>, body: Option<&str>) -> Result<Callback, CallbackError> {
        let query = Query::parse(query.unwrap_or(""))?;
        let Some(body) = body.filter(|b| !b.trim().is_empty()) else {
            return Callback::build(None, query);
        };
        let value: Value = serde_json::from_str(body).map_err(|e| CallbackError::malformed(body, &e))?;
        let object = value.as_object().ok_or(CallbackError::NotAnObject { found: json_type(&value), pos: None });
        object.and_then(|o| Callback::build(Some(o), query)).map_err(|e| e.located_in(body))
    }

    /// What the callback means for a remediation; see [`CallbackResult`].
    pub fn result(&self) -> CallbackResult {
        match self.status {
            AssetStatus::Finished => CallbackResult::Succeeded,
            AssetStatus::Canceled => CallbackResult::Canceled,
            AssetStatus::Queued | AssetStatus::Running => CallbackResult::NotFinished,
            AssetStatus::Error => CallbackResult::Failed(match &self.failure {
                Some(failure) => failure.clone(),
                None => Failure::asset_without_code("LightFlow reported the asset in error, without an assetError"),
            }),
        }
    }

    /// The time of `endDate`, when it is an RFC 3339 timestamp with a zone (`2019-02-14T20:32:48.898Z`).
    pub fn end_time(&self) -> Option<SystemTime> {
        self.end_date.as_deref().and_then(timestamp::parse)
    }

    /// The time of `startDate`, when it is an RFC 3339 timestamp with a zone.
    pub fn start_time(&self) -> Option<SystemTime> {
        self.start_date.as_deref().and_then(timestamp::parse)
    }

    /// The first value of the query parameter `name` among [`Callback::params`].
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn build(body: Option<&Map<String, Value>>, query: Query) -> Result<Callback, CallbackError> {
        let text = |field: &'static str| -> Result<Option<String>, CallbackError> {
            match body.and_then(|b| b.get(field)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(CallbackError::NotAString { field, found: json_type(other), pos: None }),
            }
        };
        let failure = match body.and_then(|b| b.get("assetError")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(error)) => {
                Some(asset_error(error, "assetError.code", "assetError.message").map_err(CallbackError::AssetError)?)
            }
            Some(other) => {
                let found = json_type(other);
                return Err(CallbackError::AssetError(ClassifyError::NotAnObject {
                    at: "assetError",
                    found,
                    pos: None,
                }));
            }
        };
        let status = match (text("status")?, query.status) {
            (Some(status), _) => status.parse().map_err(|_| CallbackError::UnknownStatus { status, pos: None })?,
            (None, Some(Param { value, column })) => {
                let pos = Some(CallbackPos::Query { column });
                value.parse().map_err(|_| CallbackError::UnknownStatus { status: value, pos })?
            }
            (None, None) if failure.is_some() => AssetStatus::Error,
            (None, None) => return Err(CallbackError::MissingStatus { pos: None }),
        };
        Ok(Callback {
            uuid: text("uuid")?.or(query.uuid.map(|p| p.value)),
            asset: query.asset.map(|p| p.value),
            status,
            asset_name: text("assetName")?,
            input_url: text("inputUrl")?,
            username: text("username")?,
            start_date: text("startDate")?,
            end_date: text("endDate")?.or(query.end_date.map(|p| p.value)),
            failure,
            params: query.params,
        })
    }
}

/// A query parameter's value and the column where the parameter starts.
#[derive(Debug)]
struct Param {
    value: String,
    column: u32,
}

/// The parameters of a callback's query: the ones that mean something here, and the others.
#[derive(Debug, Default)]
struct Query {
    status: Option<Param>,
    end_date: Option<Param>,
    uuid: Option<Param>,
    asset: Option<Param>,
    params: Vec<(String, String)>,
}

impl Query {
    fn parse(input: &str) -> Result<Query, CallbackError> {
        // The query of a URL or a path (`/cb?asset=1`), or a query with or without its `?`. A bare query
        // has an `=` or `&` before any `?`; a fragment is not part of the query.
        let start = match input.find('?') {
            Some(q) if !input[..q].contains(['=', '&']) => q + 1,
            _ => 0,
        };
        let end = input[start..].find('#').map_or(input.len(), |i| start + i);
        let mut query = Query::default();
        let mut offset = start;
        for piece in input[start..end].split('&') {
            let column = u32::try_from(input[..offset].chars().count() + 1).unwrap_or(u32::MAX);
            offset += piece.len() + 1;
            let Some((name, value)) = form_urlencoded::parse(piece.as_bytes()).next() else { continue };
            let (name, value) = (name.into_owned(), value.into_owned());
            let slot = match name.as_str() {
                "status" => &mut query.status,
                "endDate" => &mut query.end_date,
                "uuid" => &mut query.uuid,
                "asset" => &mut query.asset,
                _ => {
                    query.params.push((name, value));
                    continue;
                }
            };
            match slot {
                // The same value twice is harmless; two different values leave no way to choose.
                Some(first) if first.value != value => {
                    let first = first.value.clone();
                    let pos = Some(CallbackPos::Query { column });
                    return Err(CallbackError::RepeatedParameter { name, first, second: value, pos });
                }
                Some(_) => {}
                None => *slot = Some(Param { value, column }),
            }
        }
        Ok(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Category;
    use crate::diagnostic::Pos;

    #[test]
    fn each_status_means_its_result() {
        let table = [
            ("queued", CallbackResult::NotFinished),
            ("running", CallbackResult::NotFinished),
            ("finished", CallbackResult::Succeeded),
            ("canceled", CallbackResult::Canceled),
        ];
        for (status, expected) in table {
            let post = Callback::from_json(&format!(r#"{{"uuid": "u", "status": "{status}"}}"#)).unwrap();
            assert_eq!(post.result(), expected, "{status}");
            let get = Callback::from_query(&format!("status={status}")).unwrap();
            assert_eq!(get.result(), expected, "{status}");
        }
        // An error without assetError is a failure that says it had no code.
        let Ok(CallbackResult::Failed(f)) = Callback::from_query("status=error").map(|c| c.result()) else {
            panic!("an error callback fails");
        };
        assert_eq!((f.code(), f.category()), (Failure::NO_CODE, Category::Unknown));
        assert!(f.message().contains("without an assetError"), "{f}");
    }

    #[test]
    fn query_forms_are_decoded() {
        let table: &[(&str, Option<&str>, Option<&str>, &str)] = &[
            ("status=finished", None, None, ""),
            ("?status=finished&asset=a%2F1", Some("a/1"), None, ""),
            ("https://host.example/cb?asset=job+42&status=finished#top", Some("job 42"), None, ""),
            ("/cb?uuid=0b5c&status=finished&tenant=acme", None, Some("0b5c"), "acme"),
            ("status=finished&&tenant=acme&", None, None, "acme"),
            ("tenant=acme&status=finished&status=finished", None, None, "acme"),
            ("status=%66inished&tenant=why%3F", None, None, "why?"),
        ];
        for (query, asset, uuid, tenant) in table {
            let c = Callback::from_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(c.status, AssetStatus::Finished, "{query}");
            assert_eq!((c.asset.as_deref(), c.uuid.as_deref()), (*asset, *uuid), "{query}");
            assert_eq!(c.param("tenant").unwrap_or(""), *tenant, "{query}");
        }
    }

    #[test]
    fn bad_callbacks_say_what_and_where() {
        type Expected = fn(&CallbackError) -> bool;
        let body = |line, column| Some(CallbackPos::Body(Pos { line, column }));
        let query = |column| Some(CallbackPos::Query { column });
        let posts: &[(&str, Expected, Option<CallbackPos>)] = &[
            ("{\"status\": ", |e| matches!(e, CallbackError::MalformedJson { .. }), body(1, 11)),
            (" [1]", |e| matches!(e, CallbackError::NotAnObject { found: "an array", .. }), body(1, 2)),
            (r#"{"uuid": "u"}"#, |e| matches!(e, CallbackError::MissingStatus { .. }), body(1, 1)),
            (r#"{"status": "done"}"#, |e| matches!(e, CallbackError::UnknownStatus { .. }), body(1, 12)),
            (r#"{"status": 3}"#, |e| matches!(e, CallbackError::NotAString { field: "status", .. }), body(1, 12)),
            (
                "{\"status\": \"error\",\n \"uuid\": 7}",
                |e| matches!(e, CallbackError::NotAString { field: "uuid", .. }),
                body(2, 10),
            ),
            (
                r#"{"status": "error", "assetError": {"code": "2404"}}"#,
                |e| matches!(e, CallbackError::AssetError(ClassifyError::NonIntegerCode { .. })),
                body(1, 44),
            ),
            (
                r#"{"status": "error", "assetError": "2404"}"#,
                |e| matches!(e, CallbackError::AssetError(ClassifyError::NotAnObject { .. })),
                body(1, 35),
            ),
        ];
        for (text, expected, pos) in posts {
            let err = Callback::from_json(text).expect_err(text);
            assert!(expected(&err), "{text}: {err:?}");
            assert_eq!(err.position(), *pos, "{text}: {err}");
            assert!(err.to_string().contains(&pos.unwrap().to_string()), "{err}");
        }
        let gets: &[(&str, Expected, Option<CallbackPos>)] = &[
            ("", |e| matches!(e, CallbackError::MissingStatus { pos: None }), None),
            ("asset=1&endDate=x", |e| matches!(e, CallbackError::MissingStatus { .. }), None),
            ("asset=1&status=donе", |e| matches!(e, CallbackError::UnknownStatus { .. }), query(9)),
            ("/cb?asset=1&status=", |e| matches!(e, CallbackError::UnknownStatus { .. }), query(13)),
            (
                "status=error&asset=1&status=finished",
                |e| matches!(e, CallbackError::RepeatedParameter { name, .. } if name == "status"),
                query(22),
            ),
        ];
        for (text, expected, pos) in gets {
            let err = Callback::from_query(text).expect_err(text);
            assert!(expected(&err), "{text}: {err:?}");
            assert_eq!(err.position(), *pos, "{text}: {err}");
        }
    }
}
