//! A classified [`Failure`]: what failed, with its catalogue category and downstream.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::catalogue::{self, Category, Downstream};
use super::error::ClassifyError;
use super::key::{FailureKey, FailureKind, check_code, check_status};

/// A classified failure: what failed, with its catalogue category and downstream.
///
/// Build one with [`Failure::from_json`], [`Failure::from_api_response`], [`Failure::asset`],
/// [`Failure::api`] or [`Failure::timeout`]. The code is always valid: asset codes are four digits, API
/// statuses are 400..=599, and a timeout has none (0).
///
/// What classification had to leave out or make up on the way (a Retry-After it could not read, a message
/// excerpted from a body that was not JSON) is in its [notes](Failure::notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    key: FailureKey,
    message: Arc<str>,
    category: Category,
    downstream: Downstream,
    retry_after: Option<Duration>,
    /// Boxed behind one pointer: most failures have none, and failures are moved around a lot.
    notes: Option<Arc<Notes>>,
}

/// A failure's notes, and which of them says that a Retry-After was dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Notes {
    lines: Vec<String>,
    retry_after: Option<usize>,
}

impl Failure {
    /// The code of an asset failure that came without one (an asset in `error` with no `assetError`): 1000, the
    /// lowest four-digit code, which the catalogue does not know, so its category is
    /// [`Category::Unknown`] and policies treat it as any unknown code (`on("unknown", ..)`, or the fallback).
    pub const NO_CODE: u16 = 1000;

    /// An asset failure that carried no code: code [`Failure::NO_CODE`], category unknown, with a note saying
    /// so.
    ///
    /// ```
    /// use lightflow_remedy::{Category, Failure};
    /// let f = Failure::asset_without_code("the error callback carried no assetError");
    /// assert_eq!((f.code(), f.category()), (Failure::NO_CODE, Category::Unknown));
    /// assert_eq!(f.notes().len(), 1);
    /// ```
    pub fn asset_without_code(message: impl Into<Arc<str>>) -> Self {
        let info = catalogue::describe(Failure::NO_CODE);
        Failure {
            key: FailureKey::asset(Failure::NO_CODE),
            message: message.into(),
            category: info.category,
            downstream: info.downstream,
            retry_after: None,
            notes: None,
        }
        .with_note(format!("no assetError code was given: {} stands for \"no code\"", Failure::NO_CODE))
    }

    /// Whether this is an asset failure that came without a code ([`Failure::asset_without_code`]): LightFlow's
    /// `GET` callback says `error` and nothing more, and the asset's own `assetError` is worth asking for.
    ///
    /// ```
    /// use lightflow_remedy::Failure;
    /// assert!(Failure::asset_without_code("no assetError").carries_no_code());
    /// assert!(!Failure::asset(2404, "not found")?.carries_no_code());
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn carries_no_code(&self) -> bool {
        self.key == FailureKey::asset(Failure::NO_CODE)
    }

    /// A failure of an asset with the given `assetError.code`.
    ///
    /// ```
    /// use lightflow_remedy::{Category, Failure};
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
            notes: None,
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
            notes: None,
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
            notes: None,
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

    /// The same failure with a note: something a reader should know about how it was classified.
    ///
    /// ```
    /// use lightflow_remedy::Failure;
    /// let f = Failure::api(502, "")?.with_note("the proxy answered for LightFlow");
    /// assert_eq!(f.notes(), ["the proxy answered for LightFlow"]);
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        Arc::make_mut(self.notes.get_or_insert_with(Default::default)).lines.push(note.into());
        self
    }

    /// The same failure, noting that its Retry-After was dropped (`note` says which value and why).
    pub(crate) fn with_retry_after_ignored(mut self, note: String) -> Self {
        let notes = Arc::make_mut(self.notes.get_or_insert_with(Default::default));
        notes.retry_after = Some(notes.lines.len());
        notes.lines.push(note);
        self
    }

    /// What classification left out or made up, in words: a Retry-After value it could not read and dropped,
    /// a message excerpted from a body that was not JSON. Empty for most failures.
    ///
    /// ```
    /// use lightflow_remedy::Failure;
    /// use std::time::SystemTime;
    /// let f = Failure::from_api_response(503, "Service Unavailable", Some("soon"), SystemTime::now())?;
    /// assert_eq!((f.code(), f.message(), f.retry_after()), (503, "Service Unavailable", None));
    /// assert!(f.retry_after_ignored().unwrap().starts_with("Retry-After `soon` ignored:"));
    /// assert_eq!(f.notes().len(), 2, "{:?}", f.notes()); // the dropped hint, and the excerpted body
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn notes(&self) -> &[String] {
        self.notes.as_ref().map_or(&[], |n| n.lines.as_slice())
    }

    /// The note saying that a Retry-After value was present but unreadable, and so dropped
    /// (`Retry-After `soon` ignored: ...`); `None` when there was none or it was read.
    pub fn retry_after_ignored(&self) -> Option<&str> {
        let notes = self.notes.as_ref()?;
        notes.retry_after.and_then(|i| notes.lines.get(i)).map(String::as_str)
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notes: Vec<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ignored: Option<Cow<'a, str>>,
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
            notes: self.notes().iter().map(|n| Cow::Borrowed(n.as_str())).collect(),
            retry_after_ignored: self.retry_after_ignored().map(Cow::Borrowed),
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
        let mut failure = match repr.retry_after_ms {
            Some(ms) => failure.with_retry_after(Duration::from_millis(ms)),
            None => failure,
        };
        let mut ignored = repr.retry_after_ignored;
        for note in repr.notes {
            failure = match &ignored {
                Some(i) if *i == note => {
                    ignored = None;
                    failure.with_retry_after_ignored(note.into_owned())
                }
                _ => failure.with_note(note),
            };
        }
        Ok(match ignored {
            Some(note) => failure.with_retry_after_ignored(note.into_owned()),
            None => failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_rebuilds_the_catalogue_fields() {
        let f = Failure::asset(2429, "busy").unwrap().with_retry_after(Duration::from_millis(1500));
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""category":"storage""#), "{json}");
        assert!(json.contains(r#""http_status":429"#), "{json}");
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(serde_json::from_str::<Failure>(r#"{"kind":"asset","code":5}"#).is_err());
        assert!(!json.contains("notes"), "no notes, no field: {json}");
    }

    #[test]
    fn notes_survive_a_round_trip() {
        let f = Failure::api(503, "x")
            .unwrap()
            .with_note("first")
            .with_retry_after_ignored("Retry-After `soon` ignored: no".into())
            .with_note("last");
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""retry_after_ignored":"Retry-After `soon` ignored: no""#), "{json}");
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.notes(), ["first", "Retry-After `soon` ignored: no", "last"]);
        // A retry_after_ignored without its note among the notes still comes back as one.
        let bare: Failure = serde_json::from_str(r#"{"kind":"api","code":503,"retry_after_ignored":"r"}"#).unwrap();
        assert_eq!((bare.notes(), bare.retry_after_ignored()), (&["r".to_owned()][..], Some("r")));
        assert_eq!(Failure::api(500, "").unwrap().retry_after_ignored(), None);
    }
}
