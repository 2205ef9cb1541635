//! [`LightFlowClient`]: LightFlow's documented API calls (`POST /assets`, `GET /assets` and its filters), each
//! failed answer classified into a [`Failure`], and no retries of its own: deciding when to try again is the
//! policies' work.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::asset::{Asset, AssetPage};
use super::error::ClientError;
use super::query::ListQuery;
use super::token::{TokenError, TokenSource};
use crate::classify::{Downstream, Failure};

/// The largest answer body read: a page of assets is far smaller; anything larger is refused, not kept.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A client of LightFlow's documented API.
///
/// - Base URL `https://api.lightflow.media` by default; the token is sent as `Authorization: Bearer <token>`
///   with `Accept: application/json`, and is never logged nor put in an error.
/// - Every call has a timeout ([`LightFlowClientBuilder::timeout`], 20 s by default). No call is retried, and
///   redirects are not followed (LightFlow documents none; one is an answer [`ClientError::Undocumented`]).
/// - An answer of status 400–599 is a [`ClientError::Failed`] with the failure
///   [`Failure::from_api_response`] makes of its status, body and `Retry-After`; a call that does not answer
///   in time, or cannot connect, is a failure of kind `timeout` (downstream: the LightFlow API) whose notes say
///   which.
///
/// ```no_run
/// use lightflow_remedy::lightflow::{LightFlowClient, ListQuery, TokenSource};
/// use serde_json::json;
///
/// # async fn run() -> Result<(), lightflow_remedy::lightflow::ClientError> {
/// let client = LightFlowClient::new(TokenSource::env("LIGHTFLOW_TOKEN"))?;
/// let params = json!({"input": {"urlPath": "https://example.com/in.mp4"}});
/// let asset = client.create_asset(params.as_object().expect("an object")).await?;
/// let again = client.asset(asset.uuid()).await?;
/// let page = client.list_assets(&ListQuery::new().input_url_path("https://example.com/in.mp4")).await?;
/// # let _ = (again, page); Ok(()) }
/// ```
#[derive(Clone)]
pub struct LightFlowClient {
    http: reqwest::Client,
    base: Url,
    token: TokenSource,
    timeout: Duration,
}

/// Builds a [`LightFlowClient`]: [`LightFlowClient::builder`].
#[derive(Debug, Clone)]
pub struct LightFlowClientBuilder {
    token: TokenSource,
    base: String,
    timeout: Duration,
}

impl LightFlowClientBuilder {
    /// Where LightFlow's API is (default [`LightFlowClient::DEFAULT_BASE_URL`]): an absolute `http` or `https`
    /// URL, perhaps with a path prefix (a proxy's), without query, fragment or credentials.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base = url.into();
        self
    }

    /// How long a call may take, from its start to the end of its answer's body (default 20 s, within the
    /// engine's default hook timeout of 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client. The token is not read yet: it is read when first needed.
    ///
    /// ```
    /// use lightflow_remedy::lightflow::{LightFlowClient, TokenSource};
    /// use std::time::Duration;
    ///
    /// let client = LightFlowClient::builder(TokenSource::fixed("token"))
    ///     .base_url("http://127.0.0.1:8080/lightflow/")
    ///     .timeout(Duration::from_secs(5))
    ///     .build()?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080/lightflow/");
    /// for bad in ["api.lightflow.media", "https://user:pw@api.lightflow.media", "https://h/?x=1"] {
    ///     assert!(LightFlowClient::builder(TokenSource::fixed("t")).base_url(bad).build().is_err(), "{bad}");
    /// }
    /// # Ok::<(), lightflow_remedy::lightflow::ClientError>(())
    /// ```
    pub fn build(self) -> Result<LightFlowClient, ClientError> {
        let base = checked_url(&self.base, "LightFlow base URL", false)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lightflow-remedy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(chain(&e)))?;
        Ok(LightFlowClient { http, base, token: self.token, timeout: self.timeout })
    }
}

impl LightFlowClient {
    /// LightFlow's API, as every sample of its documentation calls it.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.lightflow.media";

    /// How long a call may take unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

    /// A builder, with the token's source.
    pub fn builder(token: TokenSource) -> LightFlowClientBuilder {
        LightFlowClientBuilder {
            token,
            base: LightFlowClient::DEFAULT_BASE_URL.to_owned(),
            timeout: LightFlowClient::DEFAULT_TIMEOUT,
        }
    }

    /// A client of `https://api.lightflow.media` with the default timeout.
    pub fn new(token: TokenSource) -> Result<Self, ClientError> {
        LightFlowClient::builder(token).build()
    }

