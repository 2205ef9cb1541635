//! The service's configuration: a TOML file, then environment variables over it. Every key is documented here
//! and in `docs/service.md`; an unknown key or a bad value is an error that names it. Secrets (the LightFlow
//! token, the callback key, the gateway's tokens, the webhook URL) are never in the file: the file names the
//! environment variable or the file they are read from, and they are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// What `remedy serve` runs with.
///
/// ```
/// use lightflow_remedy::serve::ServeConfig;
///
/// let config = ServeConfig::from_toml(r#"
///     listen = "127.0.0.1:9090"
///     store = "postgres://remedy@db/remedy"
///     policies = ["/etc/lightflow/policies"]
///     [lightflow]
///     token_env = "LIGHTFLOW_TOKEN"
///     [engine]
///     lease = "45s"
/// "#)?;
/// assert_eq!(config.listen.port(), 9090);
/// assert_eq!(config.engine.lease, std::time::Duration::from_secs(45));
///
/// let typo = ServeConfig::from_toml("lisen = \"127.0.0.1:1\"").unwrap_err();
/// assert!(typo.to_string().contains("unknown field `lisen`"), "{typo}");
/// # Ok::<(), lightflow_remedy::serve::ConfigError>(())
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Where the service listens (`127.0.0.1:8080`: loopback; `0.0.0.0:8080` for every interface).
    pub listen: SocketAddr,
    /// The URL LightFlow reaches the service at, without a path (`https://remedy.example.com`); callback URLs are
    /// made under it. Default: `http://` and `listen`.
    pub public_url: Option<String>,
    /// The store: `sqlite://PATH` (the default, `sqlite://remedy.db`: one process) or `postgres://...` (several
    /// `remedy serve` behind a load balancer share it).
    pub store: String,
    /// Directories of policy scripts over the defaults, watched and reloaded when they change.
    pub policies: Vec<PathBuf>,
    /// Logs as JSON lines rather than text.
    pub json_logs: bool,
    /// LightFlow's API.
    pub lightflow: LightFlowConfig,
    /// LightFlow's callbacks.
    pub callbacks: CallbacksConfig,
    /// The gateway for new assets (`POST /assets`).
    pub gateway: GatewayConfig,
    /// Where `notify` and `failed` go besides the logs.
    pub notify: NotifyConfig,
    /// The engine.
    pub engine: EngineConfig,
    /// `/metrics`.
    pub metrics: MetricsConfig,
    /// The operator's web view at `/ui`.
    pub ui: UiConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            store: "sqlite://remedy.db".to_owned(),
            policies: Vec::new(),
            json_logs: false,
            lightflow: LightFlowConfig::default(),
            callbacks: CallbacksConfig::default(),
            gateway: GatewayConfig::default(),
            notify: NotifyConfig::default(),
            engine: EngineConfig::default(),
            metrics: MetricsConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// `[lightflow]`: LightFlow's API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LightFlowConfig {
    /// The API's base URL. Default `https://api.lightflow.media`.
    pub base_url: String,
    /// The environment variable that holds the bearer token. Default `LIGHTFLOW_TOKEN`.
    pub token_env: String,
    /// A file that holds the token instead (read again when LightFlow refuses it: see `fix_credentials`).
    pub token_file: Option<PathBuf>,
    /// How long one call may take. Default 30 s.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for LightFlowConfig {
    fn default() -> Self {
        LightFlowConfig {
            base_url: "https://api.lightflow.media".to_owned(),
            token_env: "LIGHTFLOW_TOKEN".to_owned(),
            token_file: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// `[callbacks]`: LightFlow's callbacks to the service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CallbacksConfig {
    /// The environment variable that holds the key callback tokens are made with (32 bytes, base64). Unset or
    /// empty: the key is made once and kept in the store, where every replica finds it.
    pub key_env: String,
    /// How LightFlow calls back: `POST` (a JSON body; the default) or `GET`.
    pub method: String,
    /// A header every callback must carry as well (LightFlow sends the headers of its callback entries): its
    /// name, and the environment variable that holds its value.
    pub header_name: Option<String>,
    /// The environment variable that holds the header's value.
    pub header_secret_env: Option<String>,
    /// The most callbacks handled at once; more wait their turn. Default 64.
    pub max_concurrent: usize,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            key_env: "REMEDY_CALLBACK_KEY".to_owned(),
            method: "POST".to_owned(),
            header_name: None,
            header_secret_env: None,
            max_concurrent: 64,
        }
    }
}

