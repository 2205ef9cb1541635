//! The engine on a durable store (here the in-memory one, under paused time): jobs at rest are rows, not
//! tasks; the ledger has every side-effecting call; a crashed replica's jobs are taken over, the attempt under
//! way reconciled and repeated with the same key; reports go through the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightflow_remedy::engine::{
    HookName, Job, Outcome, Remediator, ReportAnswer, ReportTarget, Reported, StoreSettings,
};
use lightflow_remedy::store::{
    CallRow, CancelAnswer, Claimed, Clock, GuardRow, JobId, JobRow, Lease, ListFilter, MemoryStore, NewJob, Phase,
    Renewed, ReportAnswer as Answer, ReportTarget as Target, Save, Saved, Stats, Store, StoreFuture, Submitted,
    Timestamp, TokioClock,
};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies};
use lightflow_remedy::{Failure, Policies};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

fn settings(owner: &str) -> StoreSettings {
    StoreSettings { lease: secs(30), owner: Some(owner.to_owned()), ..StoreSettings::default() }
}

fn on_store(
    p: Policies,
    hooks: FakeHooks,
    store: &Arc<MemoryStore>,
    clock: &Arc<TokioClock>,
    owner: &str,
) -> Remediator<FakeHooks> {
    Remediator::builder(p, hooks)
        .without_circuit_breaker()
        .hook_timeout(secs(3600))
        .store_with(store.clone(), clock.clone(), settings(owner))
        .build()
}

fn once() -> Policies {
    policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0 }).then(fail("gave up")));"#)
}

#[tokio::test(start_paused = true)]
async fn a_job_rests_as_a_row_and_recovers_with_its_calls_in_the_ledger() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(1_000_000)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001))]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(10)).await;
    // Decided and at rest until its retry: a row, not a task.
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!(row.phase, Phase::Waiting);
    assert_eq!(row.lease_owner, None);
    assert_eq!(row.wake_at, clock.now().after(secs(50)));
    assert_eq!(r.active_jobs(), 0, "nothing held in memory while it waits");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }));
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.outcome.as_deref(), row.attempts), (Phase::Finished, Some("recovered"), 2));
    let calls = store.calls(row.id).await.unwrap();
    let keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, [format!("a#{}.1", row.id), format!("a#{}.2", row.id)]);
    assert!(calls.iter().all(|c| c.answered_at.is_some()), "{calls:?}");
    assert_eq!(calls[0].answer.as_deref(), Some("failed 2001"));
    assert_eq!(calls[1].answer.as_deref(), Some("succeeded"));
}

/// A replica killed while a call is under way: another takes the job over once the lease expires, asks the
/// host to reconcile the attempt, and repeats it with the same key.
#[tokio::test(start_paused = true)]
async fn a_crashed_replicas_job_is_taken_over_reconciled_and_repeated_with_the_same_key() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]);
    let first = on_store(once(), hooks.clone(), &store, &clock, "first");
    let _lost = first.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(90)).await; // the retry's call hangs
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.lease_owner.as_deref()), (Phase::Calling, Some("first")));
    first.crash();
    drop(first);

    let second = on_store(once(), hooks.clone(), &store, &clock, "second");
    // The crashed replica's lease expires within 30 s; the second takes the job over then.
    let id = row.id;
    for _ in 0..120 {
        tokio::time::sleep(secs(1)).await;
        if store.job(id).await.unwrap().unwrap().phase == Phase::Finished {
            break;
        }
    }
    let row = store.job(id).await.unwrap().unwrap();
    assert_eq!(row.outcome.as_deref(), Some("recovered"), "{row:?}");
    let calls = hooks.calls_for("a");
    let seen: Vec<(HookName, String)> =
        calls.iter().map(|c| (c.hook, c.key.clone().unwrap_or_else(|| c.detail.clone()))).collect();
    let key = format!("a#{id}.1");
    assert_eq!(
        seen,
        [(HookName::Resubmit, key.clone()), (HookName::Reconcile, key.clone()), (HookName::Resubmit, key.clone())],
        "reconciled, then repeated with the same key"
    );
    let ledger = store.calls(id).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert!(ledger[0].answered_at.is_none(), "the lost call stays unanswered in the ledger");
    drop(second);
}

