//! The `remedy` command's forms are a contract: these tests pin them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use lightflow_remedy::classify::catalogue;
use serde_json::Value;

fn remedy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remedy")).args(args).output().expect("remedy runs")
}

fn remedy_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remedy"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("remedy runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn explain_json(args: &[&str]) -> Value {
    let o = remedy(&[&["explain"], args, &["--json"]].concat());
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

const ACTIONS: [&str; 7] = ["retry", "resubmit", "fix_credentials", "republish", "reconcile", "notify", "fail"];

#[test]
fn explain_json_has_the_contract_fields_for_every_catalogue_code() {
    for code in catalogue::codes() {
        let v = explain_json(&[&code.to_string()]);
        assert_eq!(v["code"], code);
        assert_eq!(v["category"], catalogue::describe(code).category.as_str());
        assert!(ACTIONS.contains(&v["action"].as_str().unwrap()), "{v}");
        assert!(v["delay_ms"].is_u64() || v["delay_ms"].is_null());
        assert!(v["reason"].is_string() || v["reason"].is_null());
        assert!(v["stage"].is_u64());
        assert_eq!(v["rule"]["file"], "policies/00-lightflow.rhai");
        assert!(v["rule"]["line"].as_u64().unwrap() > 0);
        assert!(v["rule"]["matcher"].is_string());
    }
}

#[test]
fn explain_follows_attempts_seeds_and_context() {
    assert_eq!(explain_json(&["2007"])["action"], "fix_credentials");
    assert_eq!(explain_json(&["2007", "--attempt", "2"])["action"], "retry");
    assert_eq!(explain_json(&["2007", "--attempt", "3"])["action"], "fail");
    let api = explain_json(&["http:429", "--seed", "5"]);
    assert_eq!((api["code"].as_u64(), api["category"].as_str()), (Some(429), Some("api")));
    assert_eq!(api, explain_json(&["http:429", "--seed", "5"]), "a seed reproduces the delay");

    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/examples");
    let v = explain_json(&["2006", "--policies", examples, "--ctx", r#"{"asset": {"4k": true}}"#]);
    assert_eq!(v["action"], "resubmit");
    assert_eq!(v["rule"]["matcher"], "decide");
    assert!(v["rule"]["file"].as_str().unwrap().ends_with("10-resubmit-without-4k.rhai"));

    let text = remedy(&["explain", "3003"]);
    assert!(stdout(&text).contains("reconcile") && stdout(&text).contains("republish"), "{}", stdout(&text));
}

#[test]
fn explain_refuses_bad_input_with_exit_2() {
    for args in [
        &["explain", "abc"][..],
        &["explain", "99"],
        &["explain", "http:200"],
        &["explain", "2404", "--ctx", "{not json"],
        &["explain", "2404", "--ctx", "[1]"],
    ] {
        let o = remedy(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn check_exits_0_when_valid_and_1_with_positions_when_not() {
    let o = remedy(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-warn.rhai"), "on(2003, retry());\n").unwrap();
    let o = remedy(&["check", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "warnings do not refuse the set");
    assert!(stderr(&o).contains("10-warn.rhai:1:1: warning:"), "{}", stderr(&o));

    std::fs::write(dir.path().join("20-bad.rhai"), "on(2404, fail(\"ok\"));\n\nloop { }\n").unwrap();
    std::fs::write(dir.path().join("30-bad.rhai"), "on(2404, retry(#{ attempts: 0 }));\n").unwrap();
    let o = remedy(&["check", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let errors: Vec<&str> = err.lines().filter(|l| !l.contains("warning:")).collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(errors[0].contains("20-bad.rhai:3:") && errors[0].contains("operations"), "{err}");
    assert!(errors[1].contains("30-bad.rhai:1:10: ") && errors[1].contains("at least 1"), "{err}");
}

#[test]
fn table_lists_every_catalogue_code() {
    let o = remedy(&["table", "--json"]);
    assert!(o.status.success());
    let rows: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    for code in catalogue::codes() {
        let row = rows.iter().find(|r| r["code"] == code).unwrap_or_else(|| panic!("{code} missing"));
        assert!(ACTIONS.contains(&row["action"].as_str().unwrap()));
    }
    let text = stdout(&remedy(&["table"]));
    assert!(text.lines().count() > catalogue::codes().len(), "{text}");
}

#[test]
fn explain_shows_the_reconcile_a_stage_runs_first() {
    let text = stdout(&remedy(&["explain", "http:503"]));
    let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).collect();
    assert!(lines[0].contains("reconcile") && lines[0].contains("reconcile_first"), "{text}");
    assert!(lines[1].contains("2. retry (stage 1 of 2, attempt 1)"), "{text}");
    let v = explain_json(&["http:503"]);
    assert_eq!((v["action"].as_str(), v["reconcile_first"].as_bool()), (Some("retry"), Some(true)));
    assert_eq!(v["actions"], serde_json::json!(["reconcile", "retry"]));
    let steps: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["reconcile", "retry"]);
    // A throttled call was not carried out: nothing to reconcile.
    let v = explain_json(&["http:429"]);
    assert_eq!((v["actions"].clone(), v["reconcile_first"].as_bool()), (serde_json::json!(["retry"]), Some(false)));
}

fn table_json(args: &[&str]) -> Vec<Value> {
    let o = remedy(&[&["table", "--json"], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn table_has_rows_for_the_ranges_and_the_fallback() {
    let rows = table_json(&[]);
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no {key} row"));
    // (row, kind, first action, matcher)
    let table = [
        ("other 24xx", "range", "fail", "2400..=2499"),
        ("2408", "code", "retry", "2408"),
        ("other 25xx", "range", "retry", "2500..=2599"),
        ("other http 4xx", "range", "fail", "http(400..=499)"),
        ("other http 5xx", "range", "retry", "http(500..=599)"),
        ("otherwise", "fallback", "retry", "otherwise"),
    ];
    for (key, kind, action, matcher) in table {
        let r = row(key);
        assert_eq!((r["row"].as_str(), r["action"].as_str()), (Some(kind), Some(action)), "{key}: {r}");
        assert_eq!(r["rule"]["matcher"], matcher, "{key}");
        assert_eq!(r["decide"], false, "the defaults have no decide: {key}");
    }
    assert!(row("other 24xx")["codes"].as_str().unwrap().starts_with("2400, 2402, 2405–2407, 2409–2428"));
    // Every asset code and API status is in exactly one row.
    let count = |kind: &str| -> u64 {
        rows.iter()
            .filter(|r| r["key"] != "timeout" && (r["key"].as_str().unwrap().contains("http") == (kind == "api")))
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!((count("asset"), count("api")), (9000, 200));
    let text = stdout(&remedy(&["table"]));
    assert!(text.contains("other 24xx") && text.contains("otherwise") && text.contains("codes: "), "{text}");
}

#[test]
fn table_marks_what_a_decide_function_may_change() {
    let dir = tempfile::tempdir().unwrap();
    // The decide of 10-… runs after the rules of 20-… (later sources first), before the defaults'.
    std::fs::write(
        dir.path().join("10-decide.rhai"),
        r#"fn decide(f, ctx) { if ctx.plan == "trial" { return fail("trial"); } }"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("20-rules.rhai"), r#"on(2404, retry());"#).unwrap();
    let rows = table_json(&["--policies", dir.path().to_str().unwrap()]);
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no {key} row"));
    assert_eq!(row("2404")["decide"], false, "20-rules.rhai wins before the decide runs");
    assert_eq!(row("2001")["decide"], true);
    assert_eq!(row("otherwise")["decide"], true);
    assert!(row("2001")["decide_sources"][0].as_str().unwrap().ends_with("10-decide.rhai"));
    let text = stdout(&remedy(&["table", "--policies", dir.path().to_str().unwrap()]));
    assert!(text.lines().any(|l| l.starts_with("2001 *")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("2404 ") && !l.starts_with("2404 *")), "{text}");
    assert!(text.contains("* a `decide` function may change"), "{text}");
}

#[test]
fn classify_names_where_a_document_is_wrong() {
    let table = [
        ("{\n  \"assetError\": {\"code\": 99}\n}", "line 2, column 26: `assetError.code` = 99"),
        ("\n\n  [1]", "line 3, column 3: expected a JSON object at `document`"),
        ("{\"id\": \"a\",\n \"status\": \"ready\"}", "line 2, column 12: the asset has no `assetError`"),
        ("{\"http_status\": 200}", "line 1, column 17: `http_status` = 200"),
        ("{\"é\": 1,,}", "malformed JSON at line 1, column 9"),
    ];
    for (doc, words) in table {
        let o = remedy_stdin(&["classify"], doc);
        assert_eq!(o.status.code(), Some(2), "{doc}");
        assert!(stderr(&o).contains(words), "{doc}: {}", stderr(&o));
    }
    // A proxy's page and an unreadable Retry-After still classify.
    let o = remedy_stdin(
        &["classify"],
        r#"{"http_status": 502, "body": "<html><h1>Bad Gateway</h1></html>", "retry_after": "soon"}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["code"].as_u64(), v["message"].as_str()), (Some(502), Some("Bad Gateway")));
    assert!(v["retry_after_ignored"].as_str().unwrap().contains("`soon` ignored"), "{v}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn classify_prints_the_failure_or_exits_2_with_one_line() {
    let o = remedy_stdin(
        &["classify"],
        r#"{"id": "a", "status": "error", "assetError": {"code": 2404, "message": "gone"}}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["code"].as_u64(), v["category"].as_str(), v["kind"].as_str()),
        (Some(2404), Some("storage"), Some("asset"))
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), r#"{"http_status": 429, "body": {"message": "slow"}, "retry_after": "7"}"#).unwrap();
    let v: Value = serde_json::from_str(&stdout(&remedy(&["classify", file.path().to_str().unwrap()]))).unwrap();
    assert_eq!((v["kind"].as_str(), v["retry_after_ms"].as_u64()), (Some("api"), Some(7000)));

    for bad in ["{", "[]", r#"{"id": "a", "status": "ready"}"#, r#"{"code": "2404"}"#, r#"{"code": 12}"#, ""] {
        let o = remedy_stdin(&["classify", "-"], bad);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert_eq!(stderr(&o).lines().count(), 1, "{bad}: {}", stderr(&o));
    }
    let o = remedy(&["classify", "/nonexistent/file.json"]);
    assert_eq!(o.status.code(), Some(2));
}
