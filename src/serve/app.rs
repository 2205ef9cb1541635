//! The service put together: the store, the policies (watched), the LightFlow client and its hooks, the
//! remediator, and the routers (callbacks, gateway, health, metrics) on one listener, until a signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::callbacks::callback_router_asking;
use super::config::ServeConfig;
use super::gateway::gateway_router;
use super::observe::{observe_router, prometheus, watch_store};
use super::sweeper::sweep;
use super::ui::{UiAccess, UiOptions, ui_router};
use crate::decide::{LivePolicies, Policies};
use crate::engine::{Remediator, StoreSettings};
use crate::lightflow::{
    CallbackKey, CallbackMethod, CallbackUrls, LightFlowClient, LightFlowHooks, StoreBook, TokenSource, Webhook,
};
use crate::store::{Clock, Store, StoreOptions, SystemClock, open_url};

/// The hooks of the service: LightFlow's, with the assets in the store.
pub type ServiceHooks = LightFlowHooks<StoreBook>;

/// Where the callback key is kept in the store when the environment gives none (every replica finds it there).
const KEY_GUARD: &str = "lightflow-callback-key";

/// The secrets the service reads, by the names its configuration gives (environment variables).
pub trait Secrets: Send + Sync {
    /// The value of variable `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process's environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Environment;

impl Secrets for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is wrong (the message names what).
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The store could not be opened.
    #[error("the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The policies could not be loaded.
    #[error("the policies: {0}")]
    Policies(String),
    /// The LightFlow client or the callback URLs could not be made.
    #[error("LightFlow: {0}")]
    LightFlow(String),
    /// The web view's access could not be set up (its session key).
    #[error("the web view: {0}")]
    Ui(String),
    /// The listener could not be bound, or failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A service ready to serve: its router and its remediator.
pub struct Service {
    /// Everything the service answers: `/callbacks/lightflow`, `/assets`, `/healthz`, `/readyz`, `/metrics`, and
    /// the web view at `/ui` (unless `[ui] enabled = false`).
    pub router: Router,
    /// The remediator (for a host that adds routes of its own, e.g. the web view).
    pub remediator: Remediator<ServiceHooks>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The callback URLs the service makes and checks.
    pub callbacks: CallbackUrls,
    /// The policies in force (watched when directories were given).
    pub policies: Arc<LivePolicies>,
    _watching: Option<crate::operate::reload::PolicyWatcher>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

/// What a service is built with besides its configuration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// LightFlow's token (`None`: as the configuration says, from its environment variable or file).
    pub token: Option<TokenSource>,
    /// A policy script over the defaults and under the configured directories: its name and text.
    pub policy: Option<(String, String)>,
}

impl Service {
    /// Builds the service of `config`, reading secrets from `secrets`. Must run inside a tokio runtime (the
    /// remediator starts there).
    pub async fn build(
        config: &ServeConfig,
        secrets: &dyn Secrets,
        options: BuildOptions,
    ) -> Result<Service, ServeError> {
        let BuildOptions { token, policy } = options;
        let _ = prometheus();
        let store: Arc<dyn Store> = Arc::from(open_url(&config.store, &StoreOptions::default()).await?);
        let clock: Arc<dyn Clock> = store.own_clock().unwrap_or_else(|| Arc::new(SystemClock));
        let mut builder = Policies::builder();
        if let Some((name, text)) = policy {
            builder = builder.source(name, text);
        }
        for dir in &config.policies {
            builder = builder.directory(dir);
        }
        let policies = Arc::new(LivePolicies::load(builder).map_err(|e| ServeError::Policies(e.to_string()))?);
        let watching = if config.policies.is_empty() {
            None
        } else {
            Some(policies.watch(Duration::from_millis(500)).map_err(|e| ServeError::Policies(e.to_string()))?)
        };
        let token = token.unwrap_or_else(|| match &config.lightflow.token_file {
            Some(path) => TokenSource::file(path),
            None => TokenSource::env(config.lightflow.token_env.clone()),
        });
        let lightflow = |e: &dyn std::fmt::Display| ServeError::LightFlow(e.to_string());
        let client = LightFlowClient::builder(token)
            .base_url(config.lightflow.base_url.clone())
            .timeout(config.lightflow.timeout)
            .build()
            .map_err(|e| lightflow(&e))?;
        let key = callback_key(config, secrets, &*store).await?;
        let base = format!("{}/callbacks/lightflow", config.public_url());
        let method = if config.callbacks.method == "GET" { CallbackMethod::Get } else { CallbackMethod::Post };
        let mut urls = CallbackUrls::new(&base, key).map_err(|e| lightflow(&e))?.with_method(method);
        if let (Some(name), Some(env)) = (&config.callbacks.header_name, &config.callbacks.header_secret_env) {
            let value = secrets.get(env).ok_or_else(|| ServeError::LightFlow(format!("{env} is not set")))?;
            urls = urls.with_header_secret(name.clone(), value);
        }
        let mut hooks = LightFlowHooks::new(client.clone(), StoreBook::new(store.clone()), urls.clone());
        if let Some(env) = &config.notify.webhook_env
            && let Some(url) = secrets.get(env)
        {
            hooks = hooks.with_webhook(Webhook::new(&url).map_err(|e| lightflow(&e))?);
        }
        let settings = StoreSettings {
            lease: config.engine.lease,
            max_active_jobs: config.engine.max_active_jobs,
            retention: config.engine.retention,
            ..StoreSettings::default()
        };
        let remediator = Remediator::builder(policies.clone(), hooks)
            .metrics(true)
            .hook_timeout(config.engine.hook_timeout)
            .await_result(config.engine.await_result)
            .store_with(store.clone(), clock.clone(), settings)
            .build();
        watch_store(Arc::downgrade(&store), clock.clone(), Duration::from_secs(15));
        let sweep_after = config.gateway.sweep_after;
        let every = (sweep_after / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        sweep(remediator.clone(), store.clone(), clock.clone(), client.clone(), sweep_after, every);
        let tokens = |name: &str| -> Vec<String> {
            secrets.get(name).map(|v| v.split(',').map(|t| t.trim().to_owned()).collect()).unwrap_or_default()
        };
        let router = Router::new()
            .nest(
                "/callbacks/lightflow",
                callback_router_asking(
                    remediator.clone(),
                    urls.clone(),
                    config.callbacks.max_concurrent,
                    client.clone(),
                ),
            )
            .nest(
                "/assets",
                gateway_router(client, urls.clone(), store.clone(), clock.clone(), tokens(&config.gateway.tokens_env)),
            )
            .merge(observe_router(remediator.clone(), tokens(&config.metrics.tokens_env)));
        let router = if config.ui.enabled {
            let access = ui_access(config, secrets, &*store, tokens).await?;
            let options = UiOptions { refresh: config.ui.refresh, ..UiOptions::default() };
            router
                .nest("/ui", ui_router(remediator.clone(), store.clone(), clock, access, options))
                .route("/ui/", axum::routing::get(|| async { axum::response::Redirect::permanent("/ui") }))
        } else {
            router
        };
        // No request holds a connection for long: a slow or stalled client gets a 408, and the work it began (a
        // report written, an asset created) stands.
        let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.lightflow.timeout + Duration::from_secs(10),
        ));
        Ok(Service { router, remediator, store, callbacks: urls, policies, _watching: watching })
    }