#[tokio::test(start_paused = true)]
async fn reports_go_through_the_store() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Submit("uuid-1".into())]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(120)).await;
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!(
        (row.phase, row.reference.as_deref(), row.lease_owner.as_deref()),
        (Phase::Awaiting, Some("uuid-1"), None)
    );
    let answer = r.report(ReportTarget::Reference("uuid-1"), Reported::Succeeded).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }), "{answer:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    let again = r.report(ReportTarget::Reference("uuid-1"), Reported::Succeeded).await.unwrap();
    assert!(matches!(again, ReportAnswer::Finished { .. }), "{again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_report_held_for_its_reference_is_applied_when_the_attempt_is_submitted() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Submit("uuid-7".into())]);
    let r = on_store(once(), hooks, &store, &clock, "one");
    let answer = r.report(ReportTarget::Reference("uuid-7"), Reported::Succeeded).await.unwrap();
    assert_eq!(answer, ReportAnswer::Held);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
}

/// A shutdown leaves the jobs in the store, at rest; a restart goes on with them.
#[tokio::test(start_paused = true)]
async fn after_a_shutdown_a_restart_goes_on_from_the_store() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script(
        "a",
        HookName::Resubmit,
        [Scripted::Delay(secs(20), Box::new(Scripted::Fail(asset(2001))))],
    );
    let before = on_store(once(), hooks.clone(), &store, &clock, "before");
    let _handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(65)).await;
    let kept = before.shutdown(secs(60)).await;
    assert!(kept.is_empty(), "the store keeps them");
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.lease_owner.clone()), (Phase::Waiting, None), "{row:?}");
    drop(before);
    let after = on_store(once(), hooks.clone(), &store, &clock, "after");
    for _ in 0..300 {
        tokio::time::sleep(secs(1)).await;
        if store.job(row.id).await.unwrap().unwrap().phase == Phase::Finished {
            break;
        }
    }
    let row = store.job(row.id).await.unwrap().unwrap();
    assert_eq!((row.outcome.as_deref(), row.attempts), (Some("recovered"), 2));
    drop(after);
}

#[tokio::test(start_paused = true)]
async fn submit_refuses_and_enqueue_joins_an_active_job() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let r = on_store(once(), FakeHooks::new(), &store, &clock, "one");
    assert!(r.submit(Job::new("a"), asset(2001)).is_err(), "a store's jobs are enqueued");
    let first = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let second = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    assert!(!first.is_joined() && second.is_joined());
    assert_eq!(first.await, second.await);
}

/// A memory store whose renewals take `renew_delay` to reach it, and whose saves answer `save_delay` after
/// they are written, as a busy database's might; it counts claims.
#[derive(Default)]
struct Observed {
    memory: Arc<MemoryStore>,
    renew_delay: Duration,
    save_delay: Duration,
    /// When each claim was made, and how many jobs it took.
    claims: Mutex<Vec<(Timestamp, usize)>>,
}

impl Store for Observed {
    fn describe(&self) -> String {
        self.memory.describe()
    }
    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        self.memory.submit(new, now)
    }
    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        self.memory.submit_and_claim(new, owner, lease, now)
    }
    fn claim<'a>(&'a self, owner: &'a str, now: Timestamp, lease: Duration, n: usize) -> StoreFuture<'a, Vec<Claimed>> {
        Box::pin(async move {
            let claimed = self.memory.claim(owner, now, lease, n).await?;
            self.claims.lock().unwrap().push((now, claimed.len()));
            Ok(claimed)
        })
    }
    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed> {
        Box::pin(async move {
            tokio::time::sleep(self.renew_delay).await;
            self.memory.renew(leases, now, lease).await
        })
    }
    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved> {
        Box::pin(async move {
            let saved = self.memory.save(lease, save, now).await;
            tokio::time::sleep(self.save_delay).await;
            saved
        })
    }
    fn report<'a>(&'a self, target: Target<'a>, result: &'a str, now: Timestamp) -> StoreFuture<'a, Answer> {
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
        self.memory.calls(id)
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

fn on_observed(p: Policies, hooks: FakeHooks, store: &Arc<Observed>, settings: StoreSettings) -> Remediator<FakeHooks> {
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    Remediator::builder(p, hooks).without_circuit_breaker().store_with(store.clone(), clock, settings).build()
}

