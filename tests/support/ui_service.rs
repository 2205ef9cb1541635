//! For the web view's tests: a service built in this process against the simulated LightFlow, with jobs in
//! every phase, served on a loopback port; an HTTP client that signs in as a browser would; and headless
//! Chromium behind `chromedriver`, started on a free port.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use lightflow_remedy::engine::{Job, ReportTarget, Reported};
use lightflow_remedy::lightflow::TokenSource;
use lightflow_remedy::serve::{BuildOptions, Secrets, ServeConfig, Service, demo, fingerprint};
use lightflow_remedy::store::{Clock, LedgerWrite, NewJob, Phase, Save, Store};
use lightflow_remedy::{Context, Failure};

/// The operator's token.
pub const OPERATOR: &str = "operator-token-for-the-browser-tests";
/// The viewer's token.
pub const VIEWER: &str = "viewer-token-for-the-browser-tests";
/// An asset id and a failure message that would run script if a page wrote them as markup.
pub const HOSTILE_ASSET: &str = "<script>alert(2)</script>";
pub const HOSTILE_MESSAGE: &str = "<script>alert(1)</script>";

/// The tests' policies: a download failure waits an hour, an unavailable server is resubmitted at once (and
/// awaits LightFlow's ten-minute encode), a missing input fails.
const POLICY: &str = r#"
on(2001, retry(#{ attempts: 3, initial: "1h", jitter: "none" }));
on(2503, retry(#{ attempts: 3, initial: "1s", jitter: "none" }));
on(2404, fail("The input is not there: check the input URL"));
"#;

struct TestSecrets;

impl Secrets for TestSecrets {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "REMEDY_UI_VIEWER_TOKENS" => Some(VIEWER.to_owned()),
            "REMEDY_UI_OPERATOR_TOKENS" => Some(OPERATOR.to_owned()),
            "REMEDY_GATEWAY_TOKENS" => Some("gateway-token".to_owned()),
            _ => None,
        }
    }
}

/// A service with jobs in every phase, served on a loopback port.
pub struct Running {
    /// `http://127.0.0.1:PORT/ui`.
    pub base: String,
    /// The service's store.
    pub store: Arc<dyn Store>,
    /// The operator token's fingerprint, as actions are logged.
    pub operator_fp: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Builds and serves the service, and brings its jobs to every phase: `wait-1`..`wait-3` and the hostile
    /// asset waiting, `failed-2404` failed, `awaiting-1` awaiting LightFlow, `recovered-1` recovered, `calling-1`
    /// held by another replica in the middle of a call.
    pub async fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let lightflow = demo::start_lightflow("lf-token", 3, Duration::from_secs(600)).await.unwrap();
        let config = ServeConfig::from_toml(&format!(
            "listen = \"{addr}\"\nstore = \"sqlite://{}\"\n[lightflow]\nbase_url = \"{lightflow}\"\n\
             [engine]\nawait_result = \"1h\"",
            dir.path().join("jobs.db").display()
        ))
        .unwrap()
        .with_env(|_| None)
        .unwrap();
        let mut options = BuildOptions::default();
        options.token = Some(TokenSource::fixed("lf-token"));
        options.policy = Some(("browser-tests.rhai".into(), POLICY.into()));
        let service = Service::build(&config, &TestSecrets, options).await.unwrap();
        let (store, remediator) = (service.store.clone(), service.remediator.clone());
        tokio::spawn(service.serve(listener, std::future::pending(), Duration::from_secs(1)));

        let now = || lightflow_remedy::store::SystemClock.now();
        let enqueue = |job: Job, failure: Failure| {
            let remediator = remediator.clone();
            async move { drop(remediator.enqueue(job, failure).await.unwrap()) }
        };
        for asset in ["wait-1", "wait-2", "wait-3"] {
            enqueue(Job::new(asset), Failure::asset(2001, "Error downloading input file").unwrap()).await;
        }
        let hostile =
            Job::new(HOSTILE_ASSET).with_context(Context::new().with("tenant", "<img src=x onerror=alert(3)>"));
        enqueue(hostile, Failure::asset(2001, HOSTILE_MESSAGE).unwrap()).await;
        enqueue(Job::new("failed-2404"), Failure::asset(2404, "Not found").unwrap()).await;
        for asset in ["awaiting-1", "recovered-1"] {
            let parameters =
                format!(r#"{{"name": "{asset}", "input": {{"urlPath": "https://m.example/{asset}.mp4"}}}}"#);
            store.put_asset(asset, None, &parameters, now()).await.unwrap();
            enqueue(Job::new(asset), Failure::asset(2503, "Service unavailable").unwrap()).await;
        }
        let phase_of = |asset: &'static str| {
            let store = store.clone();
            async move { store.job_of(asset).await.unwrap().map(|r| (r.phase, r.outcome, r.reference, r.wake_at)) }
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let waiting = phase_of("wait-3")
                .await
                .is_some_and(|(p, _, _, wake)| p == Phase::Waiting && wake.0 > now().0 + 1_800_000);
            let failed = phase_of("failed-2404").await.is_some_and(|(_, o, _, _)| o.as_deref() == Some("failed"));
            let awaiting = phase_of("awaiting-1").await.is_some_and(|(p, ..)| p == Phase::Awaiting);
            let second = phase_of("recovered-1").await;
            if let Some((Phase::Awaiting, _, Some(uuid), _)) = &second {
                remediator.report(ReportTarget::Reference(uuid), Reported::Succeeded).await.unwrap();
            }
            let recovered = second.is_some_and(|(_, o, ..)| o.as_deref() == Some("recovered"));
            if waiting && failed && awaiting && recovered {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the jobs did not reach every phase");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A job another replica holds in the middle of a call (its lease good for an hour), with a real payload.
        let payload = store.job_of("wait-3").await.unwrap().unwrap().payload;
        let t = now();
        let new = NewJob::new("calling-1", &payload, 1, "2001", t);
        let (_, claimed) =
            store.submit_and_claim(new, "replica-elsewhere", Duration::from_secs(3600), t).await.unwrap();
        let lease = claimed.expect("claimed at once").lease;
        let key = format!("calling-1#{}.1", lease.job);
        let ledger = [LedgerWrite::Begin { key: &key, hook: "resubmit" }];
        let save = Save {
            phase: Phase::Calling,
            wake_at: t.after(Duration::from_secs(3600)),
            release: false,
            payload: &payload,
            version: 1,
            last_code: "2001",
            attempts: 0,
            attempt: 1,
            fence_until: t,
            wake_on_report: true,
            reference: None,
            ledger: &ledger,
            take_report: false,
            outcome: None,
        };
        store.save(&lease, save, t).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Running { base: format!("http://{addr}/ui"), store, operator_fp: fingerprint(OPERATOR), http, _dir: dir }
    }

    /// `GET` of `path` under the view, with a bearer token or a session cookie: the status, headers and body.
    pub async fn get(
        &self,
        path: &str,
        bearer: Option<&str>,
        cookie: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// A form `POST` of `body` to `path` under the view with a session cookie: the status and the `Location`.
    pub async fn post(&self, path: &str, cookie: Option<&str>, body: &str) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (response.status().as_u16(), location)
    }

    /// Signs in with `token`: the session cookie (`remedy_ui=...`) the answer sets.
    pub async fn sign_in(&self, token: &str) -> String {
        let response = self.http.get(format!("{}/login?token={token}", self.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 303);
        let set = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(token), "{set}");
        set.split(';').next().unwrap().to_owned()
    }

    /// The CSRF token the pages give the session `cookie`.
    pub async fn csrf_of(&self, cookie: &str) -> String {
        let (_, _, page) = self.get("/jobs", None, Some(cookie)).await;
        let at =
            page.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + r#"name="csrf" value=""#.len();
        page[at..].split('"').next().unwrap().to_owned()
    }
}

/// Headless Chromium behind `chromedriver` on a free loopback port; stopped when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    chromium: String,
}

impl Browser {
    /// Starts `chromedriver`; `None` (said on standard error) when Chromium or chromedriver is missing, unless
    /// `REMEDY_REQUIRE_BROWSER` is set: then the test fails.
    pub async fn start() -> Option<Browser> {
        let found = |names: &[&str]| {
            names.iter().find_map(|name| {
                std::env::var_os("PATH")
                    .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
            })
        };
        let (Some(driver), Some(chromium)) = (found(&["chromedriver"]), found(&["chromium", "chromium-browser"]))
        else {
            let why = "chromium or chromedriver is missing (apt-get install chromium chromium-driver)";
            assert!(std::env::var_os("REMEDY_REQUIRE_BROWSER").is_none(), "REMEDY_REQUIRE_BROWSER is set: {why}");
            eprintln!("\n*** the web view's browser test was SKIPPED: {why}\n");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let browser = Browser { driver: child, port, chromium: chromium.display().to_string() };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(browser)
    }

    /// A new headless browser session.
    pub async fn client(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": self.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1800", "--hide-scrollbars"],
            }),
        );
        ClientBuilder::rustls()
            .expect("a TLS configuration")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
