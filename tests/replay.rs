//! Replaying a log of failures: every decision, or exactly the ones a policy change affects.

use lightflow_remedy::operate::replay::{self, Entry, Replayer};
use lightflow_remedy::{ActionKind, FailureKey, Policies};

const LOG: &str = r#"{"asset_id": "a1", "time": "2026-11-25T02:00:00Z", "failure": {"code": 2503, "message": "unavailable"}}
{"asset_id": "a2", "time": "2026-11-25T02:00:05Z", "assetError": {"code": 2404, "message": "not found"}}
{"asset_id": "a3", "time": 1795572010000, "http_status": 429, "body": {"message": "slow"}, "retry_after": "30"}
{"asset_id": "a1", "time": "2026-11-25T02:06:00Z", "failure": {"code": 2503}}

{"asset_id": "a4", "failure": {"code": 2001}, "context": {"plan": "trial"}}
{"asset_id": "a2", "failure": {"code": 2404}}
{"asset_id": "a5", "failure": {"code": 3005}}
{"asset_id": "a6", "failure": {"code": 2404}}
"#;

fn entries(log: &str) -> Vec<Entry> {
    replay::parse(log).collect::<Result<_, _>>().unwrap()
}

#[test]
fn every_failure_is_decided_with_its_assets_history() {
    let policies = Policies::defaults();
    let mut replayer = Replayer::new(&policies);
    let decided: Vec<_> = entries(LOG).iter().map(|e| replayer.decide(e)).collect();
    assert_eq!(decided.len(), 8);
    let summary: Vec<(usize, &str, ActionKind, u32)> =
        decided.iter().map(|r| (r.line, r.asset_id.as_str(), r.action, r.attempt)).collect();
    assert_eq!(
        summary,
        [
            (1, "a1", ActionKind::Retry, 1),
            (2, "a2", ActionKind::Fail, 1),
            (3, "a3", ActionKind::Retry, 1),
            (4, "a1", ActionKind::Retry, 2),
            (6, "a4", ActionKind::Retry, 1),
            (7, "a2", ActionKind::Fail, 1), // a new job: the first one had failed
            (8, "a5", ActionKind::Republish, 1),
            (9, "a6", ActionKind::Fail, 1),
        ]
    );
    assert_eq!(decided[2].delay_ms, Some(30_000), "Retry-After of the API failure");
    assert!(decided[1].reason.as_deref().unwrap().contains("input URL"));
}

#[test]
fn against_a_change_exactly_the_affected_failures_are_listed() {
    let current = Policies::defaults();
    let proposed = Policies::builder()
        .source(
            "10-site.rhai",
            r#"on(2404, notify("ops", "missing input").then(fail("Input missing: ask the customer")));"#,
        )
        .build()
        .unwrap();
    let differences = replay::compare(&current, &proposed, &entries(LOG));
    let lines: Vec<usize> = differences.iter().map(|d| d.before.line).collect();
    assert_eq!(lines, [2, 7, 9], "the three 2404 failures, and nothing else");
    assert_eq!(differences[0].after.steps, [ActionKind::Notify, ActionKind::Fail]);
    let counts = replay::count_by_code(&differences);
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(FailureKey::asset(2404), 3)]);
    // The same set against itself differs nowhere.
    assert!(replay::compare(&current, &current, &entries(LOG)).is_empty());
}

#[test]
fn bad_lines_name_the_line_and_the_problem() {
    let log = "{\n{\"failure\": {\"code\": 2404}}\n{\"asset_id\": \"x\", \"failure\": {\"code\": 12}}\n{\"asset_id\": \"x\", \"time\": \"yesterday\", \"code\": 2404}\n[1]\n{\"asset_id\": \"ok\", \"code\": 2404}";
    let results: Vec<_> = replay::parse(log).collect();
    let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 5);
    for (e, words) in errors.iter().zip([
        "line 1: malformed JSON",
        "line 2: `asset_id` is missing",
        "line 3: failure:",
        "line 4: `time`",
        "line 5: expected a JSON object",
    ]) {
        assert!(e.starts_with(words), "{e}");
    }
    assert!(results[5].is_ok());
}

#[test]
fn where_a_rule_is_written_does_not_count_as_a_difference() {
    let a = Policies::builder().source("/srv/a/10-site.rhai", r#"on(2404, fail("x"));"#).build().unwrap();
    let b =
        Policies::builder().source("/srv/b/10-site.rhai", "// moved down\n\non(2404, fail(\"x\"));").build().unwrap();
    let d = replay::compare(&a, &b, &entries(LOG));
    assert!(d.is_empty(), "{d:#?}");
    let c = Policies::builder().source("/srv/c/10-site.rhai", r#"on(2404, fail("y"));"#).build().unwrap();
    assert_eq!(replay::compare(&a, &c, &entries(LOG)).len(), 3);
}

#[test]
fn without_times_the_delays_carried_out_stand_for_the_time() {
    let policies = Policies::builder()
        .source(
            "10-site.rhai",
            r#"on(2503, retry(#{ attempts: 10, initial: "10m", multiplier: 1.0, jitter: "none", max_elapsed: "25m" })
                .then(fail("took too long")));"#,
        )
        .build()
        .unwrap();
    let untimed = r#"{"asset_id": "a", "failure": {"code": 2503}}"#;
    let log = [untimed; 5].join("\n");
    let mut replayer = Replayer::new(&policies);
    let actions: Vec<ActionKind> = entries(&log).iter().map(|e| replayer.decide(e).action).collect();
    // 0 and 10 minutes in: retries; 20 minutes in, another 10-minute wait would pass `max_elapsed`: the chain
    // moves on. The next report starts a new job.
    assert_eq!(actions[..4], [ActionKind::Retry, ActionKind::Retry, ActionKind::Fail, ActionKind::Retry]);

    // A time that appears later goes on from the time the delays stood for: the clock does not start over.
    let timed = r#"{"asset_id": "a", "time": "2026-11-25T03:00:00Z", "failure": {"code": 2503}}"#;
    let mixed = [untimed, untimed, timed].join("\n");
    let mut replayer = Replayer::new(&policies);
    let actions: Vec<ActionKind> = entries(&mixed).iter().map(|e| replayer.decide(e).action).collect();
    assert_eq!(actions, [ActionKind::Retry, ActionKind::Retry, ActionKind::Fail]);
}
