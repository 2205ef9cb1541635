//! The hostile-script table the sandbox tests share: each case is a script and what must come of it, by class
//! of attack rather than by example. `tests/hostile.rs` runs the table through the policies API,
//! `tests/hostile_engine.rs` through the engine on a multi-thread runtime, `tests/hostile_watch.rs` through a
//! watched directory.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use lightflow_remedy::{ActionKind, Context, Diagnostic, Failure, History, LoadError, Policies};

/// What must come of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused at load; the first error is at this line (0: any line) and says these words.
    Refused(u32, &'static str),
    /// Refused at load or loaded: either is right (e.g. a value built up to the size limits, then used). What
    /// is wrong is a crash, a hang or a dirty error.
    Either,
    /// Loads, or is refused because reading it ran out of the load's time: a file within every other limit
    /// whose shape costs the parser more per token as it goes, so that which of the two happens depends on the
    /// machine's speed. What is wrong is a load past the bound, another error, a crash or a hang.
    InTime,
    /// Loads; a decision on 2404 passes over the failing `decide` (the defaults fail) with an error saying these
    /// words.
    ScriptError(&'static str),
    /// Loads; a decision on 2404 is this action, from `decide`, with no script error.
    Decides(ActionKind),
}

/// One hostile script.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub script: String,
    pub expect: Expect,
}

fn case(name: impl Into<String>, script: impl Into<String>, expect: Expect) -> Case {
    Case { name: name.into(), script: script.into(), expect }
}

/// `pattern` with `{i}` replaced by 0, 1, 2, ... `n - 1`, joined.
fn numbered(pattern: &str, n: usize) -> String {
    (0..n).map(|i| pattern.replace("{i}", &i.to_string())).collect()
}

/// A `decide` function with `body`, on line 1.
fn decide(body: &str) -> String {
    format!("fn decide(f, ctx) {{ {body} }}")
}

/// Ways to build a value nested about as deep as the sandbox lets it.
const NESTERS: [(&str, &str); 5] = [
    ("arrays", "let a = []; for i in 0..250 { a = [a]; }"),
    ("maps", "let a = #{}; for i in 0..120 { a = #{ x: a }; }"),
    ("mixed", "let a = []; for i in 0..120 { a = [#{ x: a }]; }"),
    ("pushed", "let a = []; for i in 0..250 { let b = []; b.push(a); a = b; }"),
    // A change through an index path is checked for the part changed only: the path adds its own depth.
    (
        "pathed",
        "let a = []; for i in 0..250 { a = [a]; } let b = a; \
         a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0] = b;",
    ),
];

/// What is then done with the deep value `a`: (name, functions it needs, code).
const USES: [(&str, &str, &str); 18] = [
    ("compare", "", "let same = a == a; let other = a != [a];"),
    ("contains", "", "let c = [a, 1].contains(a); let i = [1, a].index_of(a);"),
    ("in", "", "let c = a in [a];"),
    ("format", "", "let s = a.to_string(); let d = a.to_debug();"),
    ("print", "", "print(a); debug(a);"),
    ("interpolate", "", "let s = `deep: ${a}`;"),
    ("concat", "", "let s = \"x\" + a;"),
    ("type_of", "", "let t = type_of(a);"),
    ("switch", "", "switch a { [] => 1, _ => 2 };"),
    ("self_push", "", "a.push(a); a.push(a);"),
    ("join", "", "let b = a + a;"),
    ("throw", "", "throw a;"),
    ("resubmit", "", "resubmit(#{ params: a });"),
    ("notify", "", "notify(`${a}`);"),
    ("map_keys", "", "let m = #{ a: a }; let k = m.keys(); let v = m.values();"),
    ("clone_many", "", "let b = a; let c = b; let d = [b, c];"),
    (
        "in_recursion",
        "fn g(n, a) { if n == 0 { ((((a == a) && (a.to_string().len() > 0)))) } else { (((g(n - 1, a)))) } }\n",
        "let r = g(6, a);",
    ),
    ("return", "", "a"),
];

