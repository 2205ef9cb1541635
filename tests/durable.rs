//! The engine on a durable store (here the in-memory one, under paused time): jobs at rest are rows, not
//! tasks; the ledger has every side-effecting call; a crashed replica's jobs are taken over, the attempt under
//! way reconciled and repeated with the same key; reports go through the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightflow_remedy::engine::{
    HookName, Job, Outcome, Remediator, ReportAnswer, ReportTarget, Reported, StoreSettings, SubmitError,
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

/// An enqueued job waits its first decision's delay too, as a submitted one does: the row is due at once,
/// but only to be decided on.
#[tokio::test(start_paused = true)]
async fn an_enqueued_job_waits_its_first_delay() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001))]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(10)).await;
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.wake_at, row.attempts), (Phase::Waiting, Timestamp(60_000), 0), "{row:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }));
    let at: Vec<Duration> = hooks.calls_for("a").iter().map(|c| c.at).collect();
    assert_eq!(at, [secs(60), secs(120)], "each attempt after its minute, as without a store");
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
    #[allow(deprecated, reason = "what becomes of the old entry point on a store")]
    let submitted = r.submit(Job::new("a"), asset(2001));
    assert_eq!(submitted.map(|_| ()), Err(SubmitError::UseEnqueue), "a store's jobs are enqueued");
    let first = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let second = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    assert!(!first.is_joined() && second.is_joined());
    assert_eq!(first.await, second.await);
}

/// A replica killed while `fix_credentials` is under way: the fix is part of the attempt, so the replica that
/// takes the job over reconciles the attempt before it repeats the fix (and then the resubmission, with the
/// attempt's key).
#[tokio::test(start_paused = true)]
async fn a_fix_cut_off_by_a_crash_is_reconciled_before_it_is_repeated() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let p = || policies(r#"on(2007, fix_credentials("storage").then(fail("still broken")));"#);
    let hooks = FakeHooks::new().script("a", HookName::FixCredentials, [Scripted::Hang]);
    let first = on_store(p(), hooks.clone(), &store, &clock, "first");
    let _lost = first.enqueue(Job::new("a"), asset(2007)).await.unwrap();
    tokio::time::sleep(secs(5)).await; // the fix hangs
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!(row.phase, Phase::Calling);
    first.crash();
    drop(first);

    let second = on_store(p(), hooks.clone(), &store, &clock, "second");
    for _ in 0..120 {
        tokio::time::sleep(secs(1)).await;
        if store.job(row.id).await.unwrap().unwrap().phase == Phase::Finished {
            break;
        }
    }
    let done = store.job(row.id).await.unwrap().unwrap();
    assert_eq!(done.outcome.as_deref(), Some("recovered"), "{done:?}");
    let key = format!("a#{}.1", row.id);
    let seen: Vec<(HookName, String)> =
        hooks.calls_for("a").iter().map(|c| (c.hook, c.key.clone().unwrap_or_else(|| c.detail.clone()))).collect();
    assert_eq!(
        seen,
        [
            (HookName::FixCredentials, "storage".to_owned()),
            (HookName::Reconcile, key.clone()),
            (HookName::FixCredentials, "storage".to_owned()),
            (HookName::Resubmit, key),
        ],
        "the cut-off fix is reconciled before it is repeated"
    );
    drop(second);
}

/// A report that comes while `check` is under way, and `check` answers first: the job goes on with the check's
/// answer, and the report (of the same attempt) is not taken later for the result of the next attempt.
#[tokio::test(start_paused = true)]
async fn a_report_that_races_check_is_not_taken_for_the_next_attempts_result() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new()
        .script("a", HookName::Resubmit, [Scripted::Submit("u1".into()), Scripted::Submit("u2".into())])
        .script("a", HookName::Check, [Scripted::Delay(secs(10), Box::new(Scripted::Fail(asset(2001))))]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let called = |hook: HookName| hooks.calls_for("a").iter().filter(|c| c.hook == hook).count();
    // Submitted after a minute, checked when the default `await_result` (6 h) has run out.
    tokio::time::sleep(secs(6 * 3600)).await;
    while called(HookName::Check) == 0 {
        tokio::time::sleep(secs(1)).await;
    }
    // LightFlow's callback for u1 comes while the check (which finds u1 failed too) is under way.
    tokio::time::sleep(secs(5)).await;
    let racing = r.report(ReportTarget::Reference("u1"), Reported::Failed { failure: asset(2001) }).await.unwrap();
    assert!(matches!(racing, ReportAnswer::Applied { .. }), "{racing:?}");
    while called(HookName::Resubmit) < 2 {
        tokio::time::sleep(secs(10)).await;
    }
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.reference.as_deref(), row.report.as_deref()), (Phase::Awaiting, Some("u2"), None));
    let answer = r.report(ReportTarget::Reference("u2"), Reported::Succeeded).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }), "{answer:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }), "u2's own result ends the job");
}

