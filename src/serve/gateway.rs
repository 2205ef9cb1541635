//! The gateway for new assets: `POST /assets` through the service. The caller's request goes to LightFlow as it
//! came, with one callback entry added (the asset's, which reports its first end to the service), and the asset's
//! parameters are kept in the store, so that when the asset fails the service can resubmit it.
//!
//! Who may create assets through it: a caller with one of the service's gateway tokens (`Authorization: Bearer
//! ..`, compared in constant time). The LightFlow token the service calls LightFlow with is its own; a caller's
//! LightFlow token is never taken or passed on.
//!
//! The asset gets an id of the service's (`a-` and 22 characters of 128 random bits, in the `x-remedy-asset` header of the answer):
//! the id of its jobs, made before LightFlow answers, so that a callback that comes at once finds it. Its uuids
//! (the first, and those of the attempts that replace it) are its lineage.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::reply::{Reply, reply};
use super::sweeper::CREATED;
use crate::classify::FailureKind;
use crate::lightflow::{CallbackUrls, ClientError, LightFlowClient, callbacks_of};
use crate::store::{Clock, MAX_PARAMETERS_BYTES, Store};

/// The header that names the asset's id in the service.
pub const ASSET_HEADER: &str = "x-remedy-asset";

struct Gateway {
    client: LightFlowClient,
    urls: CallbackUrls,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: Vec<String>,
}

/// The gateway's router (`POST /` creates an asset; `GET /{id}` reads what the service knows of one: its
/// parameters, its lineage and its latest job), to mount at `/assets`. `tokens`: the bearer tokens a caller
/// must present (none: every request is refused).
///
/// ```no_run
/// use axum::Router;
/// use lightflow_remedy::lightflow::{CallbackKey, CallbackUrls, LightFlowClient, TokenSource};
/// use lightflow_remedy::serve::gateway_router;
/// use lightflow_remedy::store::{MemoryStore, Store, SystemClock};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = LightFlowClient::new(TokenSource::env("LIGHTFLOW_TOKEN"))?;
/// let urls = CallbackUrls::new("https://remedy.example.com/callbacks/lightflow", CallbackKey::generate()?)?;
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let tokens = vec![std::env::var("REMEDY_GATEWAY_TOKEN")?];
/// let app: Router = Router::new().nest("/assets", gateway_router(client, urls, store, Arc::new(SystemClock), tokens));
/// # drop(app);
/// # Ok(()) }
/// ```
pub fn gateway_router(
    client: LightFlowClient,
    urls: CallbackUrls,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: Vec<String>,
) -> Router {
    let tokens = tokens.into_iter().filter(|t| !t.is_empty()).collect();
    let gateway = Arc::new(Gateway { client, urls, store, clock, tokens });
    Router::new()
        .route("/", post(create))
        .route("/{id}", get(read))
        .layer(DefaultBodyLimit::max(MAX_PARAMETERS_BYTES + 1024))
        .with_state(gateway)
}

/// Whether `headers` carry one of `tokens` as a bearer token.
pub(crate) fn bearer_ok(headers: &HeaderMap, tokens: &[String]) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Every token is compared, so that the time taken says nothing of which one nearly matched.
    tokens.iter().fold(false, |ok, t| ok | (t.len() == given.len() && bool::from(t.as_bytes().ct_eq(given.as_bytes()))))
}