/// The whole table.
pub fn cases() -> Vec<Case> {
    use Expect::*;
    let mut all = vec![
        // Functions outside the language.
        case("sleep", "sleep(1000000);", Refused(1, "unknown function or action `sleep`")),
        case("sleep_float", "sleep(1e300);", Refused(1, "`sleep`")),
        case("exit", "on(2404, fail(\"a\"));\nexit();\non(2001, fail(\"b\"));", Refused(2, "`exit`")),
        case("exit_value", "exit(1);", Refused(1, "`exit`")),
        case("eval", "eval(\"on(2404, fail(\\\"x\\\"))\");", Refused(1, "eval")),
        case("import", "import \"os\" as os;", Refused(1, "import")),
        case("timestamp", "let t = timestamp();", Refused(1, "`timestamp`")),
        case("parse_json", "let j = parse_json(\"{}\");", Refused(1, "`parse_json`")),
        case("reflection", "let l = get_fn_metadata_list();", Refused(1, "`get_fn_metadata_list`")),
        case("fn_pointer", "let f = Fn(\"on\");", Refused(1, "function pointers")),
        case("curry", "fn g(x, y) { x }\nlet f = g.curry(1);", Refused(2, "")),
        case("closure", "let f = |x| x + 1;", Refused(1, "closures")),
        case("capturing_closure", "let a = [1];\nlet f = || a;", Refused(2, "closures")),
        case("decide_sleep", decide("sleep(10); ()"), Refused(1, "`sleep`")),
        case("decide_exit", decide("exit(); ()"), Refused(1, "`exit`")),
        case("blob", "let b = blob(10);", Refused(1, "`blob`")),
        // Loops and recursion.
        case("endless_loop", "let x = 0;\nloop { x += 1; }", Refused(2, "")),
        case("while_true", "while true {}", Refused(1, "")),
        case("recursion", "fn f(n) { f(n + 1) }\nf(0);", Refused(2, "nested deeper")),
        case(
            "recursion_deep_expressions",
            "fn f(n) { (((((((f(n + 1) + 1) + 1) + 1) + 1) + 1) + 1) + 1) }\nf(0);",
            Refused(2, "nested deeper"),
        ),
        case("mutual_recursion", "fn a(n) { b(n) }\nfn b(n) { a(n) }\na(0);", Refused(3, "nested deeper")),
        case("deep_parentheses", format!("let x = {}1{};", "(".repeat(5000), ")".repeat(5000)), Refused(1, "")),
        case("deep_literal", format!("let x = {}{};", "[".repeat(5000), "]".repeat(5000)), Refused(1, "")),
        case("decide_loop", decide("loop {}"), ScriptError("")),
        case("decide_recursion", format!("fn g(n) {{ g(n + 1) }}\n{}", decide("g(0)")), ScriptError("nested deeper")),
        // Built-ins that are slow per call, in loops.
        case(
            "membership_loop",
            "let a = []; for i in 0..255 { a.push(i); }\nloop { let c = a.contains(999); }",
            Refused(2, ""),
        ),
        case(
            "string_search_loop",
            "let s = \"x\"; s.pad(4000, \"x\");\nloop { s.index_of(\"y\"); s.contains(\"xy\"); }",
            Refused(2, ""),
        ),
        case(
            "decide_membership",
            decide("let a = []; for i in 0..255 { a.push([i, [i]]); } loop { a.contains([999, [999]]); }"),
            ScriptError(""),
        ),
        case(
            "decide_string_search",
            decide("let s = \"ab\"; s.pad(4000, \"ab\"); loop { s.index_of(\"abba\"); s.replace(\"ab\", \"ba\"); }"),
            ScriptError(""),
        ),
        case(
            "decide_map_scan",
            decide("let m = #{}; for i in 0..120 { m[`k${i}`] = i; } loop { m.keys(); m.values(); }"),
            ScriptError(""),
        ),
        // Sizes.
        case("string_doubling", "let s = \"xxxxxxxxxxxxxxxx\";\nloop { s += s; }", Refused(2, "too large")),
        case("array_growth", "let a = [];\nloop { a.push(1); }", Refused(2, "too large")),
        case("map_growth", "let m = #{};\nlet i = 0;\nloop { m[`k${i}`] = i; i += 1; }", Refused(3, "together")),
        case("pad", "let s = \"x\";\ns.pad(100000000, \"x\");", Refused(2, "too large")),
        case(
            "replace_blowup",
            "let s = \"x\"; s.pad(4000, \"x\");\nlet t = s; t.replace(\"x\", s);",
            Refused(2, "replace would make"),
        ),
        case(
            "interpolation_growth",
            "let s = \"x\"; s.pad(3000, \"x\");\nlet t = `${s}${s}`;",
            Refused(2, "too large"),
        ),
        case(
            "long_keys",
            "let s = \"k\"; s.pad(4000, \"k\");\nlet m = #{};\nloop { s.pop(); m[s] = 1; }",
            Refused(3, ""),
        ),
        case("chain_doubling", "let p = fail(\"x\");\nloop { p = p.then(p); }", Refused(2, "at most 64 stages")),
        case(
            "built_stages",
            "let big = \"x\"; big.pad(4000, \"x\");\nlet all = [];\nloop { all.push(notify(big).then(notify(big)).then(fail(big))); }",
            Refused(3, ""),
        ),
        case(
            "decide_built_stages",
            decide(
                "let big = \"x\"; big.pad(4000, \"x\"); let p = notify(big); loop { p = notify(big).then(p); if p.to_string().len() > 0 { p = notify(big); } }",
            ),
            ScriptError(""),
        ),
        case("many_rules", "for i in 1000..=9999 { on(i, fail(\"x\")); }", Either),
        case("many_variables", (0..200).map(|i| format!("let v{i} = {i};")).collect::<String>(), Refused(1, "")),
        case(
            "deep_amend",
            decide("let a = #{}; for i in 0..20 { a = #{ x: a }; } resubmit(a)"),
            ScriptError("nest deeper"),
        ),
        // Output.
        case("print_flood", "loop { print(\"flood\"); }", Refused(1, "")),
        case(
            "decide_print_flood",
            decide("let s = \"x\"; s.pad(4000, \"x\"); loop { print(s); debug(\"y\"); }"),
            ScriptError(""),
        ),
        // Arithmetic at the edges.
        case("overflow", "let x = 9223372036854775807;\nlet y = x + 1;", Refused(2, "")),
        case("min_div", "let x = -9223372036854775807 - 1;\nlet y = x / -1;", Refused(2, "")),
        case("power", "let x = 2 ** 100000;", Refused(1, "")),
        case("float_nan_jitter", "on(2404, retry(#{ jitter: 0.0 / 0.0 }));", Refused(1, "jitter")),
        case("huge_multiplier", "on(2404, retry(#{ multiplier: 1e308, attempts: 100 }));", Either),
        case("max_attempts", "on(2404, retry(#{ attempts: 4294967295 }));", Either),
        // Durations past any sense.
        case("years", "on(2404, retry(#{ initial: \"1000y\", max_delay: \"2000y\" }));", Refused(1, "longer than")),
        case("max_elapsed_years", "on(2404, retry(#{ max_elapsed: \"584years\" }));", Refused(1, "longer than")),
        case(
            "overflowing_duration",
            "on(2404, retry(#{ max_delay: \"99999999999999999999999s\" }));",
            Refused(1, "cannot read"),
        ),
        case("decide_years", decide("retry(#{ max_hint: \"10000days\" })"), ScriptError("longer than")),
        // The policy API cannot be redefined.
        case("shadow_on", "fn on(m, p) {}\non(2404, fail(\"x\"));", Refused(1, "would hide")),
        case("shadow_retry", "fn retry() { fail(\"never\") }\non(2404, retry());", Refused(1, "would hide")),
        case("shadow_then", "fn then(a, b) { a }", Refused(1, "would hide")),
        case("shadow_otherwise", "fn otherwise(p) {}", Refused(1, "would hide")),
        case("shadow_http", "fn http(s) { s }", Refused(1, "would hide")),
        case("shadow_fail", "  fn fail(reason) { () }", Refused(1, "would hide")),
        case("shadow_notify_arity", "fn notify(a, b, c) { () }", Refused(1, "would hide")),
        case("decide_arity", "fn decide(f) { () }", Refused(1, "two parameters")),
        case("decide_arity_three", "fn decide(f, ctx, x) { () }", Refused(1, "two parameters")),
        // Text that is not quite a script.
        case("bom", "\u{feff}on(2404, fail(\"bom\"));", Either),
        case("nul", "on(2404, fail(\"x\"));\u{0}", Refused(1, "")),
        case("long_name", format!("{}();", "x".repeat(100_000)), Refused(1, "unknown function")),
        case("long_string", format!("let s = \"{}\";", "x".repeat(100_000)), Refused(1, "")),
        case("many_errors", "on(2404, retyr());\n".repeat(1000), Refused(1, "did you mean `retry`")),
        // Files whose shape costs the parser more per token as it goes: bounded by the load's time. Thousands
        // of variables are refused either way (by the time, or by the variable bound once read); a function of
        // thousands of parameters or locals is not over any other limit, and loads on a fast enough machine.
        case("many_lets", numbered("let v{i} = {i};\n", 6000), Refused(0, "")),
        case("many_consts", numbered("const c{i} = {i};\n", 6000), Refused(0, "")),
        case("many_params", format!("fn f({}) {{ 1 }}", numbered("p{i}, ", 6000)), InTime),
        case("function_of_lets", format!("fn f() {{ {} 1 }}", numbered("let v{i} = {i};", 6000)), InTime),
        case("long_switch", format!("let x = switch 1 {{ {} _ => 0 }};", numbered("{i} => {i},", 6000)), Either),
        case("only_semicolons", ";".repeat(1_000_000), Either),
        // Top levels run once: a heavy one costs at load only.
        case(
            "heavy_top_level",
            format!(
                "const LIMIT = 3;\nlet n = 0;\nwhile n < 20000 {{ n += 1; }}\n{}",
                decide("if ctx.history.decisions < global::LIMIT { return notify(`try ${ctx.history.decisions}`); }")
            ),
            Decides(ActionKind::Notify),
        ),
        // `decide` returning what it should not.
        case("decide_int", decide("42"), ScriptError("decide returned")),
        case("decide_registers", decide("on(2404, fail(\"x\"))"), ScriptError("while a policy file loads")),
        case("decide_throws_big", decide("let s = \"x\"; s.pad(4000, \"x\"); throw s;"), ScriptError("xxx")),
        case(
            "decide_changing_text",
            decide("notify(`decision ${ctx.history.decisions}`).then(fail(`after ${ctx.history.decisions}`))"),
            Decides(ActionKind::Notify),
        ),
    ];
    for (nester, build) in NESTERS {
        for (use_name, functions, code) in USES {
            all.push(case(format!("deep_{nester}_{use_name}"), format!("{functions}{build}\n{code};"), Expect::Either));
            let body = if use_name == "return" { format!("{build} {code}") } else { format!("{build} {code}; ()") };
            let script = format!("{functions}{}", decide(&body));
            all.push(case(format!("decide_deep_{nester}_{use_name}"), script, Expect::Either));
        }
    }
    all
}

