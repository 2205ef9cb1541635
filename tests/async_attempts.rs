//! Attempts that finish later: a hook answers `Submitted`, the job waits without a hook slot, and the host
//! reports the result (by asset or by reference) — early, late, twice, or for the wrong attempt — or the
//! engine asks `check` when `await_result` runs out. Under paused time.

use std::time::Duration;

use lightflow_remedy::engine::{
    HookName, Job, Outcome, OutcomeKind, Remediator, ReportAnswer, ReportTarget, Reported, SuspendedJob, VerdictKind,
};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies};
use lightflow_remedy::{Failure, Policies};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

fn submit(reference: &str) -> Scripted {
    Scripted::Submit(reference.to_owned())
}

/// A 2001 retried once after a minute, then failed.
fn once() -> Policies {
    policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0 }).then(fail("gave up")));"#)
}

fn remediator(p: Policies, hooks: FakeHooks) -> Remediator<FakeHooks> {
    Remediator::builder(p, hooks).without_circuit_breaker().await_result(secs(3600)).build()
}

#[tokio::test(start_paused = true)]
async fn a_submitted_attempt_waits_for_its_report_without_a_hook_slot() {
    let mut hooks = FakeHooks::new();
    for i in 0..5 {
        hooks = hooks.script(&format!("a{i}"), HookName::Resubmit, [submit(&format!("uuid-{i}"))]);
    }
    // One hook slot for five jobs: they all get submitted, since none holds a slot while it waits.
    let r = Remediator::builder(once(), hooks.clone()).without_circuit_breaker().max_concurrent_hook_calls(1).build();
    let mut handles = Vec::new();
    for i in 0..5 {
        handles.push(r.enqueue(Job::new(format!("a{i}")), asset(2001)).await.unwrap());
    }
    tokio::time::sleep(secs(120)).await;
    assert_eq!(hooks.calls().iter().filter(|c| c.hook == HookName::Resubmit).count(), 5);
    for i in 0..5 {
        let reference = format!("uuid-{i}");
        let id = format!("a{i}");
        let target =
            if i % 2 == 0 { ReportTarget::Reference(&reference) } else { ReportTarget::AssetEndedAt(&id, r.now()) };
        let answer = r.report(target, Reported::Succeeded).await.unwrap();
        assert!(matches!(answer, ReportAnswer::Applied { .. }), "a{i}: {answer:?}");
    }
    for handle in handles {
        assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    }
}

#[tokio::test(start_paused = true)]
async fn a_reported_failure_is_decided_on() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1"), submit("u2")]);
    let r = remediator(once(), hooks.clone());
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(61)).await;
    let answer = r.report(ReportTarget::Reference("u1"), Reported::Failed { failure: asset(2001) }).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }));
    // Decided again: the second retry, a minute later, is submitted as u2.
    tokio::time::sleep(secs(61)).await;
    // A late duplicate of u1's result is about an older attempt now.
    let late = r.report(ReportTarget::Reference("u1"), Reported::Succeeded).await.unwrap();
    assert!(matches!(late, ReportAnswer::OlderAttempt { .. }), "{late:?}");
    let answer =
        r.report(ReportTarget::AssetEndedAt("a", r.now()), Reported::Failed { failure: asset(2404) }).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }));
    match handle.await {
        Outcome::Failed { verdict } => assert_eq!(verdict.kind, VerdictKind::Policy),
        other => panic!("{other:?}"),
    }
    // The job is over: reports change nothing, and say why.
    let after = r.report(ReportTarget::Reference("u2"), Reported::Succeeded).await.unwrap();
    assert!(matches!(after, ReportAnswer::Finished { .. }), "{after:?}");
    assert_eq!(r.report(ReportTarget::Asset("nobody"), Reported::Succeeded).await.unwrap(), ReportAnswer::Unknown);
}

#[tokio::test(start_paused = true)]
async fn duplicate_reports_change_nothing() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1")]);
    let r = remediator(once(), hooks);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(61)).await;
    let first = r.report(ReportTarget::Reference("u1"), Reported::Succeeded).await.unwrap();
    let by_asset = ReportTarget::AssetEndedAt("a", r.now());
    let second = r.report(by_asset, Reported::Failed { failure: asset(2404) }).await.unwrap();
    assert!(matches!(first, ReportAnswer::Applied { .. }));
    assert!(matches!(second, ReportAnswer::Duplicate { .. } | ReportAnswer::Finished { .. }), "{second:?}");
    assert!(matches!(handle.await, Outcome::Recovered { .. }), "the first report stands");
}

