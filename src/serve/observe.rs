//! What the service shows of itself without a token: `/healthz` (the process answers) and `/readyz` (the store
//! answers and the claimer runs: [`Remediator::health`]); and, with a metrics token, `/metrics` in Prometheus'
//! text format (the engine's metrics through the `metrics` facade, and the store's jobs by phase).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use super::gateway::bearer_ok;
use super::reply::{Reply, reply};
use crate::engine::{Hooks, Remediator};
use crate::store::{Clock, Store};

/// Jobs in the store, by `phase` (active) or `outcome` (finished, kept for the retention).
pub const JOBS: &str = "remedy_jobs";
/// Reports held for references no attempt has named yet.
pub const HELD_REPORTS: &str = "remedy_held_reports";

/// The process's Prometheus recorder, installed once (the `metrics` facade has one recorder per process).
/// `None` when another recorder was installed first (a host's own): `/metrics` then says so.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

struct Observed<H: Hooks> {
    remediator: Remediator<H>,
    metrics_tokens: Vec<String>,
}

/// `/healthz`, `/readyz` and `/metrics` of `remediator`. `metrics_tokens`: the bearer tokens `/metrics` takes
/// (none: `/metrics` is refused).
pub fn observe_router<H: Hooks>(remediator: Remediator<H>, metrics_tokens: Vec<String>) -> Router {
    let metrics_tokens = metrics_tokens.into_iter().filter(|t| !t.is_empty()).collect();
    let state = Arc::new(Observed { remediator, metrics_tokens });
    Router::new()
        .route("/healthz", get(|| async { Reply::json(StatusCode::OK, json!({ "status": "ok" })) }))
        .route("/readyz", get(ready::<H>))
        .route("/metrics", get(render::<H>))
        .with_state(state)
}

async fn ready<H: Hooks>(State(state): State<Arc<Observed<H>>>) -> Response {
    let health = state.remediator.health();
    let status = if health.is_healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Reply::json(status, json!(health))
}

async fn render<H: Hooks>(State(state): State<Arc<Observed<H>>>, headers: HeaderMap) -> Response {
    if state.metrics_tokens.is_empty() {
        return reply(StatusCode::FORBIDDEN, "no metrics token is configured");
    }
    if !bearer_ok(&headers, &state.metrics_tokens) {
        return reply(StatusCode::UNAUTHORIZED, "a metrics token is needed: Authorization: Bearer <token>");
    }
    match prometheus() {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => reply(StatusCode::NOT_FOUND, "another metrics recorder is installed in this process"),
    }
}

/// Sets the store's gauges every `every`, until the store is dropped.
pub(crate) fn watch_store(store: std::sync::Weak<dyn Store>, clock: Arc<dyn Clock>, every: Duration) {
    tokio::spawn(async move {
        loop {
            let Some(store) = store.upgrade() else { return };
            if let Ok(stats) = store.stats(clock.now()).await {
                for (phase, n) in &stats.by_phase {
                    metrics::gauge!(JOBS, "phase" => phase.clone()).set(*n as f64);
                }
                for (outcome, n) in &stats.by_outcome {
                    metrics::gauge!(JOBS, "outcome" => outcome.clone()).set(*n as f64);
                }
                metrics::gauge!(HELD_REPORTS).set(stats.held_reports as f64);
            }
            drop(store);
            tokio::time::sleep(every).await;
        }
    });
}
