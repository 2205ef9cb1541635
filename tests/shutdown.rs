//! Shutdown as a host meets it: calls in flight may finish, no new hook call starts, and every failed job
//! reaches the `failed` hook exactly once: before the deadline, or after resume, carried by its suspended
//! state. All under paused time.

use std::collections::HashMap;
use std::time::Duration;

use lightflow_remedy::engine::{HookName, Job, Outcome, OutcomeKind, Remediator, SuspendedJob, VerdictKind};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies};
use lightflow_remedy::{Failure, Policies};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

fn delayed(d: Duration, then: Scripted) -> Scripted {
    Scripted::Delay(d, Box::new(then))
}

/// Jobs whose calls are in flight when the shutdown begins and then fail (by policy, or with a hook error),
/// and jobs whose slow `failed` hook is running: each failed job is dead-lettered exactly once, or suspended
/// with its verdict and dead-lettered on resume. Nothing is lost, nothing delivered twice.
#[tokio::test(start_paused = true)]
async fn every_failed_job_is_dead_lettered_once_across_a_shutdown() {
    let p = || policies(r#"on(2001, retry(#{ attempts: 1, initial: "1m" }).then(fail("gave up")));"#);
    let mut hooks = FakeHooks::new();
    let n = 30;
    for i in 0..n {
        let id = format!("a{i}");
        // Three kinds: the attempt fails for good; the attempt's hook errors; the attempt fails and the
        // `failed` hook takes a while.
        hooks = match i % 3 {
            0 => hooks.script(&id, HookName::Resubmit, [delayed(secs(20), Scripted::Fail(asset(2404)))]),
            1 => hooks.script(&id, HookName::Resubmit, [delayed(secs(20), Scripted::Error("down".into()))]),
            _ => hooks.script(&id, HookName::Resubmit, [Scripted::Fail(asset(2404))]).script(
                &id,
                HookName::Failed,
                [delayed(secs(5), Scripted::Accept)],
            ),
        };
    }
    let before = Remediator::builder(p(), hooks.clone()).without_circuit_breaker().build();
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(before.enqueue(Job::new(format!("a{i}")), asset(2001)).await.unwrap());
    }
    // At 1 m every attempt starts; the third kind fails at once and its slow `failed` hooks run until 1 m 5 s.
    tokio::time::sleep(secs(62)).await;
    let suspended = before.shutdown(secs(30)).await;
    let outcomes: Vec<Outcome> = futures_util::future::join_all(handles).await;

    let failed_calls = |hooks: &FakeHooks| {
        let mut by_asset: HashMap<String, usize> = HashMap::new();
        for c in hooks.calls().into_iter().filter(|c| c.hook == HookName::Failed) {
            *by_asset.entry(c.asset_id).or_default() += 1;
        }
        by_asset
    };
    let by_id: HashMap<String, &SuspendedJob> = suspended.iter().map(|s| (s.job.asset_id().to_owned(), s)).collect();
    for (i, outcome) in outcomes.iter().enumerate() {
        let id = format!("a{i}");
        match outcome {
            Outcome::Failed { .. } => assert!(i % 3 == 2, "{id}: its slow dead letter finished in time"),
            Outcome::Suspended { state } => {
                assert!(i % 3 != 2, "{id}");
                let verdict = state.verdict.as_ref().unwrap_or_else(|| panic!("{id} is suspended with its verdict"));
                let expected = if i % 3 == 0 { VerdictKind::Policy } else { VerdictKind::HookError };
                assert_eq!(verdict.kind, expected, "{id}");
                assert!(by_id.contains_key(&id), "{id} is among the jobs shutdown returned");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    // No `failed` hook started after the shutdown began: only the third kind's, which had started before.
    assert!(failed_calls(&hooks).keys().all(|id| id[1..].parse::<usize>().unwrap() % 3 == 2));

    // Stored and read back (a restart), the suspended jobs deliver their dead letters.
    let stored = serde_json::to_string(&suspended).unwrap();
    let after = Remediator::builder(p(), hooks.clone()).without_circuit_breaker().build();
    for state in serde_json::from_str::<Vec<SuspendedJob>>(&stored).unwrap() {
        let outcome = after.resume(state).unwrap().await;
        assert_eq!(outcome.kind(), OutcomeKind::Failed);
    }
    let delivered = failed_calls(&hooks);
    for i in 0..n {
        assert_eq!(delivered.get(&format!("a{i}")), Some(&1), "a{i} dead-lettered exactly once");
    }
}

/// A shutdown starts no hook call: jobs waiting for a hook slot, or between the reconcile and the resubmission
/// of one step, are suspended; the calls in flight finish, and the shutdown returns when they have.
#[tokio::test(start_paused = true)]
async fn a_shutdown_starts_no_new_hook_call() {
    let p = policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", reconcile_first: true }));"#);
    let mut hooks = FakeHooks::new();
    for i in 0..10 {
        hooks = hooks.script(&format!("a{i}"), HookName::Reconcile, [delayed(secs(30), Scripted::NotDone)]);
    }
    let r = Remediator::builder(p, hooks.clone()).without_circuit_breaker().max_concurrent_hook_calls(2).build();
    let mut handles = Vec::new();
    for i in 0..10 {
        handles.push(r.enqueue(Job::new(format!("a{i}")), asset(2001)).await.unwrap());
    }
    // At 1 m two reconciles start (two slots); the other eight wait for a slot.
    tokio::time::sleep(secs(61)).await;
    let began = Instant::now();
    let suspended = r.shutdown(secs(600)).await;
    assert_eq!(began.elapsed(), secs(29), "the shutdown waits for the calls in flight, not its deadline");
    let after_shutdown: Vec<_> = hooks.calls().into_iter().filter(|c| c.at > secs(61)).collect();
    assert!(after_shutdown.is_empty(), "calls started after the shutdown began: {after_shutdown:?}");
    assert_eq!(suspended.len(), 10, "the two reconciled jobs did not go on to resubmit");
    for handle in handles {
        assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    }
    // Each reconciled job resumes without waiting again; every one resubmits once, with its first key.
    let after = Remediator::builder(Policies::defaults(), hooks.clone()).without_circuit_breaker().build();
    let mut recovered = 0;
    for state in suspended {
        if let Outcome::Recovered { attempts: 1, .. } = after.resume(state).unwrap().await {
            recovered += 1;
        }
    }
    assert_eq!(recovered, 10);
}

/// A hook call cut off by the deadline leaves its job suspended, and resume repeats the call with the same key.
#[tokio::test(start_paused = true)]
async fn a_call_cut_off_by_the_deadline_is_repeated_with_the_same_key() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]);
    let before = Remediator::builder(Policies::defaults(), hooks.clone())
        .without_circuit_breaker()
        .hook_timeout(secs(3600))
        .build();
    let handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    // The first retry (about a minute after the failure) hangs in its call.
    tokio::time::sleep(secs(120)).await;
    let suspended = before.shutdown(secs(5)).await;
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    let after = Remediator::builder(Policies::defaults(), hooks.clone()).without_circuit_breaker().build();
    let state = suspended.into_iter().next().unwrap();
    assert!(matches!(after.resume(state).unwrap().await, Outcome::Recovered { attempts: 1, .. }));
    let keys: Vec<String> = hooks.calls_for("a").into_iter().filter_map(|c| c.key).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the same attempt, the same key");
}
