//! What was wrong with the input given to classification.

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
