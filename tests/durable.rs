//! The engine on a durable store (here the in-memory one, under paused time): jobs at rest are rows, not
//! tasks; the ledger has every side-effecting call; a crashed replica's jobs are taken over, the attempt under
//! way reconciled and repeated with the same key; reports go through the store.

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::engine::{
    HookName, Job, Outcome, Remediator, ReportAnswer, ReportTarget, Reported, StoreSettings,
};
use lightflow_remedy::store::{Clock, MemoryStore, Phase, Store, Timestamp, TokioClock};
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
    assert!(r.submit(Job::new("a"), asset(2001)).is_err(), "a store's jobs are enqueued");
    let first = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    let second = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    assert!(!first.is_joined() && second.is_joined());
    assert_eq!(first.await, second.await);
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
