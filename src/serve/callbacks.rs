//! The callback receiver: LightFlow's `POST` (JSON body) and `GET` (query) callbacks, checked and handed to the
//! store at once. The engine does not run inside the request: the report is written, LightFlow gets its answer,
//! and whichever replica claims the job decides.
//!
//! A callback is addressed by what its URL names, which the library made:
//!
//! - an attempt (`attempt=asset#job.n&token=..`): its token must be the job's; the report goes to that attempt
//!   only (a stale one is `older_attempt`);
//! - a new asset made through the gateway (`asset=ID&token=..`): its token must be the asset's; an `error` starts
//!   the asset's remediation (once per asset: a duplicate joins it), other ends change nothing.
//!
//! Anything else is refused (401) and counted; malformed input is a 400, a body over 64 KiB a 413, never a 5xx.
//! A store that cannot take the report is a 503, so that LightFlow calls again.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;
use tower::limit::ConcurrencyLimitLayer;

use super::reply::{Reply, reply};
use super::sweeper::{first_failure_key, look_up};
use crate::classify::{Callback, CallbackResult};
use crate::engine::{Hooks, Job, Remediator, metric_names};
use crate::lightflow::{ATTEMPT_PARAM, CallbackUrls, LightFlowClient};
use crate::store::{Clock, StoreError};

/// The largest callback body taken.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// The role under which LightFlow's callbacks are logged beside the operators' actions (for a job's timeline).
pub const CALLBACK_ROLE: &str = "lightflow";

/// Refused callbacks, by `reason`.
pub const CALLBACKS_REFUSED: &str = "remedy_callbacks_refused_total";

struct Receiver<H: Hooks> {
    remediator: Remediator<H>,
    urls: CallbackUrls,
    /// Asks LightFlow for a new asset's `assetError` when its error callback carries none.
    client: Option<LightFlowClient>,
}

/// The receiver's router, to mount where the callback URLs point (`remedy serve` mounts it at
/// `/callbacks/lightflow`): `GET` and `POST` at its root. At most `max_concurrent` callbacks are handled at
/// once; the others wait their turn (none is dropped).
///
/// ```
/// use axum::Router;
/// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator};
/// use lightflow_remedy::lightflow::{CallbackKey, CallbackUrls};
/// use lightflow_remedy::serve::callback_router;
/// use lightflow_remedy::Policies;
/// use serde_json::{Map, Value};
///
/// struct Host;
/// impl Hooks for Host {
///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
///         Ok(Attempt::Succeeded)
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let remediator = Remediator::builder(Policies::defaults(), Host).build();
/// let urls = CallbackUrls::new("https://remedy.example.com/callbacks/lightflow", CallbackKey::generate()?)?;
/// let app: Router = Router::new().nest("/callbacks/lightflow", callback_router(remediator, urls, 64));
/// # drop(app);
/// # Ok(()) }
/// ```
pub fn callback_router<H: Hooks>(remediator: Remediator<H>, urls: CallbackUrls, max_concurrent: usize) -> Router {
    router(Receiver { remediator, urls, client: None }, max_concurrent)
}

/// [`callback_router`], which also asks LightFlow (through `client`) for the `assetError` of a new asset whose
/// error callback carries no code (LightFlow's `GET` form never does), so that its remediation starts from the
/// asset's real failure rather than code 1000. `remedy serve` mounts this one.
pub fn callback_router_asking<H: Hooks>(
    remediator: Remediator<H>,
    urls: CallbackUrls,
    max_concurrent: usize,
    client: LightFlowClient,
) -> Router {
    router(Receiver { remediator, urls, client: Some(client) }, max_concurrent)
}

fn router<H: Hooks>(receiver: Receiver<H>, max_concurrent: usize) -> Router {
    let receiver = Arc::new(receiver);
    Router::new()
        .route("/", post(receive::<H>).get(receive::<H>))
        .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
        .layer(ConcurrencyLimitLayer::new(max_concurrent.max(1)))
        .with_state(receiver)
}

fn refused(reason: &'static str, message: &str) -> Response {
    metrics::counter!(CALLBACKS_REFUSED, "reason" => reason).increment(1);
    reply(StatusCode::UNAUTHORIZED, message)
}

