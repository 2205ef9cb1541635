//! The simulated LightFlow: a model of how assets fail and recover, as the engine's [`Hooks`].

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::classify::{ClassifyError, Downstream, Failure, FailureKey, FailureKind, catalogue};
use crate::decide::CredentialScope;
use crate::engine::{Attempt, AttemptKey, CredentialFix, HookError, Hooks, Job, Notice, Reconciled, Verdict};

use super::config::{SimConfig, SimError};

/// Draws and settings the hooks need, fixed for a run.
pub(super) struct Model {
    /// The mix's failures, then the outage's.
    failures: Vec<Failure>,
    /// Running sums of the mix's weights.
    cumulative: Vec<u64>,
    recover: f64,
    repeat: f64,
    fix_credentials: f64,
    reconcile_done: f64,
    hang: f64,
    /// How long a hanging call takes.
    hang_for: Duration,
    cancel: f64,
    /// When, which downstream, which failure (an index of `failures`) and how often.
    outage: Option<(Range<Duration>, Downstream, usize, f64)>,
}

/// Credentials that stay broken until repaired.
fn is_credentials(key: FailureKey) -> bool {
    matches!((key.kind, key.code), (FailureKind::Asset, 2007 | 2401 | 2403) | (FailureKind::Api, 401))
}

/// A failure as LightFlow reports it: the catalogue's text, or the API's status line.
fn failure_of(key: FailureKey) -> Result<Failure, ClassifyError> {
    match key.kind {
        FailureKind::Asset => Failure::asset(key.code, catalogue::describe(key.code).name),
        FailureKind::Api => Failure::api(key.code, format!("simulated LightFlow API answered HTTP {}", key.code)),
        FailureKind::Timeout => Failure::from_key(key, "a simulated call timed out"),
    }
}

impl Model {
    pub(super) fn new(config: &SimConfig) -> Result<Self, SimError> {
        let built = |key: FailureKey| failure_of(key).map_err(|error| SimError::InvalidFailure { key, error });
        let mut failures = config.mix.entries.iter().map(|&(key, _)| built(key)).collect::<Result<Vec<_>, _>>()?;
        let cumulative = config
            .mix
            .entries
            .iter()
            .scan(0_u64, |sum, &(_, w)| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        let outage = match &config.outage {
            Some(o) => {
                let failure = built(o.failure)?;
                let downstream = failure.downstream();
                failures.push(failure);
                Some((o.start..o.start + o.length, downstream, failures.len() - 1, o.fail))
            }
            None => None,
        };
        Ok(Model {
            failures,
            cumulative,
            recover: config.recover,
            repeat: config.repeat,
            fix_credentials: config.fix_credentials,
            reconcile_done: config.reconcile_done,
            hang: config.hang,
            hang_for: config.hook_timeout + Duration::from_secs(15),
            cancel: config.cancel,
            outage,
        })
    }

    /// A failure of the mix, by weight.
    pub(super) fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0).max(1);
        let x = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x).min(self.cumulative.len() - 1)
    }

    /// The failure to report, with a Retry-After where the API gives one.
    fn failure(&self, index: usize, rng: &mut Xoshiro256PlusPlus) -> Failure {
        let failure = self.failures[index].clone();
        match (failure.kind(), failure.code()) {
            (FailureKind::Api, 429 | 503) => failure.with_retry_after(Duration::from_secs(rng.random_range(1..=60))),
            _ => failure,
        }
    }
}

/// One asset as the simulated service sees it.
struct AssetSim {
    /// Its own stream of draws, so that answers do not depend on how jobs interleave.
    rng: Xoshiro256PlusPlus,
    /// The failure it last failed with (an index of the model's failures).
    current: usize,
    /// Resubmissions fail with `current` until `fix_credentials` repairs them.
    credentials_broken: bool,
    /// An earlier attempt went through although its answer was lost: `reconcile` and the next attempt find it.
    committed: bool,
}

/// The simulated LightFlow: the engine's hooks.
pub(super) struct SimLightFlow {
    pub(super) model: Model,
    pub(super) epoch: Instant,
    assets: Mutex<Vec<AssetSim>>,
    pub(super) log: Mutex<CallLog>,
}

