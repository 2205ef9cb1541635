//! The simulation: reproducible, complete, and strict about its configuration; and `remedy simulate`.

#![cfg(feature = "testing")]

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::LivePolicies;
use lightflow_remedy::engine::{AwsCosts, BudgetConfig};
use lightflow_remedy::operate::simulation::{self, Mix, MixError, Outage, SimConfig, SimError, Summary};
use lightflow_remedy::{FailureKey, Policies};

fn policies() -> Arc<LivePolicies> {
    Arc::new(LivePolicies::fixed(Policies::defaults()))
}

fn config(assets: usize, seed: u64) -> SimConfig {
    SimConfig { assets, seed, ..SimConfig::default() }
}

fn run(config: &SimConfig) -> Summary {
    simulation::run(policies(), config, |_, _| {}).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_summary_and_another_seed_another() {
    let config = config(3000, 7);
    let first = run(&config);
    let second = run(&config);
    assert_eq!(first, second);
    assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
    let other = run(&SimConfig { seed: 8, ..config });
    assert_ne!(first, other);
}

#[test]
fn every_asset_is_accounted_for() {
    let mut config = config(2000, 3);
    // Fleet guards that bite: a budget too small for every waiting retry (a retry holds its cost from the
    // moment it is decided, and a failed one keeps it until its job recovers; jobs that rest for an open breaker
    // make no attempts, so the outage spends less than the waiting retries hold), a Brightcove outage, and
    // owners cancelling often.
    config.budget = Some(BudgetConfig::Aws { capacity: 6_000, costs: AwsCosts::STANDARD, no_retry_increment: 1 });
    config.first_try_successes = 0.5;
    config.cancel = 0.05;
    config.outage = Some(Outage {
        failure: FailureKey::asset(3001),
        start: Duration::from_secs(60),
        length: Duration::from_secs(300),
        fail: 0.95,
    });
    let mut calls = 0_u64;
    let mut last = (0, 0);
    let s = simulation::run(policies(), &config, |done, total| {
        calls += 1;
        assert!(done >= last.0, "progress never goes back");
        last = (done, total);
    })
    .unwrap();
    assert_eq!(s.assets, 2000);
    assert_eq!(s.recovered + s.failed + s.cancelled, s.assets);
    assert_eq!(s.accounted(), s.assets);
    assert_eq!(s.failed, s.failed_by_verdict.values().sum::<u64>());
    assert_eq!(last, (2000, 2000));
    assert_eq!(calls, 2001, "once at the start, once per ended job");
    assert!(s.recovered > 0 && s.failed > 0 && s.cancelled > 0, "{s:?}");
    assert!(s.recovered_by_reconcile <= s.recovered);
    assert!(s.budget_refusals > 0 && s.failed_by_verdict.contains_key("budget_exhausted"), "{s:?}");
    assert!(s.breaker_openings.contains_key("brightcove"), "{s:?}");
    assert!(s.budget_left.is_some());
    assert!(s.attempts.p50 <= s.attempts.p99 && s.attempts.p99 <= s.attempts.max);
    assert!(s.recovery.p50_ms <= s.recovery.p99_ms && s.recovery.p99_ms <= s.recovery.max_ms);
    assert!(s.recovery.max_ms <= s.simulated_span_ms);
    assert!(s.top_reasons.len() <= simulation::TOP_REASONS);
    assert!(s.top_reasons.windows(2).all(|w| w[0].count >= w[1].count));
    assert!(s.hook_calls["resubmit"] > 0 && s.decisions["retry"] > 0, "{s:?}");
}

#[test]
fn recovery_follows_the_success_probability() {
    let always = run(&SimConfig { recover: 1.0, cancel: 0.0, ..config(1000, 1) });
    let never = run(&SimConfig { recover: 0.0, reconcile_done: 0.0, hang: 0.0, cancel: 0.0, ..config(1000, 1) });
    assert!(always.recovered > never.recovered, "{} vs {}", always.recovered, never.recovered);
    // No attempt succeeds and reconcile never finds one done: nothing recovers.
    assert_eq!(never.recovered, 0, "{never:?}");
    assert_eq!(never.failed, 1000);
}

#[test]
fn a_mix_of_one_permanent_code_fails_every_asset_by_policy() {
    let s = run(&SimConfig { mix: "2404=1".parse().unwrap(), cancel: 0.0, ..config(200, 5) });
    assert_eq!(s.failed, 200);
    assert_eq!(s.failed_by_verdict.get("policy"), Some(&200));
    assert_eq!(s.attempts.max, 0);
    assert_eq!(s.top_reasons.len(), 1);
    assert!(s.top_reasons[0].reason.contains("HTTP 404"), "{:?}", s.top_reasons);
}

#[test]
fn bad_configurations_are_typed_errors() {
    let err = |c: SimConfig| simulation::run(policies(), &c, |_, _| {}).unwrap_err();
    assert_eq!(err(config(0, 1)), SimError::NoAssets);
    assert_eq!(err(SimConfig { mix: Mix::new([]), ..config(10, 1) }), SimError::EmptyMix);
    assert_eq!(err(SimConfig { mix: "2001=0,3001=0".parse().unwrap(), ..config(10, 1) }), SimError::ZeroMix);
    assert_eq!(
        err(SimConfig { mix: "2001=1,2001=2".parse().unwrap(), ..config(10, 1) }),
        SimError::DuplicateInMix(FailureKey::asset(2001))
    );
    assert!(matches!(
        err(SimConfig { mix: Mix::new([(FailureKey::asset(12), 1)]), ..config(10, 1) }),
        SimError::InvalidFailure { .. }
    ));
    assert_eq!(err(SimConfig { recover: 1.5, ..config(10, 1) }), SimError::Probability { name: "recover", value: 1.5 });
    assert!(matches!(
        err(SimConfig { fix_credentials: f64::NAN, ..config(10, 1) }),
        SimError::Probability { name: "fix_credentials", .. }
    ));
    assert_eq!(
        err(SimConfig { reconcile_done: -0.1, ..config(10, 1) }),
        SimError::Probability { name: "reconcile_done", value: -0.1 }
    );
    assert!(matches!(
        err(SimConfig {
            budget: Some(BudgetConfig::Grpc { max_tokens: 10, token_ratio: f64::INFINITY }),
            ..config(10, 1)
        }),
        SimError::Budget(_)
    ));
    assert!(matches!(
        err(SimConfig { arrivals_over: Duration::from_secs(u64::MAX), ..config(10, 1) }),
        SimError::Duration { name: "arrivals_over", .. }
    ));
    assert_eq!(err(SimConfig { max_concurrent_hook_calls: 0, ..config(10, 1) }), SimError::NoHookSlots);
    assert!(matches!(
        err(SimConfig { assets: simulation::MAX_ASSETS + 1, ..config(10, 1) }),
        SimError::TooManyAssets(_)
    ));
}

#[test]
fn inside_a_runtime_it_refuses_instead_of_panicking() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let result = rt.block_on(async { simulation::run(policies(), &config(10, 1), |_, _| {}) });
    assert_eq!(result.unwrap_err(), SimError::InsideRuntime);
}