async fn receive<H: Hooks>(
    State(receiver): State<Arc<Receiver<H>>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match std::str::from_utf8(&body) {
        Ok("") => None,
        Ok(text) => Some(text),
        Err(_) => return reply(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"),
    };
    let callback = match Callback::from_request(query.as_deref(), body) {
        Ok(callback) => callback,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &format!("not a LightFlow callback: {e}")),
    };
    let header_list: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    if callback.param(ATTEMPT_PARAM).is_some() {
        if let Err(why) = receiver.urls.authenticate(&callback, header_list) {
            tracing::warn!(reason = %why, "a callback was refused");
            return refused("attempt", &why.to_string());
        }
        return match receiver.remediator.report_callback(&callback).await {
            Ok(Some(answer)) => {
                if let (Some(job), Some(key)) = (answer_job(&answer), callback.param(ATTEMPT_PARAM)) {
                    let asset = key.rsplit_once('#').map_or(key, |(asset, _)| asset);
                    log_callback(&receiver.remediator, asset, Some(job), &callback, answer.as_str()).await;
                }
                Reply::json(StatusCode::OK, json!(answer))
            }
            Ok(None) => Reply::json(StatusCode::OK, json!({ "answer": "not_ended" })),
            Err(e) => store_error(e),
        };
    }
    if callback.asset.is_some() {
        let asset = match receiver.urls.authenticate_asset(&callback, header_list) {
            Ok(asset) => asset.to_owned(),
            Err(why) => {
                tracing::warn!(reason = %why, "a callback was refused");
                return refused("asset", &why.to_string());
            }
        };
        return first_end(&receiver, &asset, &callback).await;
    }
    refused("unaddressed", "the callback names no attempt and no asset of this service")
}

/// A new asset's end: an error starts its remediation, once.
async fn first_end<H: Hooks>(receiver: &Receiver<H>, asset: &str, callback: &Callback) -> Response {
    let remediator = &receiver.remediator;
    let failure = match callback.result() {
        CallbackResult::Failed(failure) => failure,
        CallbackResult::NotFinished => return Reply::json(StatusCode::OK, json!({ "answer": "not_ended" })),
        CallbackResult::Succeeded | CallbackResult::Canceled => {
            settle(remediator, asset).await;
            return Reply::json(StatusCode::OK, json!({ "answer": "nothing_to_do" }));
        }
    };
    if let (Some(client), store) = (&receiver.client, remediator.store())
        && failure.carries_no_code()
    {
        log_callback(remediator, asset, None, callback, "its code asked of LightFlow").await;
        // The asset's own failure is asked of LightFlow, off the request; until it is known the asset stays open,
        // and the sweeper asks again.
        let (remediator, store, client, asset) = (remediator.clone(), store.clone(), client.clone(), asset.to_owned());
        tokio::spawn(async move {
            if let Err(e) = look_up(&remediator, &*store, &client, &asset).await {
                tracing::warn!(asset, error = %e, "the asset's failure could not be asked of LightFlow");
            }
        });
        return Reply::json(StatusCode::ACCEPTED, json!({ "answer": "looking_up" }));
    }
    // One job per asset's first failure, whichever replica gets the callback and however often it comes.
    let dedupe = first_failure_key(asset);
    match remediator.enqueue_once(Job::new(asset), failure, &dedupe).await {
        Ok(handle) => {
            settle(remediator, asset).await;
            log_callback(remediator, asset, None, callback, if handle.is_joined() { "joined" } else { "enqueued" })
                .await;
            metrics::counter!(metric_names::REPORTS, "answer" => "enqueued").increment(1);
            let joined = handle.is_joined();
            Reply::json(StatusCode::ACCEPTED, json!({ "answer": if joined { "joined" } else { "enqueued" } }))
        }
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, &format!("the job could not be written: {e}")),
    }
}

/// The job a report's answer names, if any.
fn answer_job(answer: &crate::store::ReportAnswer) -> Option<crate::store::JobId> {
    use crate::store::ReportAnswer as A;
    match *answer {
        A::Applied { job }
        | A::Early { job }
        | A::Duplicate { job }
        | A::OlderAttempt { job }
        | A::Finished { job }
        | A::Ambiguous { job } => Some(job),
        A::Held | A::Unknown => None,
    }
}

/// Logs a callback that reached a job, for its timeline (what it said, and what became of it).
async fn log_callback<H: Hooks>(
    remediator: &Remediator<H>,
    asset: &str,
    job: Option<crate::store::JobId>,
    callback: &Callback,
    answer: &str,
) {
    let store = remediator.store();
    let said = match &callback.failure {
        Some(failure) => format!("{} {}", callback.status.as_str(), failure.key()),
        None => callback.status.as_str().to_owned(),
    };
    let action =
        crate::store::NewAction { asset_id: asset, job, action: "callback", role: CALLBACK_ROLE, who: &said, answer };
    let now = store.own_clock().map_or_else(|| crate::store::SystemClock.now(), |c| c.now());
    if let Err(e) = store.log_action(action, now).await {
        tracing::debug!(asset, error = %e, "a callback could not be logged for the job's timeline");
    }
}

/// Notes that the asset's first end is known (the sweeper stops asking LightFlow for it).
async fn settle<H: Hooks>(remediator: &Remediator<H>, asset: &str) {
    if let Err(e) = remediator.store().settle_asset(asset).await {
        tracing::debug!(asset, error = %e, "the asset could not be settled: the sweeper will look it up");
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Invalid { .. } => reply(StatusCode::BAD_REQUEST, &e.to_string()),
        e => {
            tracing::error!(error = %e, "a callback could not be written to the store");
            reply(StatusCode::SERVICE_UNAVAILABLE, "the store cannot take the report now: call again later")
        }
    }
}