/// A report by asset kept while the attempt's call is under way, when the call then answers at once (here:
/// failed): as in memory, it is dropped, not taken for the result of the next attempt.
#[tokio::test(start_paused = true)]
async fn an_early_report_of_a_call_that_answered_at_once_is_dropped() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let slow_failure = Scripted::Delay(secs(10), Box::new(Scripted::Fail(asset(2001))));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [slow_failure, Scripted::Submit("u2".into())]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(65)).await; // the first retry's call is under way
    let first = ReportTarget::Attempt { job: store.job_of("a").await.unwrap().unwrap().id, attempt: 1 };
    let early = r.report(first, Reported::Succeeded).await.unwrap();
    assert!(matches!(early, ReportAnswer::Early { .. }), "{early:?}");
    tokio::time::sleep(secs(120)).await; // it failed at once; the second retry is submitted as u2
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.reference.as_deref(), row.report.as_deref()), (Phase::Awaiting, Some("u2"), None));
    let answer = r.report(ReportTarget::Reference("u2"), Reported::Failed { failure: asset(2404) }).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }), "{answer:?}");
    assert!(matches!(handle.await, Outcome::Failed { .. }), "u2's own result ends the job");
}

/// A job waits its first decision's delay before its first attempt, in a store as in memory; and a job that a
/// shutdown stops between a call's answer and the next delay waits that delay after the restart.
#[tokio::test(start_paused = true)]
async fn delays_are_waited_in_a_store_from_the_first_one_and_across_a_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001))]);
    let r = on_store(once(), hooks.clone(), &store, &clock, "one");
    assert!(matches!(
        r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await,
        Outcome::Recovered { attempts: 2, .. }
    ));
    let times: Vec<Duration> = hooks.calls_for("a").iter().map(|c| c.at).collect();
    assert_eq!(times, [secs(60), secs(120)], "a minute before each retry");

    drop(r);

    // The call under way answers during the shutdown; the job stops before its next delay.
    let store = Arc::new(MemoryStore::new());
    let hooks = FakeHooks::new().script(
        "b",
        HookName::Resubmit,
        [Scripted::Delay(secs(20), Box::new(Scripted::Fail(asset(2001))))],
    );
    let before = on_store(once(), hooks.clone(), &store, &clock, "before");
    let _handle = before.enqueue(Job::new("b"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(65)).await;
    assert!(before.shutdown(secs(60)).await.is_empty());
    drop(before);
    let after = on_store(once(), hooks.clone(), &store, &clock, "after");
    let id = store.job_of("b").await.unwrap().unwrap().id;
    for _ in 0..300 {
        tokio::time::sleep(secs(1)).await;
        if store.job(id).await.unwrap().unwrap().phase == Phase::Finished {
            break;
        }
    }
    let times: Vec<Duration> = hooks.calls_for("b").iter().map(|c| c.at).collect();
    assert_eq!(times, [secs(60), secs(80 + 60)], "the second retry a minute after the first one's answer");
    drop(after);
}