/// `[gateway]`: `POST /assets` through the service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The environment variable that holds the bearer tokens a caller of the gateway must present, separated by
    /// commas. Unset or empty: the gateway refuses every request.
    pub tokens_env: String,
    /// How long after its creation an asset whose end no callback told of is looked up in LightFlow (its
    /// callback may have been lost). Default 10 min.
    #[serde(deserialize_with = "duration")]
    pub sweep_after: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig { tokens_env: "REMEDY_GATEWAY_TOKENS".to_owned(), sweep_after: Duration::from_secs(600) }
    }
}

/// `[metrics]`: who may read `/metrics`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// The environment variable that holds the bearer tokens `/metrics` takes, separated by commas (Prometheus'
    /// `authorization` of a scrape job). Unset or empty: `/metrics` is refused.
    pub tokens_env: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { tokens_env: "REMEDY_METRICS_TOKENS".to_owned() }
    }
}

/// `[ui]`: the operator's web view at `/ui`. Every page needs a token: a viewer's to look, an operator's to act
/// (cancel, retry now). Without any token configured, every page is refused.
///
/// ```
/// use lightflow_remedy::serve::ServeConfig;
/// let config = ServeConfig::from_toml("[ui]\nviewer_tokens_env = \"TEAM_VIEW_TOKENS\"\nrefresh = \"30s\"")?;
/// assert_eq!(config.ui.viewer_tokens_env, "TEAM_VIEW_TOKENS");
/// assert_eq!(config.ui.operator_tokens_env, "REMEDY_UI_OPERATOR_TOKENS");
/// assert_eq!(config.ui.refresh, std::time::Duration::from_secs(30));
/// # Ok::<(), lightflow_remedy::serve::ConfigError>(())
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UiConfig {
    /// Whether `/ui` is served. Default true.
    pub enabled: bool,
    /// The environment variable that holds the viewers' tokens (read only), separated by commas. Default
    /// `REMEDY_UI_VIEWER_TOKENS`.
    pub viewer_tokens_env: String,
    /// The environment variable that holds the operators' tokens (read, cancel, retry now), separated by
    /// commas. Default `REMEDY_UI_OPERATOR_TOKENS`.
    pub operator_tokens_env: String,
    /// The environment variable that holds the key sessions are signed with (32 bytes, base64). Unset or empty:
    /// a key is made once and kept in the store, where every replica finds it. Default `REMEDY_UI_SESSION_KEY`.
    pub session_key_env: String,
    /// How long a sign-in lasts. Default 12 h.
    #[serde(deserialize_with = "duration")]
    pub session: Duration,
    /// How often the overview reloads itself. Default 15 s.
    #[serde(deserialize_with = "duration")]
    pub refresh: Duration,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            viewer_tokens_env: "REMEDY_UI_VIEWER_TOKENS".to_owned(),
            operator_tokens_env: "REMEDY_UI_OPERATOR_TOKENS".to_owned(),
            session_key_env: "REMEDY_UI_SESSION_KEY".to_owned(),
            session: Duration::from_secs(12 * 3600),
            refresh: Duration::from_secs(15),
        }
    }
}

/// `[notify]`: where `notify` and `failed` go besides the logs.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// The environment variable that holds a webhook URL (a Slack-compatible `{"text": ...}` is posted to it).
    pub webhook_env: Option<String>,
}

