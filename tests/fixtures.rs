//! Decision tests for policy authors: the shipped fixtures pass, and a disagreement reads as a diff.

use lightflow_remedy::Policies;
use lightflow_remedy::operate::fixtures::{self, FixtureError};

#[test]
fn the_shipped_fixtures_pin_the_default_table_and_pass() {
    let cases = fixtures::parse_named("00-lightflow.json", fixtures::DEFAULTS_FIXTURES).unwrap();
    assert!(cases.len() > 150, "every row of the table, several failures deep: {}", cases.len());
    let results = fixtures::run(&Policies::defaults(), &cases);
    let failed: Vec<String> = results.iter().filter(|r| !r.passed()).map(|r| r.to_string()).collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // Every catalogue code appears in a case.
    for code in lightflow_remedy::classify::catalogue::codes() {
        assert!(cases.iter().any(|c| c.failure.code() == code), "{code} has no fixture");
    }
}

#[test]
fn a_changed_rule_fails_with_expected_and_actual_side_by_side() {
    let cases = fixtures::parse_named("00-lightflow.json", fixtures::DEFAULTS_FIXTURES).unwrap();
    let changed = Policies::builder()
        .source("10-site.rhai", r#"on(2404, retry(#{ attempts: 2, initial: "1m" }));"#)
        .build()
        .unwrap();
    let results = fixtures::run(&changed, &cases);
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert_eq!(failed.len(), 1, "only the 2404 case disagrees");
    let report = failed[0].to_string();
    assert!(report.starts_with("FAIL 00-lightflow.json #"), "{report}");
    for line in ["steps     fail", "retry", "reason", "contains \"check the input URL\"", "no reason"] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}

#[test]
fn every_kind_of_expectation_is_checked() {
    let text = r#"[
      {"name": "right", "failure": "2001", "attempt": 2, "seed": 3,
       "expect": {"action": "retry", "delay_ms": {"min": 180000, "max": 300000}, "stage": 1,
                  "rule": {"file": "00-lightflow.rhai", "matcher": "2001"}}},
      {"name": "wrong delay", "failure": "3005", "expect": {"delay_ms": 1}},
      {"name": "wrong stage", "failure": "2007", "attempt": 2, "expect": {"stage": 1}},
      {"name": "wrong params", "failure": "2007", "expect": {"params": {"scope": "upload"}}},
      {"name": "ended early", "failure": "2404", "attempt": 3, "expect": {}},
      {"name": "with a history", "failure": {"http_status": 503, "retry_after": "7"},
       "history": {"seed": 1}, "expect": {"action": "retry", "delay_ms": 7000}},
      {"name": "a context", "failure": "2001", "context": {"plan": "trial"}, "expect": {"action": "retry"}},
      {"name": "no delay", "failure": "2404", "expect": {"delay_ms": null}},
      {"name": "a delay where none is expected", "failure": "2001", "expect": {"delay_ms": null}}
    ]"#;
    let results = fixtures::run(&Policies::defaults(), &fixtures::parse(text).unwrap());
    let fields: Vec<Vec<&str>> = results.iter().map(|r| r.mismatches.iter().map(|m| m.field).collect()).collect();
    assert_eq!(
        fields,
        [
            vec![],
            vec!["delay_ms"],
            vec!["stage"],
            vec!["params"],
            vec!["attempt"],
            vec![],
            vec![],
            vec![],
            vec!["delay_ms"]
        ]
    );
}

#[test]
fn steps_show_the_reconcile_a_stage_runs_first() {
    // (failure, expected steps, passes)
    let table = [
        ("http:503", r#"["reconcile", "retry"]"#, true),
        ("http:503", r#"["retry"]"#, false),
        ("timeout", r#"["reconcile", "retry"]"#, true),
        // A throttled call was not carried out: nothing to reconcile.
        ("http:429", r#"["retry"]"#, true),
        ("http:429", r#"["reconcile", "retry"]"#, false),
        // 3003's reconcile is a stage of its own.
        ("3003", r#"["reconcile", "republish"]"#, true),
    ];
    for (failure, steps, passes) in table {
        let text = format!(
            r#"[{{"failure": "{failure}", "expect": {{"steps": {steps}, "action": "{}"}}}}]"#,
            if failure == "3003" { "reconcile" } else { "retry" }
        );
        let results = fixtures::run(&Policies::defaults(), &fixtures::parse(&text).unwrap());
        assert_eq!(results[0].passed(), passes, "{failure} {steps}: {}", results[0]);
    }
}

#[test]
fn bad_fixture_files_say_where() {
    let cases = [
        ("[", "<inline>:1:1"),
        (r#"[{"failure": "2404", "expect": {"acton": "fail"}}]"#, "unknown field `acton`"),
        (r#"[{"failure": "99", "expect": {}}]"#, "case 1"),
        (r#"[{"failure": {"code": "x"}, "expect": {}}]"#, "must be an integer"),
        (r#"{"tests": []}"#, "<inline>:1:1: expected an array of cases"),
        // A misspelt bound would otherwise pass whenever there is any delay.
        (r#"[{"failure": "2001", "expect": {"delay_ms": {"mni": 5000}}}]"#, "not `mni`"),
        (r#"[{"failure": "2001", "expect": {"delay_ms": {}}}]"#, "need `min`, `max` or both"),
        (r#"[{"failure": "2001", "expect": {"delay_ms": -5}}]"#, "delay_ms must be whole milliseconds, not -5"),
        // Explaining walks every attempt before the one asked about.
        (r#"[{"failure": "2001", "attempt": 4000000000, "expect": {}}]"#, "at most 10000"),
    ];
    for (text, words) in cases {
        let err = fixtures::parse(text).expect_err(text);
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
    let err = fixtures::load_file(std::path::Path::new("/no/such/file.json")).unwrap_err();
    assert!(matches!(err, FixtureError::Unreadable { .. }));
}
