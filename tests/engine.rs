//! The engine under paused tokio time: exact schedules, hooks, joins, failures of hooks, cancellation,
//! shutdown and resume, and the fleet guards.
#![cfg(feature = "testing")]

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;

use lightflow_remedy::classify::catalogue::Downstream;
use lightflow_remedy::engine::{
    Attempt, AttemptKey, BreakerConfig, BreakerState, Event, HookError, HookName, Hooks, Job, Outcome, OutcomeKind,
    Remediator, RetryBudget, SubmitError, VerdictKind,
};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies, run_job};
use lightflow_remedy::{Failure, FailureKey, Policies};
use serde_json::{Map, Value};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "scripted").unwrap()
}

fn remediator(p: Policies, hooks: FakeHooks) -> Remediator<FakeHooks> {
    Remediator::builder(p, hooks).without_circuit_breaker().build()
}

#[test]
fn the_exact_delay_schedule_of_a_chain() {
    let p = policies(
        r#"on(2503, retry(#{ attempts: 3, initial: "10s", multiplier: 3.0 })
            .then(notify("ops", "still down")).then(retry(#{ attempts: 1, initial: "5m" })).then(fail("gave up")));"#,
    );
    let f = asset(2503);
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, vec![Scripted::Fail(f.clone()); 4]);
    let run = run_job(p, hooks, "a", f);
    // 10 s, then 30 s more, then 90 s more; the notice comes at once; 5 minutes later the last try.
    assert_eq!(run.times_of(HookName::Resubmit), [secs(10), secs(40), secs(130), secs(430)]);
    assert_eq!(run.times_of(HookName::Notify), [secs(130)]);
    assert_eq!(run.hooks().last(), Some(&HookName::Failed));
    match run.outcome {
        Outcome::Failed { verdict } => {
            assert_eq!((verdict.kind, verdict.reason.as_str(), verdict.attempts), (VerdictKind::Policy, "gave up", 4));
            assert!(verdict.rule.unwrap().contains("test.rhai:1:1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fix_credentials_then_resubmit() {
    let f = asset(2007);
    let hooks = FakeHooks::new().script("a", HookName::FixCredentials, [Scripted::Fixed]);
    let run = run_job(Policies::defaults(), hooks, "a", f.clone());
    assert_eq!(run.hooks(), [HookName::FixCredentials, HookName::Resubmit]);
    assert_eq!(run.calls[0].detail, "storage");
    assert_eq!(run.calls[1].at, Duration::ZERO, "resubmitted at once after the repair");
    assert!(matches!(run.outcome, Outcome::Recovered { attempts: 1, reconciled: false, .. }));

    // When the host cannot fix them, the next stage (a retry after 1 minute) follows without resubmitting.
    let hooks = FakeHooks::new().script("a", HookName::FixCredentials, [Scripted::CannotFix]);
    let run = run_job(Policies::defaults(), hooks, "a", f);
    assert_eq!(run.hooks(), [HookName::FixCredentials, HookName::Resubmit]);
    assert_eq!(run.calls[1].at, secs(60));
}

#[test]
fn republish_waits_its_minimum_delay_and_asks_for_a_new_reference_id() {
    let p =
        policies(r#"on(3003, republish("brightcove", #{ new_reference_id: true, initial: "1s", min_delay: "30s" }));"#);
    let run = run_job(p, FakeHooks::new(), "a", asset(3003));
    assert_eq!(run.times_of(HookName::Republish), [secs(30)]);
    assert_eq!(run.calls[0].detail, "brightcove with a new reference id");
    assert!(matches!(run.outcome, Outcome::Recovered { .. }));
}

#[test]
fn reconcile_avoids_a_duplicate_resubmission() {
    // 3003 by default: reconcile first. The earlier attempt had in fact published: nothing is resubmitted.
    let hooks = FakeHooks::new().script("a", HookName::Reconcile, [Scripted::Done]);
    let run = run_job(Policies::defaults(), hooks, "a", asset(3003));
    assert_eq!(run.hooks(), [HookName::Reconcile]);
    assert!(matches!(run.outcome, Outcome::Recovered { attempts: 0, reconciled: true, .. }));

    // API 503 reconciles before each retry (POST /assets is not idempotent).
    let hooks = FakeHooks::new().script("b", HookName::Reconcile, [Scripted::NotDone, Scripted::Done]).script(
        "b",
        HookName::Resubmit,
        [Scripted::Fail(Failure::api(503, "").unwrap())],
    );
    let run = run_job(Policies::defaults(), hooks, "b", Failure::api(503, "").unwrap());
    assert_eq!(run.hooks(), [HookName::Reconcile, HookName::Resubmit, HookName::Reconcile]);
    assert!(matches!(run.outcome, Outcome::Recovered { reconciled: true, .. }));
}

#[tokio::test(start_paused = true)]
async fn a_second_report_joins_the_running_job() {
    let hooks = FakeHooks::new();
    let r = remediator(Policies::defaults(), hooks.clone());
    let mut events = r.subscribe();
    let first = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    let second = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    assert!(!first.is_joined() && second.is_joined());
    assert_eq!(r.active_jobs(), 1);
    let (a, b) = (first.await, second.await);
    assert_eq!(a, b);
    assert_eq!(hooks.calls_for("a").len(), 1, "one remediation, one resubmission");
    let mut joined = false;
    while let Ok(e) = events.try_recv() {
        joined |= matches!(e, Event::Joined { .. });
    }
    assert!(joined);
    // Once it is over, a new report starts a new job.
    let third = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    assert!(!third.is_joined());
    third.await;
}

#[test]
fn a_hook_timeout_is_a_failure_policies_match() {
    let p = policies(r#"on("timeout", retry(#{ attempts: 1, initial: "5s" }).then(fail("timed out twice")));"#);
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang, Scripted::Hang]);
    let run = run_job(p, hooks, "a", asset(7001));
    // 7001: retry once after 5 m; the call hangs 30 s (the default timeout); the timeout rule retries after 5 s.
    assert_eq!(run.times_of(HookName::Resubmit), [secs(300), secs(335)]);
    match run.outcome {
        Outcome::Failed { verdict } => {
            assert_eq!(verdict.reason, "timed out twice");
            assert_eq!(verdict.last_failure.key(), FailureKey::timeout());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_error_or_panic_ends_that_job_alone() {
    let hooks = FakeHooks::new()
        .script("err", HookName::Resubmit, [Scripted::Error("storage API down".into())])
        .script("panic", HookName::Resubmit, [Scripted::Panic("host bug".into())]);
    let r = remediator(Policies::defaults(), hooks.clone());
    let mut handles = Vec::new();
    for a in ["err", "panic", "fine"].iter() {
        handles.push(r.enqueue(Job::new(*a), asset(2001)).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await);
    }
    let kinds: Vec<_> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Failed { verdict } => Some(verdict.kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [Some(VerdictKind::HookError), Some(VerdictKind::HookPanicked), None]);
    assert!(matches!(outcomes[2], Outcome::Recovered { .. }));
    let counters = r.counters();
    assert_eq!((counters.hook_errors, counters.hook_panics), (1, 1));
    // The failed hook heard about both.
    assert_eq!(hooks.calls().iter().filter(|c| c.hook == HookName::Failed).count(), 2);
}

/// A host whose `resubmit` panics before it returns its future (work done outside the `async` block).
struct PanicsBeforeItsFuture;

impl Hooks for PanicsBeforeItsFuture {
    fn resubmit(
        &self,
        job: &Job,
        _: &Map<String, Value>,
        _: &AttemptKey<'_>,
    ) -> impl Future<Output = Result<Attempt, HookError>> + Send {
        if job.asset_id() == "bad" {
            panic!("host bug before the future");
        }
        async { Ok(Attempt::Succeeded) }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_panics_before_its_future_is_a_hook_panic_and_gives_the_guards_back() {
    let r = Remediator::builder(Policies::defaults(), PanicsBeforeItsFuture)
        .without_circuit_breaker()
        .retry_budget(RetryBudget::aws_standard())
        .build();
    let bad = r.enqueue(Job::new("bad"), asset(2001)).await.unwrap();
    let fine = r.enqueue(Job::new("fine"), asset(2001)).await.unwrap();
    match bad.await {
        Outcome::Failed { verdict } => {
            assert_eq!(verdict.kind, VerdictKind::HookPanicked);
            assert!(verdict.reason.contains("host bug before the future"), "{}", verdict.reason);
        }
        other => panic!("a hook panic, not {other:?}"),
    }
    assert_eq!(fine.await.kind(), OutcomeKind::Recovered);
    assert_eq!(r.counters().hook_panics, 1);
    // The panicking attempt's tokens came back; the good one's cost was refunded on success.
    assert_eq!(r.budget().map(|b| b.available()), Some(500.0));
}

#[tokio::test(start_paused = true)]
async fn cancellation_of_one_job_and_of_all() {
    let r = remediator(Policies::defaults(), FakeHooks::new());
    let a = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
    let b = r.enqueue(Job::new("b"), asset(2503)).await.unwrap();
    let c = r.enqueue(Job::new("c"), asset(2503)).await.unwrap();
    tokio::task::yield_now().await;
    a.cancel();
    assert_eq!(a.await, Outcome::Cancelled { attempts: 0 });
    assert!(r.cancel("b"));
    assert!(!r.cancel("nobody"));
    r.cancel_all();
    assert_eq!(b.await.kind(), OutcomeKind::Cancelled);
    assert_eq!(c.await.kind(), OutcomeKind::Cancelled);
    assert_eq!(r.active_jobs(), 0);
}

/// The same job, once straight through and once shut down and resumed on a new remediator, ends the same way.
#[tokio::test(start_paused = true)]
async fn shutdown_then_resume_ends_like_an_uninterrupted_run() {
    let f = asset(2001);
    let script = || FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2002)), Scripted::Succeed]);

    let straight = remediator(Policies::defaults(), script()).enqueue(Job::new("a"), f.clone()).await.unwrap().await;

    let hooks = script();
    let first = remediator(Policies::defaults(), hooks.clone());
    let handle = first.enqueue(Job::new("a"), f.clone()).await.unwrap();
    tokio::time::sleep(secs(90)).await; // after the first resubmission, during the second wait
    let suspended = first.shutdown(secs(5)).await;
    assert_eq!(suspended.len(), 1);
    assert_eq!(suspended[0].history.elapsed(), secs(90), "the time spent so far goes with the state");
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    assert_eq!(first.enqueue(Job::new("z"), f).await.map(|_| ()), Err(SubmitError::ShuttingDown));

    // The state survives JSON, as a host would store it.
    let stored = serde_json::to_string(&suspended[0]).unwrap();
    let state = serde_json::from_str(&stored).unwrap();
    let second = remediator(Policies::defaults(), hooks.clone());
    let resumed = second.resume(state).unwrap().await;
    assert_eq!(resumed.kind(), straight.kind());
    match (&resumed, &straight) {
        (Outcome::Recovered { attempts: a, .. }, Outcome::Recovered { attempts: b, .. }) => assert_eq!(a, b),
        other => panic!("{other:?}"),
    }
    let keys: Vec<_> = hooks.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(keys, [Some(1), Some(2)], "each attempt once, with its own key");
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_call_in_flight_finish_within_the_deadline() {
    let hooks =
        FakeHooks::new().script("slow", HookName::Resubmit, [Scripted::Delay(secs(3), Box::new(Scripted::Succeed))]);
    let r = Remediator::builder(policies(r#"on(2001, retry(#{ initial: "0s" }));"#), hooks.clone())
        .without_circuit_breaker()
        .build();
    let handle = r.enqueue(Job::new("slow"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    assert!(r.shutdown(secs(10)).await.is_empty());
    assert_eq!(handle.await.kind(), OutcomeKind::Recovered);

    // A call that outlasts the deadline is dropped; the job is suspended before it, to be called again.
    let hooks =
        FakeHooks::new().script("slow", HookName::Resubmit, [Scripted::Delay(secs(60), Box::new(Scripted::Succeed))]);
    let r = Remediator::builder(policies(r#"on(2001, retry(#{ initial: "0s" }));"#), hooks)
        .without_circuit_breaker()
        .build();
    let handle = r.enqueue(Job::new("slow"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    let suspended = r.shutdown(secs(10)).await;
    assert_eq!(suspended.len(), 1);
    assert_eq!(suspended[0].history.attempts(), 0, "the lost call is not counted");
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_is_its_own_outcome() {
    let f = asset(2001);
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, vec![Scripted::Fail(f.clone()); 10]).script(
        "b",
        HookName::Resubmit,
        vec![Scripted::Fail(f.clone()); 10],
    );
    let p = policies(r#"on(2001, retry(#{ attempts: 10, initial: "1s" }));"#);
    let r = Remediator::builder(p, hooks)
        .without_circuit_breaker()
        .retry_budget(RetryBudget::grpc(6, 0.1).unwrap())
        .build();
    let mut events = r.subscribe();
    let a = r.enqueue(Job::new("a"), f.clone()).await.unwrap().await;
    // Each failure the policy retries takes a token, the submitted one included: after three failures (two
    // attempts) the bucket is at half, and the third retry is refused when it is decided.
    match a {
        Outcome::Failed { verdict } => {
            assert_eq!((verdict.kind, verdict.attempts), (VerdictKind::BudgetExhausted, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.counters().budget_refusals, 1);
    let refused = std::iter::from_fn(|| events.try_recv().ok()).any(|e| matches!(e, Event::BudgetRefused { .. }));
    assert!(refused);
    assert_eq!(r.budget().unwrap().available(), 3.0);
}

#[tokio::test(start_paused = true)]
async fn the_aws_quota_refunds_a_retry_that_succeeds() {
    let r = Remediator::builder(Policies::defaults(), FakeHooks::new())
        .without_circuit_breaker()
        .retry_budget(RetryBudget::aws_standard())
        .build();
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    assert_eq!(outcome.kind(), OutcomeKind::Recovered);
    assert_eq!(r.budget().unwrap().available(), 500.0);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_stops_the_fleet_from_hammering_a_downstream() {
    let down = asset(3001); // cannot connect to Brightcove
    let p = policies(r#"on(3001, retry(#{ attempts: 5, initial: "1s", multiplier: 1.0 }));"#);
    let mut hooks = FakeHooks::new();
    for i in 0..6 {
        hooks = hooks.script(&format!("a{i}"), HookName::Resubmit, [Scripted::Fail(down.clone()), Scripted::Succeed]);
    }
    let config = BreakerConfig { failure_threshold: 3, open_for: secs(30), ..BreakerConfig::default() };
    let r = Remediator::builder(p, hooks.clone()).circuit_breaker(config).build();
    let mut handles = Vec::new();
    for i in 0..6 {
        handles.push(r.enqueue(Job::new(format!("a{i}")), down.clone()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Three resubmissions failed and opened the breaker; the other jobs wait instead of calling.
    assert_eq!(r.breaker_state(Downstream::Brightcove), BreakerState::Open);
    let calls_when_open = hooks.calls().len();
    tokio::time::sleep(secs(20)).await;
    assert_eq!(hooks.calls().len(), calls_when_open, "no calls while open");
    for h in handles {
        assert_eq!(h.await.kind(), OutcomeKind::Recovered);
    }
    assert_eq!(r.breaker_state(Downstream::Brightcove), BreakerState::Closed);
    let transitions = r.counters().breaker_transitions;
    assert!(transitions["brightcove open"] >= 1 && transitions["brightcove half_open"] >= 1, "{transitions:?}");
    assert!(transitions["brightcove closed"] >= 1);
    // After the breaker opened, calls resumed only after 30 s.
    let after_open: Vec<_> = hooks.calls().into_iter().skip(calls_when_open).map(|c| c.at).collect();
    assert!(after_open.iter().all(|t| *t >= secs(31)), "{after_open:?}");
}

#[tokio::test(start_paused = true)]
async fn outside_a_runtime_submit_is_an_error_not_a_panic() {
    let r = remediator(Policies::defaults(), FakeHooks::new());
    let enqueued = move || r.enqueue(Job::new("a"), asset(2001)).now_or_never().map(|r| r.map(|_| ()));
    let result = std::thread::spawn(enqueued).join().unwrap().expect("answered at once");
    assert_eq!(result, Err(SubmitError::NoRuntime));
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_cut_off_by_the_deadline_is_asked_again_on_resume() {
    let hooks =
        FakeHooks::new().script("a", HookName::Reconcile, [Scripted::Delay(secs(60), Box::new(Scripted::Done))]);
    let first = remediator(Policies::defaults(), hooks.clone());
    let handle = first.enqueue(Job::new("a"), asset(3003)).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    let suspended = first.shutdown(secs(5)).await;
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    assert_eq!(suspended[0].history.decisions(), 0, "the lost reconcile left no trace");
    let second = remediator(Policies::defaults(), hooks.clone());
    second.resume(suspended[0].clone()).unwrap().await;
    let asked: Vec<HookName> = hooks.calls().iter().map(|c| c.hook).collect();
    assert_eq!(asked, [HookName::Reconcile, HookName::Reconcile, HookName::Republish]);
}

#[tokio::test(start_paused = true)]
async fn a_job_suspended_while_a_breaker_holds_it_does_not_wait_its_delay_again() {
    let down = asset(3001);
    let config = BreakerConfig { failure_threshold: 1, open_for: secs(600), ..BreakerConfig::default() };
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(down.clone())]);
    let p = policies(r#"on(3001, retry(#{ attempts: 3, initial: "1m", multiplier: 1.0 }));"#);
    let first = Remediator::builder(p, hooks.clone()).circuit_breaker(config).build();
    let b = first.enqueue(Job::new("b"), down.clone()).await.unwrap();
    let a = first.enqueue(Job::new("a"), down.clone()).await.unwrap();
    // At 1 m both retry: "a" fails again and opens the breaker, "b" recovers; at 2 m "a" meets the open breaker.
    tokio::time::sleep(secs(200)).await;
    assert_eq!(first.breaker_state(Downstream::Brightcove), BreakerState::Open);
    let suspended = first.shutdown(secs(1)).await;
    let _ = (a.await, b.await);
    let state = suspended.into_iter().find(|s| s.job.asset_id() == "a").expect("a was suspended");
    assert_eq!(state.remaining_delay, Some(Duration::ZERO), "its delay was spent before the breaker held it");
}

/// A job whose runtime stops while its attempt's hook call is in flight gives the budget's tokens back, and
/// its outcome is counted with the attempts it had made.
#[test]
fn a_runtime_dropped_mid_call_gives_the_guards_back() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001)), Scripted::Hang]);
    let r = Remediator::builder(Policies::defaults(), hooks)
        .without_circuit_breaker()
        .retry_budget(RetryBudget::aws_standard())
        .hook_timeout(secs(3600))
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let handle = runtime.block_on(r.enqueue(Job::new("a"), asset(2001))).unwrap();
    runtime.block_on(async {
        // The first retry fails (14 tokens spent), the second hangs in its call (14 more held).
        tokio::time::sleep(secs(10 * 60)).await;
        assert_eq!(r.budget().map(|b| b.available()), Some(472.0));
    });
    drop(runtime);
    assert_eq!(r.budget().map(|b| b.available()), Some(486.0), "the hanging attempt's tokens came back");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    assert_eq!(runtime.block_on(handle), Outcome::Cancelled { attempts: 1 });
    assert_eq!(r.counters().outcomes.get(&OutcomeKind::Cancelled), Some(&1));
}

#[test]
fn a_dropped_runtime_leaves_no_job_behind() {
    // A retry after a second, held in its task; its call hangs.
    let p = policies(r#"on(2503, retry(#{ attempts: 3, initial: "1s", multiplier: 1.0 }));"#);
    let r = remediator(p, FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    // The handle is carried out of the runtime on purpose: it is awaited on the next one.
    let handle = runtime.block_on(r.enqueue(Job::new("a"), asset(2503))).unwrap();
    runtime.block_on(async { tokio::time::sleep(secs(5)).await }); // the job's call is under way
    assert_eq!(r.active_jobs(), 1);
    drop(runtime); // the job's task is dropped with it
    assert_eq!(r.active_jobs(), 0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async {
        assert_eq!(handle.await, Outcome::Cancelled { attempts: 0 });
        let again = r.enqueue(Job::new("a"), asset(2503)).await.unwrap();
        assert!(!again.is_joined(), "a new report starts a new job");
        assert_eq!(r.shutdown(secs(1)).await.len(), 1, "the new job, waiting, is suspended");
    });
}

/// A handle cancels its job wherever the job is: held in a call, or at rest in the store, the remediator's own
/// or one given to it.
#[tokio::test(start_paused = true)]
async fn a_handle_cancels_its_job_held_or_at_rest() {
    use lightflow_remedy::engine::StoreSettings;
    use lightflow_remedy::store::{MemoryStore, Timestamp, TokioClock};
    use std::sync::Arc;
    // Each row: the case, the retry's delay (a second is held through, a minute rests), a store given or not.
    let table = [
        ("held in its call, own store", "1s", false),
        ("at rest, own store", "1m", false),
        ("held in its call, a given store", "1s", true),
        ("at rest, a given store", "1m", true),
    ];
    for (case, initial, given) in table {
        let p = policies(&format!(r#"on(2001, retry(#{{ attempts: 3, initial: "{initial}", multiplier: 1.0 }}));"#));
        let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]);
        let mut builder = Remediator::builder(p, hooks.clone()).without_circuit_breaker();
        if given {
            let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
            builder = builder.store_with(Arc::new(MemoryStore::new()), clock, StoreSettings::default());
        }
        let r = builder.build();
        let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
        tokio::time::sleep(secs(5)).await;
        let calls = hooks.calls_for("a").len();
        assert_eq!(calls, usize::from(initial == "1s"), "{case}: in its call, or not yet");
        let joined = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
        assert!(joined.is_joined(), "{case}");
        joined.cancel();
        assert_eq!(handle.await, Outcome::Cancelled { attempts: 0 }, "{case}");
        assert_eq!(r.counters().outcomes.get(&OutcomeKind::Cancelled), Some(&1), "{case}: counted once");
        assert!(!r.enqueue(Job::new("a"), asset(2001)).await.unwrap().is_joined(), "{case}: the asset is free");
    }
}