/// What the simulated LightFlow saw of the calls: keys used twice, calls of one job under way together, dead
/// letters delivered more than once.
#[derive(Debug, Default)]
pub(super) struct CallLog {
    keys: HashSet<String>,
    /// Side-effecting calls whose idempotency key had been used before.
    pub(super) repeated: u64,
    in_flight: HashMap<String, u32>,
    /// Calls that started while another call of the same job was under way.
    pub(super) concurrent: u64,
    dead_letters: HashMap<String, u32>,
}

impl CallLog {
    /// Dead letters beyond the first for a job.
    pub(super) fn repeated_dead_letters(&self) -> u64 {
        self.dead_letters.values().map(|n| u64::from(n.saturating_sub(1))).sum()
    }
}

/// A call under way, for the log; dropped before it answered (its replica crashed), an attempt that was going
/// to succeed has gone through all the same, as a request LightFlow took would.
struct Flight<'a> {
    sim: &'a SimLightFlow,
    job: &'a Job,
    succeeds: bool,
    answered: bool,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut log = self.sim.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = log.in_flight.get_mut(self.job.asset_id()) {
            *n = n.saturating_sub(1);
        }
        drop(log);
        if !self.answered && self.succeeds {
            let _ = self.sim.with_asset(self.job, |_, a| a.committed = true);
        }
    }
}

/// SplitMix64's finalizer over a seed and a stream number: unrelated streams from neighbouring numbers.
pub(super) fn mix64(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(stream).wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stream numbers apart from the assets' (0..assets).
pub(super) const ARRIVALS_STREAM: u64 = u64::MAX;
pub(super) const JITTER_SALT: u64 = 0x4a49_5454_4552; // "JITTER"

const ID_PREFIX: &str = "sim-";

pub(super) fn asset_id(index: usize) -> String {
    format!("{ID_PREFIX}{index}")
}

/// What a call costs: its latency, and whether it outlives the hook timeout.
struct Timing {
    latency: Duration,
    hangs: bool,
}

impl SimLightFlow {
    pub(super) fn new(model: Model, seed: u64, assets: usize) -> Self {
        let assets = (0..assets as u64)
            .map(|i| AssetSim {
                rng: Xoshiro256PlusPlus::seed_from_u64(mix64(seed, i)),
                current: 0,
                credentials_broken: false,
                committed: false,
            })
            .collect();
        SimLightFlow { model, epoch: Instant::now(), assets: Mutex::new(assets), log: Mutex::new(CallLog::default()) }
    }

    /// A call of `job` starts (with its idempotency key, for side-effecting calls).
    fn flight<'a>(&'a self, job: &'a Job, key: Option<String>) -> Flight<'a> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = key
            && !log.keys.insert(key)
        {
            log.repeated += 1;
        }
        let n = log.in_flight.entry(job.asset_id().to_owned()).or_default();
        *n += 1;
        if *n > 1 {
            log.concurrent += 1;
        }
        Flight { sim: self, job, succeeds: false, answered: false }
    }

    /// Runs `f` on the asset of `job`.
    fn with_asset<R>(&self, job: &Job, f: impl FnOnce(&Model, &mut AssetSim) -> R) -> Result<R, HookError> {
        let mut assets = self.assets.lock().unwrap_or_else(|e| e.into_inner());
        let asset = job
            .asset_id()
            .strip_prefix(ID_PREFIX)
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| assets.get_mut(i))
            .ok_or_else(|| HookError::new(format!("the simulated LightFlow has no asset `{}`", job.asset_id())))?;
        Ok(f(&self.model, asset))
    }

    fn assets(&self) -> MutexGuard<'_, Vec<AssetSim>> {
        self.assets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An asset arrives: how it failed first, and when its owner deletes it, if they do.
    pub(super) fn arrive(&self, index: usize) -> (Failure, Option<Duration>) {
        let mut assets = self.assets();
        let a = &mut assets[index];
        let m = &self.model;
        a.current = m.draw(&mut a.rng);
        a.credentials_broken = is_credentials(m.failures[a.current].key());
        let failure = m.failure(a.current, &mut a.rng);
        let cancel = a.rng.random_bool(m.cancel).then(|| Duration::from_millis(a.rng.random_range(1_000..600_000)));
        (failure, cancel)
    }

    /// One resubmission or re-publication: the answer is fixed when the call arrives, before its latency.
    fn attempt(&self, job: &Job, publish_only: bool) -> Result<(Timing, Attempt), HookError> {
        let now = self.epoch.elapsed();
        self.with_asset(job, |m, a| {
            let timing = timing(m, &mut a.rng, if publish_only { 200..1500 } else { 50..800 });
            let failed = if a.committed {
                // An earlier call went through after all: LightFlow reports the asset done.
                a.committed = false;
                None
            } else if a.credentials_broken && !publish_only {
                Some(a.current)
            } else if let Some((during, downstream, index, p)) = &m.outage
                && during.contains(&now)
                && m.failures[a.current].downstream() == *downstream
                && a.rng.random_bool(*p)
            {
                Some(*index)
            } else if a.rng.random_bool(m.recover) {
                None
            } else if a.rng.random_bool(m.repeat) {
                Some(a.current)
            } else {
                Some(m.draw(&mut a.rng))
            };
            let answer = match failed {
                Some(index) => {
                    a.current = index;
                    a.credentials_broken |= is_credentials(m.failures[index].key()) && !publish_only;
                    Attempt::Failed(m.failure(index, &mut a.rng))
                }
                None => {
                    // The engine gives up on a hanging call, but the asset is done: reconcile will say so.
                    a.committed = timing.hangs;
                    Attempt::Succeeded
                }
            };
            (timing, answer)
        })
    }
}

