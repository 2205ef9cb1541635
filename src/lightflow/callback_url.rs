//! The callback URLs the library gives LightFlow: [`CallbackUrls`] makes each attempt's entry of
//! `parameters.callbacks`, and checks the token a callback comes back with.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use reqwest::Url;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::client::checked_url;
use super::error::ClientError;
use crate::classify::Callback;
use crate::engine::{AttemptKey, JobId};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The query parameter naming the attempt (what
/// [`Remediator::report_callback`](crate::engine::Remediator::report_callback) reads).
pub const ATTEMPT_PARAM: &str = "attempt";
/// The query parameter carrying the job's token.
pub const TOKEN_PARAM: &str = "token";

/// The secret key callback tokens are made with: 32 random bytes. Its `Debug` never shows it.
#[derive(Clone)]
pub struct CallbackKey([u8; 32]);

impl CallbackKey {
    /// A new key from the operating system's random source.
    ///
    /// ```
    /// use lightflow_remedy::lightflow::CallbackKey;
    /// let key = CallbackKey::generate()?;
    /// let again = CallbackKey::from_base64(&key.to_base64())?;
    /// assert_eq!(again.to_base64(), key.to_base64());
    /// assert_eq!(format!("{key:?}"), "CallbackKey(<redacted>)");
    /// # Ok::<(), lightflow_remedy::lightflow::KeyError>(())
    /// ```
    pub fn generate() -> Result<CallbackKey, KeyError> {
        use rand::TryRng as _;
        let mut key = [0u8; 32];
        rand::rngs::SysRng.try_fill_bytes(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(CallbackKey(key))
    }

    /// A key from its standard base64 text (with or without padding), as [`CallbackKey::to_base64`] writes
    /// it: exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<CallbackKey, KeyError> {
        let text = text.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(text).map_err(|_| KeyError::NotBase64)?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| KeyError::Length(b.len()))?;
        Ok(CallbackKey(key))
    }

    /// The key as standard base64 text, to keep in a secret store. Show it to no one else.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackKey(<redacted>)")
    }
}

/// Why a callback key could not be had. It never shows key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The text is not base64.
    #[error("the callback key is not base64 text")]
    NotBase64,
    /// The key does not have 32 bytes.
    #[error("the callback key has {0} bytes, not 32")]
    Length(usize),
}

/// How LightFlow is to call back: `method` of a callback entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackMethod {
    /// `POST` (LightFlow's default): a JSON body with the asset's uuid, status and dates.
    #[default]
    Post,
    /// `GET`: no body; `status` and `endDate` appended to the URL's query.
    Get,
}

impl CallbackMethod {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMethod::Post => "POST",
            CallbackMethod::Get => "GET",
        }
    }
}

/// One entry of `parameters.callbacks`, made for one attempt. Its `Debug` hides the token and header values.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackEntry {
    /// The URL LightFlow calls, with the attempt and the token in its query.
    pub url: String,
    /// How LightFlow calls it.
    pub method: CallbackMethod,
    /// The headers LightFlow sends with the call: the static header secret, if any.
    pub headers: Vec<(String, String)>,
}

impl CallbackEntry {
    /// The entry as LightFlow takes it in `parameters.callbacks`: `{"url", "method", "headers": [{"name",
    /// "value"}]}` (`headers` left out when there are none).
    pub fn to_json(&self) -> Value {
        let mut entry = json!({ "url": self.url, "method": self.method.as_str() });
        if !self.headers.is_empty() {
            let headers: Vec<Value> = self.headers.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect();
            entry["headers"] = Value::Array(headers);
        }
        entry
    }
}

impl fmt::Debug for CallbackEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match self.url.find(&format!("&{TOKEN_PARAM}=")) {
            Some(at) => format!("{}&{TOKEN_PARAM}=<redacted>", &self.url[..at]),
            None => self.url.clone(),
        };
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, _)| (n.as_str(), "<redacted>")).collect();
        f.debug_struct("CallbackEntry")
            .field("url", &url)
            .field("method", &self.method)
            .field("headers", &headers)
            .finish()
    }
}

/// Why a callback was refused by [`CallbackUrls::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The query has no `attempt`.
    #[error("the callback names no attempt")]
    NoAttempt,
    /// The `attempt` is not an attempt key (`asset#job.attempt`).
    #[error("the callback's attempt is not an attempt key")]
    BadAttempt,
    /// The query has no `token`, or one that is not the attempt's job's.
    #[error("the callback's token is missing or wrong")]
    BadToken,
    /// The required header secret is missing or wrong.
    #[error("the callback's header secret is missing or wrong")]
    BadHeader,
}

