//! The simulation on a store: replicas of the real engine share one store under virtual time, replicas are
//! killed (dropped, no shutdown, their leases left behind) and new ones started at moments drawn from the
//! seed, and the summary says whether anything was lost, ended twice, or called twice at once.

use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::time::Instant;

use super::arrival_times;
use super::config::{SimConfig, SimError};
use super::lightflow::{JITTER_SALT, Model, SimLightFlow, asset_id, mix64};
use super::summary::{StoreRun, Summary, Tally};
use crate::decide::LivePolicies;
use crate::engine::{CounterSnapshot, Job, Remediator, RetryBudget, StoreSettings, StoredJob};
use crate::store::{ListFilter, MemoryStore, Phase, Store, StoreOptions, Timestamp, TokioClock, open_url};

/// Where the store's clock starts: 2026-01-01, so that its times read as dates.
const CLOCK_START: Timestamp = Timestamp(1_767_225_600_000);

/// How often the run looks whether every job has ended.
const LOOK_EVERY: Duration = Duration::from_secs(10);

/// The run stops after this much simulated time, even if jobs are left (they count as lost).
const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

/// Stream numbers of the run's own draws, apart from the assets'.
const CRASH_STREAM: u64 = u64::MAX - 1;

/// Runs a simulation of `config` on `store` with `config.replicas` replicas of the engine, killing and
/// restarting them every `config.crash_every` (about), and summarizes it with what a crash test asks: jobs
/// submitted, ended once, lost, taken over, calls repeated with the same key, calls of one job at once.
///
/// Like [`run`](super::run) it starts its own paused-time runtime; the store must hold tokio's clock still
/// while it works (the SQLite store's `hold_time`; the memory store needs nothing), so that virtual time moves
/// only when every replica waits.
///
/// ```
/// use lightflow_remedy::operate::simulation::{self, SimConfig};
/// use lightflow_remedy::store::MemoryStore;
/// use lightflow_remedy::Policies;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let config = SimConfig { assets: 200, replicas: 3, crash_every: Some(Duration::from_secs(120)), ..SimConfig::default() };
/// let summary = simulation::run_on_store(Policies::defaults(), &config, Arc::new(MemoryStore::new()), |_, _| {})?;
/// let run = summary.store.unwrap();
/// assert_eq!((run.submitted, run.lost, run.concurrent_calls), (200, 0, 0));
/// assert_eq!(run.ended_once, 200);
/// assert!(run.crashes > 0);
/// # Ok::<(), lightflow_remedy::operate::simulation::SimError>(())
/// ```
pub fn run_on_store(
    policies: impl Into<Arc<LivePolicies>>,
    config: &SimConfig,
    store: Arc<dyn Store>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary, SimError> {
    let (model, runtime) = prepare(config)?;
    runtime.block_on(simulate(policies.into(), config, model, store, &mut progress))
}

/// Runs [`run_on_store`] on the store `url` names ([`open_url`]), opened inside the run's own paused-time
/// runtime: a PostgreSQL store's connections belong to the runtime that opened them, so this is how a crash
/// test runs on PostgreSQL. `memory:` names a [`MemoryStore`](crate::store::MemoryStore).
///
/// The store is opened so that the run is the same for a seed as far as the database allows: its work holds
/// tokio's paused clock still ([`StoreOptions::hold_time`]), SQLite on one connection, and no wake hints
/// (replicas find due jobs by polling, which costs nothing in virtual time). A store left from an earlier run
/// is refused: its jobs would be counted as this run's.
///
/// ```
/// use lightflow_remedy::operate::simulation::{self, SimConfig};
/// use lightflow_remedy::Policies;
///
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("crash.db").display());
/// let config = SimConfig { assets: 50, crash_every: Some(std::time::Duration::from_secs(60)), ..SimConfig::default() };
/// let run = simulation::run_on_url(Policies::defaults(), &config, &url, |_, _| {})?.store.unwrap();
/// assert_eq!((run.submitted, run.ended_once, run.lost), (50, 50, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_on_url(
    policies: impl Into<Arc<LivePolicies>>,
    config: &SimConfig,
    url: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary, SimError> {
    let (model, runtime) = prepare(config)?;
    let policies = policies.into();
    runtime.block_on(async {
        let store: Arc<dyn Store> = if url == "memory:" {
            Arc::new(MemoryStore::new())
        } else {
            let pool = if url.starts_with("sqlite") { 1 } else { config.replicas.clamp(2, 8) as u32 };
            let options = StoreOptions::default().hold_time(true).pool_size(pool).wake_hints(false);
            Arc::from(open_url(url, &options).await.map_err(|e| SimError::Store(e.to_string()))?)
        };
        let left = store.stats(Timestamp(0)).await.map_err(|e| SimError::Store(e.to_string()))?;
        let rows: u64 = left.by_phase.values().sum::<u64>() + left.by_outcome.values().sum::<u64>();
        if rows > 0 {
            return Err(SimError::Store(format!(
                "{} holds {rows} jobs of an earlier run: name a new file or schema",
                store.describe()
            )));
        }
        simulate(policies, config, model, store, &mut progress).await
    })
}