/// The most a refusal may take: the load bound (1 s), and room for a debug build's parsing.
pub const LOAD_BOUND: Duration = Duration::from_millis(1500);
/// The most one decision may take here: the decision bound (10 ms), with room for a debug build and for a
/// machine shared with other builds (what is checked is that no decision runs on, not the figure).
pub const DECISION_BOUND: Duration = Duration::from_millis(250);

/// Loads `case` over the defaults, timing it. A case that may end either way gets time enough for its
/// decisions to finish what they do with their values (what is tested is that doing it ends cleanly).
pub fn load(case: &Case) -> (Result<Policies, LoadError>, Duration) {
    let started = Instant::now();
    let mut builder = Policies::builder().source("site.rhai", case.script.clone());
    if case.expect == Expect::Either {
        builder = builder.decision_time_limit(Duration::from_secs(5));
    }
    (builder.build(), started.elapsed())
}

/// Whether `first`, the first error of a refused file, says it ran out of the load's time.
pub fn out_of_load_time(first: Option<&Diagnostic>) -> bool {
    first.is_some_and(|d| d.to_string().contains("took longer to read than the load time limit"))
}

/// How long one decision of `case` may take.
fn decision_bound(case: &Case) -> Duration {
    if case.expect == Expect::Either { Duration::from_secs(6) } else { DECISION_BOUND }
}

