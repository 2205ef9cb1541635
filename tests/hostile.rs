//! Broken and hostile scripts through the policies API: each is refused with file:line:column, or loads and
//! its decisions fail cleanly within their bound, on a 2 MiB stack, and the process stays healthy.

mod sandbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lightflow_remedy::{ActionKind, Context, Failure, History, Policies, Severity};

/// Runs `f` on a thread with a tokio worker's stack (2 MiB); `false` if it panicked.
fn on_small_stack(f: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).expect("a thread").join().is_ok()
}

#[test]
fn every_hostile_case_ends_cleanly_through_the_policies_api() {
    let cases = sandbox::cases();
    assert!(cases.len() > 150, "the table covers every class: {}", cases.len());
    let failed: Vec<String> = cases
        .into_iter()
        .filter_map(|case| {
            let name = case.name.clone();
            (!on_small_stack(move || {
                sandbox::check_case(&case);
            }))
            .then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
    sandbox::assert_healthy();
}

#[test]
fn broken_scripts_are_refused_with_a_position() {
    // (script, line, words the message must contain)
    let table: &[(&str, u32, &str)] = &[
        ("on(2404, restart());", 1, "unknown function or action `restart`"),
        ("on(2404, retyr());", 1, "did you mean `retry`"),
        ("on(2499..=2400, fail(\"x\"));", 1, "inverted"),
        ("on(2400..2400, fail(\"x\"));", 1, "empty"),
        ("on(http(599..=500), fail(\"x\"));", 1, "inverted"),
        ("on(2404, retry(#{ attempts: 0 }));", 1, "at least 1"),
        ("\n\non(2404, retry(#{ attemps: 2 }));", 3, "did you mean `attempts`"),
        ("on(2404, retry(#{ initial: \"soon\" }));", 1, "cannot read \"soon\""),
        ("on(2404, retry(#{ jitter: \"lots\" }));", 1, "jitter"),
        ("on(\"brightcov\", fail(\"x\"));", 1, "did you mean `brightcove`"),
        ("// fn decide(a, b) is below\nfn decide_helper(x) { x }\nfn decide(f) { () }", 3, "two parameters"),
        ("on(2404, fail(\"a\"));\non(2404, fail(\"b\"));", 2, "already defined"),
        ("otherwise(fail(\"a\"));\notherwise(fail(\"b\"));", 2, "already defined"),
        ("on(2400..=2450, fail(\"a\"));\non(2425..=2475, fail(\"b\"));", 2, "ambiguous"),
        ("on(429, fail(\"x\"));", 1, "http(429)"),
        ("on(12345, fail(\"x\"));", 1, "out of range"),
        ("on(http(200), fail(\"x\"));", 1, "not an error status"),
        ("on(2404, fail(\"\"));", 1, "must not be empty"),
        ("on(2404, fix_credentials(\"everything\"));", 1, "credential scope"),
        ("on(2404, \"fail\");", 1, "wrong arguments for `on`"),
        ("on(2404, fail(\"x\")", 1, ""),
        ("let x = ;", 1, ""),
        ("on(2404, retry(#{ initial: \"10m\", max_delay: \"1m\" }));", 1, "longer than max_delay"),
        ("on(2404, retry(#{ multiplier: 0.5 }));", 1, "multiplier"),
        ("on([], fail(\"x\"));", 1, "no codes"),
        ("on([2404, \"x\"], fail(\"x\"));", 1, "codes and ranges"),
        ("on(2404, resubmit(#{}));", 1, "retry()"),
        ("fn decide(f, ctx) {\n    return retry(#{ attemps: 1 });\n}", 2, "did you mean `attempts`"),
    ];
    for (script, line, words) in table {
        let err = Policies::builder().source("site.rhai", *script).build().expect_err(script);
        let e = err.errors().next().expect("an error");
        let text = e.to_string();
        assert_eq!(e.pos.map(|p| p.line), Some(*line), "{script}: {text}");
        assert!(text.starts_with(&format!("site.rhai:{line}:")), "{text}");
        assert!(text.contains(words), "{script}: expected `{words}` in: {text}");
    }
}

#[test]
fn every_error_of_a_file_is_reported_not_just_the_first() {
    let script = "\
on(2404, retry(#{ attempts: 0 }));
on(2001, restart());
on(2002, retry(#{ jitter: \"lots\" }));
on(2003, fail(\"fine\"));
on(2400..=2450, fail(\"a\"));
on(2425..=2475, fail(\"b\"));
on(3000..=3010, fail(\"c\"));
on(3005..=3015, fail(\"d\"));
";
    let err = Policies::builder().source("site.rhai", script).build().unwrap_err();
    let mut lines: Vec<u32> = err.errors().filter_map(|d| d.pos.map(|p| p.line)).collect();
    lines.sort();
    assert_eq!(lines, [1, 2, 3, 6, 8], "{err}");
    // Errors of several files are all reported too.
    let err = Policies::builder()
        .source("a.rhai", "on(2404, restart());")
        .source("b.rhai", "on(2404, fail(\"fine\"));")
        .source("c.rhai", "on(2499..=2400, fail(\"x\"));")
        .build()
        .unwrap_err();
    let files: Vec<&str> = err.errors().map(|d| d.file.as_ref()).collect();
    assert_eq!(files, ["a.rhai", "c.rhai"]);
}

#[test]
fn files_that_cannot_be_read_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.rhai"), [0xff, 0xfe, 0x00]).unwrap();
    let err = Policies::load([dir.path()]).unwrap_err();
    assert!(err.to_string().contains("bad.rhai: cannot read the policy file"), "{err}");
    let missing = dir.path().join("missing");
    let err = Policies::load([&missing]).unwrap_err();
    assert!(err.to_string().contains("cannot read the policies directory"), "{err}");
    let huge = format!("// {}\n", "x".repeat(2 * 1024 * 1024));
    let err = Policies::builder().source("huge.rhai", huge).build().unwrap_err();
    assert!(err.to_string().contains("limited to"), "{err}");
}

#[test]
fn a_huge_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: 3 GB on paper, nothing on disk.
    std::fs::File::create(dir.path().join("10-huge.rhai")).unwrap().set_len(3 << 30).unwrap();
    let started = std::time::Instant::now();
    let err = Policies::load([dir.path()]).unwrap_err();
    assert!(started.elapsed() < sandbox::LOAD_BOUND, "{:?}", started.elapsed());
    assert!(err.to_string().contains("10-huge.rhai: the file is 3221225472 bytes"), "{err}");
}

#[test]
fn a_directory_of_too_many_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..300 {
        std::fs::write(dir.path().join(format!("{i:03}.rhai")), "on(2404, fail(\"x\"));").unwrap();
    }
    let err = Policies::load([dir.path()]).unwrap_err();
    assert!(err.to_string().contains("more than 256 policy files"), "{err}");
}

#[test]
fn the_load_time_is_shared_by_the_files_and_later_ones_say_why_they_did_not_load() {
    let slow = r#"let s = "x"; s.pad(4000, "x"); loop { s.index_of("y"); }"#;
    let started = std::time::Instant::now();
    let err = Policies::builder()
        .load_time_limit(std::time::Duration::from_millis(100))
        .source("10-slow.rhai", slow)
        .source("20-fine.rhai", "on(2404, fail(\"x\"));")
        .build()
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(600), "{:?}", started.elapsed());
    let errors: Vec<String> = err.errors().map(|d| d.to_string()).collect();
    assert!(errors[0].starts_with("10-slow.rhai:1:") && errors[0].contains("time limit of"), "{errors:?}");
    assert!(errors[1].starts_with("20-fine.rhai: not loaded"), "{errors:?}");
}

#[test]
fn a_failing_decide_function_is_passed_over_and_reported() {
    // (decide body, words of the error)
    let table: &[(&str, &str)] = &[
        ("loop { }", "the script ran past"),
        ("fn_that_recurses(0)", "nested deeper"),
        ("42", "decide returned i64"),
        ("throw \"policy bug\";", "policy bug"),
        ("on(2404, fail(\"x\"))", "while a policy file loads"),
        ("let n = 0; retry(#{ attempts: n })", "at least 1"),
        ("let s = \"x\"; loop { s += s; }", "too large"),
        ("let p = fail(\"x\"); loop { p = p.then(p); }", "at most 64 stages"),
    ];
    for (body, words) in table {
        let script =
            format!("fn fn_that_recurses(n) {{ fn_that_recurses(n + 1) }}\nfn decide(f, ctx) {{\n    {body}\n}}\n");
        let policies = Policies::builder().source("site.rhai", script).build().unwrap_or_else(|e| panic!("{e}"));
        let failure = Failure::asset(2404, "").unwrap();
        let d = policies.decide(&failure, &History::new(0), &Context::new());
        // The engine keeps working: the defaults decide instead.
        assert_eq!(d.kind(), ActionKind::Fail, "{body}");
        assert_eq!(d.rule().origin().file.as_ref(), "policies/00-lightflow.rhai");
        let e = d.script_error().unwrap_or_else(|| panic!("{body}: no script error"));
        assert_eq!(e.severity, Severity::Error);
        assert!(e.file.as_ref() == "site.rhai" && e.pos.is_some(), "{body}: {e}");
        assert!(e.to_string().contains(words), "{body}: expected `{words}` in {e}");
    }
}

#[test]
fn top_level_statements_run_once_at_load_and_constants_stay_readable() {
    let script = r#"
        const SLOW = #{ attempts: 1, initial: "10m" };
        let n = 0;
        while n < 30000 { n += 1; }
        print("loaded");
        fn decide(f, ctx) { retry(global::SLOW) }
    "#;
    let policies = Policies::builder().source("site.rhai", script).build().unwrap_or_else(|e| panic!("{e}"));
    let failure = Failure::asset(2404, "").unwrap();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let d = policies.decide(&failure, &History::new(0), &Context::new());
        assert!(d.script_error().is_none(), "{:?}", d.script_error());
        assert_eq!(d.delay(), Some(std::time::Duration::from_secs(600)));
    }
    // 40,000 loop turns per decision would take far longer than this (and run out of operations).
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn a_decide_policy_keeps_its_place_when_its_text_changes() {
    let script = r#"
        fn decide(f, ctx) {
            let n = ctx.history.decisions;
            retry(#{ attempts: 2, initial: `${n + 1}s` })
                .then(notify(`still failing after ${n} decisions`))
                .then(fail(`gave up after ${n} decisions`))
        }
    "#;
    let policies = Policies::builder().source("site.rhai", script).build().unwrap_or_else(|e| panic!("{e}"));
    let failure = Failure::asset(2404, "").unwrap();
    let mut history = History::new(0);
    let mut kinds = Vec::new();
    for _ in 0..10 {
        history.record_failure(&failure);
        let d = policies.decide(&failure, &history, &Context::new());
        kinds.push(d.kind());
        if d.kind() == ActionKind::Fail {
            break;
        }
        history.record(&d);
    }
    use ActionKind::{Fail, Notify, Retry};
    assert_eq!(kinds, [Retry, Retry, Notify, Fail]);
}

#[test]
fn a_decide_policy_whose_shape_changes_at_every_call_leaves_the_history_bounded() {
    let script = r#"
        fn decide(f, ctx) {
            let p = notify("first");
            for i in 0..(ctx.history.decisions % 60) { p = p.then(notify("more")); }
            p
        }
    "#;
    let policies = Policies::builder().source("site.rhai", script).build().unwrap_or_else(|e| panic!("{e}"));
    let failure = Failure::asset(2404, "").unwrap();
    let mut history = History::new(0);
    history.record_failure(&failure);
    for _ in 0..500 {
        let d = policies.decide(&failure, &history, &Context::new());
        history.record(&d);
    }
    let json = serde_json::to_value(&history).unwrap();
    assert!(json["positions"].as_array().unwrap().len() <= History::MAX_POSITIONS, "{json}");
    assert_eq!(history.decisions(), 500);
}

#[test]
fn counters_at_their_maximum_saturate() {
    let policies = Policies::builder()
        .source("site.rhai", r#"on(2502, retry(#{ attempts: "unlimited", max_elapsed: "1h" }));"#)
        .build()
        .unwrap();
    let rule = policies.rules().iter().find(|r| r.origin().file.as_ref() == "site.rhai").unwrap();
    let json = serde_json::json!({
        "seed": 1, "attempts": u32::MAX, "decisions": u32::MAX, "streak": u32::MAX, "last": "2502",
        "seen": [{"key": "2502", "count": u32::MAX}],
        "positions": [{"rule": rule.key(), "stage": 0, "used": u32::MAX, "started": 0}],
    });
    let mut history: History = serde_json::from_value(json).unwrap();
    let failure = Failure::asset(2502, "").unwrap();
    history.record_failure(&failure);
    let d = policies.decide(&failure, &history, &Context::new());
    assert_eq!((d.kind(), d.attempt()), (ActionKind::Retry, u32::MAX));
    history.record(&d);
    history.skip_stage(&d);
    assert_eq!((history.attempts(), history.decisions(), history.streak()), (u32::MAX, u32::MAX, u32::MAX));
}

/// Counts the events the script target logs.
struct Counting(Arc<AtomicUsize>);

impl tracing::Subscriber for Counting {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "lightflow_remedy::script"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn printing_is_capped_per_run() {
    let count = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(Counting(count.clone()), || {
        let script = r#"fn decide(f, ctx) { for i in 0..1000 { print(`line ${i}`); debug("d"); } }"#;
        let policies = Policies::builder().source("site.rhai", script).build().unwrap();
        let failure = Failure::asset(2404, "").unwrap();
        for _ in 0..10 {
            let _ = policies.decide(&failure, &History::new(0), &Context::new());
        }
    });
    // Sixteen lines and one notice that the rest was dropped, per decision.
    let logged = count.load(Ordering::Relaxed);
    assert!(logged <= 10 * 17, "{logged} lines logged");
    assert!(logged >= 10, "{logged} lines logged");
}

#[test]
fn lint_warnings_load_but_are_reported() {
    let script = "\
on(2401, fail(\"a\"));
on(2402, fail(\"b\"));
on(2401..=2402, fail(\"hidden\"));
on(2003, retry());
on(2600..=2699, retry(#{ attempts: \"unlimited\" }));
on(2101, republish(\"brightcove\", #{ initial: \"5s\" }));
on(2102, retry(#{ initial: \"1s\", min_delay: \"10s\" }));
on(2103, republish(\"brightcove\", #{ initial: \"5s\", min_delay: \"5s\" }));
";
    let policies = Policies::builder().source("site.rhai", script).build().unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = policies
        .warnings()
        .iter()
        .filter(|d| d.severity == Severity::Warning && d.file.as_ref() == "site.rhai")
        .map(|d| d.to_string())
        .collect();
    let expect = [
        "site.rhai:3:1: warning: `2401..=2402` never applies",
        "site.rhai:4:1: warning: `2003` retries 2003",
        "site.rhai:5:17: warning: unbounded chain",
        "site.rhai:6:10: warning: `initial` (5s) is shorter than `min_delay` (30s): every wait is at least 30s \
         (republish waits at least 30 s by default",
        "site.rhai:7:10: warning: `initial` (1s) is shorter than `min_delay` (10s): every wait is at least 10s",
    ];
    for e in expect {
        assert!(warnings.iter().any(|w| w.starts_with(e)), "missing {e} in {warnings:#?}");
    }
    assert_eq!(warnings.len(), expect.len(), "{warnings:#?}");
}
