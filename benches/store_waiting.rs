//! A store holding a million jobs that wait (due in a month) while the engine works on a few hundred due
//! now, on SQLite in a temporary file: what the process's memory comes to. Target: peak resident set
//! (`VmHWM`) at most 100 MiB. The engine holds in memory only the jobs it works on; the waiting ones are rows.
//!
//! 1. Insert 1,000,000 waiting jobs, due 30 days from now, each with the payload the engine writes for a new
//!    job (one enqueued on a memory store, its asset id replaced). They go in with the bare sqlx pool, in one
//!    transaction, 50 rows per execution of one prepared statement: the `Store` API submits one job per call
//!    (a transaction each, with the asset's active-job check), which would take this bench tens of minutes.
//! 2. Open the file as a `SqliteStore`, build a durable `Remediator` on it (its defaults; the policy retries
//!    2001 after 1 ms, as in `benches/store/engine.rs`; no circuit breaker), and enqueue 300 jobs due now whose
//!    first resubmission fails again and the second recovers; wait for all 300 outcomes.
//!
//! Printed: each phase's wall time, and `VmHWM` and `VmRSS` from `/proc/self/status` after each.
//! `cargo bench --bench store_waiting`; `cargo test --benches` (no `--bench` flag) waits 10,000;
//! `STORE_WAITING_JOBS=N` sets the number of waiting jobs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator, StoreSettings};
use lightflow_remedy::store::{Clock, MemoryStore, SqliteStore, Store, StoreOptions, SystemClock, Timestamp};
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Jobs waiting in the store.
const WAITING: usize = 1_000_000;
/// Jobs waiting when run as a test.
const SMALL: usize = 10_000;
/// Jobs the engine works on meanwhile.
const DUE: usize = 300;
/// Rows per execution of the insert.
const ROWS: usize = 50;
const TRANSIENT: u16 = 2001;
const POLICY: &str =
    r#"on(2001, retry(#{ attempts: 3, initial: "1ms", multiplier: 1.0, jitter: "none" }).then(fail("gave up")));"#;
/// The asset id of the template payload, replaced in each row's.
const TEMPLATE: &str = "asset-template";

/// The host: every asset's first resubmission fails again, the second succeeds.
struct Flaky {
    failure: Failure,
}

impl Hooks for Flaky {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(if key.attempt < 2 { Attempt::Failed(self.failure.clone()) } else { Attempt::Succeeded })
    }
}

/// Answers no call: the template job stays as it was submitted.
struct Silent;

impl Hooks for Silent {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        std::future::pending().await
    }
}

fn failure() -> Failure {
    Failure::asset(TRANSIENT, "download failed").expect("a catalogue code")
}

fn policies() -> Policies {
    Policies::builder().source("bench.rhai", POLICY).build().expect("the bench's policy loads")
}

/// The payload the engine writes for a new job of asset [`TEMPLATE`].
async fn template() -> String {
    let store = Arc::new(MemoryStore::new());
    let r = Remediator::builder(policies(), Silent)
        .store_with(store.clone(), Arc::new(SystemClock), StoreSettings::default())
        .build();
    let _handle = r.enqueue(Job::new(TEMPLATE), failure()).await.expect("enqueued");
    let row = store.job_of(TEMPLATE).await.expect("read").expect("the template job");
    r.crash();
    row.payload
}

/// `VmHWM` and `VmRSS` of this process, as `/proc/self/status` gives them.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    format!("VmHWM {}, VmRSS {}", field("VmHWM:"), field("VmRSS:"))
}

/// Inserts `n` waiting jobs due at `wake_at` into the store's schema at `path`.
async fn insert_waiting(path: &Path, n: usize, wake_at: Timestamp, now: Timestamp) {
    let payload = template().await;
    // The store's own settings: WAL, synchronous NORMAL, foreign keys, one write connection.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("a pool");
    // ?1 the due time, ?2 now; then each row's asset and payload.
    let rows: Vec<String> =
        (0..ROWS).map(|r| format!("(?{}, 'waiting', ?1, ?{}, 1, '2001', ?2, ?2)", 3 + 2 * r, 4 + 2 * r)).collect();
    let insert = format!(
        "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) VALUES {}",
        rows.join(", ")
    );
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    let mut done = 0;
    while done < n {
        let batch = ROWS.min(n - done);
        let sql = if batch == ROWS {
            insert.clone()
        } else {
            format!(
                "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
                 VALUES {}",
                rows[..batch].join(", ")
            )
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(wake_at.0).bind(now.0);
        for i in done..done + batch {
            let asset = format!("waiting-{i}");
            query = query.bind(payload.replace(TEMPLATE, &asset)).bind(asset);
        }
        query.execute(&mut *tx).await.expect("insert");
        done += batch;
    }
    tx.commit().await.expect("commit");
    pool.close().await;
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let waiting = std::env::var("STORE_WAITING_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(if benching {
        WAITING
    } else {
        SMALL
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("jobs.db");
        SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store").close().await;

        let start = Instant::now();
        let now = SystemClock.now();
        insert_waiting(&path, waiting, now.after(Duration::from_secs(30 * 24 * 3600)), now).await;
        println!("inserted {waiting} waiting jobs in {:.2?}: {}", start.elapsed(), memory());

        let start = Instant::now();
        let store = SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let r = Remediator::builder(policies(), Flaky { failure: failure() })
            .without_circuit_breaker()
            .store_with(Arc::new(store), clock.clone(), StoreSettings::default())
            .build();
        let mut handles = Vec::with_capacity(DUE);
        for i in 0..DUE {
            handles.push(r.enqueue(Job::new(format!("due-{i}")), failure()).await.expect("enqueued"));
        }
        for h in handles {
            assert!(matches!(h.await, Outcome::Recovered { attempts: 2, .. }), "every due job recovers");
        }
        let stats = r.store().stats(clock.now()).await.expect("stats");
        assert_eq!(stats.by_phase.get("waiting").copied(), Some(waiting as u64), "{stats:?}");
        assert_eq!(stats.by_outcome.get("recovered").copied(), Some(DUE as u64), "{stats:?}");
        println!("worked {DUE} due jobs to their end beside them in {:.2?}: {}", start.elapsed(), memory());
        r.shutdown(Duration::from_secs(5)).await;
    });
}
