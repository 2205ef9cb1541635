//! The hostile-script table through the engine: each case loads on a worker of a multi-thread runtime (2 MiB
//! stacks) and, if it loads, drives a job whose decisions run on those workers. Every job ends in an outcome
//! within its bound, and the runtime is still healthy afterwards.

mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator};
use lightflow_remedy::{Failure, LivePolicies, Policies};
use serde_json::{Map, Value};

/// A host whose resubmissions succeed at once.
struct Host;

impl Hooks for Host {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(Attempt::Succeeded)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// Runs one job with `policies` to its outcome, on the runtime's workers.
async fn job(policies: Policies, asset: String) -> Option<Outcome> {
    let live: Arc<LivePolicies> = policies.into();
    let remediator = Remediator::builder(live, Host).without_circuit_breaker().build();
    let failure = Failure::asset(2404, "not found").expect("a valid failure");
    let handle = remediator.enqueue(Job::new(asset), failure).await.expect("submitted");
    tokio::time::timeout(Duration::from_secs(20), handle).await.ok()
}

#[test]
fn every_hostile_case_ends_cleanly_through_the_engine() {
    let rt = runtime();
    let mut failed = Vec::new();
    for (i, case) in sandbox::cases().into_iter().enumerate() {
        let name = case.name.clone();
        let outcome = rt.block_on(async move {
            // The load runs on a worker too, as a host's reload from async code would.
            let loaded = tokio::spawn(async move { (sandbox::load(&case).0, case) }).await;
            let Ok((loaded, case)) = loaded else { return Err("the load panicked".to_owned()) };
            match (loaded, case.expect) {
                (Err(_), sandbox::Expect::Refused(..) | sandbox::Expect::Either) => Ok(None),
                (Err(e), sandbox::Expect::InTime) if sandbox::out_of_load_time(e.errors().next()) => Ok(None),
                (Err(e), expect) => Err(format!("expected {expect:?}, refused: {e}")),
                (Ok(_), sandbox::Expect::Refused(..)) => Err("loaded, but should be refused".to_owned()),
                (Ok(policies), _) => match tokio::spawn(job(policies, format!("asset-{i}"))).await {
                    Ok(Some(outcome)) => Ok(Some(outcome)),
                    Ok(None) => Err("the job did not end".to_owned()),
                    Err(_) => Err("the job's task panicked".to_owned()),
                },
            }
        });
        match outcome {
            Ok(Some(Outcome::Failed { verdict })) => {
                assert_ne!(verdict.kind.as_str(), "internal", "{name}: {verdict:?}");
            }
            Ok(_) => {}
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    // The runtime and the engine still work.
    let plain = Policies::builder().source("site.rhai", "on(2404, fail(\"plain\"));").build().unwrap();
    let outcome = rt.block_on(job(plain, "after".to_owned()));
    assert!(matches!(outcome, Some(Outcome::Failed { .. })), "{outcome:?}");
}

#[test]
fn a_decide_policy_with_changing_text_advances_through_the_engine() {
    let script = r#"
        fn decide(f, ctx) {
            notify(`seen ${ctx.history.decisions} times`)
                .then(retry(#{ attempts: 2, initial: `${ctx.history.decisions + 1}ms` }))
                .then(fail(`gave up after ${ctx.history.decisions} decisions`))
        }
    "#;
    struct Failing;
    impl Hooks for Failing {
        async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
            Ok(Attempt::Failed(Failure::asset(2404, "again").expect("valid")))
        }
    }
    let policies = Policies::builder().source("site.rhai", script).build().unwrap();
    let rt = runtime();
    let outcome = rt.block_on(async move {
        let remediator =
            Remediator::builder(Arc::<LivePolicies>::from(policies), Failing).without_circuit_breaker().build();
        let handle = remediator.enqueue(Job::new("changing"), Failure::asset(2404, "").unwrap()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), handle).await
    });
    match outcome {
        Ok(Outcome::Failed { verdict }) => {
            assert!(verdict.reason.starts_with("gave up after"), "{verdict:?}");
            assert_eq!(verdict.attempts, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_decide_policy_whose_shape_changes_at_every_call_still_ends_the_job() {
    // Every call returns a chain of a new length: no two decisions share a place, so the first stage (a
    // notify) repeats; only a bound on the steps taken without a new failure ends the job.
    let script = r#"
        fn decide(f, ctx) {
            let p = notify("again");
            for i in 0..(ctx.history.decisions % 60) { p = p.then(notify("more")); }
            p
        }
    "#;
    let policies = Policies::builder().source("site.rhai", script).build().unwrap();
    let rt = runtime();
    let outcome = rt.block_on(job(policies, "endless".to_owned()));
    assert!(matches!(outcome, Some(Outcome::Failed { .. })), "{outcome:?}");
}
