//! Broken and hostile scripts are refused with file:line:column, and the engine keeps working.

use lightflow_remedy::{ActionKind, Context, Failure, History, Policies, Severity};

/// Loads `text` as `site.rhai` over the defaults and returns the first error.
fn refuse(text: &str) -> lightflow_remedy::Diagnostic {
    let Err(err) = Policies::builder().source("site.rhai", text).build() else {
        panic!("the script should be refused: {text}");
    };
    err.errors().next().expect("at least one error").clone()
}

#[test]
fn hostile_and_broken_scripts_are_refused_with_a_position() {
    // (script, line, words the message must contain)
    let table: &[(&str, u32, &str)] = &[
        ("let x = 0;\nloop { x += 1; }", 2, "operations"),
        ("while true {}", 1, "operations"),
        ("fn f(n) { f(n + 1) }\nf(0);", 2, "nested deeper"),
        ("let s = \"xxxxxxxxxxxxxxxx\";\nloop { s += s; }", 2, "too large"),
        ("let a = [];\nloop { a.push(1); }", 2, "too large"),
        ("let p = fail(\"x\");\nloop { p = p.then(p); }", 2, "at most 64 stages"),
        ("eval(\"on(2404, fail(\\\"x\\\"))\");", 1, "eval"),
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
        ("fn decide(f) { () }", 1, "two parameters"),
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
        ("import \"other\" as o;", 1, "import"),
        ("let x = ;", 1, ""),
        ("on(2404, retry(#{ initial: \"10m\", max_delay: \"1m\" }));", 1, "longer than max_delay"),
        ("on(2404, retry(#{ multiplier: 0.5 }));", 1, "multiplier"),
        ("on([], fail(\"x\"));", 1, "no codes"),
        ("on([2404, \"x\"], fail(\"x\"));", 1, "codes and ranges"),
        ("on(2404, resubmit(#{}));", 1, "retry()"),
        ("fn decide(f, ctx) {\n    return retry(#{ attemps: 1 });\n}", 2, "did you mean `attempts`"),
    ];
    for (script, line, words) in table {
        let e = refuse(script);
        let text = e.to_string();
        assert_eq!(e.file.as_ref(), "site.rhai", "{script}: {text}");
        let pos = e.pos.unwrap_or_else(|| panic!("{script}: no position in {text}"));
        assert_eq!(pos.line, *line, "{script}: {text}");
        assert!(pos.column >= 1);
        assert!(text.starts_with(&format!("site.rhai:{}:{}: ", pos.line, pos.column)), "{text}");
        assert!(text.contains(words), "{script}: expected `{words}` in: {text}");
    }
}

#[test]
fn every_broken_file_is_reported_not_just_the_first() {
    let err = Policies::builder()
        .source("a.rhai", "on(2404, restart());")
        .source("b.rhai", "on(2404, fail(\"fine\"));")
        .source("c.rhai", "on(2499..=2400, fail(\"x\"));")
        .build()
        .unwrap_err();
    let files: Vec<&str> = err.errors().map(|d| d.file.as_ref()).collect();
    assert_eq!(files, ["a.rhai", "c.rhai"]);
    assert_eq!(err.to_string().lines().count(), 2);
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
fn a_failing_decide_function_is_passed_over_and_reported() {
    // (decide body, words of the error)
    let table: &[(&str, &str)] = &[
        ("loop { }", "operations"),
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
fn the_engine_keeps_working_after_hostile_scripts() {
    for script in ["loop {}", "fn f() { f() } f();", "let s = \"x\"; loop { s += s; }"] {
        assert!(Policies::builder().source("site.rhai", script).build().is_err());
    }
    let policies = Policies::builder().source("site.rhai", "on(2404, retry());").build().unwrap();
    let d = policies.decide(&Failure::asset(2404, "").unwrap(), &History::new(0), &Context::new());
    assert_eq!(d.kind(), ActionKind::Retry);
}

#[test]
fn lint_warnings_load_but_are_reported() {
    let script = "\
on(2401, fail(\"a\"));
on(2402, fail(\"b\"));
on(2401..=2402, fail(\"hidden\"));
on(2003, retry());
on(2500..=2599, retry(#{ attempts: \"unlimited\" }));
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
    ];
    for e in expect {
        assert!(warnings.iter().any(|w| w.starts_with(e)), "missing {e} in {warnings:#?}");
    }
    assert_eq!(warnings.len(), expect.len(), "{warnings:#?}");
}
