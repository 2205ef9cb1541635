//! `await_result` as a stage option: how long a submitted attempt of that stage may take to report before the
//! engine asks `check`. Read and refused at load (file:line:column), shown by decisions and `remedy explain`,
//! and used by the engine for the stage's submitted attempts, in memory and on a store, falling back to the
//! builder's `await_result` when the stage does not set it. Under paused time.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::engine::{HookName, Job, Outcome, OutcomeKind, Remediator, StoreSettings, SuspendedJob};
use lightflow_remedy::store::{MemoryStore, Phase, Store, Timestamp, TokioClock};
use lightflow_remedy::testing::{FakeHooks, Scripted};
use lightflow_remedy::{Context, Failure, History, Policies};
use serde_json::Value;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn asset(code: u16) -> Failure {
    Failure::asset(code, "").unwrap()
}

fn site(script: &str) -> Result<Policies, lightflow_remedy::LoadError> {
    Policies::builder().source("site.rhai", script).build()
}

/// The builder's default in these tests, distinct from every stage's.
const BUILDER_WAIT: Duration = Duration::from_secs(3600);

#[test]
fn the_option_is_read_for_every_waiting_action() {
    let table: &[(&str, u16, Option<Duration>)] = &[
        (r#"on(2001, retry(#{ await_result: "2h" }));"#, 2001, Some(secs(7200))),
        (r#"on(2001, retry(#{ attempts: 2, initial: "1m", await_result: "90s" }));"#, 2001, Some(secs(90))),
        (r#"on(2006, resubmit(#{ "4k": false }, #{ await_result: "45m" }));"#, 2006, Some(secs(45 * 60))),
        (r#"on(3005, republish("brightcove", #{ await_result: "20m" }));"#, 3005, Some(secs(20 * 60))),
        (r#"on(2001, retry(#{ await_result: "1ms" }));"#, 2001, Some(Duration::from_millis(1))),
        (r#"on(2001, retry(#{ await_result: "30days" }));"#, 2001, Some(secs(30 * 86_400))),
        // Not set: the remediator's own applies.
        (r#"on(2001, retry(#{ attempts: 2 }));"#, 2001, None),
        (r#"on(2007, fix_credentials("storage"));"#, 2007, None),
    ];
    for (script, code, expected) in table {
        let policies = site(script).unwrap_or_else(|e| panic!("{script}: {e}"));
        let decision = policies.decide(&asset(*code), &History::new(0), &Context::new());
        assert_eq!(decision.await_result(), *expected, "{script}");
        let json = serde_json::to_value(&decision).unwrap();
        let shown = json["params"].get("await_result_ms").and_then(Value::as_u64);
        assert_eq!(shown, expected.map(|d| d.as_millis() as u64), "{script}: {json}");
    }
    // The built-in defaults do not set it anywhere.
    let defaults = Policies::defaults();
    for code in lightflow_remedy::classify::catalogue::codes() {
        let explanation = defaults.explain(&asset(code), 1, &Context::new(), 0);
        assert!(explanation.steps.iter().all(|d| d.await_result().is_none()), "{code}");
    }
}

#[test]
fn bad_values_are_refused_at_load_with_their_place() {
    // (script, line, column, words the message holds)
    let table: &[(&str, u32, u32, &str)] = &[
        (r#"on(2001, retry(#{ await_result: "0s" }));"#, 1, 10, "await_result (0s) must be at least 1ms"),
        (r#"on(2001, retry(#{ await_result: "500us" }));"#, 1, 10, "must be at least 1ms"),
        (r#"on(2001, retry(#{ await_result: "31days" }));"#, 1, 10, "\"31days\" is longer than 30days"),
        (r#"on(2001, retry(#{ await_result: "soon" }));"#, 1, 10, "cannot read \"soon\" as a duration"),
        (r#"on(2001, retry(#{ await_result: "-1h" }));"#, 1, 10, "cannot read \"-1h\""),
        (r#"on(2001, retry(#{ await_result: 3600 }));"#, 1, 10, "must be a duration string such as \"30s\""),
        (r#"on(2001, retry(#{ await_result: true }));"#, 1, 10, "must be a duration string"),
        (
            "// encodes\non(2006, resubmit(#{ \"4k\": false }, #{ await_result: \"0ms\" }));",
            2,
            10,
            "resubmit: await_result (0s) must be at least 1ms",
        ),
        ("\n\n  on(3005, republish(\"brightcove\", #{ await_result: \"99999days\" }));", 3, 12, "longer than 30days"),
        // Misspelt, it is an unknown option, found before anything runs, at the key.
        (r#"on(2001, retry(#{ await_results: "2h" }));"#, 1, 19, "did you mean `await_result`"),
        // Where it has no meaning.
        (r#"on(2001, retry(#{}).then(fail("x", #{ await_result: "1h" })));"#, 1, 0, "fail"),
    ];
    for (script, line, column, words) in table {
        let err = site(script).expect_err(script);
        let first = err.errors().next().unwrap_or_else(|| panic!("{script}: no error in {err}"));
        let text = first.to_string();
        assert!(text.contains(words), "{script}: {text}");
        let place = if *column > 0 { format!("site.rhai:{line}:{column}: ") } else { format!("site.rhai:{line}:") };
        assert!(text.starts_with(&place), "{script}: {text} (expected it at {place})");
    }
}

#[test]
fn the_stage_shows_it_in_the_policy_text() {
    let policies = site(r#"on(2001, retry(#{ attempts: 2, initial: "1m", await_result: "2h" }));"#).unwrap();
    let decision = policies.decide(&asset(2001), &History::new(0), &Context::new());
    let text = decision.rule().policy().to_string();
    assert!(text.ends_with(", results awaited up to 2h"), "{text}");
}

#[test]
fn remedy_explain_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-encodes.rhai"),
        r#"on(2001, retry(#{ attempts: 2, initial: "1m", await_result: "2h" }));"#,
    )
    .unwrap();
    let policies = dir.path().to_str().unwrap();
    let remedy = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_remedy")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = remedy(&["explain", "2001", "--policies", policies]);
    assert!(text.contains("its result is awaited up to 2h, then `check` is asked (await_result)"), "{text}");
    let json: Value = serde_json::from_str(&remedy(&["explain", "2001", "--policies", policies, "--json"])).unwrap();
    assert_eq!(json["await_result_ms"], 7_200_000, "{json}");
    assert_eq!(json["params"]["await_result_ms"], 7_200_000, "{json}");
    assert_eq!(json["steps"][0]["params"]["await_result_ms"], 7_200_000, "{json}");
    // A stage that does not set it: null, the remediator's own.
    let json: Value = serde_json::from_str(&remedy(&["explain", "2503", "--json"])).unwrap();
    assert_eq!(json["await_result_ms"], Value::Null, "{json}");
    assert!(json["params"].get("await_result_ms").is_none(), "{json}");
    let text = remedy(&["explain", "2503"]);
    assert!(!text.contains("await_result"), "{text}");
}

/// Policies where 2001 retries with a stage wait of 10 minutes, 2002 without one, and 2007 repairs
/// credentials (a stage with no options) and then retries.
fn staged() -> Policies {
    site(
        r#"
        on(2001, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0, await_result: "10m" }).then(fail("gave up")));
        on(2002, retry(#{ attempts: 2, initial: "1m", multiplier: 1.0 }).then(fail("gave up")));
        on(2007, fix_credentials("storage").then(fail("gave up")));
        "#,
    )
    .unwrap()
}

fn checks(hooks: &FakeHooks, asset: &str) -> Vec<Duration> {
    hooks.calls_for(asset).iter().filter(|c| c.hook == HookName::Check).map(|c| c.at).collect()
}

#[tokio::test(start_paused = true)]
async fn the_engine_checks_at_the_stages_wait_or_else_at_the_builders() {
    // (asset, first failure, when `check` is asked: the submission's time plus each wait)
    let table: &[(&str, u16, [u64; 2])] = &[
        // The stage's 10 minutes, after the 1-minute delay; and 10 minutes again after `Running`.
        ("staged", 2001, [60 + 600, 60 + 1200]),
        // The builder's hour.
        ("unstaged", 2002, [60 + 3600, 60 + 7200]),
        // fix_credentials has no options: its resubmission waits the builder's hour (it is called at once).
        ("credentials", 2007, [3600, 7200]),
    ];
    let mut hooks = FakeHooks::new();
    for (id, _, _) in table {
        hooks = hooks.script(id, HookName::Resubmit, [Scripted::Submit(format!("{id}-uuid"))]).script(
            id,
            HookName::Check,
            [Scripted::Running, Scripted::Succeed],
        );
    }
    let r = Remediator::builder(staged(), hooks.clone()).without_circuit_breaker().await_result(BUILDER_WAIT).build();
    let mut handles = Vec::new();
    for (id, code, _) in table.iter() {
        handles.push(r.enqueue(Job::new(*id), asset(*code)).await.unwrap());
    }
    for ((id, _, expected), handle) in table.iter().zip(handles) {
        let outcome = handle.await;
        assert!(matches!(outcome, Outcome::Recovered { attempts: 1, .. }), "{id}: {outcome:?}");
        assert_eq!(checks(&hooks, id), expected.map(secs), "{id}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_check_is_a_timeout_that_names_the_stages_wait() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Submit("u1".into())]);
    let p = site(
        r#"on(2001, retry(#{ attempts: 2, initial: "1m", await_result: "10m" }));
           on("timeout", fail("no result"));"#,
    )
    .unwrap();
    let r = Remediator::builder(p, hooks.clone()).without_circuit_breaker().await_result(BUILDER_WAIT).build();
    let outcome = r.enqueue(Job::new("a"), asset(2001)).await.unwrap().await;
    // `check` does not know (the fake's default): a timeout failure, decided on.
    let Outcome::Failed { verdict } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(verdict.reason, "no result");
    let last = verdict.last_failure.message().to_owned();
    assert!(last.contains("reported no result within 10m"), "{last}");
    assert_eq!(checks(&hooks, "a")[0], secs(60 + 600));
}

#[tokio::test(start_paused = true)]
async fn a_suspended_job_keeps_its_stages_wait() {
    let hooks = FakeHooks::new().script("a", HookName::Resubmit, [Scripted::Submit("u1".into())]).script(
        "a",
        HookName::Check,
        [Scripted::Running, Scripted::Succeed],
    );
    let before = Remediator::builder(staged(), hooks.clone()).without_circuit_breaker().build();
    let handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(60 + 240)).await;
    let state = before.shutdown(secs(5)).await;
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    let json = serde_json::to_string(&state).unwrap();
    let state: Vec<SuspendedJob> = serde_json::from_str(&json).unwrap();
    let awaiting = state[0].awaiting.as_ref().unwrap();
    assert_eq!((awaiting.left, awaiting.wait), (secs(600 - 240), Some(secs(600))), "{json}");

    // Resumed on a remediator whose own default is a day: the stage's 10 minutes still apply.
    let after =
        Remediator::builder(staged(), hooks.clone()).without_circuit_breaker().await_result(secs(86_400)).build();
    let resumed_at = tokio::time::Instant::now();
    let handle = after.resume(state.into_iter().next().unwrap()).unwrap();
    assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
    assert_eq!(resumed_at.elapsed(), secs(360 + 600), "the rest of the wait, then a whole stage wait after Running");
}

#[tokio::test(start_paused = true)]
async fn on_a_store_the_row_is_due_at_the_stages_wait() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    let mut hooks = FakeHooks::new();
    for id in ["staged", "unstaged"] {
        hooks = hooks.script(id, HookName::Resubmit, [Scripted::Submit(format!("{id}-uuid"))]).script(
            id,
            HookName::Check,
            [Scripted::Running, Scripted::Succeed],
        );
    }
    let settings = StoreSettings { owner: Some("one".into()), ..StoreSettings::default() };
    let r = Remediator::builder(staged(), hooks.clone())
        .without_circuit_breaker()
        .await_result(BUILDER_WAIT)
        .store_with(store.clone(), clock.clone(), settings)
        .build();
    let staged_job = r.enqueue(Job::new("staged"), asset(2001)).await.unwrap();
    let unstaged_job = r.enqueue(Job::new("unstaged"), asset(2002)).await.unwrap();
    tokio::time::sleep(secs(120)).await;
    for (id, wait) in [("staged", secs(600)), ("unstaged", BUILDER_WAIT)] {
        let row = store.job_of(id).await.unwrap().unwrap();
        assert_eq!(row.phase, Phase::Awaiting, "{id}");
        // Submitted at 60 s (plus the few milliseconds the claimer takes at most).
        let due = row.wake_at.since(Timestamp(0));
        assert!(due >= secs(60) + wait && due < secs(62) + wait, "{id}: due at {due:?}");
    }
    assert!(matches!(staged_job.await, Outcome::Recovered { attempts: 1, .. }));
    assert!(matches!(unstaged_job.await, Outcome::Recovered { attempts: 1, .. }));
    let at = |id| checks(&hooks, id);
    let staged_checks = at("staged");
    assert_eq!(staged_checks.len(), 2);
    assert!(staged_checks[1] - staged_checks[0] >= secs(600) && staged_checks[1] - staged_checks[0] < secs(602));
    let unstaged_checks = at("unstaged");
    assert!(unstaged_checks[1] - unstaged_checks[0] >= BUILDER_WAIT);
    assert!(unstaged_checks[1] - unstaged_checks[0] < BUILDER_WAIT + secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_job_counts_the_time_its_result_took_against_max_elapsed() {
    // The stage gives up after 30 minutes; the submitted attempt's result (a failure) comes two hours after the
    // resume, by `check`.
    let p = || {
        site(
            r#"on(2001, retry(#{ attempts: 5, initial: "1m", multiplier: 1.0, max_elapsed: "30m", await_result: "2h" })
                .then(fail("gave up")));"#,
        )
        .unwrap()
    };
    let hooks = FakeHooks::new()
        .script("a", HookName::Resubmit, [Scripted::Submit("u1".into()), Scripted::Succeed])
        .script("a", HookName::Check, [Scripted::Fail(asset(2001))]);
    let before = Remediator::builder(p(), hooks.clone()).without_circuit_breaker().build();
    let handle = before.enqueue(Job::new("a"), asset(2001)).await.unwrap();
    tokio::time::sleep(secs(120)).await;
    let state = before.shutdown(secs(5)).await;
    assert_eq!(handle.await.kind(), OutcomeKind::Suspended);
    assert!(state[0].awaiting.is_some(), "suspended while its attempt is out");

    let after = Remediator::builder(p(), hooks.clone()).without_circuit_breaker().build();
    let outcome = after.resume(state.into_iter().next().unwrap()).unwrap().await;
    let Outcome::Failed { verdict } = &outcome else { panic!("the 30 minutes are long gone: {outcome:?}") };
    assert_eq!(verdict.reason, "gave up", "{verdict:?}");
    assert_eq!(hooks.calls_for("a").iter().filter(|c| c.hook == HookName::Resubmit).count(), 1);
}
