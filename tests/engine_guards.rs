//! The fleet guards and the order of a step, as a host sees them: the retry budget asked when a retry is
//! decided (AWS standard quota, both cost schedules; gRPC throttling as grpc-go counts it), a reconcile before
//! a refused retry gives up, breakers that release their waiting jobs spread out, keys unique per job, and a
//! bound on steps without progress. All under paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lightflow_remedy::engine::{
    Attempt, AttemptKey, AwsCosts, BreakerConfig, BudgetConfig, HookError, HookName, Hooks, Job, Outcome, Remediator,
    RetryBudget, VerdictKind,
};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies};
use lightflow_remedy::{Downstream, Failure, Policies};
use serde_json::{Map, Value};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

fn verdict_kind(outcome: &Outcome) -> Option<VerdictKind> {
    match outcome {
        Outcome::Failed { verdict } => Some(verdict.kind),
        _ => None,
    }
}

/// grpc-go's `TestRetryThrottling` (maxTokens 10, tokenRatio 0.5, MaxAttempts 4, UNAVAILABLE retryable),
/// played through the engine: the host makes each call's first try itself, reports a first-try success, and
/// submits a first failure; the engine's retries call the same server. The server answers OK at calls 0, 3, 6,
/// 10..=14, 16 and 18, and UNAVAILABLE (API 503 here) otherwise.
#[tokio::test(start_paused = true)]
async fn grpc_throttling_counts_as_grpc_go_does() {
    #[derive(Clone)]
    struct Server(Arc<AtomicUsize>);
    impl Server {
        fn call(&self) -> bool {
            let i = self.0.fetch_add(1, Ordering::SeqCst);
            [0, 3, 6, 10, 11, 12, 13, 14, 16, 18].contains(&i)
        }
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst) - 1
        }
    }
    impl Hooks for Server {
        async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
            Ok(if self.call() { Attempt::Succeeded } else { Attempt::Failed(Failure::api(503, "").unwrap()) })
        }
    }
    let server = Server(Arc::new(AtomicUsize::new(0)));
    let p = policies(r#"on(http(503), retry(#{ attempts: 3, initial: "10ms", multiplier: 1.0 }).then(fail("max")));"#);
    let r = Remediator::builder(p, server.clone())
        .without_circuit_breaker()
        .retry_budget(RetryBudget::grpc(10, 0.5).unwrap())
        .build();
    // (the call succeeds?, the server's last call index, the tokens after it), as the Go test says.
    let cases: [(bool, usize, f64); 12] = [
        (true, 0, 10.0),
        (true, 3, 8.5),
        (true, 6, 7.0),
        (false, 8, 5.0),
        (false, 9, 4.0),
        (true, 10, 4.5),
        (true, 11, 5.0),
        (true, 12, 5.5),
        (true, 13, 6.0),
        (true, 14, 6.5),
        (true, 16, 6.0),
        (false, 17, 5.0),
    ];
    for (n, (ok, count, tokens)) in cases.into_iter().enumerate() {
        let succeeded = if server.call() {
            r.record_first_try_success();
            true
        } else {
            let handle = r.enqueue(Job::new(format!("rpc-{n}")), Failure::api(503, "").unwrap()).await.unwrap();
            match handle.await {
                Outcome::Recovered { .. } => true,
                other => {
                    assert_eq!(verdict_kind(&other), Some(VerdictKind::BudgetExhausted), "case {n}: {other:?}");
                    false
                }
            }
        };
        assert_eq!((succeeded, server.count()), (ok, count), "case {n}");
        assert_eq!(r.budget().unwrap().available(), tokens, "case {n}");
    }
}

/// The AWS quota charges a retry by the class of the failure it follows, when the retry is decided, and a
/// retry that succeeds gives its cost back.
#[tokio::test(start_paused = true)]
async fn aws_costs_by_class_through_the_engine() {
    let cases = [
        (RetryBudget::aws_standard(), asset(2001), 486.0),
        (RetryBudget::aws_standard(), asset(2503), 495.0),
        (RetryBudget::aws_standard(), Failure::api(429, "").unwrap(), 495.0),
        (RetryBudget::aws_standard(), Failure::timeout(Downstream::Brightcove, ""), 486.0),
        (RetryBudget::aws_standard_pre_2026(), asset(2001), 495.0),
        (RetryBudget::aws_standard_pre_2026(), asset(2429), 495.0),
        (RetryBudget::aws_standard_pre_2026(), Failure::timeout(Downstream::Brightcove, ""), 490.0),
    ];
    for (budget, failure, while_waiting) in cases {
        let key = failure.key();
        let r =
            Remediator::builder(policies(""), FakeHooks::new()).without_circuit_breaker().retry_budget(budget).build();
        let handle = r.enqueue(Job::new("a"), failure).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(r.budget().unwrap().available(), while_waiting, "{key}: taken when the retry is decided");
        assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }), "{key}");
        assert_eq!(r.budget().unwrap().available(), 500.0, "{key}: given back by the success");
    }
}

