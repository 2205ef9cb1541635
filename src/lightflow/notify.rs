//! [`Webhook`]: where operators' notices and dead letters are posted, as a Slack-compatible `{"text": ...}`
//! JSON body (Slack's incoming webhooks, and the chat tools that take the same body).
//!
//! A webhook's URL usually is its secret (Slack's carries a token in its path), so it is shown nowhere: not in
//! `Debug`, not in logs, not in errors; only its scheme and host are.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde_json::json;

use super::client::{chain, checked_url};
use super::error::ClientError;

/// A webhook that takes `{"text": "..."}` posts. Delivery is best-effort: [`Webhook::send`] says whether it
/// was delivered, logs why not, and never panics.
///
/// ```
/// use lightflow_remedy::lightflow::Webhook;
/// use std::time::Duration;
///
/// let hook = Webhook::new("https://hooks.slack.com/services/T000/B000/XXXX")?.with_timeout(Duration::from_secs(5));
/// assert_eq!(format!("{hook:?}"), r#"Webhook { at: "https://hooks.slack.com", timeout: 5s }"#);
/// # Ok::<(), lightflow_remedy::lightflow::ClientError>(())
/// ```
#[derive(Clone)]
pub struct Webhook {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
}

impl Webhook {
    /// How long a post may take unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A webhook at `url`: an absolute http(s) URL (its query is kept). An error shows only its scheme and host.
    pub fn new(url: &str) -> Result<Webhook, ClientError> {
        let url = checked_url(url, "webhook URL", true).map_err(|e| match e {
            ClientError::BadBaseUrl { what, url, reason } => {
                let shown_url = if url.starts_with('<') { url.clone() } else { shown(&url) };
                ClientError::BadBaseUrl { what, url: shown_url, reason: reason.replace(&url, "<the URL>") }
            }
            other => other,
        })?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lightflow-remedy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(chain(&e.without_url())))?;
        Ok(Webhook { http, url, timeout: Webhook::DEFAULT_TIMEOUT })
    }

    /// The same webhook with another timeout per post.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Posts `{"text": text}`. `true` when the webhook answered 2xx; otherwise the reason is logged (a
    /// `tracing` warning naming the webhook's host only) and the answer is `false`.
    pub async fn send(&self, text: &str) -> bool {
        let at = shown(self.url.as_str());
        let request = self.http.post(self.url.clone()).json(&json!({ "text": text })).timeout(self.timeout);
        match request.send().await {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::warn!(webhook = %at, status = response.status().as_u16(), "the webhook refused a notice");
                false
            }
            Err(e) => {
                let why = chain(&e.without_url());
                tracing::warn!(webhook = %at, error = %why, "a notice could not be posted to the webhook");
                false
            }
        }
    }
}

/// A URL as it may be shown: its scheme and host (and port), nothing of its path or query.
fn shown(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => "<not a URL>".to_owned(),
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook").field("at", &shown(self.url.as_str())).field("timeout", &self.timeout).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_being_shown() {
        for (url, shown_as) in [
            ("ftp://hooks.example.com/secret-path", "ftp://hooks.example.com"),
            ("https://user:secret-pw@hooks.example.com/x", "<a URL with credentials>"),
            ("not a url secret-path", "<not a URL>"),
        ] {
            let err = Webhook::new(url).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains("secret"), "{text}");
            assert!(text.contains(shown_as), "{text}");
        }
    }
}
