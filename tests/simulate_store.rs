//! The crash test on a store: replicas of the real engine, killed and restarted at random moments of the
//! seed, on one store: nothing lost, nothing ended twice, no two calls of one job at once.

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::Policies;
use lightflow_remedy::operate::simulation::{self, SimConfig, StoreRun, Summary};
use lightflow_remedy::store::MemoryStore;

fn run(config: &SimConfig) -> Summary {
    simulation::run_on_store(Policies::defaults(), config, Arc::new(MemoryStore::new()), |_, _| {}).unwrap()
}

fn check(run: &StoreRun, assets: u64) {
    assert_eq!(run.submitted, assets);
    assert_eq!(run.lost, 0, "{run:?}");
    assert_eq!(run.ended_once, assets, "{run:?}");
    assert_eq!(run.concurrent_calls, 0, "{run:?}");
    assert_eq!(run.repeated_dead_letters, 0, "{run:?}");
}

#[test]
fn three_replicas_crashing_often_lose_nothing_and_never_call_twice_at_once() {
    let config = SimConfig {
        assets: 1500,
        seed: 11,
        replicas: 3,
        crash_every: Some(Duration::from_secs(20)),
        hang: 0.02,
        ..SimConfig::default()
    };
    let summary = run(&config);
    let store = summary.store.clone().unwrap();
    check(&store, 1500);
    assert!(store.crashes >= 10, "{store:?}");
    assert!(store.takeovers > 0, "crashes left leases behind: {store:?}");
    assert_eq!(summary.recovered + summary.failed + summary.cancelled, 1500);
    println!("{store:?}");
}

#[test]
fn one_replica_without_crashes_is_the_plain_simulation_on_a_store() {
    let config = SimConfig { assets: 500, seed: 3, ..SimConfig::default() };
    let summary = run(&config);
    let store = summary.store.clone().unwrap();
    check(&store, 500);
    assert_eq!((store.crashes, store.takeovers, store.repeated_calls), (0, 0, 0));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = SimConfig {
        assets: 400,
        seed: 5,
        replicas: 2,
        crash_every: Some(Duration::from_secs(60)),
        ..SimConfig::default()
    };
    assert_eq!(run(&config), run(&config));
}
