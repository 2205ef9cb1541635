//! `remedy serve --demo`: the service against a simulated LightFlow, served over loopback HTTP in the same
//! process, so that a newcomer sees assets fail and be remediated (in the logs, `/metrics` and the store) with no
//! LightFlow account.
//!
//! The simulated LightFlow takes `POST /assets` and `GET /assets?uuid=..` as LightFlow documents them (a bearer
//! token, `{"parameters": ..}`), runs each encode for a few seconds, and calls back every entry of the asset's
//! `callbacks` when it ends (in the entry's method, with its headers). A first encode fails two times in three
//! with a code of the catalogue's usual ones; a resubmission succeeds three times in four. A driver creates
//! assets through the service's gateway, one a second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::gateway::bearer_ok;
use super::reply::{Reply, reply};
use crate::classify::catalogue;

/// The demo's policies over the defaults: the same actions, with waits of seconds rather than minutes, so that a
/// run shows recoveries at once.
pub const POLICY: &str = r#"// remedy serve --demo: the default actions, with short waits.
on([2001, 2002], retry(#{ attempts: 3, initial: "2s", multiplier: 2.0 }).then(fail("The input could not be downloaded after 3 retries: check the storage")));
on(2503, retry(#{ attempts: 3, initial: "3s", multiplier: 2.0 }).then(fail("The remote server stayed unavailable (HTTP 503)")));
"#;

/// The codes a demo encode fails with: transient ones the default policies retry, and a few they end at once.
const CODES: &[u16] = &[2503, 2503, 2002, 2001, 2404, 2062];

struct Fake {
    token: String,
    rng: Mutex<Xoshiro256PlusPlus>,
    assets: Mutex<HashMap<String, Value>>,
    http: reqwest::Client,
    encode: Duration,
}

/// A simulated LightFlow on a loopback port, for the demo and for tests: its base URL.
pub async fn start_lightflow(token: &str, seed: u64, encode: Duration) -> std::io::Result<String> {
    let fake = Arc::new(Fake {
        token: token.to_owned(),
        rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(seed)),
        assets: Mutex::new(HashMap::new()),
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(std::io::Error::other)?,
        encode,
    });
    let app = Router::new().route("/assets", post(create).get(list)).with_state(fake);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

async fn create(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !bearer_ok(&headers, std::slice::from_ref(&fake.token)) {
        return reply(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, "the body is not a JSON object");
    };
    let Some(Value::Object(parameters)) = body.remove("parameters") else {
        return reply(StatusCode::BAD_REQUEST, "`parameters` is missing");
    };
    let resubmission = parameters
        .get("callbacks")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|c| c["url"].as_str().is_some_and(|u| u.contains("attempt="))));
    let (uuid, fails) = {
        let mut rng = fake.rng.lock().unwrap_or_else(|e| e.into_inner());
        let uuid = format!("{:08x}-demo-{:012x}", rng.random::<u32>(), rng.random::<u64>() >> 16);
        let fails = if resubmission { rng.random_bool(0.25) } else { rng.random_bool(2.0 / 3.0) };
        (uuid, fails.then(|| CODES[rng.random_range(0..CODES.len())]))
    };
    let asset = json!({ "uuid": uuid, "status": "queued", "name": parameters.get("name"), "parameters": parameters });
    fake.assets.lock().unwrap_or_else(|e| e.into_inner()).insert(uuid.clone(), asset.clone());
    tokio::spawn(encode(fake.clone(), uuid, fails));
    Reply::json(StatusCode::OK, asset)
}

#[derive(serde::Deserialize)]
struct ListParams {
    uuid: Option<String>,
}

async fn list(State(fake): State<Arc<Fake>>, headers: HeaderMap, Query(params): Query<ListParams>) -> Response {
    if !bearer_ok(&headers, std::slice::from_ref(&fake.token)) {
        return reply(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let assets = fake.assets.lock().unwrap_or_else(|e| e.into_inner());
    let items: Vec<Value> = match &params.uuid {
        Some(uuid) => assets.get(uuid).cloned().into_iter().collect(),
        None => assets.values().take(20).cloned().collect(),
    };
    let page = json!({ "totalItems": items.len(), "pageIndex": 0, "pageSize": 20, "pages": 1, "items": items });
    (StatusCode::OK, axum::Json(page)).into_response()
}

/// Runs an encode, then calls back every entry of its asset's `callbacks`.
async fn encode(fake: Arc<Fake>, uuid: String, fails: Option<u16>) {
    tokio::time::sleep(fake.encode).await;
    let now = crate::lightflow::iso_timestamp(std::time::SystemTime::now());
    let (callbacks, report) = {
        let mut assets = fake.assets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(asset) = assets.get_mut(&uuid) else { return };
        asset["endDate"] = json!(now);
        match fails {
            Some(code) => {
                asset["status"] = json!("error");
                asset["assetError"] = json!({ "code": code, "message": catalogue::describe(code).name });
            }
            None => asset["status"] = json!("finished"),
        }
        let report = json!({ "uuid": uuid, "status": asset["status"], "endDate": now,
                             "assetError": asset.get("assetError") });
        (asset["parameters"]["callbacks"].as_array().cloned().unwrap_or_default(), report)
    };
    for entry in callbacks {
        let Some(url) = entry["url"].as_str() else { continue };
        let get = entry["method"].as_str() == Some("GET");
        let mut request = if get {
            let sep = if url.contains('?') { '&' } else { '?' };
            let status = report["status"].as_str().unwrap_or_default();
            fake.http.get(format!("{url}{sep}status={status}&endDate={}", now.replace(':', "%3A")))
        } else {
            fake.http.post(url).json(&report)
        };
        for header in entry["headers"].as_array().into_iter().flatten() {
            if let (Some(name), Some(value)) = (header["name"].as_str(), header["value"].as_str()) {
                request = request.header(name, value);
            }
        }
        if let Err(e) = request.send().await {
            tracing::debug!(error = %e, "the simulated LightFlow could not call back");
        }
    }
}

/// Creates `count` assets through the service's gateway at `service` (one a second), as a pipeline would.
pub async fn drive(service: String, gateway_token: String, count: usize) {
    let http = reqwest::Client::new();
    for i in 0..count {
        let body = json!({ "parameters": {
            "name": format!("demo-{i}"),
            "input": { "urlPath": format!("https://media.example.com/demo-{i}.mp4") },
        }});
        let sent = http.post(format!("{service}/assets")).bearer_auth(&gateway_token).json(&body).send().await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "the demo driver could not reach the gateway");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
