//! A failure's identity: [`FailureKind`] and [`FailureKey`], and the validity of codes and statuses.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::catalogue;
use super::error::ClassifyError;

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
            let status = parse_whole(status).ok_or_else(|| ClassifyError::NonIntegerCode {
                at: "http status",
                found: format!("`{status}`"),
                pos: None,
            })?;
            check_status(status, "http status")?;
            return Ok(FailureKey::api(status as u16));
        }
        let code = parse_whole(s).ok_or_else(|| ClassifyError::NonIntegerCode {
            at: "code",
            found: format!("`{s}`"),
            pos: None,
        })?;
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

pub(crate) fn check_code(code: i128, at: &'static str) -> Result<(), ClassifyError> {
    if (i128::from(catalogue::MIN_ASSET_CODE)..=i128::from(catalogue::MAX_ASSET_CODE)).contains(&code) {
        Ok(())
    } else {
        Err(ClassifyError::CodeOutOfRange { at, code: code.to_string(), pos: None })
    }
}

pub(crate) fn check_status(status: i128, at: &'static str) -> Result<(), ClassifyError> {
    if (i128::from(catalogue::MIN_HTTP_ERROR)..=i128::from(catalogue::MAX_HTTP_ERROR)).contains(&status) {
        Ok(())
    } else {
        Err(ClassifyError::StatusOutOfRange { at, status: status.to_string(), pos: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
