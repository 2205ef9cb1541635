//! Simulation: the real engine, under virtual time, against a simulated LightFlow.
//!
//! [`run`] builds a [`Remediator`] with the policies it is given and the fleet guards of a [`SimConfig`], and
//! feeds it a batch of failed assets arriving over some simulated minutes. A simulated LightFlow implements the
//! [`Hooks`](crate::engine::Hooks): it fails assets with the catalogue codes and API statuses of a weighted [`Mix`], lets a
//! resubmission or re-publication succeed with a set probability (otherwise it fails again, often with the same
//! code), repairs credentials and finds earlier attempts done with set probabilities, takes a while to answer
//! (and now and then longer than the hook timeout), and can suffer an [`Outage`] of one downstream. The owner of
//! an asset now and then deletes it while it is being remediated, which cancels its job.
//!
//! Time is tokio's paused clock on a current-thread runtime: hours of back-off pass in a fraction of a second,
//! and nothing depends on the wall clock. Every asset draws from its own seeded random stream, so what the
//! simulated LightFlow answers an asset does not depend on how jobs interleave; what the fleet guards (shared by
//! every job) see depends on the order of events, which a single thread under paused time makes the same from
//! run to run. So the same seed and configuration give the same [`Summary`], field for field.
//!
//! ```
//! use lightflow_remedy::Policies;
//! use lightflow_remedy::LivePolicies;
//! use lightflow_remedy::operate::simulation::{self, SimConfig};
//! use std::sync::Arc;
//!
//! // A `Policies` does for one run; an `Arc<LivePolicies>` can be shared by several.
//! let policies = Arc::new(LivePolicies::fixed(Policies::defaults()));
//! let config = SimConfig { assets: 300, seed: 7, ..SimConfig::default() };
//! let summary = simulation::run(policies.clone(), &config, |_done, _total| {})?;
//! assert_eq!(summary.recovered + summary.failed + summary.cancelled, 300);
//! assert!(summary.recovered > 0);
//! // Virtual time and seeded draws: the same seed gives the same summary.
//! assert_eq!(simulation::run(policies, &config, |_, _| {})?, summary);
//! # Ok::<(), lightflow_remedy::operate::simulation::SimError>(())
//! ```
//!
//! A mix is written `key=weight,...`, keys as [`FailureKey`](crate::FailureKey) parses them:
//!
//! ```
//! use lightflow_remedy::operate::simulation::Mix;
//! let mix: Mix = "2001=30,3001=10,http:503=10".parse()?;
//! assert_eq!(mix.entries().len(), 3);
//! assert_eq!(mix.to_string(), "2001=30,3001=10,http:503=10");
//! assert!("2001=x".parse::<Mix>().is_err());
//! # Ok::<(), lightflow_remedy::operate::simulation::MixError>(())
//! ```

mod config;
mod lightflow;
mod stored;
mod summary;

pub use config::{MAX_ASSETS, MAX_REPLICAS, MAX_SETTING, Mix, MixError, Outage, SimConfig, SimError, TOP_REASONS};
pub use stored::{run_on_store, run_on_url};
pub use summary::{AttemptStats, ReasonCount, RecoveryStats, StoreRun, Summary};

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::time::Instant;

use crate::decide::LivePolicies;
use crate::engine::{BudgetConfig, Job, Remediator, RetryBudget};

use lightflow::*;
use summary::*;

/// Runs a simulation of `config` with `policies` (a [`Policies`](crate::Policies), or a shared
/// [`LivePolicies`]) and summarizes it. `progress(done, total)` is called as jobs
/// end (and once with `done` 0 at the start).
///
/// It starts its own current-thread tokio runtime with paused time, so call it from synchronous code: from
/// inside a runtime it returns [`SimError::InsideRuntime`]. A bad configuration is a [`SimError`], never a
/// panic.
pub fn run(
    policies: impl Into<Arc<LivePolicies>>,
    config: &SimConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary, SimError> {
    config.validate()?;
    let model = Model::new(config)?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SimError::InsideRuntime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| SimError::Runtime(e.to_string()))?;
    let policies = policies.into();
    runtime.block_on(simulate(policies, config, model, &mut progress))
}

/// When each asset arrives, from the start: uniform over the window, in order.
fn arrival_times(config: &SimConfig) -> Vec<Duration> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix64(config.seed, ARRIVALS_STREAM));
    let window = config.arrivals_over.as_millis() as f64;
    let mut times: Vec<Duration> =
        (0..config.assets).map(|_| Duration::from_millis((rng.random::<f64>() * window) as u64)).collect();
    times.sort_unstable();
    times
}