/// A retry the budget refuses ends its job when it is decided, not after the delay it would have waited.
#[tokio::test(start_paused = true)]
async fn a_refused_retry_ends_its_job_at_once() {
    let tiny = BudgetConfig::Aws { capacity: 10, costs: AwsCosts::STANDARD, no_retry_increment: 1 };
    let hooks = FakeHooks::new();
    let r = Remediator::builder(policies(""), hooks.clone())
        .without_circuit_breaker()
        .retry_budget(RetryBudget::new(tiny).unwrap())
        .build();
    let start = Instant::now();
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    assert_eq!(verdict_kind(&outcome), Some(VerdictKind::BudgetExhausted));
    assert_eq!(start.elapsed(), Duration::ZERO, "no backoff waited");
    let calls = hooks.calls_for("a");
    assert_eq!(calls.iter().map(|c| c.hook).collect::<Vec<_>>(), [HookName::Failed]);
    assert_eq!(r.counters().budget_refusals, 1);
}

/// With the budget exhausted, a stage that reconciles first still asks the host: an asset that LightFlow had in
/// fact finished ends recovered, and one it had not ends refused.
#[tokio::test(start_paused = true)]
async fn a_refused_retry_reconciles_first_when_its_stage_asks() {
    for (answer, done) in [(Scripted::Done, true), (Scripted::NotDone, false)] {
        let p = policies(r#"on(2001, retry(#{ attempts: 3, initial: "1m", reconcile_first: true }));"#);
        let hooks = FakeHooks::new().script("a", HookName::Reconcile, [answer]);
        let empty = BudgetConfig::Aws { capacity: 1, costs: AwsCosts::STANDARD, no_retry_increment: 1 };
        let r = Remediator::builder(p, hooks.clone())
            .without_circuit_breaker()
            .retry_budget(RetryBudget::new(empty).unwrap())
            .build();
        let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
        let hooks_called: Vec<HookName> = hooks.calls_for("a").iter().map(|c| c.hook).collect();
        if done {
            assert!(
                matches!(outcome, Outcome::Recovered { attempts: 0, reconciles: 1, reconciled: true, .. }),
                "{outcome:?}"
            );
            assert_eq!(hooks_called, [HookName::Reconcile]);
        } else {
            assert_eq!(verdict_kind(&outcome), Some(VerdictKind::BudgetExhausted));
            assert_eq!(hooks_called, [HookName::Reconcile, HookName::Failed]);
        }
    }
}

/// The order of a step: the wait, then the reconcile the stage asks for, then the breaker, then the hook.
#[tokio::test(start_paused = true)]
async fn a_step_waits_then_reconciles_then_passes_the_breaker() {
    let p = policies(r#"on(3001, retry(#{ attempts: 3, initial: "1m", multiplier: 1.0, reconcile_first: true }));"#);
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(3001))]);
    let config = BreakerConfig { failure_threshold: 1, open_for: secs(600), ..BreakerConfig::default() };
    let r = Remediator::builder(p, hooks.clone()).circuit_breaker(config).build();
    let outcome = r.enqueue(Job::new("a"), asset(3001)).await.unwrap().await;
    assert!(matches!(outcome, Outcome::Recovered { attempts: 2, reconciles: 2, .. }), "{outcome:?}");
    let calls: Vec<(HookName, u64)> = hooks.calls_for("a").iter().map(|c| (c.hook, c.at.as_secs())).collect();
    // The first attempt fails and opens the breaker; the second reconciles at 2 m, before waiting for the
    // breaker, which lets it through at 11 m.
    assert_eq!(
        calls,
        [(HookName::Reconcile, 60), (HookName::Resubmit, 60), (HookName::Reconcile, 120), (HookName::Resubmit, 660)]
    );
}