/// Retries 2001 after `delay`, exactly.
fn retry_after(delay: &str) -> Policies {
    policies(&format!(r#"on(2001, retry(#{{ attempts: 3, initial: "{delay}", multiplier: 1.0, jitter: "none" }}));"#))
}

/// A renewal under way while its job is released and claimed again says the old lease is lost: the job, held
/// under its new lease, goes on (it is not stopped, left to expire and taken over).
#[tokio::test(start_paused = true)]
async fn a_renewal_of_an_older_lease_does_not_stop_the_job_claimed_again_meanwhile() {
    // Attempt 1 runs from 0 s to 1.5 s and fails; the job rests a second and is claimed again at 2.5 s, under a
    // new lease; attempt 2 runs from then to 4.5 s. The first renewal, of the first lease (sent at 0 s, or at
    // 1 s if the heartbeat looked before the claim), arrives while the second is held (at 3 s, or 4 s).
    let hooks = FakeHooks::new().script(
        "a",
        HookName::Resubmit,
        [
            Scripted::Delay(Duration::from_millis(1500), Box::new(Scripted::Fail(asset(2001)))),
            Scripted::Delay(secs(2), Box::new(Scripted::Succeed)),
        ],
    );
    let store = Arc::new(Observed { renew_delay: secs(3), ..Observed::default() });
    let settings = StoreSettings { lease: secs(3), ..settings("one") };
    let r = on_observed(retry_after("1s"), hooks.clone(), &store, settings);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }));
    assert_eq!(r.counters().takeovers, 0, "never taken over");
    let hooks: Vec<HookName> = hooks.calls_for("a").iter().map(|c| c.hook).collect();
    assert_eq!(hooks, [HookName::Resubmit, HookName::Resubmit], "no attempt cut off, reconciled and repeated");
}

/// The replica that takes a job holds it from the start: its task begins without a claim.
#[tokio::test(start_paused = true)]
async fn an_enqueued_job_is_held_at_once_by_its_replica() {
    let store = Arc::new(Observed::default());
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]);
    let r = on_observed(once(), hooks, &store, settings("one"));
    let _handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let row = store.memory.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.lease_owner.as_deref(), row.epoch), (Some("one"), 1), "held as it is written");
    tokio::time::sleep(secs(1)).await;
    let row = store.memory.job_of("a").await.unwrap().unwrap();
    assert_eq!(row.phase, Phase::Calling, "its first attempt under way");
    assert_eq!(store.memory.calls(row.id).await.unwrap().len(), 1);
    assert!(store.claims.lock().unwrap().iter().all(|&(_, n)| n == 0), "no claim took it");
}

/// A busy replica takes more work in batches: a job that ends makes room for one, and the claimer waits for
/// room for a batch before it claims, instead of claiming for every job that ends.
#[tokio::test(start_paused = true)]
async fn a_busy_replica_claims_in_batches() {
    let store = Arc::new(Observed::default());
    let mut hooks = FakeHooks::new();
    for i in 0..100 {
        // Calls of different lengths, so that the jobs end one by one.
        let took = Duration::from_millis(1000 + 37 * i);
        hooks =
            hooks.script(&format!("a{i}"), HookName::Resubmit, [Scripted::Delay(took, Box::new(Scripted::Succeed))]);
    }
    let settings = StoreSettings { max_active_jobs: 16, claim_batch: 8, ..settings("one") };
    let r = on_observed(once(), hooks, &store, settings);
    let mut handles = Vec::new();
    for i in 0..100 {
        handles.push(r.enqueue(Job::new(format!("a{i}")), asset(2001)).await.unwrap());
    }
    for h in handles {
        assert!(matches!(h.await, Outcome::Recovered { attempts: 1, .. }));
    }
    // 13 held at their submission, until less room than a batch was left (a quarter of 16, 4); the others
    // claimed at least 4 at a time, or what room there was after a poll interval (1 s) of waiting for more.
    let claims = store.claims.lock().unwrap().clone();
    let taken: Vec<(Timestamp, usize)> = claims.into_iter().filter(|&(_, n)| n > 0).collect();
    assert_eq!(taken.iter().map(|&(_, n)| n).sum::<usize>(), 87, "{taken:?}");
    for pair in taken.windows(2) {
        let ((before, _), (at, n)) = (pair[0], pair[1]);
        assert!(n >= 4 || at.since(before) >= secs(1), "{n} claimed at {at:?}, {before:?} before: {taken:?}");
    }
    assert!(taken.len() <= 30, "{} claims: {taken:?}", taken.len());
}

/// A job due again before its previous task here has left (that task is still between its write and its
/// leaving) is claimed all the same: its new task waits for the old one, rather than letting its lease expire.
#[tokio::test(start_paused = true)]
async fn a_job_due_again_while_its_last_task_leaves_goes_on() {
    let store = Arc::new(Observed { save_delay: Duration::from_millis(20), ..Observed::default() });
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001))]);
    // A claimer that looks every 5 ms finds the job due while its last task is still in its save.
    let settings = StoreSettings { poll_every: Duration::from_millis(5), ..settings("one") };
    let r = on_observed(retry_after("1ms"), hooks.clone(), &store, settings);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let start = tokio::time::Instant::now();
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }));
    assert!(start.elapsed() < secs(1), "not left to the lease's expiry: {:?}", start.elapsed());
    assert_eq!(r.counters().takeovers, 0);
}
