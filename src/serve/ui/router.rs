//! The view's router: its pages, its one action, sign-in and sign-out, its stylesheet and script; and the
//! headers every answer carries: a strict Content-Security-Policy (nothing inline, nothing from elsewhere, no
//! framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and `Cache-Control: no-store`
//! for the pages.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use super::access::UiAccess;
use super::state::{Engine, View};
use super::{actions, assets, job, jobs, login, overview, policies};
use crate::engine::{Hooks, Remediator};
use crate::store::{Clock, Store};

/// The Content-Security-Policy of every answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// The largest form the view takes (a page of 50 selected jobs is a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// How the view behaves besides who may use it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UiOptions {
    /// How often the overview reloads itself. Default 15 s.
    pub refresh: Duration,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions { refresh: Duration::from_secs(15) }
    }
}

/// The operator's web view of `remediator`'s jobs in `store` (read on `clock`), for the holders of `access`'s
/// tokens, as a router to nest where it is served (`remedy serve` nests it at `/ui`). Inside a tokio runtime it
/// follows the policies' reloads (to say when the set in force was loaded).
///
/// Pages: `/` (overview), `/jobs`, `/jobs/{asset}`, `/policies`; `POST /actions` (operators); `/login`,
/// `/logout`. Every page needs a token: `Authorization: Bearer ..`, or the session a login opened.
///
/// ```
/// use axum::Router;
/// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator, StoreSettings};
/// use lightflow_remedy::serve::{UiAccess, UiOptions, ui_router};
/// use lightflow_remedy::store::{MemoryStore, Store, SystemClock};
/// use lightflow_remedy::Policies;
/// use serde_json::{Map, Value};
/// use std::sync::Arc;
///
/// struct Host;
/// impl Hooks for Host {
///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
///         Ok(Attempt::Succeeded)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let clock = Arc::new(SystemClock);
/// let remediator = Remediator::builder(Policies::defaults(), Host)
///     .store_with(store.clone(), clock.clone(), StoreSettings::default())
///     .build();
/// let access = UiAccess::new(vec![std::env::var("VIEWER_TOKEN").unwrap_or_default()], vec![])?;
/// let app: Router = Router::new().nest("/ui", ui_router(remediator, store, clock, access, UiOptions::default()));
/// # drop(app);
/// # Ok(()) }
/// ```
pub fn ui_router<H: Hooks>(
    remediator: Remediator<H>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    access: UiAccess,
    options: UiOptions,
) -> Router {
    let engine: Arc<dyn Engine> = Arc::new(remediator);
    let view = Arc::new(View::new(store, clock, engine, access, options.refresh));
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .route("/", get(overview::page))
        .route("/jobs", get(jobs::page))
        .route("/jobs/{asset}", get(job::page))
        .route("/policies", get(policies::page))
        .route("/actions", post(actions::act))
        .route("/login", get(login::get).post(login::post))
        .route("/logout", post(login::logout))
        .route("/static/ui.css", get(assets::css))
        .route("/static/ui.js", get(assets::js))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(view)
        .layer(header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}
