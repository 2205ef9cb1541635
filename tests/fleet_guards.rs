//! The fleet guards on a shared store: two replicas of the engine on one store (the in-memory one, SQLite on
//! a temporary file, and PostgreSQL when `DATABASE_URL` names a server), under paused time. A breaker that one
//! replica opens holds the other; the retry budget is one for both; and, as a control, with the guards not
//! shared each replica goes its own way. A replica killed in the middle of a hook call is taken over, and its
//! attempt reconciled before it is repeated with the same key. A job of a newer build is left for a replica
//! that reads it.

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::decide::LivePolicies;
use lightflow_remedy::engine::{
    AwsCosts, BreakerConfig, BreakerState, BudgetConfig, HookName, Job, Outcome, Remediator, RemediatorBuilder,
    RetryBudget, StoreSettings, VerdictKind,
};
use lightflow_remedy::store::{Clock, Phase, Store, StoreOptions, Timestamp, TokioClock, open_url};
use lightflow_remedy::testing::{FakeHooks, Scripted, policies};
use lightflow_remedy::{Downstream, Failure};

#[path = "support/server.rs"]
mod server;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

/// A store under test, empty, with what must outlive it.
struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// Every store this build has; work on them holds tokio's paused clock still.
async fn stores() -> Vec<Subject> {
    let options = StoreOptions::default().hold_time(true);
    let mut out = Vec::new();
    let memory: Arc<dyn Store> = Arc::new(lightflow_remedy::store::MemoryStore::new());
    out.push(Subject { name: "memory", store: memory, _dir: None });
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fleet.db").display());
        let store = open_url(&url, &options).await.unwrap();
        out.push(Subject { name: "sqlite", store: Arc::from(store), _dir: Some(dir) });
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = server::database_url("fleet guards on PostgreSQL", "fleet_guards") {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let schema = format!("fleet_{}_{nanos}", std::process::id());
        let sep = if url.contains('?') { '&' } else { '?' };
        let store = open_url(&format!("{url}{sep}schema={schema}"), &options).await.unwrap();
        out.push(Subject { name: "postgres", store: Arc::from(store), _dir: None });
    }
    out
}

/// A replica named `owner` on `store`.
fn replica(
    p: &Arc<LivePolicies>,
    hooks: FakeHooks,
    store: &Subject,
    clock: &Arc<TokioClock>,
    owner: &str,
    shared: bool,
    guards: impl FnOnce(RemediatorBuilder<FakeHooks>) -> RemediatorBuilder<FakeHooks>,
) -> Remediator<FakeHooks> {
    let settings = StoreSettings { owner: Some(owner.to_owned()), shared_guards: shared, ..StoreSettings::default() };
    let builder = Remediator::builder(p.clone(), hooks).hook_timeout(secs(3600)).store_with(
        store.store.clone(),
        clock.clone(),
        settings,
    );
    guards(builder).build()
}

/// Hooks whose attempts of `asset_id` fail with `code`, again and again.
fn failing(asset_id: &str, code: u16) -> FakeHooks {
    let again = || std::iter::repeat_with(move || Scripted::Fail(asset(code))).take(50);
    FakeHooks::new().script(asset_id, HookName::Resubmit, again()).script(asset_id, HookName::Republish, again())
}

/// Side-effecting calls of `asset` (reconciles and notes left out).
fn attempts(hooks: &FakeHooks, asset: &str) -> usize {
    hooks.calls_for(asset).iter().filter(|c| c.key.is_some() && c.hook != HookName::Reconcile).count()
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..3600 {
        if done().await {
            return;
        }
        tokio::time::sleep(secs(1)).await;
    }
    panic!("{what}: not within an hour");
}