#[tokio::test(start_paused = true)]
async fn a_report_that_comes_before_submitted_is_not_lost() {
    // By asset, while the hook is still being called: kept, and applied when it answers.
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Delay(secs(10), Box::new(submit("u1")))]);
    let r = remediator(once(), hooks);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(65)).await;
    let early = r.report(ReportTarget::AssetEndedAt("a", r.now()), Reported::Succeeded).await.unwrap();
    assert!(matches!(early, ReportAnswer::Early { .. }), "{early:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));

    // By reference, before any attempt has it: held, and applied when an attempt answers with it.
    let hooks = FakeHooks::new().script("b", HookName::Resubmit, [submit("u9")]);
    let r = remediator(once(), hooks);
    let handle = r.enqueue(Job::new("b"), asset(2001)).await.unwrap();
    assert_eq!(r.report(ReportTarget::Reference("u9"), Reported::Succeeded).await.unwrap(), ReportAnswer::Held);
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
}

#[tokio::test(start_paused = true)]
async fn without_a_report_the_engine_asks_check() {
    // Still running at the first check, done at the second.
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1")]).script(
        "a",
        HookName::Check,
        [Scripted::Running, Scripted::Succeed],
    );
    let r = remediator(once(), hooks.clone());
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    assert!(matches!(outcome, Outcome::Recovered { attempts: 1, .. }), "{outcome:?}");
    let checks: Vec<Duration> =
        hooks.calls_for("a").iter().filter(|c| c.hook == HookName::Check).map(|c| c.at).collect();
    assert_eq!(checks, [secs(60 + 3600), secs(60 + 7200)]);

    // No answer: a timeout failure, decided on like any other (here: the policy's second attempt).
    let hooks = FakeHooks::new().script("b", HookName::Resubmit, [submit("u1"), Scripted::Succeed]);
    let p = policies(r#"on("timeout", retry(#{ attempts: 1, initial: "10s" }));"#);
    let r = remediator(p, hooks.clone());
    let outcome = r.enqueue(Job::new("b"), asset(2001)).await.unwrap().await;
    assert!(matches!(outcome, Outcome::Recovered { attempts: 2, .. }), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn a_job_awaiting_a_report_is_suspended_and_resumed() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1")]);
    let before = remediator(once(), hooks.clone());
    let handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(600)).await;
    let suspended = before.shutdown(secs(5)).await;
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    let stored = serde_json::to_string(&suspended).unwrap();
    let state: Vec<SuspendedJob> = serde_json::from_str(&stored).unwrap();
    let awaiting = state[0].awaiting.as_ref().expect("it carries the attempt it awaits");
    assert_eq!((awaiting.attempt, awaiting.reference.as_str()), (1, "u1"));
    assert_eq!(awaiting.left, secs(3600 - 540), "what was left of await_result");

    let after = remediator(once(), hooks.clone());
    let handle = after.resume(state.into_iter().next().unwrap()).unwrap();
    tokio::task::yield_now().await;
    let answer = after.report(ReportTarget::Reference("u1"), Reported::Succeeded).await.unwrap();
    assert!(matches!(answer, ReportAnswer::Applied { .. }), "{answer:?}");
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    assert_eq!(hooks.calls_for("a").iter().filter(|c| c.hook == HookName::Resubmit).count(), 1, "not resubmitted");
}

/// A report that came early (or none), what the resumed call and the attempts after it answer, the reference the
/// resumed job then awaits (reported by the test), and what the job must come to.
struct EarlyCase {
    name: &'static str,
    report: Option<Reported>,
    repeated: Vec<Scripted>,
    awaited: Option<&'static str>,
    ends: fn(&Outcome) -> bool,
}