#[test]
fn mixes_parse_and_say_what_is_wrong() {
    let mix: Mix = " 2001=30, 3001=10 ,http:503=10,timeout=1".parse().unwrap();
    assert_eq!(mix.to_string(), "2001=30,3001=10,http:503=10,timeout=1");
    assert!(matches!("".parse::<Mix>(), Err(MixError::EmptyEntry { .. })));
    assert!(matches!("2001=1,".parse::<Mix>(), Err(MixError::EmptyEntry { .. })));
    assert!(matches!("2001".parse::<Mix>(), Err(MixError::MissingWeight { .. })));
    assert!(matches!("2001=-1".parse::<Mix>(), Err(MixError::BadWeight { .. })));
    assert!(matches!("99=1".parse::<Mix>(), Err(MixError::BadKey { .. })));
    assert!(matches!("http:200=1".parse::<Mix>(), Err(MixError::BadKey { .. })));
}

#[cfg(feature = "cli")]
mod cli {
    use std::process::{Command, Output};

    use serde_json::Value;

    fn remedy(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_remedy")).args(args).output().expect("remedy runs")
    }

    #[test]
    fn simulate_prints_the_same_json_twice() {
        let args = ["simulate", "--assets", "2000", "--seed", "7", "--json"];
        let first = remedy(&args);
        let second = remedy(&args);
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        assert_eq!(first.stdout, second.stdout);
        let v: Value = serde_json::from_slice(&first.stdout).expect("one JSON object");
        assert_eq!(v["assets"], 2000);
        assert_eq!(v["seed"], 7);
        let accounted = ["recovered", "failed", "cancelled"].iter().map(|k| v[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(accounted, 2000);
        assert!(String::from_utf8_lossy(&first.stderr).contains("wall time"), "the wall time goes to stderr");
        assert!(!String::from_utf8_lossy(&first.stdout).contains("wall"));
    }

    #[test]
    fn simulate_prints_a_table_by_default() {
        let o = remedy(&["simulate", "--assets", "300", "--seed", "1", "--budget", "grpc:100:0.1", "--no-breaker"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        for line in ["recovered", "failed", "cancelled", "attempts per asset", "time to recovery", "hook calls"] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn bad_options_exit_with_2_and_one_line() {
        for args in [
            &["simulate", "--mix", "2001=x"][..],
            &["simulate", "--mix", "99=1"],
            &["simulate", "--assets", "0"],
            &["simulate", "--recover", "2"],
            &["simulate", "--budget", "grpc:ten:0.1"],
            &["simulate", "--budget", "lots"],
            &["simulate", "--arrivals", "soon"],
            &["simulate", "--outage", "3001"],
        ] {
            let o = remedy(args);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("remedy: simulate: "), "{args:?}: {err}");
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
}
