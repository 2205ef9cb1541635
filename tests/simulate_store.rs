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

#[cfg(feature = "sqlite")]
#[test]
fn a_sqlite_file_named_by_url_survives_its_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let config =
        SimConfig { assets: 300, seed: 13, crash_every: Some(Duration::from_secs(30)), ..SimConfig::default() };
    let store = simulation::run_on_url(Policies::defaults(), &config, &url, |_, _| {}).unwrap().store.unwrap();
    check(&store, 300);
    assert!(store.crashes > 0, "{store:?}");
    // A second run on the same file would count the first run's jobs as its own: it is refused.
    let again = simulation::run_on_url(Policies::defaults(), &config, &url, |_, _| {}).unwrap_err();
    assert!(again.to_string().contains("earlier run"), "{again}");
}

#[cfg(feature = "postgres")]
#[path = "support/server.rs"]
mod server;

/// The crash test as the issue states it: 3 replicas of the engine on one PostgreSQL schema, killed often.
#[cfg(feature = "postgres")]
#[test]
fn three_replicas_on_postgres_crashing_often_lose_nothing_and_never_call_twice_at_once() {
    let Some(url) = server::database_url("simulate_store on PostgreSQL", "simulate_store") else { return };
    let schema = format!(
        "sim_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let config = SimConfig {
        assets: 600,
        seed: 17,
        replicas: 3,
        crash_every: Some(Duration::from_secs(20)),
        hang: 0.02,
        ..SimConfig::default()
    };
    let summary =
        simulation::run_on_url(Policies::defaults(), &config, &format!("{url}{sep}schema={schema}"), |_, _| {})
            .unwrap();
    let store = summary.store.clone().unwrap();
    check(&store, 600);
    assert!(store.crashes >= 5, "{store:?}");
    assert!(store.takeovers > 0, "crashes left leases behind: {store:?}");
    assert!(store.store.starts_with("postgres"), "{store:?}");
}