    /// Where the token comes from: [`TokenSource::reload`] reads it again.
    pub fn token_source(&self) -> &TokenSource {
        &self.token
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// How long a call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST /assets` with the body `{"parameters": parameters}`: LightFlow creates an asset and starts
    /// processing it. Its answer is read as an asset object with a `uuid` (**assumed**: the documentation we
    /// have does not show the answer's status nor its body, only that playback URLs are built from `uuid`).
    ///
    /// LightFlow documents no idempotency key: a call that timed out may have created the asset. Look for it
    /// (with [`LightFlowClient::list_assets`]) before posting again.
    pub async fn create_asset(&self, parameters: &Map<String, Value>) -> Result<Asset, ClientError> {
        const CALL: &str = "POST /assets";
        let body = json!({ "parameters": parameters });
        let request = self.http.request(Method::POST, self.endpoint()).json(&body);
        let (status, value) = self.call(CALL, request).await?;
        Asset::from_value(value).map_err(|what| ClientError::Undocumented { call: CALL, status, what })
    }

    /// `GET /assets` with the query's filters and paging: one page of assets.
    pub async fn list_assets(&self, query: &ListQuery) -> Result<AssetPage, ClientError> {
        const CALL: &str = "GET /assets";
        let mut url = self.endpoint();
        let pairs = query.pairs();
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())));
        }
        let (status, value) = self.call(CALL, self.http.request(Method::GET, url)).await?;
        AssetPage::from_value(value).map_err(|what| ClientError::Undocumented { call: CALL, status, what })
    }

    /// The asset with this uuid, through the documented `uuid` filter of `GET /assets` (a get-one endpoint,
    /// `GET /assets/{uuid}`, is not in the documentation we have). `None` when no item of the answer has
    /// exactly this uuid: how the filter matches is not documented, so other items are passed over.
    pub async fn asset(&self, uuid: &str) -> Result<Option<Asset>, ClientError> {
        let page = self.list_assets(&ListQuery::new().uuid(uuid)).await?;
        Ok(page.items.into_iter().find(|a| a.uuid() == uuid))
    }

    fn endpoint(&self) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/assets", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }

    /// Sends a request with the token, and reads its answer: a success's JSON, or the failure it is.
    async fn call(&self, call: &'static str, request: reqwest::RequestBuilder) -> Result<(u16, Value), ClientError> {
        let token = self.token.token()?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| TokenError::NotAHeaderValue(self.token.describe()))?;
        auth.set_sensitive(true);
        let request = request.header(AUTHORIZATION, auth).header(ACCEPT, "application/json").timeout(self.timeout);
        let mut response = request.send().await.map_err(|e| self.unanswered(call, e))?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(RETRY_AFTER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unanswered(call, e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                let what = format!("the body is larger than {} MiB", MAX_BODY_BYTES >> 20);
                return Err(ClientError::Undocumented { call, status, what });
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        tracing::debug!(call, status, bytes = body.len(), "LightFlow answered");
        if (400..=599).contains(&status) {
            let failure = Failure::from_api_response(status, &text, retry_after.as_deref(), SystemTime::now())
                .map_err(|e| ClientError::Undocumented { call, status, what: e.to_string() })?;
            return Err(ClientError::Failed(failure));
        }
        if !(200..=299).contains(&status) {
            let what = "neither a success (2xx) nor an error (4xx, 5xx)".to_owned();
            return Err(ClientError::Undocumented { call, status, what });
        }
        if text.trim().is_empty() {
            return Err(ClientError::Undocumented { call, status, what: "the body is empty".to_owned() });
        }
        serde_json::from_str(&text).map(|value| (status, value)).map_err(|e| ClientError::Undocumented {
            call,
            status,
            what: format!("the body is not JSON ({e}): {}", excerpt(&text)),
        })
    }

    /// A call that got no answer (or only part of one): a failure of kind `timeout`, whose notes say why
    /// (without the URL: a search's query may hold an input URL with a signature).
    fn unanswered(&self, call: &str, e: reqwest::Error) -> ClientError {
        let e = e.without_url();
        let why = chain(&e);
        let (message, note) = if e.is_timeout() {
            (format!("{call} did not answer within {}", humantime::format_duration(self.timeout)), why)
        } else if e.is_connect() {
            (format!("{call}: LightFlow could not be reached"), why)
        } else {
            (format!("{call}: the answer was cut off"), why)
        };
        ClientError::Failed(Failure::timeout(Downstream::LightflowApi, message).with_note(note))
    }
}

impl fmt::Debug for LightFlowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LightFlowClient")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("token", &self.token)
            .finish()
    }
}

/// `text` as an absolute http(s) URL without credentials or fragment (and without query unless
/// `query_allowed`), or why not. `what` names the URL in the error.
pub(crate) fn checked_url(text: &str, what: &'static str, query_allowed: bool) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadBaseUrl { what, url: text.to_owned(), reason: reason.to_owned() };
    let url = Url::parse(text.trim()).map_err(|e| bad(&format!("it is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("it is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientError::BadBaseUrl {
            what,
            url: "<a URL with credentials>".to_owned(),
            reason: "it carries a user name or password: they would be shown wherever the URL is".to_owned(),
        });
    }
    if url.fragment().is_some() {
        return Err(bad("it has a fragment (`#...`)"));
    }
    if url.query().is_some() && !query_allowed {
        return Err(bad("it has a query (`?...`)"));
    }
    Ok(url)
}

/// An error and its sources, on one line, without the request's URL.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The start of a body, on one line, for an error.
fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = line.chars().take(120).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}
