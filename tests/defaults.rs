//! The built-in defaults encode DESIGN.md's table for every catalogue code.

use std::time::Duration;

use lightflow_remedy::{
    Action, ActionKind, Context, Failure, FailureKey, Matcher, Policies, Severity, classify::catalogue,
};

use ActionKind::{Fail as F, FixCredentials as Fix, Notify as N, Reconcile as Rec, Republish as Rep, Retry as R};

const MIN: u64 = 60;

/// The step kinds of each consecutive failure until the job ends.
fn plan(policies: &Policies, key: FailureKey) -> Vec<Vec<ActionKind>> {
    let failure = Failure::from_key(key, "").unwrap();
    let mut plan = Vec::new();
    for n in 1..=20 {
        let e = policies.explain(&failure, n, &Context::new(), 11);
        if e.ended_before(n) {
            break;
        }
        plan.push(e.steps.iter().map(|d| d.kind()).collect());
    }
    plan
}

/// Delays of the waiting steps at each consecutive failure.
fn delays(policies: &Policies, key: FailureKey, seed: u64) -> Vec<Duration> {
    let failure = Failure::from_key(key, "").unwrap();
    (1..=20)
        .map(|n| policies.explain(&failure, n, &Context::new(), seed))
        .take_while(|e| e.first().kind() != F)
        .flat_map(|e| e.steps.into_iter().filter_map(|d| d.delay()).collect::<Vec<_>>())
        .collect()
}

fn t() -> Vec<Vec<ActionKind>> {
    vec![vec![R], vec![R], vec![R], vec![F]]
}

#[test]
fn every_row_of_the_default_table() {
    let policies = Policies::defaults();
    let once_then_person = || vec![vec![R], vec![N, F]];
    let table: Vec<(Vec<u16>, Vec<Vec<ActionKind>>)> = vec![
        (vec![1001, 1003], once_then_person()),
        (vec![1002], vec![vec![N, F]]),
        (vec![2001, 2002, 2408, 2500, 2501, 2504, 2599, 3001, 4004], t()),
        (vec![2051, 2054, 2055, 2061, 2064, 2065], t()),
        (vec![2003, 2004, 2005, 2006, 2404, 2066, 3002], vec![vec![F]]),
        (vec![2400, 2402, 2405, 2410, 2450, 2499], vec![vec![F]]),
        (vec![2007, 2401, 2403], vec![vec![Fix], vec![R], vec![F]]),
        (vec![2429, 2503], t()),
        (vec![2070, 6001], vec![vec![R], vec![R], vec![F]]),
        (vec![3003], vec![vec![Rec, Rep], vec![F]]),
        (vec![3004, 4005, 4014, 2050, 2053, 2060, 2063], once_then_person()),
        (vec![3005], vec![vec![Rep], vec![Rep], vec![Rep], vec![F]]),
        (vec![4001, 4002, 4003, 4013], vec![vec![R], vec![R], vec![Fix], vec![R], vec![F]]),
        (vec![2052, 2062], vec![vec![N, F]]),
        (vec![7001], vec![vec![R], vec![F]]),
        (vec![1000, 1999, 2099, 5000, 9999], vec![vec![R], vec![F]]),
    ];
    for (codes, expected) in &table {
        for &code in codes {
            assert_eq!(&plan(&policies, FailureKey::asset(code)), expected, "code {code}");
        }
    }
    let api: Vec<(Vec<u16>, Vec<Vec<ActionKind>>)> = vec![
        (vec![401, 403], vec![vec![Fix], vec![F]]),
        (vec![404, 400, 409, 422], vec![vec![F]]),
        (vec![408, 429, 500, 502, 503, 504, 599], vec![vec![R], vec![R], vec![R], vec![R], vec![R], vec![F]]),
    ];
    for (statuses, expected) in &api {
        for &status in statuses {
            assert_eq!(&plan(&policies, FailureKey::api(status)), expected, "http:{status}");
        }
    }
    // A hook that does not answer in time is a failure of its own kind.
    assert_eq!(plan(&policies, FailureKey::timeout()), t());
}

#[test]
fn every_catalogue_code_has_a_rule_of_its_own() {
    let policies = Policies::defaults();
    for code in catalogue::codes() {
        let failure = Failure::asset(code, "").unwrap();
        let e = policies.explain(&failure, 1, &Context::new(), 0);
        let matcher = e.first().rule().origin().matcher;
        assert_ne!(matcher, Matcher::Otherwise, "{code} falls to `otherwise`");
        assert!(e.first().rule().origin().pos.is_some());
    }
}