/// A report by asset that came while a call was under way, when the shutdown deadline cut that call off: it goes
/// with the suspended job, and is the result of the call's repetition on resume if that answers `Submitted`;
/// a repetition that answers at once makes it stale, and a later attempt waits for its own.
#[tokio::test(start_paused = true)]
async fn a_report_that_came_during_a_call_the_shutdown_cut_off_is_resumed_with_the_job() {
    let cases = [
        EarlyCase {
            name: "succeeded, repeated call submitted",
            report: Some(Reported::Succeeded),
            repeated: vec![submit("u1")],
            awaited: None,
            ends: |o| matches!(o, Outcome::Recovered { attempts: 1, .. }),
        },
        EarlyCase {
            name: "failed, repeated call submitted",
            report: Some(Reported::Failed { failure: asset(2404) }),
            repeated: vec![submit("u1")],
            awaited: None,
            ends: |o| matches!(o, Outcome::Failed { verdict } if verdict.last_failure.key() == asset(2404).key()),
        },
        EarlyCase {
            name: "succeeded, repeated call answered at once",
            report: Some(Reported::Succeeded),
            repeated: vec![Scripted::Fail(asset(2001)), submit("u2")],
            awaited: Some("u2"),
            ends: |o| matches!(o, Outcome::Recovered { attempts: 2, .. }),
        },
        EarlyCase {
            name: "no report",
            report: None,
            repeated: vec![submit("u1")],
            awaited: Some("u1"),
            ends: |o| matches!(o, Outcome::Recovered { attempts: 1, .. }),
        },
    ];
    for EarlyCase { name, report, repeated, awaited, ends } in cases {
        // The retry's call (a minute in) takes ten minutes; the shutdown's deadline cuts it off.
        let answers = std::iter::once(Scripted::Delay(secs(600), Box::new(Scripted::Succeed))).chain(repeated);
        let hooks = FakeHooks::new().script("a", HookName::Resubmit, answers);
        let before = remediator(once(), hooks.clone());
        let handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
        tokio::time::sleep(secs(61)).await;
        if let Some(report) = &report {
            let early = before.report(ReportTarget::AssetEndedAt("a", before.now()), report.clone()).await.unwrap();
            assert!(matches!(early, ReportAnswer::Early { .. }), "{name}: {early:?}");
        }
        let suspended = before.shutdown(secs(5)).await;
        assert_eq!(handle.await.kind(), OutcomeKind::Suspended, "{name}");
        let stored = serde_json::to_string(&suspended).unwrap();
        assert_eq!(stored.contains("early_report"), report.is_some(), "{name}: {stored}");
        let state: Vec<SuspendedJob> = serde_json::from_str(&stored).unwrap();
        assert_eq!(state[0].early_report, report, "{name}");

        let after = remediator(once(), hooks.clone());
        let handle = after.resume(state.into_iter().next().unwrap()).unwrap();
        if let Some(reference) = awaited {
            // This attempt awaits a report of its own: the early one was not taken for it.
            tokio::time::sleep(secs(61)).await;
            let answer = after.report(ReportTarget::Reference(reference), Reported::Succeeded).await.unwrap();
            assert!(matches!(answer, ReportAnswer::Applied { .. }), "{name}: {answer:?}");
        }
        let outcome = handle.await;
        assert!(ends(&outcome), "{name}: {outcome:?}");
        let calls = hooks.calls_for("a");
        let keys: Vec<_> = calls.iter().filter(|c| c.hook == HookName::Resubmit).map(|c| c.key.clone()).collect();
        assert_eq!(keys[0], keys[1], "{name}: the cut-off call is repeated with its key");
        assert!(calls.iter().all(|c| c.hook != HookName::Check), "{name}: no result was waited out");
    }
}

#[tokio::test(start_paused = true)]
async fn a_canceled_asset_ends_its_job_cancelled() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1")]);
    let r = remediator(once(), hooks);
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(61)).await;
    r.report(ReportTarget::Reference("u1"), Reported::Canceled).await.unwrap();
    assert!(matches!(handle.await, Outcome::Cancelled { attempts: 1 }));
}

