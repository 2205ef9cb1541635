//! The same workload through the engine itself: durable `Remediator`s whose hooks fail each asset's first
//! resubmission again (2001) and recover on the second, so that every job makes the bare loop's two attempts
//! and the same row transitions: submitted due now (and held from its submission by a replica with room, or
//! claimed); `calling` with its ledger entry; answered and released `waiting`; claimed again; `calling`;
//! answered and `finished`. (A durable job claimed when due makes its attempt at once: its row's due time is
//! its delay, spent; a new job's is its submission.)
//!
//! Delays: the policy retries 2001 after **1 ms** (no jitter, multiplier 1): a wall-clock bench cannot wait the
//! bare loop's minute, and a delay of zero would keep the job in memory between its attempts (a durable job
//! rests as a row only for a delay that is not zero), which is less work than the bare loop's. Due times and
//! leases are on the system clock (SQLite), or on the database's (PostgreSQL, as replicas should be). The
//! engine runs with its defaults (a claim takes up to 64 jobs, leases of 30 s renewed by heartbeat, hook
//! timeout, 64 hook slots; the stores' default options) except the circuit breaker, as in `benches/engine.rs`,
//! and the jobs a replica holds at once: 1,024 rather than 256 ([`MAX_ACTIVE_JOBS`]). The host hands its jobs over 256 at a time, at once (as concurrent requests of a
//! gateway would; each replica its share), waiting for each lot to be written before the next, and the engine
//! works on them meanwhile: hand-overs made at once are written together.

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::engine::{
    Attempt, AttemptKey, HookError, HookName, Hooks, Job, JobHandle, Outcome, OutcomeKind, Remediator, StoreSettings,
};
use lightflow_remedy::store::{Clock, SqliteStore, Store, StoreOptions, SystemClock};
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};

use super::{ATTEMPTS, Run};

const TRANSIENT: u16 = 2001;

/// Jobs a replica holds at once: a replica working through a backlog holds more than the default 256, so that
/// more of its writes share a commit (with 256 the SQLite engine makes about 13 % fewer attempts a second).
const MAX_ACTIVE_JOBS: usize = 1024;

/// Retries 2001 after a millisecond, exactly; the engine's defaults for everything else.
const POLICY: &str =
    r#"on(2001, retry(#{ attempts: 3, initial: "1ms", multiplier: 1.0, jitter: "none" }).then(fail("gave up")));"#;

/// The host: every asset's first resubmission fails again with the transient code, the second succeeds.
pub struct Flaky {
    failure: Failure,
}

impl Hooks for Flaky {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(if key.attempt < ATTEMPTS { Attempt::Failed(self.failure.clone()) } else { Attempt::Succeeded })
    }
}

fn failure() -> Failure {
    Failure::asset(TRANSIENT, "download failed").expect("a catalogue code")
}

fn policies() -> Policies {
    Policies::builder().source("bench.rhai", POLICY).build().expect("the bench's policy loads")
}

/// A remediator on `store`, reading the time from `clock`. Call it inside the runtime: it starts its claimer.
pub fn remediator(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Remediator<Flaky> {
    Remediator::builder(policies(), Flaky { failure: failure() })
        .without_circuit_breaker()
        .store_with(store, clock, StoreSettings { max_active_jobs: MAX_ACTIVE_JOBS, ..StoreSettings::default() })
        .build()
}

/// Enqueues the assets `w, w + step, ...` below `jobs` on `r`, 256 at once; returns their handles.
pub async fn enqueue(r: &Remediator<Flaky>, w: usize, step: usize, jobs: usize) -> Vec<JobHandle> {
    let failure = failure();
    let mut handles = Vec::with_capacity(jobs / step + 1);
    let all: Vec<usize> = (w..jobs).step_by(step).collect();
    for chunk in all.chunks(256) {
        let lot = chunk.iter().map(|i| r.enqueue(Job::new(format!("asset-{i}")), failure.clone()));
        for h in futures_util::future::join_all(lot).await {
            handles.push(h.expect("enqueued"));
        }
    }
    handles
}

/// Waits until the replicas have recovered `jobs` jobs between them (a job ends on whichever replica holds
/// it last, and a handle is told only by the replica it was enqueued on); returns their resubmissions.
pub async fn until_recovered(replicas: &[Remediator<Flaky>], jobs: usize) -> u64 {
    loop {
        let (mut recovered, mut attempts) = (0, 0);
        for r in replicas {
            let c = r.counters();
            recovered += c.outcomes.get(&OutcomeKind::Recovered).copied().unwrap_or(0);
            attempts += c.hook_calls.get(&HookName::Resubmit).copied().unwrap_or(0);
            assert_eq!(c.outcomes.values().sum::<u64>(), c.outcomes.get(&OutcomeKind::Recovered).copied().unwrap_or(0));
        }
        if recovered >= jobs as u64 {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The engine on a fresh SQLite file, one replica, on a current-thread runtime as the bare loop.
pub fn on_sqlite(jobs: usize) -> Run {
    super::runtime().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = super::schema(dir.path()).await;
        let store = SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store");
        let r = remediator(Arc::new(store), Arc::new(SystemClock));
        let handles = enqueue(&r, 0, 1, jobs).await;
        let mut attempts = 0u64;
        for h in handles {
            match h.await {
                Outcome::Recovered { attempts: n, .. } => attempts += u64::from(n),
                other => panic!("every job recovers in this workload: {other:?}"),
            }
        }
        let commits = check(&r, jobs).await;
        r.shutdown(Duration::from_secs(5)).await;
        Run { attempts, commits: Some(commits), untimed: Duration::ZERO }
    })
}

/// The engine with `replicas` remediators on one fresh SQLite file, each with a store of its own (as
/// processes sharing the file would), on a multi-thread runtime.
pub fn on_sqlite_replicas(jobs: usize, replicas: usize) -> Run {
    multi_thread().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = super::schema(dir.path()).await;
        let mut rs = Vec::new();
        for _ in 0..replicas {
            let store = SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store");
            rs.push(remediator(Arc::new(store), Arc::new(SystemClock)));
        }
        run_replicas(&rs, jobs).await
    })
}

/// Each replica enqueues its share at once, then they work until every job has recovered; the commits are
/// those the stores count (SQLite's).
pub async fn run_replicas(rs: &[Remediator<Flaky>], jobs: usize) -> Run {
    let enqueuers: Vec<_> = rs
        .iter()
        .enumerate()
        .map(|(w, r)| {
            let r = r.clone();
            let n = rs.len();
            // The handles are dropped: a job may end on another replica, which does not tell them.
            tokio::spawn(async move { drop(enqueue(&r, w, n, jobs).await) })
        })
        .collect();
    for e in enqueuers {
        e.await.expect("an enqueuer");
    }
    let attempts = until_recovered(rs, jobs).await;
    let mut commits = 0;
    for r in rs {
        commits += check(r, jobs).await;
    }
    for r in rs {
        r.shutdown(Duration::from_secs(5)).await;
    }
    Run { attempts, commits: Some(commits), untimed: Duration::ZERO }
}

/// The store says every job recovered; the write transactions it committed.
async fn check(r: &Remediator<Flaky>, jobs: usize) -> u64 {
    let store = r.store();
    let stats = store.stats(SystemClock.now()).await.expect("stats");
    assert_eq!(stats.by_outcome.get("recovered").copied(), Some(jobs as u64), "every job recovered");
    stats.commits
}

pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime")
}