/// Checks a diagnostic names `site.rhai` with a position, or the file as a whole.
pub fn assert_placed(case: &Case, d: &Diagnostic) {
    let text = d.to_string();
    assert_eq!(d.file.as_ref(), "site.rhai", "{}: {text}", case.name);
    assert!(text.len() < 2048, "{}: a bounded message, not {} bytes", case.name, text.len());
    if let Some(pos) = d.pos {
        assert!(text.starts_with(&format!("site.rhai:{}:{}: ", pos.line, pos.column)), "{}: {text}", case.name);
    }
}

/// Runs `case` through the policies API and checks what came of it; returns the loaded set if it loaded.
pub fn check_case(case: &Case) -> Option<Policies> {
    let (loaded, took) = load(case);
    assert!(took < LOAD_BOUND, "{}: the load took {took:?}", case.name);
    let policies = match (loaded, case.expect) {
        (Err(e), Expect::Refused(line, words)) => {
            let first = e.errors().next().unwrap_or_else(|| panic!("{}: refused without an error", case.name));
            assert_placed(case, first);
            if line > 0 {
                assert_eq!(first.pos.map(|p| p.line), Some(line), "{}: {first}", case.name);
            }
            assert!(first.to_string().contains(words), "{}: expected `{words}` in {first}", case.name);
            e.errors().for_each(|d| assert_placed(case, d));
            return None;
        }
        (Err(e), Expect::Either) => {
            e.errors().for_each(|d| assert_placed(case, d));
            return None;
        }
        (Err(e), Expect::InTime) => {
            assert!(out_of_load_time(e.errors().next()), "{}: refused for another reason: {e}", case.name);
            e.errors().for_each(|d| assert_placed(case, d));
            return None;
        }
        (Err(e), expect) => panic!("{}: expected {expect:?}, refused: {e}", case.name),
        (Ok(_), Expect::Refused(..)) => panic!("{}: loaded, but should be refused", case.name),
        (Ok(p), _) => p,
    };
    let failure = Failure::asset(2404, "not found").expect("a valid failure");
    let mut history = History::new(7);
    for _ in 0..3 {
        history.record_failure(&failure);
        let started = Instant::now();
        let d = policies.decide(&failure, &history, &Context::new());
        let took = started.elapsed();
        assert!(took < decision_bound(case), "{}: a decision took {took:?}", case.name);
        match case.expect {
            Expect::ScriptError(words) => {
                let e = d.script_error().unwrap_or_else(|| panic!("{}: no script error", case.name));
                assert_placed(case, e);
                assert!(e.pos.is_some(), "{}: {e}", case.name);
                assert!(e.to_string().contains(words), "{}: expected `{words}` in {e}", case.name);
                assert_eq!(d.rule().origin().file.as_ref(), "policies/00-lightflow.rhai", "{}", case.name);
            }
            Expect::Decides(kind) => {
                assert!(d.script_error().is_none(), "{}: {:?}", case.name, d.script_error());
                assert_eq!(d.kind(), kind, "{}", case.name);
                return Some(policies);
            }
            _ => {
                if let Some(e) = d.script_error() {
                    assert_placed(case, e);
                }
            }
        }
        history.record(&d);
    }
    Some(policies)
}

/// A trivial host policy set still decides, after whatever came before.
pub fn assert_healthy() {
    let policies = Policies::builder().source("site.rhai", "on(2404, retry());").build().expect("a plain file loads");
    let d = policies.decide(&Failure::asset(2404, "").expect("valid"), &History::new(0), &Context::new());
    assert_eq!(d.kind(), ActionKind::Retry);
}
