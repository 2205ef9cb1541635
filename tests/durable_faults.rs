//! The engine on a store that fails: writes refused for a while, renewals that never answer, a ledger that
//! cannot be read on a takeover. Under paused time, on the memory store behind a wrapper that injects the
//! faults. What must hold: the claimer backs off rather than spins, the remediator says it is unhealthy and
//! then healthy again, no call runs on after its lease could have run out, and no call is made for a job whose
//! ledger could not be read.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightflow_remedy::engine::{
    Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Reconciled, Remediator, StoreSettings,
};
use lightflow_remedy::store::{
    CallRow, CancelAnswer, Claimed, GuardRow, JobId, JobRow, Lease, ListFilter, MemoryStore, NewJob, Renewed,
    ReportAnswer, ReportTarget, Save, Saved, Stats, Store, StoreError, StoreFuture, Submitted, Timestamp, TokioClock,
};
use lightflow_remedy::testing::policies;
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

/// Retries 2001 after a minute, twice.
fn retry() -> Policies {
    policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0, jitter: "none" }));"#)
}

/// The faults a [`Faulty`] store injects, switched on and off by the test.
#[derive(Default)]
struct Faults {
    /// Every write (claims, renewals, saves, submits) fails as a database that went away would.
    writes: AtomicBool,
    /// Renewals never answer.
    renewals_hang: AtomicBool,
    /// The ledger cannot be read.
    ledger: AtomicBool,
    /// Claims tried.
    claims: AtomicUsize,
}

/// The memory store, with faults.
struct Faulty {
    memory: MemoryStore,
    faults: Arc<Faults>,
}

fn down() -> StoreError {
    StoreError::Database { store: "faulty".into(), message: "the database went away".into() }
}

impl Faulty {
    fn check(&self) -> Result<(), StoreError> {
        if self.faults.writes.load(Ordering::SeqCst) { Err(down()) } else { Ok(()) }
    }
}

impl Store for Faulty {
    fn describe(&self) -> String {
        "faulty".into()
    }
    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        Box::pin(async move {
            self.check()?;
            self.memory.submit(new, now).await
        })
    }
    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        Box::pin(async move {
            self.check()?;
            self.memory.submit_and_claim(new, owner, lease, now).await
        })
    }
    fn claim<'a>(&'a self, owner: &'a str, now: Timestamp, lease: Duration, n: usize) -> StoreFuture<'a, Vec<Claimed>> {
        Box::pin(async move {
            self.faults.claims.fetch_add(1, Ordering::SeqCst);
            self.check()?;
            self.memory.claim(owner, now, lease, n).await
        })
    }
    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed> {
        Box::pin(async move {
            if self.faults.renewals_hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.check()?;
            self.memory.renew(leases, now, lease).await
        })
    }
    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved> {
        Box::pin(async move {
            self.check()?;
            self.memory.save(lease, save, now).await
        })
    }
    fn report<'a>(
        &'a self,
        target: ReportTarget<'a>,
        result: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ReportAnswer> {
        self.memory.report(target, result, now)
    }
    fn cancel<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, CancelAnswer> {
        self.memory.cancel(asset_id, now)
    }
    fn retry_now<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, bool> {
        self.memory.retry_now(asset_id, now)
    }
    fn job(&self, id: JobId) -> StoreFuture<'_, Option<JobRow>> {
        self.memory.job(id)
    }
    fn job_of<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Option<JobRow>> {
        self.memory.job_of(asset_id)
    }
    fn list<'a>(&'a self, filter: &'a ListFilter) -> StoreFuture<'a, Vec<JobRow>> {
        self.memory.list(filter)
    }
    fn calls(&self, id: JobId) -> StoreFuture<'_, Vec<CallRow>> {
        Box::pin(async move {
            if self.faults.ledger.load(Ordering::SeqCst) {
                return Err(down());
            }
            self.memory.calls(id).await
        })
    }
    fn stats(&self, now: Timestamp) -> StoreFuture<'_, Stats> {
        self.memory.stats(now)
    }
    fn next_wake(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.memory.next_wake()
    }
    fn prune(&self, before: Timestamp) -> StoreFuture<'_, u64> {
        self.memory.prune(before)
    }
    fn guard<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<GuardRow>> {
        self.memory.guard(name)
    }
    fn set_guard<'a>(&'a self, name: &'a str, expected: Option<u64>, value: &'a str) -> StoreFuture<'a, bool> {
        self.memory.set_guard(name, expected, value)
    }
}