/// The run's model, and a runtime of its own whose clock starts paused, with I/O for the stores that talk to
/// a server.
fn prepare(config: &SimConfig) -> Result<(Model, tokio::runtime::Runtime), SimError> {
    config.validate()?;
    let model = Model::new(config)?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SimError::InsideRuntime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| SimError::Runtime(e.to_string()))?;
    Ok((model, runtime))
}

/// The replicas, and the counters of those that were killed.
struct Fleet {
    policies: Arc<LivePolicies>,
    hooks: Arc<SimLightFlow>,
    store: Arc<dyn Store>,
    clock: Arc<TokioClock>,
    config: SimConfig,
    replicas: Vec<Option<Remediator<Arc<SimLightFlow>>>>,
    /// Every replica started, for names.
    started: u64,
    crashes: u64,
    /// The counters of replicas gone.
    gone: CounterSnapshot,
}

impl Fleet {
    fn start(&mut self, slot: usize) -> Result<(), SimError> {
        self.started += 1;
        let settings =
            StoreSettings { owner: Some(format!("replica-{slot}-{}", self.started)), ..StoreSettings::default() };
        let mut builder = Remediator::builder(self.policies.clone(), self.hooks.clone())
            .hook_timeout(self.config.hook_timeout)
            .max_concurrent_hook_calls(self.config.max_concurrent_hook_calls)
            .store_with(self.store.clone(), self.clock.clone(), settings);
        builder = match self.config.breaker {
            Some(b) => builder.circuit_breaker(b),
            None => builder.without_circuit_breaker(),
        };
        if let Some(budget) = self.config.budget {
            builder = builder.retry_budget(RetryBudget::new(budget).map_err(SimError::Budget)?);
        }
        self.replicas[slot] = Some(builder.build());
        Ok(())
    }

    fn crash(&mut self, slot: usize) {
        if let Some(r) = self.replicas[slot].take() {
            r.crash();
            self.gone.merge(&r.counters());
            self.crashes += 1;
        }
    }

    /// A live replica, chosen by `pick`.
    fn live(&self, pick: usize) -> Option<&Remediator<Arc<SimLightFlow>>> {
        let live: Vec<_> = self.replicas.iter().flatten().collect();
        (!live.is_empty()).then(|| live[pick % live.len()])
    }

    fn counters(&self) -> CounterSnapshot {
        let mut all = self.gone.clone();
        for r in self.replicas.iter().flatten() {
            all.merge(&r.counters());
        }
        all
    }
}

