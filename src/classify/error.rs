//! What was wrong with the input given to classification, and where.

use std::fmt;

use super::locate;
use crate::diagnostic::Pos;

/// What was wrong with the input given to classification, and where.
///
/// Errors about a field name it by its path (`assetError.code`, `http_status`); when the input was JSON text
/// ([`Failure::from_json`](crate::Failure::from_json)) they also carry the line and column of the value
/// ([`ClassifyError::position`]), and their message starts with it.
///
/// ```
/// use lightflow_remedy::{ClassifyError, Failure, Pos};
/// use std::time::SystemTime;
///
/// let err = Failure::from_json("{\n  \"assetError\": {\"code\": 99}\n}", SystemTime::now()).unwrap_err();
/// assert!(matches!(err, ClassifyError::CodeOutOfRange { at: "assetError.code", .. }));
/// assert_eq!(err.position(), Some(Pos { line: 2, column: 26 }));
/// assert!(err.to_string().starts_with("line 2, column 26: `assetError.code` = 99 is out of range"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error, in characters.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is valid but is not an object.
    #[error("{}expected a JSON object at `{at}`, found {found}", Loc(.pos))]
    NotAnObject {
        /// Where in the document.
        at: &'static str,
        /// The JSON type found instead.
        found: &'static str,
        /// Where the value is in the text.
        pos: Option<Pos>,
    },
    /// An asset object without an `assetError`: the asset did not fail, or its error is missing.
    #[error("{}the asset has no `assetError` (status {status}): there is no failure to remediate", Loc(.pos))]
    MissingAssetError {
        /// The asset's `status`, or `unknown`.
        status: String,
        /// Where the `assetError: null` or the `status` is, or else the asset, in the text.
        pos: Option<Pos>,
    },
    /// No code where one is required.
    #[error("{}`{at}` is missing", Loc(.pos))]
    MissingCode {
        /// Which field.
        at: &'static str,
        /// Where the object that lacks it is in the text.
        pos: Option<Pos>,
    },
    /// A code that is not an integer.
    #[error("{}`{at}` must be an integer, found {found}", Loc(.pos))]
    NonIntegerCode {
        /// Which field.
        at: &'static str,
        /// What was found, e.g. `string "2404"`.
        found: String,
        /// Where the value is in the text.
        pos: Option<Pos>,
    },
    /// An asset code outside 1000..=9999.
    #[error(
        "{}`{at}` = {code} is out of range: LightFlow error codes have four digits (1000..=9999)",
        Loc(.pos)
    )]
    CodeOutOfRange {
        /// Which field.
        at: &'static str,
        /// The value found.
        code: String,
        /// Where the value is in the text.
        pos: Option<Pos>,
    },
    /// An HTTP status that is not an error status.
    #[error("{}`{at}` = {status} is not an HTTP error status (expected 400..=599)", Loc(.pos))]
    StatusOutOfRange {
        /// Which field.
        at: &'static str,
        /// The value found.
        status: String,
        /// Where the value is in the text.
        pos: Option<Pos>,
    },
    /// A message that is not a string (of an asset error: an API body's message is excerpted instead).
    #[error("{}`{at}` must be a string, found {found}", Loc(.pos))]
    NonStringMessage {
        /// Which field.
        at: &'static str,
        /// The JSON type found instead.
        found: &'static str,
        /// Where the value is in the text.
        pos: Option<Pos>,
    },
    /// A `Retry-After` value that is neither delay-seconds nor an HTTP-date, from
    /// [`retry_after`](crate::classify::retry_after). Classification itself drops such a value and notes it.
    #[error("Retry-After `{value}` is not usable: {reason}")]
    InvalidRetryAfter {
        /// The value found (one line, shortened if long).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A JSON object that is none of the three known shapes.
    #[error(
        "{}unrecognised failure document (keys: {keys}): expected an asset with `assetError`, an `assetError` \
         object with `code`, or an API failure with `http_status`",
        Loc(.pos)
    )]
    UnrecognizedShape {
        /// The object's keys, comma-separated.
        keys: String,
        /// Where the object is in the text.
        pos: Option<Pos>,
    },
}