/// When a breaker closes, the jobs that waited for it go spread over `release_over`, not all at once.
#[tokio::test(start_paused = true)]
async fn a_closing_breaker_releases_its_waiting_jobs_spread_out() {
    let p = policies(r#"on(3001, retry(#{ attempts: 3, initial: "1m", multiplier: 1.0 }));"#);
    let mut hooks = FakeHooks::new().script("first", HookName::Resubmit, [Scripted::Fail(asset(3001))]);
    let n = 40;
    for i in 0..n {
        hooks = hooks.script(&format!("w{i}"), HookName::Resubmit, [Scripted::Succeed]);
    }
    let config =
        BreakerConfig { failure_threshold: 1, open_for: secs(600), release_over: secs(10), ..BreakerConfig::default() };
    let r = Remediator::builder(p, hooks.clone()).circuit_breaker(config).build();
    let first = r.enqueue(Job::new("first"), asset(3001)).await.unwrap();
    tokio::time::sleep(secs(30)).await;
    let mut waiting = Vec::new();
    for i in 0..n {
        waiting.push(r.enqueue(Job::new(format!("w{i}")), asset(3001)).await.unwrap());
    }
    // At 1 m "first" fails and opens the breaker until 11 m; the others reach it at 1 m 30 s and wait, and
    // "first" at 2 m. At 11 m one of them probes and closes it; the rest go spread over 10 s.
    assert!(matches!(first.await, Outcome::Recovered { .. }));
    for handle in waiting {
        assert!(matches!(handle.await, Outcome::Recovered { .. }));
    }
    let mut times: Vec<Duration> = hooks
        .calls()
        .into_iter()
        .filter(|c| c.hook == HookName::Resubmit && c.asset_id.starts_with('w'))
        .map(|c| c.at)
        .collect();
    times.sort();
    let (earliest, latest) = (times[0], times[times.len() - 1]);
    assert!(latest - earliest >= secs(9), "spread over the release: {earliest:?}..{latest:?}");
    assert!(latest - earliest <= secs(10), "within the release: {earliest:?}..{latest:?}");
    for second in 0..10 {
        let from = earliest + secs(second);
        let in_second = times.iter().filter(|t| **t >= from && **t < from + secs(1)).count();
        assert!(in_second <= n / 10 + 1, "second {second}: {in_second} jobs at once");
    }
}

/// Idempotency keys name the job: a later job of the same asset never repeats an earlier one's keys.
#[tokio::test(start_paused = true)]
async fn keys_are_unique_across_successive_jobs_of_an_asset() {
    let hooks = FakeHooks::new();
    let r = Remediator::builder(policies(""), hooks.clone()).without_circuit_breaker().build();
    for _ in 0..3 {
        assert!(matches!(r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await, Outcome::Recovered { .. }));
    }
    let keys: Vec<String> = hooks.calls_for("a").into_iter().filter_map(|c| c.key).collect();
    assert_eq!(keys.len(), 3);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("a#") && k.ends_with(".1")), "{keys:?}");
    // A second remediator (a restart) starts elsewhere too.
    let again = Remediator::builder(policies(""), hooks.clone()).without_circuit_breaker().build();
    again.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    let last = hooks.calls_for("a").into_iter().filter_map(|c| c.key).next_back().unwrap();
    assert!(!keys.contains(&last), "{last} repeats {keys:?}");
}

/// Reconciles are not attempts: the outcome counts them apart.
#[tokio::test(start_paused = true)]
async fn reconciles_are_counted_apart_from_attempts() {
    let p = policies(r#"on(2001, reconcile().then(retry(#{ attempts: 2, initial: "1m", reconcile_first: true })));"#);
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Fail(asset(2001)), Scripted::Succeed]);
    let r = Remediator::builder(p, hooks).without_circuit_breaker().build();
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    // reconcile (stage 1), then per attempt a reconcile and a resubmission, twice.
    assert!(matches!(outcome, Outcome::Recovered { attempts: 2, reconciles: 3, reconciled: false, .. }), "{outcome:?}");
}

/// A policy that never moves on (here a `decide` whose chain has another shape at every call, so that it
/// always starts anew) ends its job with a verdict of its own, instead of looping.
#[tokio::test(start_paused = true)]
async fn a_policy_that_makes_no_progress_ends_its_job() {
    // What is bounded here is steps, not time: a debug build on a busy machine may take longer than the
    // default 10 ms per decision, and a decision past its time falls back to the defaults.
    let p = Policies::builder()
        .decision_time_limit(Duration::from_secs(5))
        .source(
            "loop.rhai",
            r#"
        fn decide(f, ctx) {
            let n = ctx.history.decisions;
            let p = notify("again");
            for bit in 0..10 {
                if (n >> bit) % 2 == 1 { p = p.then(notify("again")); } else { p = p.then(fail("never")); }
            }
            p
        }
        "#,
        )
        .build()
        .unwrap();
    let hooks = FakeHooks::new();
    let r = Remediator::builder(p, hooks.clone()).without_circuit_breaker().build();
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    assert_eq!(verdict_kind(&outcome), Some(VerdictKind::NoProgress), "{outcome:?}");
    let notes = hooks.calls_for("a").iter().filter(|c| c.hook == HookName::Notify).count();
    assert_eq!(notes, 128, "the bound on steps without a new failure");
}