/// Makes the callback entry of each attempt, and checks the callbacks that come back.
///
/// LightFlow signs nothing: a callback entry is a URL, a method and headers we choose (LightFlow's callbacks
/// guide), and LightFlow calls that URL when the asset ends. So the URL names the attempt and carries a token
/// only the holder of the key can make:
///
/// ```text
/// {base}?attempt=<asset#job.attempt, percent-encoded>&token=<base64url(HMAC-SHA256(key, "lightflow-remedy callback v1 job <id>"))>
/// ```
///
/// The token is 256 bits, derived from the key and the job's id: nothing is stored per job, and replicas that
/// share the key agree. It is compared in constant time. A static header secret can be required besides: it
/// goes in the entry's `headers`, which LightFlow sends back with the call.
///
/// The entry's JSON is LightFlow's documented shape: `{"url": ..., "method": "POST", "headers": [{"name": ...,
/// "value": ...}]}` (`method` `GET` or `POST`, `headers` optional). With `POST` LightFlow sends a JSON body
/// (`uuid`, `assetName`, `inputUrl`, `username`, `startDate`, and, **assumed**, `endDate`, `status` and
/// `assetError`: the rest of the documented sample is cut off in our copy); with `GET` it appends `status` and
/// `endDate` to the query. [`Callback::from_request`](crate::classify::Callback::from_request) reads both.
///
/// ```
/// use lightflow_remedy::classify::Callback;
/// use lightflow_remedy::engine::{AttemptKey, JobId};
/// use lightflow_remedy::lightflow::{CallbackKey, CallbackUrls};
///
/// let urls = CallbackUrls::new("https://hooks.example.com/lightflow?tenant=acme", CallbackKey::generate()?)?
///     .with_header_secret("X-Remedy-Secret", "s3cret");
/// let key = AttemptKey { asset_id: "asset#42", job: JobId(7), attempt: 2 };
/// let entry = urls.entry(JobId(7), &key);
/// assert!(entry.url.starts_with("https://hooks.example.com/lightflow?tenant=acme&attempt=asset%2342%237.2&token="));
///
/// // LightFlow calls back (here in the GET form) with the URL and the header it was given.
/// let callback = Callback::from_query(&format!("{}&status=finished", entry.url))?;
/// assert_eq!(urls.authenticate(&callback, [("x-remedy-secret", b"s3cret".as_slice())]), Ok(()));
/// assert!(urls.authenticate(&callback, []).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CallbackUrls {
    base: Url,
    key: CallbackKey,
    method: CallbackMethod,
    header_secret: Option<(String, String)>,
}

impl CallbackUrls {
    /// Callback URLs under `base`: an absolute http(s) URL where the host receives callbacks. Its own query
    /// parameters are kept (but not `attempt` or `token`, which are the library's).
    pub fn new(base: &str, key: CallbackKey) -> Result<CallbackUrls, ClientError> {
        let base = checked_url(base, "callback base URL", true)?;
        if base.query_pairs().any(|(name, _)| name == ATTEMPT_PARAM || name == TOKEN_PARAM || name == ASSET_PARAM) {
            return Err(ClientError::BadBaseUrl {
                what: "callback base URL",
                url: base.to_string(),
                reason: format!("its query has `{ATTEMPT_PARAM}` or `{TOKEN_PARAM}`, which the library sets"),
            });
        }
        Ok(CallbackUrls { base, key, method: CallbackMethod::Post, header_secret: None })
    }

    /// The same URLs, called back with `method` (default `POST`).
    pub fn with_method(mut self, method: CallbackMethod) -> Self {
        self.method = method;
        self
    }

    /// The same URLs, with a header every callback must carry: LightFlow is given it in each entry's
    /// `headers`, and sends it back.
    pub fn with_header_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header_secret = Some((name.into(), value.into()));
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// The callback entry of attempt `key` of job `job`.
    pub fn entry(&self, job: JobId, key: &AttemptKey<'_>) -> CallbackEntry {
        let mut url = self.base.clone();
        url.query_pairs_mut().append_pair(ATTEMPT_PARAM, &key.to_string()).append_pair(TOKEN_PARAM, &self.token(job));
        CallbackEntry { url: url.into(), method: self.method, headers: self.header_secret.iter().cloned().collect() }
    }

    /// Whether an entry's URL is one of these (its part before the query is the base's): an earlier attempt's
    /// entry, which a new one replaces.
    pub fn is_ours(&self, url: &str) -> bool {
        let stem = |u: &str| u.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/').to_owned();
        stem(url) == stem(self.base.as_str())
    }