/// A job claimed for its attempt's report, whose next attempt follows at once and is submitted too, waits for
/// that attempt's report: `check` is asked only once `await_result` has run out.
#[tokio::test(start_paused = true)]
async fn an_attempt_submitted_right_after_a_report_waits_for_its_own_report() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let p = policies(r#"on(2001, retry(#{ attempts: 2, initial: "0s" }).then(fail("gave up")));"#);
    let hooks = FakeHooks::new()
        .script("a", HookName::Resubmit, [Scripted::Submit("u1".into()), Scripted::Submit("u2".into())])
        .script("a", HookName::Check, [Scripted::Fail(asset(2404))]);
    let r = on_store(p, hooks.clone(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(10)).await;
    let first = r.report(ReportTarget::Reference("u1"), Reported::Failed { failure: asset(2001) }).await.unwrap();
    assert!(matches!(first, ReportAnswer::Applied { .. }), "{first:?}");
    tokio::time::sleep(secs(10)).await;
    let calls: Vec<HookName> = hooks.calls_for("a").iter().map(|c| c.hook).collect();
    assert_eq!(calls, [HookName::Resubmit, HookName::Resubmit], "no check before await_result runs out");
    let row = store.job_of("a").await.unwrap().unwrap();
    assert_eq!((row.phase, row.reference.as_deref()), (Phase::Awaiting, Some("u2")));
    let second = r.report(ReportTarget::Reference("u2"), Reported::Succeeded).await.unwrap();
    assert!(matches!(second, ReportAnswer::Applied { .. }), "{second:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 2, .. }));
}

/// A replica killed during a `reconcile` that follows an attempt's answer: the answer was written before the
/// reconcile, so the replica that takes the job over goes on from it (the 3003 policy's reconcile and
/// re-publication) and does not repeat the answered attempt.
#[tokio::test(start_paused = true)]
async fn an_answer_is_written_before_the_reconcile_that_follows_it() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(3003))]).script(
        "a",
        HookName::Reconcile,
        [Scripted::Hang],
    );
    let first = on_store(once(), hooks.clone(), &store, &clock, "first");
    let _lost = first.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(70)).await; // the retry failed with 3003 at 60 s; its reconcile hangs
    first.crash();
    drop(first);

    let second = on_store(once(), hooks.clone(), &store, &clock, "second");
    let id = store.job_of("a").await.unwrap().unwrap().id;
    for _ in 0..300 {
        tokio::time::sleep(secs(1)).await;
        if store.job(id).await.unwrap().unwrap().phase == Phase::Finished {
            break;
        }
    }
    let row = store.job(id).await.unwrap().unwrap();
    assert_eq!((row.outcome.as_deref(), row.attempts), (Some("recovered"), 2), "{row:?}");
    let seen: Vec<(HookName, Option<u32>)> = hooks.calls_for("a").iter().map(|c| (c.hook, c.attempt)).collect();
    assert_eq!(
        seen,
        [
            (HookName::Resubmit, Some(1)),
            (HookName::Reconcile, None),
            (HookName::Reconcile, None),
            (HookName::Republish, Some(2))
        ],
        "the answered resubmission is not repeated"
    );
    let ledger = store.calls(id).await.unwrap();
    assert_eq!(ledger[0].answer.as_deref(), Some("failed 3003"), "{ledger:?}");
    drop(second);
}

/// A handle resolves wherever its job ends: here the job is cancelled at rest through the store (as `remedy
/// jobs cancel` does), with no replica holding it; the replica that enqueued it reads the outcome back.
#[tokio::test(start_paused = true)]
async fn a_handle_resolves_when_its_job_ends_elsewhere() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let r = on_store(once(), FakeHooks::new(), &store, &clock, "one");
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(5)).await; // at rest until its retry, a minute in
    store.cancel("a", clock.now()).await.unwrap();
    let outcome = tokio::time::timeout(secs(30), handle).await.expect("resolved from the store");
    assert!(matches!(outcome, Outcome::Cancelled { attempts: 0 }), "{outcome:?}");
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
    // The job rests for its second (it is not held through it), so that it is claimed again.
    let settings = StoreSettings { lease: secs(3), hold_within: Duration::ZERO, ..settings("one") };
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
    // No first delay: the attempt is made as the job is held.
    let r = on_observed(retry_after("0s"), hooks, &store, settings("one"));
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
    let r = on_observed(retry_after("0s"), hooks, &store, settings);
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