/// One resubmission: when it started, and when it ended or was dropped.
#[derive(Debug, Clone, Copy)]
struct Span {
    started: Instant,
    ended: Option<Instant>,
}

/// Hooks whose resubmissions take `takes` (the first `slow` of them), recording each one's span.
#[derive(Clone, Default)]
struct Slow {
    takes: Duration,
    slow: usize,
    spans: Arc<Mutex<Vec<Span>>>,
    /// Switched on as the first call starts.
    on_first_call: Option<Arc<Faults>>,
}

/// Notes the end of a span when dropped: at the answer, or when the engine cuts the call off.
struct Ends(Arc<Mutex<Vec<Span>>>, usize);

impl Drop for Ends {
    fn drop(&mut self) {
        self.0.lock().unwrap()[self.1].ended = Some(Instant::now());
    }
}

impl Hooks for Slow {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        let n = {
            let mut spans = self.spans.lock().unwrap();
            spans.push(Span { started: Instant::now(), ended: None });
            spans.len() - 1
        };
        let _ends = Ends(self.spans.clone(), n);
        if n == 0
            && let Some(faults) = &self.on_first_call
        {
            faults.renewals_hang.store(true, Ordering::SeqCst);
        }
        if n < self.slow {
            tokio::time::sleep(self.takes).await;
        }
        Ok(Attempt::Succeeded)
    }

    async fn reconcile(&self, _: &Job, _: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        Ok(Reconciled::NotDone)
    }
}

fn replica<H: Hooks>(hooks: H, store: Arc<Faulty>, lease: Duration) -> Remediator<H> {
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let settings = StoreSettings { lease, owner: Some("one".into()), ..StoreSettings::default() };
    Remediator::builder(retry(), hooks)
        .without_circuit_breaker()
        .hook_timeout(secs(3600))
        .store_with(store, clock, settings)
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_is_tried_again_with_growing_waits_and_the_replica_says_it_is_unhealthy() {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(Faulty { memory: MemoryStore::new(), faults: faults.clone() });
    let r = replica(Slow::default(), store.clone(), secs(30));
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(5)).await;
    assert!(r.health().is_healthy(), "{:?}", r.health());

    faults.writes.store(true, Ordering::SeqCst);
    let before = faults.claims.load(Ordering::SeqCst);
    tokio::time::sleep(secs(120)).await;
    let tried = faults.claims.load(Ordering::SeqCst) - before;
    // Waits of 50 ms doubling to a cap of 5 s: about 30 tries in two minutes, not a hot loop.
    assert!((5..=40).contains(&tried), "{tried} claims in 120 s of a store that fails");
    let health = r.health();
    assert!(!health.is_healthy() && !health.store_reachable, "{health:?}");
    assert!(health.error.as_deref().is_some_and(|e| e.contains("went away")), "{health:?}");
    assert!(health.failures > 0 && health.claimer_running, "{health:?}");
    assert!(r.enqueue(Job::new("b"), asset(2001)).await.is_err(), "a hand-over the store refused is an error");

    faults.writes.store(false, Ordering::SeqCst);
    assert!(matches!(handle.await, Outcome::Recovered { .. }), "the job goes on once the store is back");
    let health = r.health();
    assert!(health.is_healthy() && health.error.is_none(), "{health:?}");
    assert!(health.last_write.is_some_and(|t| t.0 > 120_000), "{health:?}");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_cannot_renew_stops_its_calls_before_the_lease_runs_out() {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(Faulty { memory: MemoryStore::new(), faults: faults.clone() });
    let hooks = Slow { takes: secs(600), slow: 1, on_first_call: Some(faults.clone()), ..Slow::default() };
    let lease = secs(30);
    let r = replica(hooks.clone(), store.clone(), lease);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    // The first retry starts after a minute; its call takes 10 minutes; the renewals stop answering with it.
    tokio::time::sleep(secs(100)).await;
    faults.renewals_hang.store(false, Ordering::SeqCst);
    assert!(matches!(handle.await, Outcome::Recovered { .. }));
    let spans = hooks.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "cut off, then made again after the takeover: {spans:?}");
    let first = spans[0];
    let cut = first.ended.expect("the first call was cut off").duration_since(first.started);
    // Its lease was taken or renewed at the latest as the call began, and lasts the lease: the call is stopped
    // a sixth of the lease before that runs out.
    assert!(cut <= lease - lease / 6 + Duration::from_millis(10), "the call ran {cut:?} under a lease of {lease:?}");
    assert!(spans[1].started >= first.ended.unwrap(), "never two calls at once: {spans:?}");
}

