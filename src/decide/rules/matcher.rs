//! Matchers: what a rule applies to, and how specific it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::classify::catalogue::{self, Category};
use crate::classify::{FailureKey, FailureKind};

/// What a rule applies to, written in scripts as the first argument of `on(..)`.
///
/// Displays as it is written: `2404`, `2400..=2499`, `brightcove`, `http(429)`, `http(500..=599)`, `otherwise`,
/// or `decide` for a policy returned by a `decide` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// One asset code.
    Code(u16),
    /// Asset codes `lo..=hi`.
    Range(u16, u16),
    /// Every failure of a category.
    Category(Category),
    /// One HTTP status of a failed API call.
    Http(u16),
    /// HTTP statuses `lo..=hi` of failed API calls.
    HttpRange(u16, u16),
    /// Anything.
    Otherwise,
    /// A policy returned by a `decide` function.
    Decide,
}

impl Matcher {
    /// Lower is more specific: exact code, then the narrowest range, then category, then `otherwise`.
    pub(crate) fn specificity(self) -> (u8, u32) {
        match self {
            Matcher::Code(_) | Matcher::Http(_) => (0, 1),
            Matcher::Range(lo, hi) | Matcher::HttpRange(lo, hi) => (1, u32::from(hi - lo) + 1),
            Matcher::Category(_) => (2, 0),
            Matcher::Otherwise => (3, 0),
            Matcher::Decide => (4, 0),
        }
    }

    /// Whether the rule applies to a failure with this key.
    pub fn matches(self, key: FailureKey) -> bool {
        match (self, key.kind) {
            (Matcher::Code(c), FailureKind::Asset) => c == key.code,
            (Matcher::Range(lo, hi), FailureKind::Asset) => (lo..=hi).contains(&key.code),
            (Matcher::Http(s), FailureKind::Api) => s == key.code,
            (Matcher::HttpRange(lo, hi), FailureKind::Api) => (lo..=hi).contains(&key.code),
            (Matcher::Category(c), _) => c == category_of(key),
            (Matcher::Otherwise, _) => true,
            _ => false,
        }
    }
}

/// The category of a key, without building its name.
pub(crate) fn category_of(key: FailureKey) -> Category {
    match key.kind {
        FailureKind::Api => Category::Api,
        FailureKind::Timeout => Category::Timeout,
        FailureKind::Asset => match catalogue::lookup(key.code) {
            Some(entry) => entry.category,
            None if catalogue::remote_http_status(key.code).is_some() => Category::Storage,
            None => Category::Unknown,
        },
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Code(c) => write!(f, "{c}"),
            Matcher::Range(lo, hi) => write!(f, "{lo}..={hi}"),
            Matcher::Category(c) => write!(f, "{c}"),
            Matcher::Http(s) => write!(f, "http({s})"),
            Matcher::HttpRange(lo, hi) => write!(f, "http({lo}..={hi})"),
            Matcher::Otherwise => f.write_str("otherwise"),
            Matcher::Decide => f.write_str("decide"),
        }
    }
}

/// The error for text that is not a matcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a matcher (expected e.g. 2404, 2400..=2499, brightcove, http(429), otherwise, decide)")]
pub struct BadMatcher(String);

impl FromStr for Matcher {
    type Err = BadMatcher;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMatcher(s.to_owned());
        let range = |t: &str| -> Result<(u16, u16), BadMatcher> {
            let (lo, hi) = t.split_once("..=").ok_or_else(bad)?;
            Ok((lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?))
        };
        match s {
            "otherwise" => return Ok(Matcher::Otherwise),
            "decide" => return Ok(Matcher::Decide),
            _ => {}
        }
        if let Some(inner) = s.strip_prefix("http(").and_then(|t| t.strip_suffix(')')) {
            return match inner.parse() {
                Ok(status) => Ok(Matcher::Http(status)),
                Err(_) => range(inner).map(|(lo, hi)| Matcher::HttpRange(lo, hi)),
            };
        }
        if let Ok(code) = s.parse() {
            return Ok(Matcher::Code(code));
        }
        if s.contains("..=") {
            return range(s).map(|(lo, hi)| Matcher::Range(lo, hi));
        }
        s.parse().map(Matcher::Category).map_err(|_| bad())
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_round_trip_through_text() {
        let all = [
            Matcher::Code(2404),
            Matcher::Range(2400, 2499),
            Matcher::Category(Category::Brightcove),
            Matcher::Http(429),
            Matcher::HttpRange(500, 599),
            Matcher::Otherwise,
            Matcher::Decide,
        ];
        for m in all {
            assert_eq!(m.to_string().parse::<Matcher>(), Ok(m));
        }
        assert!("http(x)".parse::<Matcher>().is_err());
        assert!("nothing".parse::<Matcher>().is_err());
    }

    #[test]
    fn matching_respects_kind() {
        let table = [
            (Matcher::Code(2404), FailureKey::asset(2404), true),
            (Matcher::Code(404), FailureKey::api(404), false),
            (Matcher::Http(429), FailureKey::api(429), true),
            (Matcher::Http(429), FailureKey::asset(2429), false),
            (Matcher::Range(2400, 2499), FailureKey::asset(2499), true),
            (Matcher::HttpRange(500, 599), FailureKey::api(503), true),
            (Matcher::Category(Category::Storage), FailureKey::asset(2418), true),
            (Matcher::Category(Category::Protection), FailureKey::asset(2066), true),
            (Matcher::Category(Category::Unknown), FailureKey::asset(2099), true),
            (Matcher::Category(Category::Api), FailureKey::api(401), true),
            (Matcher::Otherwise, FailureKey::api(401), true),
            (Matcher::Category(Category::Timeout), FailureKey::timeout(), true),
            (Matcher::Category(Category::Api), FailureKey::timeout(), false),
            (Matcher::Otherwise, FailureKey::timeout(), true),
            (Matcher::Decide, FailureKey::api(401), false),
        ];
        for (m, key, expected) in table {
            assert_eq!(m.matches(key), expected, "{m} vs {key}");
        }
    }
}
