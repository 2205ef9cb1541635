//! Deployment files override the defaults: exact codes, ranges, categories, `otherwise`, and `decide`.

use std::path::Path;

use lightflow_remedy::{ActionKind, Context, Failure, FailureKey, History, Matcher, Policies};

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn first(policies: &Policies, key: FailureKey, ctx: &Context) -> (ActionKind, String, Matcher) {
    let failure = Failure::from_key(key, "").unwrap();
    let mut history = History::new(0);
    history.record_failure(&failure);
    let d = policies.decide(&failure, &history, ctx);
    let file = d.rule().origin().file.rsplit('/').next().unwrap().to_owned();
    (d.kind(), file, d.rule().origin().matcher)
}

fn load(dir: &Path) -> Policies {
    Policies::load([dir]).unwrap_or_else(|e| panic!("{e}"))
}

const DEFAULTS: &str = "00-lightflow.rhai";
const A: fn(u16) -> FailureKey = FailureKey::asset;

#[test]
fn an_exact_code_overrides_the_default() {
    let dir = dir_with(&[("10-site.rhai", r#"on(2404, retry(#{ attempts: 1 }));"#)]);
    let p = load(dir.path());
    assert_eq!(first(&p, A(2404), &Context::new()), (ActionKind::Retry, "10-site.rhai".into(), Matcher::Code(2404)));
    // Other codes keep their defaults.
    assert_eq!(first(&p, A(2003), &Context::new()).1, DEFAULTS);
}

#[test]
fn a_later_range_beats_exact_codes_of_an_earlier_source() {
    let dir = dir_with(&[("10-site.rhai", r#"on(2400..=2499, notify("ops", "any 4xx").then(fail("4xx")));"#)]);
    let p = load(dir.path());
    for code in [2401, 2403, 2404, 2429, 2450] {
        assert_eq!(
            first(&p, A(code), &Context::new()),
            (ActionKind::Notify, "10-site.rhai".into(), Matcher::Range(2400, 2499))
        );
    }
    assert_eq!(first(&p, A(2503), &Context::new()).1, DEFAULTS);
}

#[test]
fn a_category_overrides_every_code_of_that_category() {
    let dir = dir_with(&[("10-site.rhai", r#"on("brightcove", fail("publishing is off"));"#)]);
    let p = load(dir.path());
    for code in [3001, 3003, 3005, 3099] {
        let expected_file = if code == 3099 { DEFAULTS } else { "10-site.rhai" };
        assert_eq!(first(&p, A(code), &Context::new()).1, expected_file, "{code}");
    }
    assert_eq!(first(&p, A(2001), &Context::new()).1, DEFAULTS);
}

#[test]
fn otherwise_is_the_fallback_for_failures_no_rule_of_any_source_matches() {
    let dir = dir_with(&[("10-site.rhai", r#"otherwise(fail("unknown errors fail fast"));"#)]);
    let p = load(dir.path());
    // Every default rule still decides what it covers.
    for (key, kind) in [
        (A(2001), ActionKind::Retry),
        (A(2007), ActionKind::FixCredentials),
        (A(2429), ActionKind::Retry),
        (FailureKey::api(503), ActionKind::Retry),
        (FailureKey::api(401), ActionKind::FixCredentials),
    ] {
        assert_eq!(first(&p, key, &Context::new()).0, kind, "{key}");
        assert_eq!(first(&p, key, &Context::new()).1, DEFAULTS, "{key}");
    }
    // What no rule matches gets the last source's `otherwise`, which replaces the defaults' one.
    for key in [A(9999), A(1234)] {
        assert_eq!(first(&p, key, &Context::new()), (ActionKind::Fail, "10-site.rhai".into(), Matcher::Otherwise));
    }
    let replaced: Vec<String> = p.warnings().iter().map(|d| d.to_string()).collect();
    assert!(
        replaced.iter().any(|w| w.contains("10-site.rhai:1:1: warning: `otherwise` replaces the `otherwise` of")),
        "{replaced:#?}"
    );
}

#[test]
fn a_deployment_that_fails_everything_writes_it_with_ranges_or_decide() {
    let ranges = r#"
        on(1000..=9999, fail("this deployment never remediates"));
        on(http(400..=599), fail("this deployment never remediates"));
        on("timeout", fail("this deployment never remediates"));
    "#;
    let with_decide = r#"fn decide(f, ctx) { fail("this deployment never remediates") }"#;
    for script in [ranges, with_decide] {
        let dir = dir_with(&[("10-site.rhai", script)]);
        let p = load(dir.path());
        for key in
            [A(2001), A(2404), A(3003), A(9999), FailureKey::api(429), FailureKey::api(503), FailureKey::timeout()]
        {
            let (kind, file, _) = first(&p, key, &Context::new());
            assert_eq!((kind, file.as_str()), (ActionKind::Fail, "10-site.rhai"), "{key}: {script}");
        }
    }
}

#[test]
fn a_later_range_or_category_says_which_exact_rules_it_takes_over() {
    let dir = dir_with(&[(
        "10-site.rhai",
        r#"on(2400..=2499, fail("4xx"));
on("brightcove", fail("publishing is off"));
on(2404, fail("exact, takes nothing over"));
on(2600..=2699, fail("nothing there to take over"));
"#,
    )]);
    let p = load(dir.path());
    let warnings: Vec<String> = p.warnings().iter().map(|d| d.to_string()).collect();
    let expect = [
        "10-site.rhai:1:1: warning: `2400..=2499` takes over the exact rules 2401, 2403, 2408, 2429 of policies/00-lightflow.rhai",
        "10-site.rhai:2:1: warning: `brightcove` takes over the exact rules 3001, 3002, 3003, 3004, 3005 of policies/00-lightflow.rhai",
    ];
    for e in expect {
        assert!(warnings.iter().any(|w| w.contains(e)), "missing {e} in {warnings:#?}");
    }
    assert_eq!(warnings.iter().filter(|w| w.contains("takes over")).count(), 2, "{warnings:#?}");
}

#[test]
fn decide_returns_a_policy_or_falls_through() {
    let script = r#"
        const SLOW = #{ attempts: 1, initial: "10m" };
        fn decide(f, ctx) {
            if f.code == 2006 && ctx.asset["4k"] == true { return resubmit(#{ "4k": false }); }
            if ctx.plan == "trial" { return fail("trial accounts fail fast"); }
            if f.category == "brightcove" && ctx.history.streak > 1 { return retry(global::SLOW); }
        }
        on(2003, notify("ops", "corrupt input"));
    "#;
    let dir = dir_with(&[("20-dynamic.rhai", script)]);
    let p = load(dir.path());
    assert!(p.has_decide());
    let four_k = Context::from_json(r#"{"asset": {"4k": true}}"#).unwrap();
    assert_eq!(first(&p, A(2006), &four_k), (ActionKind::Resubmit, "20-dynamic.rhai".into(), Matcher::Decide));
    // Without 4K asked for, decide returns () and the defaults answer.
    assert_eq!(first(&p, A(2006), &Context::new()), (ActionKind::Fail, DEFAULTS.into(), Matcher::Code(2006)));
    // A fall-through still reaches the same file's own rules first.
    assert_eq!(
        first(&p, A(2003), &Context::new()),
        (ActionKind::Notify, "20-dynamic.rhai".into(), Matcher::Code(2003))
    );
    let trial = Context::new().with("plan", "trial");
    assert_eq!(first(&p, A(2503), &trial).0, ActionKind::Fail);
    assert_eq!(first(&p, A(2503), &Context::new()).1, DEFAULTS);

    // decide sees the history and the file's constants.
    let failure = Failure::asset(3001, "").unwrap();
    let mut h = History::new(0);
    h.record_failure(&failure);
    h.record_failure(&failure);
    let d = p.decide(&failure, &h, &Context::new());
    assert_eq!((d.kind(), d.delay()), (ActionKind::Retry, Some(std::time::Duration::from_secs(600))));
}

#[test]
fn later_files_and_directories_win() {
    let low = dir_with(&[
        ("10-a.rhai", r#"on(2404, notify("ops", "a").then(fail("a")));"#),
        ("20-b.rhai", r#"on(2404, retry(#{ attempts: 2 }));"#),
        ("not-a-policy.txt", "this is ignored"),
    ]);
    let p = load(low.path());
    assert_eq!(first(&p, A(2404), &Context::new()).1, "20-b.rhai");
    let high = dir_with(&[("00-z.rhai", r#"on(2404, fail("top"));"#)]);
    let p = Policies::load([low.path(), high.path()]).unwrap();
    assert_eq!(first(&p, A(2404), &Context::new()), (ActionKind::Fail, "00-z.rhai".into(), Matcher::Code(2404)));
    assert_eq!(p.sources().len(), 4);
}

#[test]
fn examples_are_valid_and_not_loaded_by_default() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/examples");
    let p = Policies::load([examples]).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.sources().len() >= 3, "the defaults and at least two examples");
    let defaults_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let p = Policies::builder().defaults(false).directory(defaults_dir).build().unwrap();
    assert_eq!(p.sources().len(), 1, "only 00-lightflow.rhai, not the examples subfolder");
}

#[test]
fn the_shipped_examples_do_what_they_say() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/examples");
    let p = Policies::load([examples]).unwrap();
    let four_k = Context::from_json(r#"{"asset": {"4k": true}}"#).unwrap();
    assert_eq!(first(&p, A(2006), &four_k).0, ActionKind::Resubmit);
    let trial = Context::from_json(r#"{"plan": "trial"}"#).unwrap();
    assert_eq!(first(&p, A(2001), &trial).0, ActionKind::Fail);
    // A longer throttle profile for 2429: the first wait is longer than the default's 5 m ± 25 %.
    let failure = Failure::asset(2429, "").unwrap();
    let d = p.decide(&failure, &History::new(0), &Context::new());
    assert!(d.delay().unwrap() > std::time::Duration::from_secs(7 * 60), "{:?}", d.delay());
}
