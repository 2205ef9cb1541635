//! The web view's pages against a SQLite store of 100,000 jobs: what an operator waits for when they open the
//! overview or the jobs page (filtered, searched, paged far), through the router as `remedy serve` mounts it,
//! from the request to the last byte of the page. The target: every page under 200 ms.
//!
//! The store is filled once, in one transaction of plain inserts (the jobs of the last 24 hours: 70 % finished,
//! recovered, failed or cancelled, the rest waiting or awaiting a result a day from now, so that the remediator
//! beside the view has nothing to claim), with payloads of a realistic size.
//!
//! `cargo bench --bench ui` runs it (`UI_BENCH_JOBS=N` for another size); `cargo test --benches` runs each page
//! once on 2,000 jobs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::Criterion;
use lightflow_remedy::Policies;
use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator, StoreSettings};
use lightflow_remedy::serve::{UiAccess, UiOptions, ui_router};
use lightflow_remedy::store::{Clock, SqliteStore, Store, StoreOptions, SystemClock};
use serde_json::{Map, Value};
use tower::ServiceExt;

const JOBS: usize = 100_000;
const SMALL: usize = 2_000;
const TOKEN: &str = "bench-viewer-token";
const CODES: [&str; 8] = ["2503", "2002", "2001", "2404", "3005", "2052", "http:503", "4001"];

struct NoHooks;

impl Hooks for NoHooks {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(Attempt::Succeeded)
    }
}

/// Fills a new SQLite file with `jobs` jobs; the view's router on it, and the file's folder.
async fn view(jobs: usize) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path, &StoreOptions::default()).await.expect("a SQLite store");
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("the file");
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(0);
    let payload = format!(r#"{{"job":{{"id":"x"}},"pad":"{}"}}"#, "p".repeat(700));
    let mut tx = pool.begin().await.expect("a transaction");
    for i in 0..jobs {
        let created = now - 86_400_000 + (i as i64 * 86_400_000 / jobs as i64);
        let (phase, outcome) = match i % 10 {
            0..=4 => ("finished", Some("recovered")),
            5 | 6 => ("finished", Some(if i % 3 == 0 { "failed" } else { "cancelled" })),
            7 | 8 => ("waiting", None),
            _ => ("awaiting", None),
        };
        let finished = outcome.map(|_| created + 60_000);
        sqlx::query(
            "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, attempts, created_at, \
             updated_at, finished_at, outcome) VALUES (?1, ?2, ?3, ?4, 1, ?5, 1, ?6, ?6, ?7, ?8)",
        )
        .bind(format!("a-{i:08}-{}", i * 7919 % 100_003))
        .bind(phase)
        .bind(now + 86_400_000)
        .bind(&payload)
        .bind(CODES[i % CODES.len()])
        .bind(created)
        .bind(finished)
        .bind(outcome)
        .execute(&mut *tx)
        .await
        .expect("an insert");
    }
    tx.commit().await.expect("committed");
    sqlx::query("ANALYZE").execute(&pool).await.expect("analyzed");
    pool.close().await;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, &StoreOptions::default()).await.expect("the filled store"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let remediator = Remediator::builder(Policies::defaults(), NoHooks)
        .store_with(store.clone(), clock.clone(), StoreSettings::default())
        .build();
    let access = UiAccess::new(vec![TOKEN.to_owned()], vec![]).expect("random numbers");
    let router = Router::new().nest("/ui", ui_router(remediator, store, clock, access, UiOptions::default()));
    (router, dir)
}

/// The pages timed: name and path.
const PAGES: [(&str, &str); 7] = [
    ("overview", "/ui"),
    ("jobs, newest", "/ui/jobs"),
    ("jobs, failed", "/ui/jobs?state=failed"),
    ("jobs, code 2404", "/ui/jobs?code=2404"),
    ("jobs, category protection", "/ui/jobs?category=protection"),
    ("jobs, asset search", "/ui/jobs?asset=-4242"),
    ("jobs, page 1,000", "/ui/jobs?offset=49950"),
];

/// One page, to its last byte.
async fn get(router: &Router, path: &str) -> usize {
    let request = Request::get(path).header("authorization", format!("Bearer {TOKEN}")).body(Body::empty());
    let response = router.clone().oneshot(request.expect("a request")).await.expect("an answer");
    assert_eq!(response.status(), 200, "{path}");
    axum::body::to_bytes(response.into_body(), 16 << 20).await.expect("the page").len()
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let full = std::env::args().any(|a| a == "--bench");
    let jobs =
        if full { std::env::var("UI_BENCH_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(JOBS) } else { SMALL };
    let started = Instant::now();
    let (router, _dir) = runtime.block_on(view(jobs));
    println!("ui bench: {jobs} jobs in SQLite, filled in {:.1?}", started.elapsed());
    for (name, path) in PAGES {
        // The first request of each page, cold, as an operator meets it after a while.
        let t = Instant::now();
        let bytes = runtime.block_on(get(&router, path));
        println!("  first {name:<28} {:>8.1?} ({bytes} bytes)", t.elapsed());
    }
    if !full {
        return;
    }
    let mut criterion =
        Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4)).configure_from_args();
    let mut group = criterion.benchmark_group(format!("ui/{jobs}"));
    for (name, path) in PAGES {
        group.bench_function(name, |b| b.iter(|| runtime.block_on(get(&router, path))));
    }
    group.finish();
    criterion.final_summary();
}