    /// Job `job`'s token: base64url without padding of HMAC-SHA256(key, `lightflow-remedy callback v1 job
    /// <id>`), 43 characters.
    pub fn token(&self, job: JobId) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(job))
    }

    fn mac(&self, job: JobId) -> [u8; 32] {
        // A key shorter than SHA-256's 64-byte block is padded with zeros (RFC 2104): the padded key is the same
        // key, given in the size that cannot be refused.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.key.0);
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        mac.update(format!("lightflow-remedy callback v1 job {job}").as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `token` is job `job`'s, compared in constant time.
    pub fn verify(&self, job: JobId, token: &str) -> bool {
        let expected = self.token(job);
        expected.len() == token.len() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
    }

    /// Whether the headers of a callback carry the header secret (names compared without case, the value in
    /// constant time); `true` when none is required.
    pub fn verify_header<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> bool {
        let Some((name, value)) = &self.header_secret else { return true };
        let mut found = false;
        for (n, v) in headers {
            if n.eq_ignore_ascii_case(name) {
                found |= v.len() == value.len() && bool::from(v.ct_eq(value.as_bytes()));
            }
        }
        found
    }

    /// Checks a callback: its `attempt` is an attempt key, its `token` is that job's, and the header secret is
    /// there when one is required.
    pub fn authenticate<'h>(
        &self,
        callback: &Callback,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<(), Refused> {
        let header_ok = self.verify_header(headers);
        let attempt = callback.param(ATTEMPT_PARAM).ok_or(Refused::NoAttempt)?;
        let key = AttemptKey::parse(attempt).ok_or(Refused::BadAttempt)?;
        let token = callback.param(TOKEN_PARAM).ok_or(Refused::BadToken)?;
        if !self.verify(key.job, token) {
            return Err(Refused::BadToken);
        }
        if !header_ok {
            return Err(Refused::BadHeader);
        }
        Ok(())
    }
}

impl fmt::Debug for CallbackUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackUrls")
            .field("base", &self.base.as_str())
            .field("key", &self.key)
            .field("method", &self.method)
            .field("header_secret", &self.header_secret.as_ref().map(|(n, _)| (n.as_str(), "<redacted>")))
            .finish()
    }
}

/// The query parameter of a new asset's callback URL that names the asset (its id in the store, made by the
/// gateway before LightFlow gives the asset a uuid).
pub const ASSET_PARAM: &str = "asset";

/// New assets' callbacks: made by the gateway before any job exists, for the asset's first end (its first failure
/// starts a job).
impl CallbackUrls {
    /// The callback entry of a new asset `asset_id`: the URL names the asset and carries an HMAC token of it.
    ///
    /// ```
    /// use lightflow_remedy::classify::Callback;
    /// use lightflow_remedy::lightflow::{CallbackKey, CallbackUrls};
    ///
    /// let urls = CallbackUrls::new("https://remedy.example.com/callbacks/lightflow", CallbackKey::generate()?)?;
    /// let entry = urls.asset_entry("gw-1f3a");
    /// let callback = Callback::from_query(&format!("{}&status=error", entry.url))?;
    /// assert_eq!(urls.authenticate_asset(&callback, []).as_deref(), Ok("gw-1f3a"));
    /// let forged = Callback::from_query("asset=gw-1f3a&token=AAAA&status=error")?;
    /// assert!(urls.authenticate_asset(&forged, []).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn asset_entry(&self, asset_id: &str) -> CallbackEntry {
        let mut url = self.base.clone();
        url.query_pairs_mut().append_pair(ASSET_PARAM, asset_id).append_pair(TOKEN_PARAM, &self.asset_token(asset_id));
        CallbackEntry { url: url.into(), method: self.method, headers: self.header_secret.iter().cloned().collect() }
    }

    /// Asset `asset_id`'s token: as a job's ([`CallbackUrls::token`]), of `lightflow-remedy callback v1 asset <id>`.
    pub fn asset_token(&self, asset_id: &str) -> String {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.key.0);
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        mac.update(format!("lightflow-remedy callback v1 asset {asset_id}").as_bytes());
        let mac: [u8; 32] = mac.finalize().into_bytes().into();
        URL_SAFE_NO_PAD.encode(mac)
    }

    /// Checks a new asset's callback: its `asset`, its `token` (compared in constant time), and the header
    /// secret when one is required. Answers the asset's id.
    pub fn authenticate_asset<'c, 'h>(
        &self,
        callback: &'c Callback,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<&'c str, Refused> {
        let header_ok = self.verify_header(headers);
        // The callback reader takes `asset` as the host's own asset parameter.
        let asset = callback.asset.as_deref().ok_or(Refused::NoAttempt)?;
        let token = callback.param(TOKEN_PARAM).ok_or(Refused::BadToken)?;
        let expected = self.asset_token(asset);
        if expected.len() != token.len() || !bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
            return Err(Refused::BadToken);
        }
        if !header_ok {
            return Err(Refused::BadHeader);
        }
        Ok(asset)
    }
}