/// `[engine]`: how the remediator works.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How long a replica's claim holds a job without a heartbeat. Default 30 s.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// The most jobs one replica works on at once. Default 256.
    pub max_active_jobs: usize,
    /// How long a hook call (a LightFlow call) may take. Default 60 s.
    #[serde(deserialize_with = "duration")]
    pub hook_timeout: Duration,
    /// How long a submitted attempt's result is awaited before LightFlow is asked (`check`). Default 6 h.
    #[serde(deserialize_with = "duration")]
    pub await_result: Duration,
    /// How long finished jobs are kept. Default 7 days.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease: Duration::from_secs(30),
            max_active_jobs: 256,
            hook_timeout: Duration::from_secs(60),
            await_result: Duration::from_secs(6 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A duration as people write it (`30s`, `5m`, `1h 30m`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration: {e}")))
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a bad value (the message names it).
    #[error("{origin}: {message}")]
    Invalid {
        /// The file, or `the configuration`.
        origin: String,
        /// What was wrong, and where.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("{name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// The environment variables read over the file, and what each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("REMEDY_LISTEN", "listen"),
    ("REMEDY_PUBLIC_URL", "public_url"),
    ("REMEDY_STORE", "store"),
    ("REMEDY_POLICIES", "policies (directories separated by `:`)"),
    ("REMEDY_JSON_LOGS", "json_logs (`true` or `false`)"),
    ("REMEDY_LIGHTFLOW_URL", "lightflow.base_url"),
];

impl ServeConfig {
    /// Reads a configuration from TOML text.
    pub fn from_toml(text: &str) -> Result<ServeConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: "the configuration".to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// Reads the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        ServeConfig::from_toml(&text).map_err(|e| match e {
            ConfigError::Invalid { message, .. } => {
                ConfigError::Invalid { origin: path.display().to_string(), message }
            }
            other => other,
        })
    }

    /// The same configuration with the environment's overrides ([`ENV_OVERRIDES`]) applied, read through `var`.
    ///
    /// ```
    /// use lightflow_remedy::serve::ServeConfig;
    /// let env = |name: &str| (name == "REMEDY_STORE").then(|| "postgres://db/remedy".to_owned());
    /// let config = ServeConfig::default().with_env(env)?;
    /// assert_eq!(config.store, "postgres://db/remedy");
    /// let bad = ServeConfig::default().with_env(|n: &str| (n == "REMEDY_LISTEN").then(|| "nowhere".into()));
    /// assert!(bad.unwrap_err().to_string().starts_with("REMEDY_LISTEN"));
    /// # Ok::<(), lightflow_remedy::serve::ConfigError>(())
    /// ```
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<ServeConfig, ConfigError> {
        let get = |name: &'static str| var(name).filter(|v| !v.is_empty()).map(|v| (name, v));
        if let Some((name, v)) = get("REMEDY_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::Env { name, message: format!("`{v}`: {e}") })?;
        }
        if let Some((_, v)) = get("REMEDY_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some((_, v)) = get("REMEDY_STORE") {
            self.store = v;
        }
        if let Some((_, v)) = get("REMEDY_POLICIES") {
            self.policies = v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect();
        }
        if let Some((name, v)) = get("REMEDY_JSON_LOGS") {
            self.json_logs =
                v.parse().map_err(|_| ConfigError::Env { name, message: format!("`{v}` is not true or false") })?;
        }
        if let Some((_, v)) = get("REMEDY_LIGHTFLOW_URL") {
            self.lightflow.base_url = v;
        }
        self.check()?;
        Ok(self)
    }

    /// The URL callbacks are made under.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_owned()
    }

    /// Refuses values that read but cannot work.
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid { origin: "the configuration".to_owned(), message };
        if !matches!(self.callbacks.method.as_str(), "POST" | "GET") {
            return Err(bad(format!("callbacks.method: `{}` is not POST or GET", self.callbacks.method)));
        }
        if self.callbacks.header_name.is_some() != self.callbacks.header_secret_env.is_some() {
            return Err(bad("callbacks.header_name and callbacks.header_secret_env go together".to_owned()));
        }
        if self.callbacks.max_concurrent == 0 || self.engine.max_active_jobs == 0 {
            return Err(bad("callbacks.max_concurrent and engine.max_active_jobs must be at least 1".to_owned()));
        }
        if self.engine.lease < Duration::from_secs(1) {
            return Err(bad("engine.lease: at least 1s".to_owned()));
        }
        if self.ui.refresh < Duration::from_secs(1) || self.ui.session < Duration::from_secs(60) {
            return Err(bad("ui.refresh: at least 1s; ui.session: at least 1m".to_owned()));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad(format!("public_url: `{url}` is not an http(s) URL")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_key_or_value_is_named() {
        let table = [
            ("listen = 5", "listen"),
            ("[engine]\nlease = \"soon\"", "soon"),
            ("[engine]\nleese = \"1s\"", "leese"),
            ("[callbacks]\nmethod = \"PUT\"", "callbacks.method"),
            ("[callbacks]\nheader_name = \"X-Secret\"", "header_secret_env"),
            ("[engine]\nmax_active_jobs = 0", "max_active_jobs"),
            ("public_url = \"ftp://x\"", "public_url"),
            ("[lightflow]\ntoken = \"plain\"", "token"),
            ("store = ", "store"),
            ("[ui]\nrefresh = \"0s\"", "ui.refresh"),
            ("[ui]\nviewer_tokens = \"plain\"", "viewer_tokens"),
        ];
        for (text, named) in table {
            let e = ServeConfig::from_toml(text).and_then(|c| c.with_env(|_| None)).unwrap_err().to_string();
            assert!(e.contains(named), "{text:?}: {e}");
        }
        let ok = ServeConfig::from_toml("").unwrap().with_env(|_| None).unwrap();
        assert_eq!(ok, ServeConfig::default());
        assert_eq!(ok.public_url(), "http://127.0.0.1:8080");
    }
}