/// Hooks keep metadata on the job (here, the uuid of the attempt under way), which later hooks see and which
/// a suspended job carries.
#[tokio::test(start_paused = true)]
async fn hooks_keep_metadata_on_the_job() {
    use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Reconciled};
    use serde_json::{Map, Value, json};
    use std::sync::{Arc, Mutex};

    /// Each reconcile's key, and the uuid the job carried then.
    type Seen = Arc<Mutex<Vec<(String, Option<Value>)>>>;
    #[derive(Clone, Default)]
    struct Host(Seen);
    impl Hooks for Host {
        async fn resubmit(
            &self,
            job: &Job,
            _: &Map<String, Value>,
            key: &AttemptKey<'_>,
        ) -> Result<Attempt, HookError> {
            job.set_meta("lightflow_uuid", format!("uuid-{}", key.attempt));
            Ok(Attempt::Failed(Failure::asset(2001, "").unwrap()))
        }
        async fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
            self.0.lock().unwrap().push((key.to_string(), job.meta("lightflow_uuid")));
            Ok(Reconciled::NotDone)
        }
    }
    let p = policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", reconcile_first: true }));"#);
    let host = Host::default();
    let r = Remediator::builder(p, host.clone()).without_circuit_breaker().build();
    let job = Job::new("a");
    let _ = r.enqueue(job, asset(2001)).await.unwrap().await;
    let seen = host.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    // Before the first attempt: about the host's own submission (attempt 0), no metadata yet; before the
    // second: about the first, whose uuid the resubmit kept.
    assert!(seen[0].0.ends_with(".0") && seen[0].1.is_none(), "{seen:?}");
    assert!(seen[1].0.ends_with(".1") && seen[1].1 == Some(json!("uuid-1")), "{seen:?}");
}

/// LightFlow's `GET` callback says `error` and no code: the engine asks `check` for the asset's `assetError`
/// before it decides, and decides on the code `check` found (here a 2404, which the policy fails at once);
/// when `check` cannot say, on the report as it came (code 1000). In memory and on a store alike.
#[tokio::test(start_paused = true)]
async fn an_error_callback_without_a_code_is_checked_for_its_code() {
    use lightflow_remedy::classify::Callback;
    use lightflow_remedy::store::{MemoryStore, Timestamp, TokioClock};
    use std::sync::Arc;
    let p = || {
        policies(
            r#"on(2001, retry(#{ attempts: 3, initial: "1m", multiplier: 1.0 }));
               on(2404, fail("not found"));
               on(1000, retry(#{ attempts: 3, initial: "1m", multiplier: 1.0 }));"#,
        )
    };
    for (stored, checked, fails) in [(false, true, true), (true, true, true), (false, false, false)] {
        let check = if checked { Scripted::Fail(asset(2404)) } else { Scripted::Running };
        let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1"), Scripted::Succeed]).script(
            "a",
            HookName::Check,
            [check],
        );
        let builder = Remediator::builder(p(), hooks.clone()).without_circuit_breaker().await_result(secs(3600));
        let r = if stored {
            let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
            builder.store_with(Arc::new(MemoryStore::new()), clock, Default::default()).build()
        } else {
            builder.build()
        };
        let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
        tokio::time::sleep(secs(61)).await;
        let callback = Callback::from_query("uuid=u1&status=error&endDate=2026-12-01T10:00:00.000Z").unwrap();
        let answer = r.report_callback(&callback).await.unwrap();
        assert!(matches!(answer, Some(ReportAnswer::Applied { .. })), "{answer:?}");
        let outcome = tokio::time::timeout(secs(600), handle).await.expect("the job ends");
        let checks = hooks.calls().iter().filter(|c| c.hook == HookName::Check).count();
        assert_eq!(checks, 1, "stored {stored}: asked once for the code");
        assert_eq!(matches!(outcome, Outcome::Failed { .. }), fails, "stored {stored}, checked {checked}: {outcome:?}");
    }
}

/// `check` finds the attempt cancelled where it ran (canceled at LightFlow by its owner): the job ends cancelled,
/// as a report of the cancellation would end it.
#[tokio::test(start_paused = true)]
async fn an_attempt_check_finds_cancelled_ends_the_job_cancelled() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [submit("u1")]).script(
        "a",
        HookName::Check,
        [Scripted::Canceled],
    );
    let r = Remediator::builder(once(), hooks.clone()).without_circuit_breaker().await_result(secs(600)).build();
    let handle = r.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    match handle.await {
        Outcome::Cancelled { attempts } => assert_eq!(attempts, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(hooks.calls().iter().filter(|c| c.hook == HookName::Check).count(), 1);
}
