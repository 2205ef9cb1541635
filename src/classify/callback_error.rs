//! [`CallbackError`]: a LightFlow callback that cannot be read, and where ([`CallbackPos`]).

use std::fmt;

use serde::Serialize;

use super::error::ClassifyError;
use super::locate;
use crate::diagnostic::Pos;

/// Where in a callback an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackPos {
    /// In the JSON body: line and column, from 1 (columns count characters).
    Body(Pos),
    /// In the query: the column (a character, from 1) where the parameter starts, in the text given.
    Query {
        /// The column.
        column: u32,
    },
}

impl fmt::Display for CallbackPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackPos::Body(p) => write!(f, "line {}, column {}", p.line, p.column),
            CallbackPos::Query { column } => write!(f, "query column {column}"),
        }
    }
}

/// `POSITION: ` before a message, when the position is known.
struct Loc<'a>(&'a Option<CallbackPos>);

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pos) => write!(f, "{pos}: "),
            None => Ok(()),
        }
    }
}

/// A callback that cannot be read, and where.
///
/// ```
/// use lightflow_remedy::classify::{Callback, CallbackError, CallbackPos};
///
/// let err = Callback::from_query("asset=job-42&status=done").unwrap_err();
/// assert!(matches!(err, CallbackError::UnknownStatus { ref status, .. } if status == "done"));
/// assert_eq!(err.position(), Some(CallbackPos::Query { column: 14 }));
/// assert!(err.to_string().starts_with("query column 14: `status` = \"done\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The body is not JSON.
    #[error("malformed JSON at line {}, column {}: {message}", .pos.line, .pos.column)]
    MalformedJson {
        /// Where the parser stopped.
        pos: Pos,
        /// What it expected.
        message: String,
    },
    /// The body is JSON, but not an object.
    #[error("{}a callback body is a JSON object, found {found}", Loc(.pos))]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
        /// Where the value is.
        pos: Option<CallbackPos>,
    },
    /// Neither the body nor the query says `status` (and there is no `assetError`).
    #[error("{}the callback has no `status`", Loc(.pos))]
    MissingStatus {
        /// Where the body is, for a body.
        pos: Option<CallbackPos>,
    },
    /// A `status` that is not one of the five LightFlow documents.
    #[error(
        "{}`status` = {status:?} is not an asset status (expected queued, running, finished, error or canceled)",
        Loc(.pos)
    )]
    UnknownStatus {
        /// The status as written.
        status: String,
        /// Where it is.
        pos: Option<CallbackPos>,
    },
    /// A field that must be text is not.
    #[error("{}`{field}` must be a string, found {found}", Loc(.pos))]
    NotAString {
        /// The field.
        field: &'static str,
        /// The JSON type found.
        found: &'static str,
        /// Where it is.
        pos: Option<CallbackPos>,
    },
    /// A query parameter given twice with different values.
    #[error("{}query parameter `{name}` is given twice, as {first:?} and {second:?}", Loc(.pos))]
    RepeatedParameter {
        /// The parameter.
        name: String,
        /// Its first value.
        first: String,
        /// Its other value.
        second: String,
        /// Where the second one is.
        pos: Option<CallbackPos>,
    },
    /// An `assetError` that cannot be classified (its own error names the field, and the line and column).
    #[error("{0}")]
    AssetError(ClassifyError),
}

impl CallbackError {
    /// Where the error is, when the callback was text.
    pub fn position(&self) -> Option<CallbackPos> {
        match self {
            CallbackError::MalformedJson { pos, .. } => Some(CallbackPos::Body(*pos)),
            CallbackError::NotAnObject { pos, .. }
            | CallbackError::MissingStatus { pos }
            | CallbackError::UnknownStatus { pos, .. }
            | CallbackError::NotAString { pos, .. }
            | CallbackError::RepeatedParameter { pos, .. } => *pos,
            CallbackError::AssetError(e) => e.position().map(CallbackPos::Body),
        }
    }

    pub(crate) fn malformed(text: &str, e: &serde_json::Error) -> Self {
        let pos = locate::parser_pos(text, e.line(), e.column());
        CallbackError::MalformedJson { pos, message: crate::diagnostic::json_message(e) }
    }

    /// The same error with the position in the body `text` (valid JSON) of what it is about.
    pub(crate) fn located_in(self, text: &str) -> Self {
        let at = |path: &[&str]| locate::value_at(text, path).map(CallbackPos::Body);
        match self {
            CallbackError::AssetError(e) => CallbackError::AssetError(e.located_in(text)),
            CallbackError::NotAnObject { found, pos } => CallbackError::NotAnObject { found, pos: pos.or(at(&[])) },
            CallbackError::MissingStatus { pos } => CallbackError::MissingStatus { pos: pos.or(at(&[])) },
            CallbackError::UnknownStatus { status, pos } => {
                CallbackError::UnknownStatus { status, pos: pos.or(at(&["status"])) }
            }
            CallbackError::NotAString { field, found, pos } => {
                CallbackError::NotAString { field, found, pos: pos.or(at(&[field])) }
            }
            other => other,
        }
    }
}