async fn simulate(
    policies: Arc<LivePolicies>,
    config: &SimConfig,
    model: Model,
    store: Arc<dyn Store>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Summary, SimError> {
    let total = config.assets as u64;
    let hooks = Arc::new(SimLightFlow::new(model, config.seed, config.assets));
    let epoch = hooks.epoch;
    let clock = Arc::new(TokioClock::starting_at(CLOCK_START));
    let mut fleet = Fleet {
        policies,
        hooks: hooks.clone(),
        store: store.clone(),
        clock,
        config: config.clone(),
        replicas: (0..config.replicas).map(|_| None).collect(),
        started: 0,
        crashes: 0,
        gone: CounterSnapshot::default(),
    };
    for slot in 0..config.replicas {
        fleet.start(slot)?;
    }
    let mut draws = Xoshiro256PlusPlus::seed_from_u64(mix64(config.seed, CRASH_STREAM));
    let mut next_crash = config.crash_every.map(|every| epoch + every.mul_f64(draws.random_range(0.5..1.5)));
    // Slots waiting for their new replica, and when it starts.
    let mut restarts: Vec<(Instant, usize)> = Vec::new();

    let times = arrival_times(config);
    let mut next = 0;
    let mut look = epoch + LOOK_EVERY;
    progress(0, total);
    let mut ended = 0;
    loop {
        let now = Instant::now();
        // Arrivals due now, each through a live replica.
        while next < times.len() && epoch + times[next] <= now {
            let (failure, cancel) = hooks.arrive(next);
            let id = asset_id(next);
            let job = Job::new(id.as_str()).with_seed(mix64(config.seed ^ JITTER_SALT, next as u64));
            let pick = draws.random_range(0..usize::MAX);
            match fleet.live(pick) {
                Some(r) => {
                    r.enqueue(job, failure).await.map_err(|e| SimError::Store(e.to_string()))?;
                }
                None => {
                    // Every replica is down: the host keeps the asset and submits it when one is up.
                    break;
                }
            }
            if let Some(after) = cancel {
                let live: Vec<_> = fleet.replicas.iter().flatten().cloned().collect();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    if let Some(r) = live.into_iter().next() {
                        let _ = r.cancel_job(&id).await;
                    }
                });
            }
            next += 1;
        }
        // Crashes and restarts due now.
        if let Some(at) = next_crash
            && at <= now
        {
            let slot = draws.random_range(0..config.replicas);
            fleet.crash(slot);
            restarts.push((now + Duration::from_millis(draws.random_range(1_000..10_000)), slot));
            next_crash = config.crash_every.map(|every| now + every.mul_f64(draws.random_range(0.5..1.5)));
        }
        let due: Vec<usize> = restarts.iter().filter(|(at, _)| *at <= now).map(|(_, s)| *s).collect();
        restarts.retain(|(at, _)| *at > now);
        for slot in due {
            fleet.start(slot)?;
        }
        // Every so often: have all jobs ended?
        if look <= now {
            look = now + LOOK_EVERY;
            let stats = store.stats(fleet.clock_now()).await.map_err(|e| SimError::Store(e.to_string()))?;
            let finished: u64 = stats.by_outcome.values().sum();
            if finished != ended {
                ended = finished;
                progress(ended.min(total), total);
            }
            let active: u64 = stats.by_phase.values().sum();
            if next == times.len() && active == 0 && restarts.is_empty() {
                break;
            }
            if now.duration_since(epoch) > HORIZON {
                break;
            }
        }
        let mut wake = look;
        // An arrival waits for a live replica (with none, the next restart comes first).
        if let Some(at) = times.get(next)
            && fleet.live(0).is_some()
        {
            wake = wake.min(epoch + *at);
        }
        if let Some(at) = next_crash {
            wake = wake.min(at);
        }
        for (at, _) in &restarts {
            wake = wake.min(*at);
        }
        tokio::time::sleep_until(wake.max(Instant::now())).await;
    }
    let span = Instant::now().duration_since(epoch);
    for slot in 0..fleet.replicas.len() {
        if let Some(r) = fleet.replicas[slot].take() {
            let _ = r.shutdown(Duration::from_secs(5)).await;
            fleet.gone.merge(&r.counters());
        }
    }
    summarize(config, &fleet, store.as_ref(), total, span).await
}

impl Fleet {
    fn clock_now(&self) -> Timestamp {
        crate::store::Clock::now(&*self.clock)
    }
}

async fn summarize(
    config: &SimConfig,
    fleet: &Fleet,
    store: &dyn Store,
    total: u64,
    span: Duration,
) -> Result<Summary, SimError> {
    let err = |e: crate::store::StoreError| SimError::Store(e.to_string());
    let filter = ListFilter { limit: Some(usize::MAX), ..ListFilter::default() };
    let rows = store.list(&filter).await.map_err(err)?;
    let mut tally = Tally { attempts: Vec::with_capacity(config.assets), ..Tally::default() };
    let mut ended_once = 0;
    let mut lost = 0;
    for row in &rows {
        if row.phase != Phase::Finished {
            lost += 1;
            continue;
        }
        ended_once += 1;
        let outcome = StoredJob::from_row(row).ok().and_then(|j| j.outcome).unwrap_or(
            // Cancelled by the store while at rest: no payload outcome.
            crate::engine::Outcome::Cancelled { attempts: row.attempts },
        );
        tally.add(outcome);
    }
    // Submitted assets without any row: lost too.
    lost += total.saturating_sub(rows.len() as u64);
    let counters = fleet.counters();
    let mut summary = tally.summarize(config, &counters, None, span);
    let log = fleet.hooks.log.lock().unwrap_or_else(|e| e.into_inner());
    summary.store = Some(StoreRun {
        store: store.describe(),
        replicas: config.replicas as u64,
        crashes: fleet.crashes,
        submitted: total,
        ended_once,
        lost,
        repeated_dead_letters: log.repeated_dead_letters(),
        takeovers: counters.takeovers,
        repeated_calls: log.repeated,
        concurrent_calls: log.concurrent,
    });
    Ok(summary)
}
