//! `remedy serve` as a process, as a LightFlow user runs it: a configuration file and environment variables,
//! a simulated LightFlow over loopback HTTP, assets created through the gateway, and the service killed
//! (SIGKILL) mid-run and started again on the same SQLite file. Every asset whose encode failed ends exactly
//! once, in one job, even those whose callbacks came while the service was down (nothing retries them: the
//! service asks LightFlow); an asset that did not fail gets no job.
#![cfg(all(feature = "serve", unix))]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lightflow_remedy::serve::demo;

#[cfg(feature = "postgres")]
#[path = "support/postgres.rs"]
mod pg;
use serde_json::{Value, json};

const GATEWAY: &str = "gw-process-test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `remedy serve --config CONFIG` and waits for its "listening on" line.
fn start(config: &std::path::Path, lightflow_token: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remedy"))
        .args(["serve", "--config"])
        .arg(config)
        .env("TEST_LIGHTFLOW_TOKEN", lightflow_token)
        .env("REMEDY_GATEWAY_TOKENS", GATEWAY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("remedy serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").unwrap();
    assert!(first.starts_with("remedy serve: listening on http://127.0.0.1:"), "{first}");
    // Keep reading, so that the service never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// A configuration of `remedy serve` on `store`, listening on a free port, against `lightflow`: its file and
/// the service's URL.
fn configure(dir: &std::path::Path, name: &str, store: &str, lightflow: &str) -> (std::path::PathBuf, String) {
    let policies = dir.join("policies");
    let _ = std::fs::create_dir(&policies);
    std::fs::write(policies.join("fast.rhai"), demo::POLICY).unwrap();
    let port = free_port();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"{store}\"\npolicies = [\"{}\"]\n\
             [lightflow]\nbase_url = \"{lightflow}\"\ntoken_env = \"TEST_LIGHTFLOW_TOKEN\"\n\
             [gateway]\nsweep_after = \"2s\"\n[engine]\nlease = \"2s\"\nawait_result = \"3s\"\n",
            policies.display()
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_run_ends_every_failed_asset_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("remedy.db").display());
    run(dir.path(), &store, 1, 11).await;
}

/// Two replicas on one PostgreSQL store, one killed mid-run and started again: the other takes its jobs and
/// the assets whose callbacks went to it.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_one_killed_mid_run_end_every_failed_asset_once() {
    let Some(url) = std::env::var("DATABASE_URL").ok() else {
        assert!(
            std::env::var_os("REMEDY_REQUIRE_POSTGRES").is_none(),
            "REMEDY_REQUIRE_POSTGRES is set: no DATABASE_URL"
        );
        eprintln!("\n*** serve_process: the PostgreSQL replicas were NOT tested: DATABASE_URL is not set\n");
        return;
    };
    let schema = pg::unique_schema("serve");
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &pg::in_schema(&url, &schema), 2, 13).await;
    pg::drop_schema(&url, &schema).await;
}

/// Runs `replicas` services on `store`, creates assets through the first, kills it mid-run and starts it again,
/// and checks that every failed asset ended once.
async fn run(dir: &std::path::Path, store: &str, replicas: usize, seed: u64) {
    let lightflow_token = "lf-process-test";
    let lightflow = demo::start_lightflow(lightflow_token, seed, Duration::from_millis(700)).await.unwrap();
    let configs: Vec<_> = (0..replicas).map(|i| configure(dir, &format!("replica-{i}"), store, &lightflow)).collect();
    let (config, service) = configs[0].clone();
    let http = reqwest::Client::new();
    let mut child = start(&config, lightflow_token);
    let mut others: Vec<Child> = configs[1..].iter().map(|(c, _)| start(c, lightflow_token)).collect();

    let mut assets = Vec::new();
    for i in 0..16 {
        let body = json!({ "parameters": { "name": format!("p-{i}"), "input": { "urlPath": format!("https://m.example/p{i}.mp4") } } });
        let response = http.post(format!("{service}/assets")).bearer_auth(GATEWAY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let id = response.headers()["x-remedy-asset"].to_str().unwrap().to_owned();
        let created: Value = response.json().await.unwrap();
        assets.push((id, created["uuid"].as_str().unwrap().to_owned()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Killed while encodes end and their callbacks come: those are lost.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut child = start(&config, lightflow_token);

    // Which first encodes failed, as LightFlow has them.
    let mut failed_first = HashMap::new();
    for (id, uuid) in &assets {
        let page: Value = http
            .get(format!("{lightflow}/assets?uuid={uuid}"))
            .bearer_auth(lightflow_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        failed_first.insert(id.clone(), page["items"][0]["status"] == "error");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut waiting = Vec::new();
        for (id, _) in &assets {
            let read: Value = http
                .get(format!("{service}/assets/{id}"))
                .bearer_auth(GATEWAY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ended = read["job"]["phase"] == "finished";
            let has_job = !read["job"].is_null();
            match (failed_first[id], has_job, ended) {
                (true, true, true) | (false, false, _) => {}
                (false, true, _) => panic!("{id} did not fail, yet has a job: {read}"),
                _ => waiting.push(id.clone()),
            }
        }
        if waiting.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still not ended: {waiting:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for mut other in others.drain(..) {
        other.kill().unwrap();
        other.wait().unwrap();
    }

    // One job per failed asset: none was made twice.
    let list = Command::new(env!("CARGO_BIN_EXE_remedy"))
        .args(["jobs", "--store", store, "--json", "list", "--limit", "1000"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    let mut per_asset: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        *per_asset.entry(row["asset"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(per_asset.values().all(|n| *n == 1), "{per_asset:?}");
    assert_eq!(per_asset.len(), failed_first.values().filter(|f| **f).count());
    assert!(failed_first.values().any(|f| *f), "the seed fails some first encodes");
}