async fn create(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    if gateway.tokens.is_empty() {
        return reply(StatusCode::FORBIDDEN, "the gateway takes no requests: no gateway token is configured");
    }
    if !bearer_ok(&headers, &gateway.tokens) {
        return reply(StatusCode::UNAUTHORIZED, "a gateway token is needed: Authorization: Bearer <token>");
    }
    let mut parameters = match read_parameters(&body) {
        Ok(parameters) => parameters,
        Err(why) => return reply(StatusCode::BAD_REQUEST, &why),
    };
    let Some(asset_id) = new_asset_id() else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "no random numbers to make the asset's id: try again");
    };
    if let Err(why) = add_callback(&mut parameters, &gateway.urls, &asset_id) {
        return reply(StatusCode::BAD_REQUEST, &why);
    }
    let text = Value::Object(parameters.clone()).to_string();
    if let Err(e) = gateway.store.put_asset(&asset_id, None, &text, gateway.clock.now()).await {
        tracing::error!(error = %e, "a new asset's parameters could not be recorded");
        return reply(StatusCode::SERVICE_UNAVAILABLE, "the store cannot record the asset now: nothing was created");
    }
    let created = match gateway.client.create_asset(&parameters).await {
        Ok(created) => created,
        Err(ClientError::Failed(failure)) => {
            let status = match failure.kind() {
                FailureKind::Api => StatusCode::from_u16(failure.code()).unwrap_or(StatusCode::BAD_GATEWAY),
                FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                FailureKind::Asset => StatusCode::BAD_GATEWAY,
            };
            let body = json!({ "message": failure.message(), "failure": failure });
            return Reply::json(status, body);
        }
        Err(e) => return reply(StatusCode::BAD_GATEWAY, &format!("LightFlow's answer could not be read: {e}")),
    };
    let uuid = created.uuid().to_owned();
    if let Err(e) =
        gateway.store.add_lineage(&asset_id, &uuid, &format!("{asset_id}{CREATED}"), gateway.clock.now()).await
    {
        tracing::warn!(asset = %asset_id, uuid, error = %e, "the new asset's uuid could not be recorded");
    }
    tracing::info!(asset = %asset_id, uuid, "asset created through the gateway");
    let mut response = Reply::json(StatusCode::CREATED, Value::Object(created.document().clone()));
    if let Ok(value) = HeaderValue::from_str(&asset_id) {
        response.headers_mut().insert(ASSET_HEADER, value);
    }
    response.into_response()
}

/// What the service knows of an asset it created: its parameters, the uuids of its lineage (the first is the
/// asset LightFlow made; the others, the attempts that replaced it), and its latest job.
async fn read(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if gateway.tokens.is_empty() || !bearer_ok(&headers, &gateway.tokens) {
        return reply(StatusCode::UNAUTHORIZED, "a gateway token is needed: Authorization: Bearer <token>");
    }
    let found = async {
        let Some(asset) = gateway.store.asset(&id).await? else { return Ok(None) };
        let lineage = gateway.store.lineage(&asset.asset_id).await?;
        let job = gateway.store.job_of(&asset.asset_id).await?;
        Ok::<_, crate::store::StoreError>(Some((asset, lineage, job)))
    };
    match found.await {
        Ok(Some((asset, lineage, job))) => {
            let parameters: Value = serde_json::from_str(&asset.parameters).unwrap_or(Value::Null);
            let job = job.map(|j| {
                json!({ "job": j.id, "phase": j.phase, "outcome": j.outcome, "code": j.last_code,
                                          "attempts": j.attempts })
            });
            Reply::json(
                StatusCode::OK,
                json!({ "asset": asset.asset_id, "parameters": parameters,
                                                 "lineage": lineage, "job": job }),
            )
        }
        Ok(None) => reply(StatusCode::NOT_FOUND, &format!("no asset `{id}` was created through this service")),
        Err(crate::store::StoreError::Invalid { reason, .. }) => reply(StatusCode::BAD_REQUEST, &reason),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, &format!("the store cannot answer now: {e}")),
    }
}

/// The `parameters` object of a `POST /assets` body.
fn read_parameters(body: &[u8]) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match value {
        Value::Object(mut body) => match body.remove("parameters") {
            Some(Value::Object(parameters)) => Ok(parameters),
            Some(_) => Err("`parameters` is not an object".to_owned()),
            None => Err("the body has no `parameters` (LightFlow takes {\"parameters\": {...}})".to_owned()),
        },
        _ => Err("the body is not a JSON object".to_owned()),
    }
}

/// Adds the asset's callback entry to `parameters.callbacks`, beside the caller's own.
fn add_callback(parameters: &mut Map<String, Value>, urls: &CallbackUrls, asset_id: &str) -> Result<(), String> {
    callbacks_of(parameters)?.push(urls.asset_entry(asset_id).to_json());
    Ok(())
}

/// A new asset's id: `a-` and 128 random bits from the OS, in URL-safe base64 (24 characters in all).
fn new_asset_id() -> Option<String> {
    use base64::Engine as _;
    use rand::TryRng as _;
    let mut bytes = [0u8; 16];
    rand::rngs::SysRng.try_fill_bytes(&mut bytes).ok()?;
    Some(format!("a-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}