#[test]
fn profiles_have_the_documented_delays() {
    let policies = Policies::defaults();
    let within = |d: Duration, nominal: u64| {
        let s = d.as_secs_f64();
        s >= nominal as f64 * 0.75 - 0.001 && s <= nominal as f64 * 1.25 + 0.001
    };
    for seed in 0..20 {
        // T: about 1 m, 4 m, 16 m.
        let t = delays(&policies, FailureKey::asset(2001), seed);
        assert_eq!(t.len(), 3);
        for (d, nominal) in t.iter().zip([MIN, 4 * MIN, 16 * MIN]) {
            assert!(within(*d, nominal), "T seed {seed}: {d:?} vs {nominal}s");
        }
        // TH: about 5 m, 15 m, 45 m.
        let th = delays(&policies, FailureKey::asset(2429), seed);
        assert_eq!(th.len(), 3);
        for (d, nominal) in th.iter().zip([5 * MIN, 15 * MIN, 45 * MIN]) {
            assert!(within(*d, nominal), "TH seed {seed}: {d:?} vs {nominal}s");
        }
        // API: five tries from 1 s doubling to 60 s, full jitter.
        let api = delays(&policies, FailureKey::api(503), seed);
        assert_eq!(api.len(), 5);
        for (d, cap) in api.iter().zip([1, 2, 4, 8, 16]) {
            assert!(*d <= Duration::from_secs(cap), "API seed {seed}: {d:?} > {cap}s");
        }
        // Brightcove locks a reference id for about 30 s: republication waits at least that long.
        for code in [3005, 3003] {
            let republish = delays(&policies, FailureKey::asset(code), seed);
            assert!(!republish.is_empty(), "{code} is republished after a delay");
            for d in republish {
                assert!(d >= Duration::from_secs(30), "republish after {d:?}");
            }
        }
    }
}

#[test]
fn republication_after_3003_asks_for_a_new_reference_id() {
    let policies = Policies::defaults();
    let e = policies.explain(&Failure::asset(3003, "in use").unwrap(), 1, &Context::new(), 0);
    match e.steps[1].action() {
        Action::Republish { target, new_reference_id } => {
            assert_eq!(target.as_ref(), "brightcove");
            assert!(new_reference_id);
        }
        other => panic!("expected republish, got {other:?}"),
    }
}

#[test]
fn a_refused_api_token_is_repaired_whether_401_or_403() {
    let policies = Policies::defaults();
    for status in [401, 403] {
        let e = policies.explain(&Failure::api(status, "").unwrap(), 1, &Context::new(), 0);
        assert!(
            matches!(e.first().action(), Action::FixCredentials { scope: lightflow_remedy::CredentialScope::Api }),
            "http:{status}: {:?}",
            e.first().action()
        );
        assert_eq!(e.first().rule().origin().matcher.to_string(), format!("http({status})"));
    }
}

#[test]
fn permanent_failures_say_what_to_do() {
    let policies = Policies::defaults();
    let table = [
        (2003, "re-export"),
        (2004, "upgrade the plan"),
        (2005, "shorten the input"),
        (2006, "4K"),
        (2404, "input URL"),
        (2066, "select a DRM provider"),
        (2052, "key server URL"),
    ];
    for (code, hint) in table {
        let e = policies.explain(&Failure::asset(code, "").unwrap(), 1, &Context::new(), 0);
        let reason = e.steps.last().unwrap().reason().unwrap().to_owned();
        assert!(reason.contains(hint), "{code}: {reason}");
    }
}

#[test]
fn the_defaults_load_without_warnings() {
    let policies = Policies::defaults();
    let warnings: Vec<String> =
        policies.warnings().iter().filter(|d| d.severity == Severity::Warning).map(|d| d.to_string()).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(!policies.has_decide());
}

/// The catalogue file beside the repository (as in CI) names exactly the codes the library knows.
#[test]
fn the_catalogue_matches_the_published_error_page() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/lightflow-api-errors.txt");
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipped: {path} is not beside the repository");
        return;
    };
    let mut published = Vec::new();
    for line in text.lines() {
        let Some((code, name)) = line.split_once(": ") else { continue };
        let Ok(code) = code.trim().parse::<u16>() else { continue };
        published.push((code, name.trim().to_owned()));
    }
    assert_eq!(published.len(), catalogue::ENTRIES.len(), "codes on the page vs in the catalogue");
    for (code, name) in published {
        let entry = catalogue::lookup(code).unwrap_or_else(|| panic!("{code} is missing from the catalogue"));
        assert_eq!(entry.name, name, "{code}");
    }
}