/// `line L, column C: ` before a message, when the position is known.
struct Loc<'a>(&'a Option<Pos>);

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "line {}, column {}: ", p.line, p.column),
            None => Ok(()),
        }
    }
}

impl ClassifyError {
    /// Where in the text the error is (line and column, from 1), when the input was text.
    pub fn position(&self) -> Option<Pos> {
        match self {
            ClassifyError::MalformedJson { line, column, .. } => Some(Pos {
                line: u32::try_from(*line).unwrap_or(u32::MAX),
                column: u32::try_from(*column).unwrap_or(u32::MAX),
            }),
            ClassifyError::NotAnObject { pos, .. }
            | ClassifyError::MissingAssetError { pos, .. }
            | ClassifyError::MissingCode { pos, .. }
            | ClassifyError::NonIntegerCode { pos, .. }
            | ClassifyError::CodeOutOfRange { pos, .. }
            | ClassifyError::StatusOutOfRange { pos, .. }
            | ClassifyError::NonStringMessage { pos, .. }
            | ClassifyError::UnrecognizedShape { pos, .. } => *pos,
            ClassifyError::InvalidRetryAfter { .. } => None,
        }
    }

    /// The path of the field the error is about (`assetError.code`, `http_status`, `document`), if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ClassifyError::NotAnObject { at, .. }
            | ClassifyError::MissingCode { at, .. }
            | ClassifyError::NonIntegerCode { at, .. }
            | ClassifyError::CodeOutOfRange { at, .. }
            | ClassifyError::StatusOutOfRange { at, .. }
            | ClassifyError::NonStringMessage { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The error of a parser that read `text`, with its column counted in characters.
    pub(crate) fn malformed(text: &str, e: &serde_json::Error) -> Self {
        let pos = locate::parser_pos(text, e.line(), e.column());
        ClassifyError::MalformedJson {
            line: pos.line as usize,
            column: pos.column as usize,
            message: crate::diagnostic::json_message(e),
        }
    }

    /// The same error with the position in `text` (valid JSON) of what it is about.
    pub(crate) fn located_in(mut self, text: &str) -> Self {
        // The path of the value the error points at, as keys from the document down.
        let path: Vec<&str> = match &self {
            ClassifyError::MissingAssetError { .. } => {
                let asset_error = locate::value_at(text, &["assetError"]).map(|_| "assetError");
                asset_error.or(locate::value_at(text, &["status"]).map(|_| "status")).into_iter().collect()
            }
            // A missing field is pointed at by the object that lacks it.
            ClassifyError::MissingCode { at, .. } => parent(at),
            _ => match self.field() {
                Some("document") | None => Vec::new(),
                Some(at) => at.split('.').collect(),
            },
        };
        let found = locate::value_at(text, &path);
        match &mut self {
            ClassifyError::NotAnObject { pos, .. }
            | ClassifyError::MissingAssetError { pos, .. }
            | ClassifyError::MissingCode { pos, .. }
            | ClassifyError::NonIntegerCode { pos, .. }
            | ClassifyError::CodeOutOfRange { pos, .. }
            | ClassifyError::StatusOutOfRange { pos, .. }
            | ClassifyError::NonStringMessage { pos, .. }
            | ClassifyError::UnrecognizedShape { pos, .. } => *pos = pos.or(found),
            ClassifyError::MalformedJson { .. } | ClassifyError::InvalidRetryAfter { .. } => {}
        }
        self
    }
}

/// The keys of the object that holds the field at `path`.
fn parent(path: &str) -> Vec<&str> {
    let mut keys: Vec<&str> = path.split('.').collect();
    keys.pop();
    keys
}