    /// Serves on `listener` until `shutdown` completes; then stops taking requests and jobs, and leaves every job
    /// in the store (calls under way get `deadline` to finish).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        deadline: Duration,
    ) -> Result<(), ServeError> {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let served = axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await;
        tracing::info!("shutting down: jobs stay in the store");
        self.remediator.shutdown(deadline).await;
        served.map_err(|source| ServeError::Listen { addr, source })
    }
}

/// Where the web view's session key is kept in the store when the environment gives none.
const UI_KEY_GUARD: &str = "remedy-ui-session-key";

/// The web view's tokens, from the variables `[ui]` names, and its session key: from the environment, else the
/// one kept in the store (made there once, so that every replica signs sessions alike).
async fn ui_access(
    config: &ServeConfig,
    secrets: &dyn Secrets,
    store: &dyn Store,
    tokens: impl Fn(&str) -> Vec<String>,
) -> Result<UiAccess, ServeError> {
    let ui = |e: &dyn std::fmt::Display| ServeError::Ui(e.to_string());
    let access = UiAccess::new(tokens(&config.ui.viewer_tokens_env), tokens(&config.ui.operator_tokens_env))
        .map_err(|e| ui(&e))?
        .session_lifetime(config.ui.session)
        .secure_cookie(config.public_url().starts_with("https://"));
    if let Some(text) = secrets.get(&config.ui.session_key_env) {
        return access.with_key(&text).map_err(|e| ServeError::Ui(format!("{}: {e}", config.ui.session_key_env)));
    }
    for _ in 0..3 {
        if let Some(kept) = store.guard(UI_KEY_GUARD).await? {
            return access.with_key(&kept.value).map_err(|e| ui(&e));
        }
        let key = CallbackKey::generate().map_err(|e| ui(&e))?.to_base64();
        if store.set_guard(UI_KEY_GUARD, None, &key).await? {
            return access.with_key(&key).map_err(|e| ui(&e));
        }
    }
    Err(ServeError::Ui("the session key kept in the store could not be read".to_owned()))
}

/// The key callback tokens are made with: from the environment, else the one kept in the store (made there
/// once, by whichever replica comes first).
async fn callback_key(
    config: &ServeConfig,
    secrets: &dyn Secrets,
    store: &dyn Store,
) -> Result<CallbackKey, ServeError> {
    let bad = |e: &dyn std::fmt::Display| ServeError::LightFlow(format!("the callback key: {e}"));
    if let Some(text) = secrets.get(&config.callbacks.key_env) {
        return CallbackKey::from_base64(text.trim()).map_err(|e| bad(&e));
    }
    for _ in 0..3 {
        if let Some(kept) = store.guard(KEY_GUARD).await? {
            return CallbackKey::from_base64(&kept.value).map_err(|e| bad(&e));
        }
        let key = CallbackKey::generate().map_err(|e| bad(&e))?;
        if store.set_guard(KEY_GUARD, None, &key.to_base64()).await? {
            tracing::info!(
                "a callback key was made and kept in the store (set {} to give one)",
                config.callbacks.key_env
            );
            return Ok(key);
        }
    }
    Err(ServeError::LightFlow("the callback key kept in the store could not be read".to_owned()))
}