#[tokio::test(start_paused = true)]
async fn a_takeover_that_cannot_read_the_ledger_calls_nothing_until_it_can() {
    let faults = Arc::new(Faults::default());
    let memory = MemoryStore::new();
    let store = Arc::new(Faulty { memory, faults: faults.clone() });
    let hooks = Slow { takes: secs(600), slow: 1, ..Slow::default() };
    let first = replica(hooks.clone(), store.clone(), secs(30));
    first.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(70)).await;
    assert_eq!(hooks.spans.lock().unwrap().len(), 1, "the first call is under way");
    first.crash();
    faults.ledger.store(true, Ordering::SeqCst);

    let second = replica(hooks.clone(), store.clone(), secs(30));
    second.start();
    tokio::time::sleep(secs(300)).await;
    assert_eq!(hooks.spans.lock().unwrap().len(), 1, "no call without the ledger's word on the one begun");
    faults.ledger.store(false, Ordering::SeqCst);
    tokio::time::sleep(secs(120)).await;
    let row = store.memory.job_of("a").await.unwrap().unwrap();
    assert_eq!(row.outcome.as_deref(), Some("recovered"), "{row:?}");
    let calls = store.memory.calls(row.id).await.unwrap();
    assert_eq!(calls.len(), 2, "the call begun, then its repetition with the same key: {calls:?}");
    assert_eq!(calls[0].key, calls[1].key);
}

#[tokio::test(start_paused = true)]
async fn the_same_failure_handed_over_twice_is_one_job() {
    let store = Arc::new(Faulty { memory: MemoryStore::new(), faults: Arc::default() });
    let hooks = Slow::default();
    let one = replica(hooks.clone(), store.clone(), secs(30));
    let two = replica(hooks.clone(), store.clone(), secs(30));
    let first = one.enqueue_once(Job::new("a"), asset(2001), "uuid-failed").await.unwrap();
    let again = two.enqueue_once(Job::new("a"), asset(2001), "uuid-failed").await.unwrap();
    assert!(matches!(first.await, Outcome::Recovered { .. }));
    assert!(matches!(again.await, Outcome::Recovered { .. }));
    // Handed over again after the first ended: still that job.
    let late = two.enqueue_once(Job::new("a"), asset(2001), "uuid-failed").await.unwrap();
    assert!(matches!(late.await, Outcome::Recovered { .. }));
    let stats = store.memory.stats(Timestamp(i64::MAX / 2)).await.unwrap();
    assert_eq!(stats.by_outcome.get("recovered"), Some(&1), "{stats:?}");
    assert_eq!(hooks.spans.lock().unwrap().len(), 1, "one resubmission");
}
