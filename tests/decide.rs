//! `decide`: pure, deterministic given a seed, bounded by attempts and `max_elapsed`, and total.

use std::time::{Duration, SystemTime};

use lightflow_remedy::{ActionKind, Context, CredentialScope, DelaySource, Failure, FailureKey, History, Policies};
use proptest::prelude::*;

fn policies(script: &str) -> Policies {
    Policies::builder().defaults(false).source("test.rhai", script).build().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a job that keeps failing with `failure` until the policy gives up; returns each decision's
/// (kind, stage, delay). Each step takes `work` of host time besides its delay.
fn run(
    p: &Policies,
    failure: &Failure,
    seed: u64,
    work: Duration,
) -> Vec<(ActionKind, Option<usize>, Option<Duration>)> {
    let mut h = History::new(seed);
    let mut out = Vec::new();
    for _ in 0..1000 {
        h.record_failure(failure);
        let d = p.decide(failure, &h, &Context::new());
        out.push((d.kind(), d.stage(), d.delay()));
        if d.kind() == ActionKind::Fail {
            return out;
        }
        h.record(&d);
        h.advance(d.delay().unwrap_or_default() + work);
    }
    panic!("the job never ended: {out:?}");
}

#[test]
fn the_same_seed_gives_the_same_delays() {
    let p = Policies::defaults();
    for key in [FailureKey::asset(2503), FailureKey::asset(2001), FailureKey::api(503)] {
        let f = Failure::from_key(key, "").unwrap();
        let runs: Vec<_> = (0..8).map(|seed| run(&p, &f, seed, Duration::ZERO)).collect();
        for (seed, first) in runs.iter().enumerate() {
            assert_eq!(first, &run(&p, &f, seed as u64, Duration::ZERO), "{key} seed {seed}");
        }
        assert!(runs.windows(2).any(|w| w[0] != w[1]), "{key}: jitter does not depend on the seed");
    }
}

#[test]
fn a_chain_walks_its_stages_in_order() {
    let p = policies(
        r#"on(2001, retry(#{ attempts: 2, initial: "1s" }).then(notify("ops", "still failing"))
            .then(retry(#{ attempts: 1, initial: "1m" })).then(fail("gave up")));"#,
    );
    let f = Failure::asset(2001, "").unwrap();
    let mut h = History::new(0);
    let mut seen = Vec::new();
    for _ in 0..10 {
        h.record_failure(&f);
        loop {
            let d = p.decide(&f, &h, &Context::new());
            seen.push((d.kind(), d.stage(), d.attempt(), d.delay()));
            if d.kind() == ActionKind::Fail {
                break;
            }
            h.record(&d);
            if d.kind().awaits_outcome() {
                break;
            }
        }
        if seen.last().unwrap().0 == ActionKind::Fail {
            break;
        }
    }
    let s = Duration::from_secs;
    assert_eq!(
        seen,
        [
            (ActionKind::Retry, Some(1), 1, Some(s(1))),
            (ActionKind::Retry, Some(1), 2, Some(s(2))),
            (ActionKind::Notify, Some(2), 1, None),
            (ActionKind::Retry, Some(3), 1, Some(s(60))),
            (ActionKind::Fail, Some(4), 1, None),
        ]
    );
}

#[test]
fn a_chain_that_runs_out_fails() {
    let p = policies(r#"on(2001, retry(#{ attempts: 1 }));"#);
    let f = Failure::asset(2001, "").unwrap();
    let steps = run(&p, &f, 0, Duration::ZERO);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].0, ActionKind::Fail);
    assert_eq!(steps[1].1, None, "exhausted, not a stage of the chain");
}

#[test]
fn max_elapsed_ends_a_stage_before_its_attempts() {
    let p = policies(
        r#"on(2001, retry(#{ attempts: 10, initial: "1m", multiplier: 1.0, max_elapsed: "5m" }).then(fail("late")));"#,
    );
    let f = Failure::asset(2001, "").unwrap();
    let retries = run(&p, &f, 0, Duration::ZERO).iter().filter(|s| s.0 == ActionKind::Retry).count();
    assert_eq!(retries, 5);
    // Host time counts too: with 30 s of work per attempt only 3 one-minute waits fit into 5 minutes.
    let retries = run(&p, &f, 0, Duration::from_secs(30)).iter().filter(|s| s.0 == ActionKind::Retry).count();
    assert_eq!(retries, 3);
}

#[test]
fn give_up_on_repeat_ends_a_stage_when_the_same_code_returns() {
    let p = policies(
        r#"on(2006, resubmit(#{ "4k": false }, #{ attempts: 3, give_up_on_repeat: true }).then(fail("same again")));
           on(2001, resubmit(#{ "4k": false }, #{ attempts: 3 }).then(fail("x")));"#,
    );
    let kinds = |code| run(&p, &Failure::asset(code, "").unwrap(), 0, Duration::ZERO).len();
    assert_eq!(kinds(2006), 2, "one resubmission, then the repeat ends it");
    assert_eq!(kinds(2001), 4, "without the option all three resubmissions happen");
}

#[test]
fn a_skipped_stage_hands_over_to_the_next() {
    let p = Policies::defaults();
    let f = Failure::asset(2007, "").unwrap();
    let mut h = History::new(0);
    h.record_failure(&f);
    let d = p.decide(&f, &h, &Context::new());
    assert_eq!(d.kind(), ActionKind::FixCredentials);
    // The host cannot fix the credentials: the same failure goes on to the next stage without a new report.
    h.skip_stage(&d);
    let next = p.decide(&f, &h, &Context::new());
    assert_eq!((next.kind(), next.stage()), (ActionKind::Retry, Some(2)), "stages count from 1");
    assert!(!h.repaired(CredentialScope::Storage));
}

#[test]
fn positions_are_kept_per_rule() {
    let p = Policies::defaults();
    let a = Failure::asset(2001, "").unwrap();
    let b = Failure::asset(3001, "").unwrap();
    let mut h = History::new(0);
    // Alternating codes each walk their own chain: three retries of each, then both fail.
    let mut kinds = Vec::new();
    for f in [&a, &b, &a, &b, &a, &b, &a, &b] {
        h.record_failure(f);
        let d = p.decide(f, &h, &Context::new());
        kinds.push(d.kind());
        h.record(&d);
    }
    assert_eq!(kinds[..6], [ActionKind::Retry; 6]);
    assert_eq!(kinds[6..], [ActionKind::Fail; 2]);
    assert_eq!(h.seen(a.key()), 4);
    assert_eq!(h.attempts(), 6);
}

#[test]
fn retry_after_replaces_the_delay_but_is_clamped() {
    let p = policies(r#"on(http(429), retry(#{ attempts: 3, initial: "1s", min_delay: "2s", max_hint: "30s" }));"#);
    let table = [
        (Duration::from_secs(10), Duration::from_secs(10)),
        (Duration::ZERO, Duration::from_secs(2)),
        (Duration::from_secs(3600), Duration::from_secs(30)),
    ];
    for (hint, expected) in table {
        let f = Failure::api(429, "").unwrap().with_retry_after(hint);
        let d = p.decide(&f, &History::new(0), &Context::new());
        assert_eq!((d.delay(), d.delay_source()), (Some(expected), Some(DelaySource::RetryAfter)), "{hint:?}");
    }
    let f = Failure::from_api_response(429, r#"{"message":"slow"}"#, Some("12"), SystemTime::now()).unwrap();
    assert_eq!(p.decide(&f, &History::new(0), &Context::new()).delay(), Some(Duration::from_secs(12)));
}

#[test]
fn decisions_serialize_with_provenance() {
    let p = Policies::defaults();
    let f = Failure::asset(3003, "").unwrap();
    let d = p.decide(&f, &History::new(0), &Context::new());
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["action"], "reconcile");
    assert_eq!(json["stage"], 1);
    assert_eq!(json["stages"], 3);
    assert_eq!(json["delay_ms"], serde_json::Value::Null);
    assert_eq!(json["rule"]["file"], "policies/00-lightflow.rhai");
    assert_eq!(json["rule"]["matcher"], "3003");
    assert!(json["rule"]["line"].as_u64().unwrap() > 0);
    let owned = d.into_owned();
    assert_eq!(owned.kind(), ActionKind::Reconcile);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Retry-After never lets a stage act more often than `attempts`, nor wait past `max_elapsed`.
    #[test]
    fn retry_after_never_exceeds_attempts_or_max_elapsed(
        attempts in 1u32..8,
        initial_ms in 0u64..5_000,
        max_elapsed_s in 1u64..600,
        max_hint_s in 1u64..3_600,
        hints in proptest::collection::vec(proptest::option::of(0u64..7_200_000), 1..40),
        work_ms in 0u64..10_000,
        seed in any::<u64>(),
    ) {
        let script = format!(
            r#"on(http(503), retry(#{{ attempts: {attempts}, initial: "{initial_ms}ms", max_delay: "10m",
                max_elapsed: "{max_elapsed_s}s", max_hint: "{max_hint_s}s", jitter: "full" }}).then(fail("done")));"#
        );
        let p = policies(&script);
        let mut h = History::new(seed);
        let (mut retries, mut waited) = (0u32, Duration::ZERO);
        for hint in hints.iter().cycle().take(100) {
            let mut f = Failure::api(503, "").unwrap();
            if let Some(ms) = hint {
                f = f.with_retry_after(Duration::from_millis(*ms));
            }
            h.record_failure(&f);
            let d = p.decide(&f, &h, &Context::new());
            if d.kind() == ActionKind::Fail {
                break;
            }
            retries += 1;
            waited += d.delay().unwrap();
            prop_assert!(retries <= attempts, "{retries} retries > {attempts}");
            prop_assert!(waited <= Duration::from_secs(max_elapsed_s), "waited {waited:?}");
            h.record(&d);
            h.advance(d.delay().unwrap() + Duration::from_millis(work_ms));
        }
    }

    /// No code, history or seed makes `decide` panic, and it always answers.
    #[test]
    fn decide_is_total(
        code in any::<u16>(),
        api in any::<bool>(),
        seed in any::<u64>(),
        earlier in proptest::collection::vec((any::<u16>(), any::<bool>(), 0u64..u64::MAX / 4), 0..12),
        hint in proptest::option::of(any::<u64>()),
    ) {
        let p = Policies::defaults();
        let key = if api { FailureKey::api(code) } else { FailureKey::asset(code) };
        let Ok(mut failure) = Failure::from_key(key, "x") else { return Ok(()) };
        if let Some(ms) = hint {
            failure = failure.with_retry_after(Duration::from_millis(ms));
        }
        let mut h = History::new(seed);
        for (c, a, elapsed) in earlier {
            let k = if a { FailureKey::api(c) } else { FailureKey::asset(c) };
            if let Ok(f) = Failure::from_key(k, "") {
                h.record_failure(&f);
                let d = p.decide(&f, &h, &Context::new());
                h.record(&d);
            }
            h.set_elapsed(Duration::from_millis(elapsed));
        }
        h.record_failure(&failure);
        let d = p.decide(&failure, &h, &Context::new());
        prop_assert!(d.stage().is_none_or(|s| (1..=d.stages()).contains(&s)));
        let json = serde_json::to_value(&d).unwrap();
        prop_assert_eq!(json["stage"].as_u64().map(|s| s as usize), d.stage());
    }

    /// Histories from untrusted JSON (e.g. a suspended job) cannot make `decide` panic either.
    #[test]
    fn decide_survives_odd_histories(stage in any::<u32>(), used in any::<u32>(), started in any::<u64>(),
                                     last in any::<u64>(), elapsed in any::<u64>(), seed in any::<u64>()) {
        let p = Policies::defaults();
        // The key of the rule that decides 2502, so that the odd position is the one `decide` reads.
        let rule = p.rules().iter().find(|r| r.origin().matcher.to_string() == "2500..=2599").unwrap();
        let json = serde_json::json!({
            "seed": seed, "elapsed": elapsed, "streak": 5,
            "positions": [{"rule": rule.key(), "stage": stage, "used": used, "started": started, "last_delay": last}],
        });
        let h: History = serde_json::from_value(json).unwrap();
        let f = Failure::asset(2502, "").unwrap();
        prop_assert!(h.position(rule.key()).is_some());
        let d = p.decide(&f, &h, &Context::new());
        prop_assert!(d.stage().is_none_or(|s| (1..=d.stages()).contains(&s)));
    }
}
