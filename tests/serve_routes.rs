//! The service's routes in process, against the simulated LightFlow over loopback HTTP: what a caller without a
//! credential, with a forged one, or with malformed input gets (a 4xx naming what was wrong, never a 5xx), and an
//! asset created through the gateway, failed, resubmitted and recovered through callbacks the service made.
#![cfg(feature = "serve")]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use lightflow_remedy::lightflow::TokenSource;
use lightflow_remedy::serve::{BuildOptions, Secrets, ServeConfig, Service, demo};
use serde_json::{Value, json};
use tower::ServiceExt;

const GATEWAY: &str = "gateway-token-for-tests";
const METRICS: &str = "metrics-token-for-tests";

struct TestSecrets;

impl Secrets for TestSecrets {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "REMEDY_GATEWAY_TOKENS" => Some(format!("other-token,{GATEWAY}")),
            "REMEDY_METRICS_TOKENS" => Some(METRICS.to_owned()),
            _ => None,
        }
    }
}

/// A service on a SQLite file, against a simulated LightFlow whose encodes take `encode`, with fast policies.
async fn service(dir: &tempfile::TempDir, encode: Duration, seed: u64) -> Service {
    let lightflow = demo::start_lightflow("lf-token", seed, encode).await.unwrap();
    let mut config = ServeConfig::from_toml(&format!(
        "store = \"sqlite://{}\"\npublic_url = \"http://127.0.0.1:9\"\n[lightflow]\nbase_url = \"{lightflow}\"\n\
         [engine]\nawait_result = \"20s\"",
        dir.path().join("jobs.db").display()
    ))
    .unwrap();
    config = config.with_env(|_| None).unwrap();
    let mut options = BuildOptions::default();
    options.token = Some(TokenSource::fixed("lf-token"));
    options.policy = Some(("fast.rhai".into(), demo::POLICY.into()));
    Service::build(&config, &TestSecrets, options).await.unwrap()
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).header("content-type", "application/json").body(body.into()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_4xx_that_names_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(&dir, Duration::from_millis(200), 1).await;
    let router = service.router.clone();
    let urls = service.callbacks.clone();
    let job7 = urls.entry(
        lightflow_remedy::engine::JobId(7),
        &lightflow_remedy::engine::AttemptKey { asset_id: "a1", job: lightflow_remedy::engine::JobId(7), attempt: 1 },
    );
    let query7 = job7.url.split_once('?').unwrap().1.to_owned();
    let forged_token = query7.replace("token=", "token=x");
    let other_job = query7.replace("%237.1", "%238.1");
    let asset = urls.asset_entry("a-known");
    let asset_query = asset.url.split_once('?').unwrap().1.to_owned();
    let big = format!("{{\"status\":\"error\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let cb = "/callbacks/lightflow";
    // Each row: the request, the status it gets, and a word its message must hold ("" for none).
    let table: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (get(cb), StatusCode::BAD_REQUEST, "status"),
        (post(cb, "{not json"), StatusCode::BAD_REQUEST, "not a LightFlow callback"),
        (post(cb, "[1, 2]"), StatusCode::BAD_REQUEST, "not a LightFlow callback"),
        (post(cb, vec![0xff, 0xfe, b'{']), StatusCode::BAD_REQUEST, "UTF-8"),
        (post(cb, big), StatusCode::PAYLOAD_TOO_LARGE, ""),
        (get(&format!("{cb}?status=finished")), StatusCode::UNAUTHORIZED, "names no attempt"),
        (get(&format!("{cb}?status=finished&uuid=u1")), StatusCode::UNAUTHORIZED, "names no attempt"),
        (get(&format!("{cb}?attempt=a1%237.1&status=finished")), StatusCode::UNAUTHORIZED, "token"),
        (get(&format!("{cb}?{forged_token}&status=finished")), StatusCode::UNAUTHORIZED, "token"),
        (get(&format!("{cb}?{other_job}&status=finished")), StatusCode::UNAUTHORIZED, "token"),
        (get(&format!("{cb}?attempt=nonsense&token=x&status=finished")), StatusCode::UNAUTHORIZED, "attempt key"),
        (get(&format!("{cb}?attempt=a%00b%237.1&token=x&status=error")), StatusCode::UNAUTHORIZED, ""),
        (get(&format!("{cb}?asset=a-known&token=forged&status=error")), StatusCode::UNAUTHORIZED, "token"),
        (
            get(&format!("{cb}?{}&status=error", asset_query.replace("a-known", "a-other"))),
            StatusCode::UNAUTHORIZED,
            "token",
        ),
        (get(&format!("{cb}?{query7}&status=sideways")), StatusCode::BAD_REQUEST, "sideways"),
        (get("/metrics"), StatusCode::UNAUTHORIZED, "metrics token"),
        (
            Request::get("/metrics").header("authorization", "Bearer nope").body(Body::empty()).unwrap(),
            StatusCode::UNAUTHORIZED,
            "metrics token",
        ),
        (post("/assets", "{}"), StatusCode::UNAUTHORIZED, "gateway token"),
        (
            Request::post("/assets")
                .header("authorization", format!("Bearer {GATEWAY}x"))
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "gateway token",
        ),
        (
            Request::post("/assets")
                .header("authorization", format!("Bearer {GATEWAY}"))
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "parameters",
        ),
        (
            Request::post("/assets")
                .header("authorization", format!("Bearer {GATEWAY}"))
                .body(Body::from("nope"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            Request::post("/assets")
                .header("authorization", format!("Bearer {GATEWAY}"))
                .body(Body::from(r#"{"parameters": {"callbacks": 5}}"#))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "callbacks",
        ),
        (get("/assets/a-nobody"), StatusCode::UNAUTHORIZED, "gateway token"),
        (
            Request::get("/assets/a-nobody")
                .header("authorization", format!("Bearer {GATEWAY}"))
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "a-nobody",
        ),
    ];
    for (i, (request, status, says)) in table.into_iter().enumerate() {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = send(&router, request).await;
        assert_eq!(got, status, "row {i}: {what}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(says), "row {i}: {what}: {body}");
    }
    // A valid token for a job the store does not have: answered, changes nothing.
    let (status, body) = send(&router, get(&format!("{cb}?{query7}&status=finished"))).await;
    assert_eq!((status, body["answer"].as_str()), (StatusCode::OK, Some("unknown")), "{body}");
    // Health needs no token; metrics with one.
    assert_eq!(send(&router, get("/healthz")).await.0, StatusCode::OK);
    let (status, health) = send(&router, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let metrics = Request::get("/metrics").header("authorization", format!("Bearer {METRICS}")).body(Body::empty());
    let response = router.clone().oneshot(metrics.unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&text).contains("remedy_callbacks_refused_total"), "refusals are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_made_through_the_gateway_is_remediated_through_the_callbacks_the_service_made() {
    remediated_through("POST").await;
}

/// LightFlow's `GET` callbacks carry no code: the service asks LightFlow for each failed asset's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_callbacks_without_a_code_are_remediated_on_the_assets_own_code() {
    remediated_through("GET").await;
}

async fn remediated_through(method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lightflow = demo::start_lightflow("lf-token", 7, Duration::from_millis(300)).await.unwrap();
    let config = ServeConfig::from_toml(&format!(
        "listen = \"{addr}\"\nstore = \"sqlite://{}\"\n[lightflow]\nbase_url = \"{lightflow}\"\n\
         [callbacks]\nmethod = \"{method}\"\n[engine]\nawait_result = \"20s\"",
        dir.path().join("jobs2.db").display()
    ))
    .unwrap()
    .with_env(|_| None)
    .unwrap();
    let mut options = BuildOptions::default();
    options.token = Some(TokenSource::fixed("lf-token"));
    options.policy = Some(("fast.rhai".into(), demo::POLICY.into()));
    let service = Service::build(&config, &TestSecrets, options).await.unwrap();
    let store = service.store.clone();
    tokio::spawn(service.serve(listener, std::future::pending(), Duration::from_secs(1)));
    let http = reqwest::Client::new();
    let mut assets = Vec::new();
    for i in 0..8 {
        let body = json!({ "parameters": { "name": format!("t-{i}"), "input": { "urlPath": format!("https://m.example/{i}.mp4") } } });
        let response =
            http.post(format!("http://{addr}/assets")).bearer_auth(GATEWAY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let id = response.headers()["x-remedy-asset"].to_str().unwrap().to_owned();
        let created: Value = response.json().await.unwrap();
        assert!(created["uuid"].is_string(), "{created}");
        assets.push(id);
    }
    // Every asset's first encode ends; those that failed are remediated until they end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let recovered_with_a_new_uuid = loop {
        let mut open = 0;
        let mut recovered = 0;
        for id in &assets {
            let read = http.get(format!("http://{addr}/assets/{id}")).bearer_auth(GATEWAY).send().await.unwrap();
            let read: Value = read.json().await.unwrap();
            match read["job"]["phase"].as_str() {
                Some("finished")
                    if read["job"]["outcome"] == "recovered" && read["lineage"].as_array().map_or(0, Vec::len) >= 2 =>
                {
                    recovered += 1;
                }
                Some("finished") => {}
                Some(_) => open += 1,
                None => {}
            }
        }
        // Past the first encodes (a second), nothing open is left to end.
        if open == 0 && tokio::time::Instant::now() > deadline - Duration::from_secs(55) {
            break recovered;
        }
        assert!(tokio::time::Instant::now() < deadline, "{open} jobs still open");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(recovered_with_a_new_uuid > 0, "at least one asset recovered through a resubmission");
    let metrics = http.get(format!("http://{addr}/metrics")).bearer_auth(METRICS).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for name in ["remedy_decisions_total", "remedy_outcomes_total", "remedy_hook_seconds", "remedy_reports_total"] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    assert!(metrics.contains(r#"outcome="recovered""#), "{metrics}");
    let stats = store.stats(lightflow_remedy::store::Timestamp(i64::MAX / 2)).await.unwrap();
    let ended: u64 = stats.by_outcome.values().sum();
    assert_eq!(stats.by_phase.values().sum::<u64>(), 0, "{stats:?}");
    assert!(ended as usize <= assets.len(), "one job per failed asset at most: {stats:?}");
    let rows = store.list(&lightflow_remedy::store::ListFilter::default()).await.unwrap();
    assert!(rows.iter().all(|r| r.last_code != "1000"), "every job on its asset's own code: {rows:?}");
    // Each job's callbacks are on its timeline: the first failure's, and its attempts'.
    for row in &rows {
        let logged = store.actions(Some(&row.asset_id), 100).await.unwrap();
        let callbacks = logged.iter().filter(|a| a.role == lightflow_remedy::serve::CALLBACK_ROLE).count();
        assert!(callbacks > usize::from(row.attempts > 0), "{}: {logged:?}", row.asset_id);
    }
}
