//! The latency a user feels: from a report (a callback) of a job awaiting its result to the job's next hook
//! call, with 1,000 jobs active. The host's `resubmit` answers `Submitted` (the asset runs at LightFlow), so every
//! job rests awaiting its result; then reports arrive at a steady pace, one job at a time, each saying that
//! job's attempt failed (2001): the engine decides to retry after 1 ms and calls `resubmit` again. Measured:
//! from just before `Remediator::report` to the start of that `resubmit`, for every report; printed as p50,
//! p99 and the worst.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lightflow_remedy::engine::{
    Attempt, AttemptKey, HookError, Hooks, Job, Remediator, ReportTarget, Reported, StoreSettings,
};
use lightflow_remedy::store::{Clock, Store};
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};

/// Jobs active while reports come.
pub const ACTIVE: usize = 1_000;
/// Reports measured, and the time between two.
const REPORTS: usize = 1_000;
const PACE: Duration = Duration::from_millis(4);

const POLICY: &str =
    r#"on(2001, retry(#{ attempts: 100, initial: "1ms", multiplier: 1.0, jitter: "none" }).then(fail("gave up")));"#;

/// The host: every resubmission is accepted and reported later; the time from each report to the call it
/// led to is noted.
#[derive(Default)]
pub struct Awaiting {
    calls: AtomicUsize,
    reported: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Hooks for Awaiting {
    async fn resubmit(&self, job: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        if let Some(at) = self.reported.lock().unwrap().remove(job.asset_id()) {
            self.latencies.lock().unwrap().push(at.elapsed());
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Attempt::Submitted { reference: format!("{}.{}", job.asset_id(), key.attempt) })
    }
}

fn failure() -> Failure {
    Failure::asset(2001, "download failed").expect("a catalogue code")
}

/// A remediator on `store` whose host awaits every result.
pub fn remediator(store: Arc<dyn Store>, clock: Arc<dyn Clock>, host: Arc<Awaiting>) -> Remediator<Arc<Awaiting>> {
    let policies = Policies::builder().source("latency.rhai", POLICY).build().expect("the policy loads");
    Remediator::builder(policies, host)
        .without_circuit_breaker()
        .store_with(store, clock, StoreSettings::default())
        .build()
}

/// Enqueues [`ACTIVE`] jobs on the replicas, waits until each awaits its first result, then reports on
/// `rs[0]` at a steady pace; returns the latencies, sorted.
pub async fn measure(rs: &[Remediator<Arc<Awaiting>>], host: &Awaiting) -> Vec<Duration> {
    for i in 0..ACTIVE {
        let r = &rs[i % rs.len()];
        drop(r.enqueue(Job::new(format!("asset-{i}")), failure()).await.expect("enqueued"));
    }
    let store = rs[0].store();
    let clock = lightflow_remedy::store::SystemClock;
    // Every job at rest awaiting its result (its save is what a report finds).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = store.stats(clock.now()).await.expect("stats");
        if stats.by_phase.get("awaiting").copied() == Some(ACTIVE as u64) && stats.held == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the jobs did not all come to await their results: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut attempts = vec![1u32; ACTIVE];
    let mut ticks = tokio::time::interval(PACE);
    for k in 0..REPORTS {
        ticks.tick().await;
        let i = k % ACTIVE;
        let asset = format!("asset-{i}");
        let reference = format!("{asset}.{}", attempts[i]);
        attempts[i] += 1;
        host.reported.lock().unwrap().insert(asset, Instant::now());
        let answer = rs[0]
            .report(ReportTarget::Reference(&reference), Reported::Failed { failure: failure() })
            .await
            .expect("a report");
        assert!(matches!(answer, lightflow_remedy::engine::ReportAnswer::Applied { .. }), "{reference}: {answer:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.latencies.lock().unwrap().len() < REPORTS {
        assert!(Instant::now() < deadline, "a report led to no hook call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for r in rs {
        r.shutdown(Duration::from_secs(5)).await;
    }
    let mut latencies = std::mem::take(&mut *host.latencies.lock().unwrap());
    latencies.sort_unstable();
    latencies
}

/// Prints the latencies' p50, p99 and worst.
pub fn print(name: &str, latencies: &[Duration]) {
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<38} report to next hook call, {ACTIVE} jobs active, {} reports: p50 {:.1} ms, p99 {:.1} ms, \
         worst {:.1} ms (target: p99 under 50 ms)",
        latencies.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(latencies[latencies.len() - 1])
    );
}

/// On a fresh SQLite file, one replica.
pub fn on_sqlite() -> Vec<Duration> {
    super::engine::multi_thread().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = super::schema(dir.path()).await;
        let store = lightflow_remedy::store::SqliteStore::open(&path, &Default::default()).await.expect("a store");
        let host = Arc::new(Awaiting::default());
        let r = remediator(Arc::new(store), Arc::new(lightflow_remedy::store::SystemClock), host.clone());
        measure(&[r], &host).await
    })
}