async fn simulate(
    policies: Arc<LivePolicies>,
    config: &SimConfig,
    model: Model,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Summary, SimError> {
    let total = config.assets as u64;
    let hooks = SimLightFlow::new(model, config.seed, config.assets);
    let epoch = hooks.epoch;
    let mut builder = Remediator::builder(policies, hooks)
        .hook_timeout(config.hook_timeout)
        .max_concurrent_hook_calls(config.max_concurrent_hook_calls);
    builder = match config.breaker {
        Some(b) => builder.circuit_breaker(b),
        None => builder.without_circuit_breaker(),
    };
    if let Some(budget) = config.budget {
        builder = builder.retry_budget(RetryBudget::new(budget).map_err(SimError::Budget)?);
    }
    let remediator = builder.build();

    // The assets that succeed on their first try meanwhile, reported to the budget ten times a second.
    let healthy = config.budget.map(|_| {
        let window = config.arrivals_over.max(Duration::from_secs(1)).as_secs_f64();
        let per_tick = config.first_try_successes * total as f64 / window * FIRST_TRY_TICK.as_secs_f64();
        tokio::spawn(report_first_tries(remediator.clone(), per_tick))
    });

    let times = arrival_times(config);
    let mut next = 0;
    let mut pending = FuturesUnordered::new();
    let mut tally = Tally { attempts: Vec::with_capacity(config.assets), ..Tally::default() };
    let mut done = 0_u64;
    let mut last_end = Duration::ZERO;
    let arrival = tokio::time::sleep_until(epoch + times[0]);
    tokio::pin!(arrival);
    progress(0, total);
    while done < total {
        tokio::select! {
            biased;
            Some(outcome) = pending.next() => {
                tally.add(outcome);
                done += 1;
                last_end = epoch.elapsed();
                progress(done, total);
            }
            () = &mut arrival, if next < times.len() => {
                let now = Instant::now();
                while next < times.len() && epoch + times[next] <= now {
                    let (failure, cancel) = remediator.hooks().arrive(next);
                    let id = asset_id(next);
                    let job = Job::new(id.as_str()).with_seed(mix64(config.seed ^ JITTER_SALT, next as u64));
                    pending.push(remediator.enqueue(job, failure).await?.into_future());
                    if let Some(after) = cancel {
                        let remediator = remediator.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            remediator.cancel(&id);
                        });
                    }
                    next += 1;
                }
                if let Some(at) = times.get(next) {
                    arrival.as_mut().reset(epoch + *at);
                }
            }
            else => break,
        }
    }
    if let Some(task) = healthy {
        task.abort();
    }
    Ok(tally.summarize(config, &remediator.counters(), remediator.budget().map(RetryBudget::available), last_end))
}

/// How often first-try successes are reported: often enough that the budget refills about as steadily as
/// they come.
const FIRST_TRY_TICK: Duration = Duration::from_millis(100);

/// Reports `per_tick` first-try successes every [`FIRST_TRY_TICK`] to the budget, forever; no more than it can
/// take.
async fn report_first_tries(remediator: Remediator<SimLightFlow>, per_tick: f64) {
    let mut owed = 0.0;
    let mut tick = tokio::time::interval(FIRST_TRY_TICK);
    loop {
        tick.tick().await;
        owed += per_tick;
        let n = owed.floor();
        owed -= n;
        let Some(budget) = remediator.budget() else { return };
        let (full, step) = match budget.config() {
            BudgetConfig::Aws { capacity, no_retry_increment, .. } => {
                (f64::from(capacity), f64::from(no_retry_increment))
            }
            BudgetConfig::Grpc { max_tokens, token_ratio } => (f64::from(max_tokens), token_ratio),
        };
        let room = if step > 0.0 { ((full - budget.available()) / step).ceil().max(0.0) } else { 0.0 };
        for _ in 0..n.min(room) as u64 {
            remediator.record_first_try_success();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_mix_round_trips_and_validates() {
        let mix = Mix::default();
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix);
        SimConfig::default().validate().unwrap();
    }

    #[test]
    fn draws_follow_the_weights() {
        let config = SimConfig { mix: "2001=1,2002=0,2003=3".parse().unwrap(), ..SimConfig::default() };
        let model = Model::new(&config).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut counts = [0; 3];
        for _ in 0..4000 {
            counts[model.draw(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "a zero weight is never drawn");
        assert!(counts[2] > 2 * counts[0], "{counts:?}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 99.0), percentile(&v, 100.0)), (50, 99, 100));
        assert_eq!(percentile::<u32>(&[], 50.0), 0);
    }
}
