//! A fake LightFlow API on loopback (axum on `127.0.0.1:0`), for `tests/lightflow_*.rs`.
//!
//! It records every request, answers scripted answers first (status, body, headers, a delay), and otherwise
//! acts as a small model of LightFlow: `POST /assets` creates an asset (`uuid-1`, `uuid-2`, ... in `queued`),
//! `GET /assets` lists them with the `uuid`, `status`, `inputUrlPath` and `referenceId` filters and paging.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16, body: &str) -> Self {
        Answer { status, body: body.to_owned(), headers: Vec::new(), delay: Duration::ZERO }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Seen {
    /// The query's pairs, decoded.
    pub fn pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
    assets: Mutex<Vec<Value>>,
}

/// The fake; dropped, its server keeps running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeLightFlow {
    pub base: String,
    shared: Arc<Shared>,
}

impl FakeLightFlow {
    pub async fn start() -> FakeLightFlow {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLightFlow { base: format!("http://{addr}"), shared }
    }

    /// The next request is answered with `answer`, whatever it is.
    pub fn script(&self, answer: Answer) {
        self.shared.answers.lock().unwrap().push_back(answer);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("a request was made")
    }

    /// Adds an asset as LightFlow would list it.
    pub fn add_asset(&self, asset: Value) {
        self.shared.assets.lock().unwrap().push(asset);
    }

    /// Sets an asset's status (and `assetError`, when given).
    pub fn set_status(&self, uuid: &str, status: &str, error: Option<Value>) {
        let mut assets = self.shared.assets.lock().unwrap();
        for asset in assets.iter_mut().filter(|a| a["uuid"] == uuid) {
            asset["status"] = json!(status);
            if let Some(error) = &error {
                asset["assetError"] = error.clone();
            }
        }
    }

    pub fn assets(&self) -> Vec<Value> {
        self.shared.assets.lock().unwrap().clone()
    }

    /// The `POST /assets` requests received.
    pub fn posts(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == "POST" && s.path == "/assets").collect()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: header("authorization"),
        accept: header("accept"),
        content_type: header("content-type"),
        body,
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let scripted = shared.answers.lock().unwrap().pop_front();
    let answer = match scripted {
        Some(answer) => answer,
        None => model(&shared, &seen),
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(*name, value.as_str());
    }
    response.body(Body::from(answer.body)).expect("a response")
}

fn model(shared: &Shared, seen: &Seen) -> Answer {
    match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/assets") => {
            let mut assets = shared.assets.lock().unwrap();
            let uuid = format!("uuid-{}", assets.len() + 1);
            let params = seen.json()["parameters"].clone();
            let asset = json!({"uuid": uuid, "status": "queued", "input": params["input"],
                               "referenceId": params["referenceId"]});
            assets.push(asset.clone());
            Answer::new(201, &asset.to_string())
        }
        ("GET", "/assets") => {
            let pairs = seen.pairs();
            let get = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let matches = |asset: &Value| {
                let field = |name: &str, filter: Option<String>| filter.is_none_or(|f| asset[name] == f.as_str());
                let status = get("status").is_none_or(|s| s.split(',').any(|s| asset["status"].as_str() == Some(s)));
                field("uuid", get("uuid"))
                    && field("referenceId", get("referenceId"))
                    && status
                    && get("inputUrlPath").is_none_or(|i| asset["input"]["urlPath"] == i.as_str())
            };
            let found: Vec<Value> = shared.assets.lock().unwrap().iter().filter(|a| matches(a)).cloned().collect();
            let index: usize = get("pageIndex").and_then(|i| i.parse().ok()).unwrap_or(0);
            let size: usize = get("pageSize").and_then(|s| s.parse().ok()).unwrap_or(20).max(1);
            let items: Vec<Value> = found.iter().skip(index * size).take(size).cloned().collect();
            let page = json!({"totalItems": found.len(), "pageIndex": index, "pageSize": size,
                              "pages": found.len().div_ceil(size), "items": items});
            Answer::new(200, &page.to_string())
        }
        _ => Answer::new(404, r#"{"message": "not found"}"#),
    }
}