fn timing(m: &Model, rng: &mut Xoshiro256PlusPlus, millis: Range<u64>) -> Timing {
    if rng.random_bool(m.hang) {
        return Timing { latency: m.hang_for, hangs: true };
    }
    Timing { latency: Duration::from_millis(rng.random_range(millis)), hangs: false }
}

impl Hooks for SimLightFlow {
    async fn resubmit(
        &self,
        job: &Job,
        _amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let mut flight = self.flight(job, Some(key.to_string()));
        let (timing, answer) = self.attempt(job, false)?;
        flight.succeeds = answer == Attempt::Succeeded && !timing.hangs;
        tokio::time::sleep(timing.latency).await;
        flight.answered = true;
        Ok(answer)
    }

    async fn republish(
        &self,
        job: &Job,
        _target: &str,
        _new_id: bool,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let mut flight = self.flight(job, Some(key.to_string()));
        let (timing, answer) = self.attempt(job, true)?;
        flight.succeeds = answer == Attempt::Succeeded && !timing.hangs;
        tokio::time::sleep(timing.latency).await;
        flight.answered = true;
        Ok(answer)
    }

    async fn fix_credentials(&self, job: &Job, _scope: CredentialScope) -> Result<CredentialFix, HookError> {
        let _flight = self.flight(job, None);
        let (timing, fixed) = self.with_asset(job, |m, a| {
            let timing = timing(m, &mut a.rng, 500..3000);
            let fixed = a.rng.random_bool(m.fix_credentials);
            a.credentials_broken &= !fixed;
            (timing, fixed)
        })?;
        tokio::time::sleep(timing.latency).await;
        Ok(if fixed { CredentialFix::Fixed } else { CredentialFix::CannotFix })
    }

    async fn reconcile(&self, job: &Job, _: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        let _flight = self.flight(job, None);
        let (timing, done) = self.with_asset(job, |m, a| {
            let timing = timing(m, &mut a.rng, 50..300);
            let done = std::mem::take(&mut a.committed) | a.rng.random_bool(m.reconcile_done);
            (timing, done)
        })?;
        tokio::time::sleep(timing.latency).await;
        Ok(if done { Reconciled::Done } else { Reconciled::NotDone })
    }

    async fn notify(&self, _job: &Job, _notice: &Notice) -> Result<(), HookError> {
        Ok(())
    }

    async fn failed(&self, job: &Job, _verdict: &Verdict) -> Result<(), HookError> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        *log.dead_letters.entry(job.asset_id().to_owned()).or_default() += 1;
        Ok(())
    }
}
