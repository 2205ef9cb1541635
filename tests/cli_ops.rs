//! `remedy test` and `remedy replay`, as an operator runs them.

use std::process::{Command, Output};

fn remedy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remedy")).args(args).output().expect("remedy runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn remedy_test_passes_on_the_shipped_fixtures() {
    let o = remedy(&["test"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), String::from_utf8_lossy(&o.stderr));
    assert!(out(&o).contains(" passed, 0 failed"), "{}", out(&o));
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/tests");
    assert_eq!(remedy(&["test", fixtures]).status.code(), Some(0));
}

#[test]
fn remedy_test_fails_with_a_readable_diff_when_a_rule_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-site.rhai"), r#"on(2404, retry(#{ attempts: 1 }));"#).unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/tests/00-lightflow.json");
    let o = remedy(&["test", "--policies", dir.path().to_str().unwrap(), fixtures]);
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    assert!(text.contains("FAIL ") && text.contains(r#"2404: fails at once" (2404)"#), "{text}");
    assert!(text.contains("expected") && text.contains("actual"), "{text}");
    assert!(text.contains("1 failed"), "{text}");

    // The directory's own fixtures run by default, and a fixture that disagrees fails the same way.
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/site.json"), r#"[{"failure": "2404", "expect": {"action": "fail"}}]"#)
        .unwrap();
    let o = remedy(&["test", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("action    fail"), "{}", out(&o));

    std::fs::write(dir.path().join("tests/site.json"), "[{").unwrap();
    let o = remedy(&["test", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("site.json:1:"));
}

#[test]
fn remedy_test_says_which_pinned_defaults_a_directory_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    // A directory that changes nothing the defaults pin, and has no fixtures of its own.
    std::fs::write(dir.path().join("10-site.rhai"), r#"on(8123, fail("not ours"));"#).unwrap();
    let o = remedy(&["test", "--policies", path]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), String::from_utf8_lossy(&o.stderr));
    let text = out(&o);
    assert!(text.contains("note: the policies change none of the"), "{text}");
    assert!(text.contains("no fixtures of their own"), "{text}");

    // Two overrides: each changed case is a note naming its number, name and key, and nothing fails.
    std::fs::write(
        dir.path().join("10-site.rhai"),
        r#"on(2404, retry(#{ attempts: 1 })); on(http(403), fail("forbidden is final here"));"#,
    )
    .unwrap();
    let o = remedy(&["test", "--policies", path]);
    assert_eq!(o.status.code(), Some(0), "overriding is the directory's job: {}", out(&o));
    let text = out(&o);
    let notes: Vec<&str> = text.lines().filter(|l| l.starts_with("note:   #")).collect();
    assert!(notes.iter().any(|l| l.contains(r#""2404: fails at once" (2404): steps: fail → retry"#)), "{text}");
    assert!(notes.iter().any(|l| l.contains("(http:403)")), "{text}");
    assert!(notes.iter().all(|l| l.contains("(2404)") || l.contains("(http:403)")), "only those: {text}");
    assert!(text.contains(&format!("change {} of the", notes.len())), "{text}");

    // With fixtures of its own, they run after the notes and decide the exit code.
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/site.json"), r#"[{"failure": "2404", "expect": {"action": "retry"}}]"#)
        .unwrap();
    let o = remedy(&["test", "--policies", path]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("note:   #") && out(&o).contains("1 passed, 0 failed"), "{}", out(&o));

    // Without --policies there is nothing to compare with: no notes.
    assert!(!out(&remedy(&["test"])).contains("note:"));
}

const LOG: &str = r#"{"asset_id": "a1", "time": "2026-11-25T02:00:00Z", "failure": {"code": 2503}}
{"asset_id": "a2", "assetError": {"code": 2404, "message": "not found"}}
{"asset_id": "a3", "http_status": 429, "retry_after": "30"}
{"asset_id": "a1", "time": "2026-11-25T02:06:00Z", "failure": {"code": 2503}}
{"asset_id": "a4", "failure": {"code": 2404}}
"#;

#[test]
fn remedy_replay_prints_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("failures.jsonl");
    std::fs::write(&log, LOG).unwrap();
    let o = remedy(&["replay", log.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = out(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["retry", "fail", "retry", "retry", "fail"]);
    assert_eq!(lines[3]["attempt"], 2);
    let text = out(&remedy(&["replay", log.to_str().unwrap()]));
    assert!(text.contains("5 failures decided"), "{text}");
}

#[test]
fn remedy_replay_against_lists_exactly_the_affected_failures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("failures.jsonl");
    std::fs::write(&log, LOG).unwrap();
    let proposed = dir.path().join("proposed");
    std::fs::create_dir(&proposed).unwrap();
    std::fs::write(proposed.join("10-site.rhai"), r#"on(2404, notify("ops", "missing").then(fail("missing input")));"#)
        .unwrap();
    let o = remedy(&["replay", log.to_str().unwrap(), "--against", proposed.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = out(&o);
    assert!(text.contains("2 of 5 failures decided differently"), "{text}");
    assert!(text.contains("now:") && text.contains("proposed:") && text.contains("notify → fail"), "{text}");
    assert!(text.contains("2404      2"), "{text}");
    assert!(!text.contains("2503"), "unaffected failures are not listed: {text}");

    let o = remedy(&["replay", log.to_str().unwrap(), "--against", proposed.to_str().unwrap(), "--json"]);
    let last: serde_json::Value = serde_json::from_str(out(&o).lines().last().unwrap()).unwrap();
    assert_eq!((last["differ"].as_u64(), last["by_code"]["2404"].as_u64()), (Some(2), Some(2)));
}

#[test]
fn remedy_replay_reports_bad_lines_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("failures.jsonl");
    std::fs::write(&log, "{\"asset_id\": \"a\", \"code\": 2404}\nnot json\n{\"code\": 2404}\n").unwrap();
    let o = remedy(&["replay", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("failures.jsonl:2: malformed JSON") && err.contains("failures.jsonl:3: `asset_id` is missing"),
        "{err}"
    );
    assert!(out(&o).contains("1 failures decided"));
    assert_eq!(remedy(&["replay", "/no/such/log"]).status.code(), Some(2));
}