/// Replicas share their jobs, so each test works one replica at a time: the first opens the breaker or spends
/// the budget and is killed; the second, started after, must find them so on the store.
#[tokio::test(start_paused = true)]
async fn a_breaker_opened_by_one_replica_holds_the_others() {
    let p: Arc<LivePolicies> =
        policies(r#"on(3001, retry(#{ attempts: 8, initial: "1s", multiplier: 1.0 }).then(fail("gave up")));"#).into();
    let breaker = BreakerConfig { failure_threshold: 2, open_for: secs(600), ..BreakerConfig::default() };
    for shared in [true, false] {
        for subject in stores().await {
            let case = format!("{} shared={shared}", subject.name);
            let clock = Arc::new(TokioClock::starting_at(Timestamp(1_000_000)));
            let hooks = failing("a1", 3001);
            let a = replica(&p, hooks.clone(), &subject, &clock, "a", shared, |b| b.circuit_breaker(breaker));
            let _a1 = a.enqueue(Job::new("a1"), asset(3001)).await.unwrap();
            until(&case, async || a.breaker_state(Downstream::Brightcove) == BreakerState::Open).await;
            let opened = attempts(&hooks, "a1");
            assert_eq!(opened, 2, "{case}: the threshold's failures open it");
            a.crash();
            // a1 is cancelled, so that b works b1 alone (a1's failures would open b's own breaker too).
            subject.store.cancel("a1", clock.now()).await.unwrap();

            let b = replica(&p, hooks.clone(), &subject, &clock, "b", shared, |b| b.circuit_breaker(breaker));
            let b1 = b.enqueue(Job::new("b1"), asset(3001)).await.unwrap();
            tokio::time::sleep(secs(120)).await;
            if shared {
                assert_eq!(attempts(&hooks, "b1"), 0, "{case}: the breaker a opened holds b1 on b");
                assert_eq!(b.breaker_state(Downstream::Brightcove), BreakerState::Open, "{case}");
                // Once it has been open for `open_for`, a probe goes; b1's succeeds and closes it.
                let outcome = b1.await;
                assert!(matches!(outcome, Outcome::Recovered { attempts: 1, .. }), "{case}: {outcome:?}");
            } else {
                assert_eq!(attempts(&hooks, "b1"), 1, "{case}: b's own breaker is closed");
                assert!(matches!(b1.await, Outcome::Recovered { attempts: 1, .. }), "{case}");
            }
            b.crash();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_is_one_for_the_fleet() {
    let p: Arc<LivePolicies> =
        policies(r#"on(2001, retry(#{ attempts: 2, initial: "1s", multiplier: 1.0 }).then(fail("gave up")));"#).into();
    let costs = AwsCosts { throttling: 5, timeout: 5, transient: 5 };
    let budget = || RetryBudget::new(BudgetConfig::Aws { capacity: 10, costs, no_retry_increment: 1 }).unwrap();
    for shared in [true, false] {
        for subject in stores().await {
            let case = format!("{} shared={shared}", subject.name);
            let clock = Arc::new(TokioClock::starting_at(Timestamp(1_000_000)));
            let hooks = failing("a1", 2001);
            let a = replica(&p, hooks.clone(), &subject, &clock, "a", shared, |b| {
                b.without_circuit_breaker().retry_budget(budget())
            });
            // Two failed retries of a1 spend the ten tokens.
            let a1 = a.enqueue(Job::new("a1"), asset(2001)).await.unwrap().await;
            assert!(matches!(&a1, Outcome::Failed { verdict } if verdict.attempts == 2), "{case}: {a1:?}");
            assert_eq!(attempts(&hooks, "a1"), 2, "{case}");
            assert_eq!(a.budget().unwrap().available(), 0.0, "{case}");
            a.crash();

            let b = replica(&p, hooks.clone(), &subject, &clock, "b", shared, |b| {
                b.without_circuit_breaker().retry_budget(budget())
            });
            let b1 = b.enqueue(Job::new("b1"), asset(2001)).await.unwrap().await;
            if shared {
                assert!(
                    matches!(&b1, Outcome::Failed { verdict } if verdict.kind == VerdictKind::BudgetExhausted),
                    "{case}: the fleet's budget is spent: {b1:?}"
                );
                assert_eq!(attempts(&hooks, "b1"), 0, "{case}");
                assert_eq!(b.budget().unwrap().available(), 0.0, "{case}");
            } else {
                assert!(matches!(b1, Outcome::Recovered { attempts: 1, .. }), "{case}: {b1:?}");
                assert_eq!(b.budget().unwrap().available(), 10.0, "{case}: its own budget, given back");
            }
            b.crash();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_replica_killed_mid_hook_is_taken_over_and_its_attempt_reconciled_first() {
    let p: Arc<LivePolicies> =
        policies(r#"on(2001, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0 }).then(fail("gave up")));"#).into();
    for subject in stores().await {
        let case = subject.name;
        let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
        let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Hang]);
        let first = replica(&p, hooks.clone(), &subject, &clock, "first", true, |b| b.without_circuit_breaker());
        let _lost = first.enqueue(Job::new("a"), asset(2001)).await.unwrap();
        let store = subject.store.clone();
        until(case, async || store.job_of("a").await.unwrap().is_some_and(|r| r.phase == Phase::Calling)).await;
        let id = store.job_of("a").await.unwrap().unwrap().id;
        first.crash();
        drop(first);

        let second = replica(&p, hooks.clone(), &subject, &clock, "second", true, |b| b.without_circuit_breaker());
        until(case, async || store.job(id).await.unwrap().is_some_and(|r| r.phase == Phase::Finished)).await;
        let row = store.job(id).await.unwrap().unwrap();
        assert_eq!(row.outcome.as_deref(), Some("recovered"), "{case}: {row:?}");
        // A reconcile names the attempt's key in its detail.
        let seen: Vec<(HookName, String)> =
            hooks.calls_for("a").into_iter().map(|c| (c.hook, c.key.unwrap_or(c.detail))).collect();
        let key = format!("a#{id}.1");
        assert_eq!(
            seen,
            [(HookName::Resubmit, key.clone()), (HookName::Reconcile, key.clone()), (HookName::Resubmit, key)],
            "{case}: reconciled, then repeated with the same key"
        );
        second.crash();
    }
}

/// A rolling deploy: a job written by a newer build (a payload version this build does not know) is left
/// alone, untouched and due later, for a replica that reads it; the jobs this build knows go on beside it.
#[tokio::test(start_paused = true)]
async fn a_job_of_a_newer_build_is_left_for_a_replica_that_reads_it() {
    use lightflow_remedy::engine::PAYLOAD_VERSION;
    use lightflow_remedy::store::NewJob;
    let p: Arc<LivePolicies> =
        policies(r#"on(2001, retry(#{ attempts: 2, initial: "1s", multiplier: 1.0 }).then(fail("gave up")));"#).into();
    for subject in stores().await {
        let case = subject.name;
        let clock = Arc::new(TokioClock::starting_at(Timestamp(1_000_000)));
        let future = r#"{"written_by":"a newer build","shape":"unknown here"}"#;
        let new = NewJob::new("n1", future, PAYLOAD_VERSION + 1, "2001", clock.now());
        subject.store.submit(new, clock.now()).await.unwrap();
        let hooks = FakeHooks::new();
        let r = replica(&p, hooks.clone(), &subject, &clock, "old", true, |b| b.without_circuit_breaker());
        let known = r.enqueue(Job::new("k1"), asset(2001)).await.unwrap();
        assert!(matches!(known.await, Outcome::Recovered { .. }), "{case}");
        tokio::time::sleep(secs(120)).await;
        let row = subject.store.job_of("n1").await.unwrap().unwrap();
        assert_ne!(row.phase, Phase::Finished, "{case}: not ended by a build that cannot read it");
        assert_eq!((row.payload.as_str(), row.version, row.attempts), (future, PAYLOAD_VERSION + 1, 0), "{case}");
        assert_eq!(row.lease_owner, None, "{case}: released for another replica");
        assert!(row.wake_at > clock.now(), "{case}: due later, not claimed over and over");
        assert!(hooks.calls_for("n1").is_empty(), "{case}");
        r.crash();
    }
}

/// On PostgreSQL a replica that waits is woken by another's write (LISTEN/NOTIFY), long before its poll:
/// here the poll is an hour, and a report another replica writes for a job at rest is acted on within
/// seconds. Real time: the hint travels through the server.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_waiting_replica_is_woken_by_another_replicas_write() {
    use lightflow_remedy::engine::Reported;
    use lightflow_remedy::store::ReportTarget;
    let Some(url) = server::database_url("wake hints on PostgreSQL", "fleet_guards") else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}schema=hints_{}_{nanos}", std::process::id());
    let p: Arc<LivePolicies> = policies(r#"on(2001, resubmit(#{ attempts: 1, initial: "0s" }));"#).into();
    let hooks = FakeHooks::new().script("w1", HookName::Resubmit, [Scripted::Submit("lf-uuid-1".into())]);
    let store: Arc<dyn Store> = Arc::from(open_url(&url, &StoreOptions::default()).await.unwrap());
    let clock = store.own_clock().expect("the database's clock");
    let settings = StoreSettings { poll_every: secs(3600), owner: Some("waiting".into()), ..StoreSettings::default() };
    let r = Remediator::builder(p, hooks.clone()).store_with(store.clone(), clock.clone(), settings).build();
    let handle = r.enqueue(Job::new("w1"), asset(2001)).await.unwrap();
    let started = std::time::Instant::now();
    while store.job_of("w1").await.unwrap().is_none_or(|row| row.phase != Phase::Awaiting) {
        assert!(started.elapsed() < secs(20), "the job did not come to await its result");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The result arrives at another replica (here its store, as that replica's `report` writes it).
    let other: Arc<dyn Store> = Arc::from(open_url(&url, &StoreOptions::default()).await.unwrap());
    let result = serde_json::to_string(&Reported::Succeeded).unwrap();
    other.report(ReportTarget::Reference("lf-uuid-1"), &result, clock.now()).await.unwrap();
    let outcome = tokio::time::timeout(secs(20), handle).await.expect("woken by the hint, not by the hour's poll");
    assert!(matches!(outcome, Outcome::Recovered { .. }), "{outcome:?}");
    r.crash();
}
