//! Simulation: the real engine, under virtual time, against a simulated LightFlow.
//!
//! [`run`] builds a [`Remediator`] with the policies it is given and the fleet guards of a [`SimConfig`], and
//! feeds it a batch of failed assets arriving over some simulated minutes. A simulated LightFlow implements the
//! [`Hooks`]: it fails assets with the catalogue codes and API statuses of a weighted [`Mix`], lets a
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
//! use lightflow_remedy::reload::LivePolicies;
//! use lightflow_remedy::simulation::{self, SimConfig};
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
//! # Ok::<(), lightflow_remedy::simulation::SimError>(())
//! ```
//!
//! A mix is written `key=weight,...`, keys as [`FailureKey`] parses them:
//!
//! ```
//! use lightflow_remedy::simulation::Mix;
//! let mix: Mix = "2001=30,3001=10,http:503=10".parse()?;
//! assert_eq!(mix.entries().len(), 3);
//! assert_eq!(mix.to_string(), "2001=30,3001=10,http:503=10");
//! assert!("2001=x".parse::<Mix>().is_err());
//! # Ok::<(), lightflow_remedy::simulation::MixError>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::catalogue::{self, Downstream};
use crate::engine::{
    Attempt, AttemptKey, BreakerConfig, BudgetConfig, CredentialFix, DEFAULT_HOOK_TIMEOUT, HookError, Hooks, Job,
    Notice, Outcome, Reconciled, Remediator, RetryBudget, SubmitError, Verdict, VerdictKind,
};
use crate::failure::{ClassifyError, Failure, FailureKey, FailureKind};
use crate::millis::millis;
use crate::policy::CredentialScope;
use crate::reload::LivePolicies;

/// The most assets one simulation takes (each costs some memory while the run lasts).
pub const MAX_ASSETS: usize = 10_000_000;

/// The longest simulated duration a setting may have (arrivals, outage, hook timeout).
pub const MAX_SETTING: Duration = Duration::from_secs(30 * 24 * 3600);

/// How many of the most frequent reasons for failing a [`Summary`] lists.
pub const TOP_REASONS: usize = 10;

// ---------------------------------------------------------------------------------------------------------------
// Configuration

/// The failures the simulated LightFlow fails assets with: failure keys with relative weights.
///
/// Written and parsed as `key=weight,...`, e.g. `2001=30,3001=10,http:503=10,timeout=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    entries: Vec<(FailureKey, u32)>,
}

impl Mix {
    /// A mix of these keys and weights (checked by [`SimConfig::validate`]).
    pub fn new(entries: impl IntoIterator<Item = (FailureKey, u32)>) -> Self {
        Mix { entries: entries.into_iter().collect() }
    }

    /// The keys and their weights, in order.
    pub fn entries(&self) -> &[(FailureKey, u32)] {
        &self.entries
    }
}

impl Default for Mix {
    /// A fleet's usual trouble, weights in percent: transient storage errors (2001, 2002, 2500, 2503),
    /// throttling (2429, HTTP 429), credentials (2007, 2401), Brightcove (3001, 3003, 3005), permanent errors
    /// (2404, 2003, 3002, 2006), DRM key servers (2051, 2061, 2053), uploads (4001), general and encoder
    /// errors (1001, 7001), and LightFlow API errors (HTTP 503, 500).
    fn default() -> Self {
        let asset = |code, w| (FailureKey::asset(code), w);
        let api = |status, w| (FailureKey::api(status), w);
        Mix::new([
            asset(2001, 14),
            asset(2002, 5),
            asset(2500, 2),
            asset(2503, 6),
            asset(2429, 3),
            api(429, 4),
            asset(2007, 5),
            asset(2401, 2),
            asset(3001, 8),
            asset(3003, 3),
            asset(3005, 8),
            asset(2404, 4),
            asset(2003, 3),
            asset(3002, 2),
            asset(2006, 2),
            asset(2051, 3),
            asset(2061, 2),
            asset(2053, 1),
            asset(4001, 4),
            asset(1001, 3),
            asset(7001, 2),
            api(503, 8),
            api(500, 2),
        ])
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, weight)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={weight}")?;
        }
        Ok(())
    }
}

/// What was wrong with a written [`Mix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// Nothing at all, or an empty entry between commas.
    #[error("an empty entry in the failure mix `{mix}` (expected e.g. 2001=30,3001=10,http:503=10)")]
    EmptyEntry {
        /// The whole mix.
        mix: String,
    },
    /// An entry without `=weight`.
    #[error("`{entry}` in the failure mix has no weight (expected key=weight, e.g. 2001=30)")]
    MissingWeight {
        /// The entry.
        entry: String,
    },
    /// A weight that is not a whole number.
    #[error("`{entry}` in the failure mix: the weight must be a whole number (0..=4294967295)")]
    BadWeight {
        /// The entry.
        entry: String,
    },
    /// A key that is not a failure key.
    #[error("`{entry}` in the failure mix: {error} (expected e.g. 2404, http:503 or timeout)")]
    BadKey {
        /// The entry.
        entry: String,
        /// Why the key does not parse.
        error: ClassifyError,
    },
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut entries = Vec::new();
        for entry in s.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(MixError::EmptyEntry { mix: s.to_owned() });
            }
            let (key, weight) =
                entry.split_once('=').ok_or_else(|| MixError::MissingWeight { entry: entry.to_owned() })?;
            let key: FailureKey =
                key.trim().parse().map_err(|error| MixError::BadKey { entry: entry.to_owned(), error })?;
            let weight = weight.trim().parse().map_err(|_| MixError::BadWeight { entry: entry.to_owned() })?;
            entries.push((key, weight));
        }
        Ok(Mix { entries })
    }
}

/// A stretch of simulated time during which attempts on one downstream mostly fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// What failing attempts fail with; its downstream is the one that is down (e.g. `3001` for Brightcove).
    pub failure: FailureKey,
    /// When it starts, from the start of the run.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
    /// The probability that an attempt on that downstream fails during the outage.
    pub fail: f64,
}

/// How a simulation runs. Build one with struct update syntax: `SimConfig { assets: 500, ..SimConfig::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Failed assets to remediate. Default 1000.
    pub assets: usize,
    /// Seed of every draw (arrivals, answers, latencies) and of the jobs' jitter. Default 0.
    pub seed: u64,
    /// What assets fail with, first and when an attempt fails anew. Default [`Mix::default`].
    pub mix: Mix,
    /// The probability that a resubmission or re-publication succeeds. Default 0.6.
    pub recover: f64,
    /// The probability that a failing attempt fails with the same failure as before; otherwise its failure is
    /// drawn from the mix. Default 0.5.
    pub repeat: f64,
    /// The probability that `fix_credentials` repairs them. Storage credentials (2007, 2401, 2403) and the API
    /// token (HTTP 401) stay broken until then: resubmissions fail with the same code. Default 0.75.
    pub fix_credentials: f64,
    /// The probability that `reconcile` finds that an earlier attempt went through after all. Default 0.25. An
    /// attempt whose call outlived the hook timeout but succeeded is always found.
    pub reconcile_done: f64,
    /// The probability that a hook call takes longer than the hook timeout. Default 0.002.
    pub hang: f64,
    /// The probability that an asset's owner deletes it while it is being remediated (within 10 minutes of its
    /// arrival), which cancels its job. Default 0.002.
    pub cancel: f64,
    /// Failed assets arrive at random (uniformly) over this much simulated time; zero: all at once. Default
    /// 10 minutes.
    pub arrivals_over: Duration,
    /// A fleet retry budget, e.g. `RetryBudget::aws_standard().config()`; a fresh one for each run. Default none.
    pub budget: Option<BudgetConfig>,
    /// First-try successes per failed asset: the assets LightFlow finishes without trouble meanwhile, which the
    /// host reports to the retry budget at a steady rate for the whole run (the AWS quota refills only from
    /// them). Default 9 (90% of assets succeed on the first try).
    pub first_try_successes: f64,
    /// The circuit breakers' settings; `None`: no breakers. Default [`BreakerConfig::default`].
    pub breaker: Option<BreakerConfig>,
    /// An outage of one downstream. Default none.
    pub outage: Option<Outage>,
    /// The engine's hook timeout. Default [`DEFAULT_HOOK_TIMEOUT`].
    pub hook_timeout: Duration,
    /// How many hook calls may be in flight at once (the engine's default, 64).
    pub max_concurrent_hook_calls: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            assets: 1000,
            seed: 0,
            mix: Mix::default(),
            recover: 0.6,
            repeat: 0.5,
            fix_credentials: 0.75,
            reconcile_done: 0.25,
            hang: 0.002,
            cancel: 0.002,
            arrivals_over: Duration::from_secs(600),
            budget: None,
            first_try_successes: 9.0,
            breaker: Some(BreakerConfig::default()),
            outage: None,
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            max_concurrent_hook_calls: 64,
        }
    }
}

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// `assets` is zero.
    #[error("a simulation needs at least one asset")]
    NoAssets,
    /// `assets` is above [`MAX_ASSETS`].
    #[error("{0} assets are too many for one simulation (at most {MAX_ASSETS})")]
    TooManyAssets(usize),
    /// The mix has no entry.
    #[error("the failure mix is empty: name at least one failure, e.g. 2001=1")]
    EmptyMix,
    /// Every weight of the mix is zero.
    #[error("every weight of the failure mix is zero: at least one must be positive")]
    ZeroMix,
    /// The mix names a failure twice.
    #[error("the failure mix names `{0}` twice")]
    DuplicateInMix(FailureKey),
    /// The mix names a failure that cannot be built (a key made by hand with an invalid code).
    #[error("`{key}` in the failure mix: {error}")]
    InvalidFailure {
        /// The key.
        key: FailureKey,
        /// What is wrong with it.
        error: ClassifyError,
    },
    /// A probability outside 0..=1 (or not a number).
    #[error("`{name}` must be a probability between 0 and 1, not {value}")]
    Probability {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A number that must be finite and not negative.
    #[error("`{name}` must be a finite number of at least 0, not {value}")]
    Negative {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A duration longer than [`MAX_SETTING`], or a zero hook timeout.
    #[error("`{name}` = {value:?} is out of range (more than zero where needed, at most 30 days)")]
    Duration {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: Duration,
    },
    /// `max_concurrent_hook_calls` is zero.
    #[error("`max_concurrent_hook_calls` must be at least 1")]
    NoHookSlots,
    /// [`run`] was called on a thread that runs a tokio runtime; it starts its own.
    #[error("simulation::run starts its own runtime: call it outside async code (e.g. in spawn_blocking)")]
    InsideRuntime,
    /// The runtime could not be built.
    #[error("the simulation's runtime could not start: {0}")]
    Runtime(String),
    /// The engine refused a job.
    #[error("the engine refused a job: {0}")]
    Submit(#[from] SubmitError),
}

fn probability(name: &'static str, value: f64) -> Result<(), SimError> {
    if (0.0..=1.0).contains(&value) { Ok(()) } else { Err(SimError::Probability { name, value }) }
}

fn not_too_long(name: &'static str, value: Duration) -> Result<(), SimError> {
    if value <= MAX_SETTING { Ok(()) } else { Err(SimError::Duration { name, value }) }
}

impl SimConfig {
    /// Checks every setting; [`run`] does too.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.assets == 0 {
            return Err(SimError::NoAssets);
        }
        if self.assets > MAX_ASSETS {
            return Err(SimError::TooManyAssets(self.assets));
        }
        if self.mix.entries.is_empty() {
            return Err(SimError::EmptyMix);
        }
        for (i, &(key, _)) in self.mix.entries.iter().enumerate() {
            if self.mix.entries[..i].iter().any(|(k, _)| *k == key) {
                return Err(SimError::DuplicateInMix(key));
            }
            Failure::from_key(key, "").map_err(|error| SimError::InvalidFailure { key, error })?;
        }
        if self.mix.entries.iter().all(|&(_, w)| w == 0) {
            return Err(SimError::ZeroMix);
        }
        probability("recover", self.recover)?;
        probability("repeat", self.repeat)?;
        probability("fix_credentials", self.fix_credentials)?;
        probability("reconcile_done", self.reconcile_done)?;
        probability("hang", self.hang)?;
        probability("cancel", self.cancel)?;
        if !(self.first_try_successes.is_finite() && self.first_try_successes >= 0.0) {
            return Err(SimError::Negative { name: "first_try_successes", value: self.first_try_successes });
        }
        if let Some(BudgetConfig::Grpc { token_ratio, .. }) = self.budget
            && !(token_ratio.is_finite() && token_ratio >= 0.0)
        {
            return Err(SimError::Negative { name: "budget.token_ratio", value: token_ratio });
        }
        not_too_long("arrivals_over", self.arrivals_over)?;
        if self.hook_timeout.is_zero() {
            return Err(SimError::Duration { name: "hook_timeout", value: self.hook_timeout });
        }
        not_too_long("hook_timeout", self.hook_timeout)?;
        if let Some(b) = &self.breaker {
            not_too_long("breaker.open_for", b.open_for)?;
            not_too_long("breaker.max_wait", b.max_wait)?;
        }
        if let Some(o) = &self.outage {
            Failure::from_key(o.failure, "").map_err(|error| SimError::InvalidFailure { key: o.failure, error })?;
            not_too_long("outage.start", o.start)?;
            not_too_long("outage.length", o.length)?;
            probability("outage.fail", o.fail)?;
        }
        if self.max_concurrent_hook_calls == 0 {
            return Err(SimError::NoHookSlots);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Summary

/// How many failed jobs gave one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// The verdict's kind, e.g. `policy` or `exhausted`.
    pub verdict: String,
    /// The verdict's reason (a budget refusal's token counts left out).
    pub reason: String,
    /// How many jobs.
    pub count: u64,
}

/// Resubmissions and re-publications per asset, over every asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptStats {
    /// All of them.
    pub total: u64,
    /// Per asset.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: u32,
    /// 99th percentile (nearest rank).
    pub p99: u32,
    /// The most.
    pub max: u32,
}

/// Simulated time from an asset's first failure to its recovery, in milliseconds, over recovered assets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStats {
    /// Median (nearest rank).
    pub p50_ms: u64,
    /// 99th percentile (nearest rank).
    pub p99_ms: u64,
    /// The longest.
    pub max_ms: u64,
}

/// What a simulation came to. Only simulated time is in it, so two runs with the same seed and configuration
/// compare equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Failed assets submitted.
    pub assets: u64,
    /// The seed.
    pub seed: u64,
    /// Jobs that ended recovered.
    pub recovered: u64,
    /// Of those, the ones `reconcile` found done.
    pub recovered_by_reconcile: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Failed jobs by verdict kind (`policy`, `exhausted`, `budget_exhausted`, `circuit_open`, ...).
    pub failed_by_verdict: BTreeMap<String, u64>,
    /// The most frequent reasons of failed jobs (at most [`TOP_REASONS`]), most frequent first.
    pub top_reasons: Vec<ReasonCount>,
    /// Jobs cancelled by their asset's owner. (The simulation never shuts the engine down, so no job is
    /// suspended; one would count here.)
    pub cancelled: u64,
    /// Attempts per asset.
    pub attempts: AttemptStats,
    /// Time to recovery.
    pub recovery: RecoveryStats,
    /// Decisions by action (`retry`, `republish`, `fail`, ...).
    pub decisions: BTreeMap<String, u64>,
    /// Hook calls by hook (`resubmit`, `reconcile`, ...).
    pub hook_calls: BTreeMap<String, u64>,
    /// Hook calls that outlived the hook timeout.
    pub hook_timeouts: u64,
    /// Attempts the retry budget refused.
    pub budget_refusals: u64,
    /// Tokens left in the retry budget at the end, if there is one.
    pub budget_left: Option<f64>,
    /// Times a circuit breaker opened, by downstream (reopenings after a failed probe included).
    pub breaker_openings: BTreeMap<String, u64>,
    /// Simulated time from the start to the last job's end, in milliseconds.
    pub simulated_span_ms: u64,
}

impl Summary {
    /// Jobs that ended: recovered, failed and cancelled (every asset, once the run is over).
    pub fn accounted(&self) -> u64 {
        self.recovered + self.failed + self.cancelled
    }
}

/// Outcomes as they come.
#[derive(Default)]
struct Tally {
    recovered: u64,
    reconciled: u64,
    failed: BTreeMap<&'static str, u64>,
    reasons: HashMap<(&'static str, String), u64>,
    cancelled: u64,
    attempts: Vec<u32>,
    recovery: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        let attempts = match outcome {
            Outcome::Recovered { attempts, elapsed, reconciled } => {
                self.recovered += 1;
                self.reconciled += u64::from(reconciled);
                self.recovery.push(elapsed);
                attempts
            }
            Outcome::Failed { verdict } => {
                let kind = verdict.kind.as_str();
                *self.failed.entry(kind).or_default() += 1;
                let reason = match verdict.kind {
                    // The budget's reason carries its token counts, which differ from one refusal to the next.
                    VerdictKind::BudgetExhausted => "the fleet's retry budget refused another attempt".to_owned(),
                    _ => verdict.reason,
                };
                *self.reasons.entry((kind, reason)).or_default() += 1;
                verdict.attempts
            }
            // The simulation never shuts the engine down, so no job is suspended; were one, it would not go on.
            Outcome::Cancelled { attempts } => {
                self.cancelled += 1;
                attempts
            }
            Outcome::Suspended { state } => {
                self.cancelled += 1;
                state.history.attempts()
            }
        };
        self.attempts.push(attempts);
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------------------------
// The simulated LightFlow

/// Draws and settings the hooks need, fixed for a run.
struct Model {
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
    fn new(config: &SimConfig) -> Result<Self, SimError> {
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
    fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> usize {
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
struct SimLightFlow {
    model: Model,
    epoch: Instant,
    assets: Mutex<Vec<AssetSim>>,
}

/// SplitMix64's finalizer over a seed and a stream number: unrelated streams from neighbouring numbers.
fn mix64(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(stream).wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stream numbers apart from the assets' (0..assets).
const ARRIVALS_STREAM: u64 = u64::MAX;
const JITTER_SALT: u64 = 0x4a49_5454_4552; // "JITTER"

const ID_PREFIX: &str = "sim-";

fn asset_id(index: usize) -> String {
    format!("{ID_PREFIX}{index}")
}

/// What a call costs: its latency, and whether it outlives the hook timeout.
struct Timing {
    latency: Duration,
    hangs: bool,
}

impl SimLightFlow {
    fn new(model: Model, seed: u64, assets: usize) -> Self {
        let assets = (0..assets as u64)
            .map(|i| AssetSim {
                rng: Xoshiro256PlusPlus::seed_from_u64(mix64(seed, i)),
                current: 0,
                credentials_broken: false,
                committed: false,
            })
            .collect();
        SimLightFlow { model, epoch: Instant::now(), assets: Mutex::new(assets) }
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
    fn arrive(&self, index: usize) -> (Failure, Option<Duration>) {
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
        _key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let (timing, answer) = self.attempt(job, false)?;
        tokio::time::sleep(timing.latency).await;
        Ok(answer)
    }

    async fn republish(
        &self,
        job: &Job,
        _target: &str,
        _new_id: bool,
        _key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let (timing, answer) = self.attempt(job, true)?;
        tokio::time::sleep(timing.latency).await;
        Ok(answer)
    }

    async fn fix_credentials(&self, job: &Job, _scope: CredentialScope) -> Result<CredentialFix, HookError> {
        let (timing, fixed) = self.with_asset(job, |m, a| {
            let timing = timing(m, &mut a.rng, 500..3000);
            let fixed = a.rng.random_bool(m.fix_credentials);
            a.credentials_broken &= !fixed;
            (timing, fixed)
        })?;
        tokio::time::sleep(timing.latency).await;
        Ok(if fixed { CredentialFix::Fixed } else { CredentialFix::CannotFix })
    }

    async fn reconcile(&self, job: &Job) -> Result<Reconciled, HookError> {
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

    async fn failed(&self, _job: &Job, _verdict: &Verdict) -> Result<(), HookError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The run

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
        builder = builder.retry_budget(RetryBudget::new(budget));
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
                    pending.push(remediator.submit(job, failure)?.into_future());
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
    Ok(summarize(config, tally, &remediator, last_end))
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

fn summarize(config: &SimConfig, mut tally: Tally, remediator: &Remediator<SimLightFlow>, span: Duration) -> Summary {
    let counters = remediator.counters();
    let mut decisions = BTreeMap::new();
    for (key, n) in &counters.decisions {
        // Keyed "<failure> <action>".
        let action = key.rsplit(' ').next().unwrap_or(key);
        *decisions.entry(action.to_owned()).or_default() += n;
    }
    let mut breaker_openings = BTreeMap::new();
    for (key, n) in &counters.breaker_transitions {
        // Keyed "<downstream> <state>".
        if let Some(downstream) = key.strip_suffix(" open") {
            *breaker_openings.entry(downstream.to_owned()).or_default() += n;
        }
    }
    let hook_calls = counters.hook_calls.iter().map(|(h, n)| (h.as_str().to_owned(), *n)).collect();

    let mut reasons: Vec<ReasonCount> = tally
        .reasons
        .into_iter()
        .map(|((verdict, reason), count)| ReasonCount { verdict: verdict.to_owned(), reason, count })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.verdict, &a.reason).cmp(&(&b.verdict, &b.reason))));
    reasons.truncate(TOP_REASONS);

    tally.attempts.sort_unstable();
    tally.recovery.sort_unstable();
    let total_attempts: u64 = tally.attempts.iter().map(|&a| u64::from(a)).sum();
    let ended = tally.attempts.len().max(1) as f64;
    Summary {
        assets: config.assets as u64,
        seed: config.seed,
        recovered: tally.recovered,
        recovered_by_reconcile: tally.reconciled,
        failed: tally.failed.values().sum(),
        failed_by_verdict: tally.failed.into_iter().map(|(k, n)| (k.to_owned(), n)).collect(),
        top_reasons: reasons,
        cancelled: tally.cancelled,
        attempts: AttemptStats {
            total: total_attempts,
            mean: total_attempts as f64 / ended,
            p50: percentile(&tally.attempts, 50.0),
            p99: percentile(&tally.attempts, 99.0),
            max: tally.attempts.last().copied().unwrap_or(0),
        },
        recovery: RecoveryStats {
            p50_ms: millis(percentile(&tally.recovery, 50.0)),
            p99_ms: millis(percentile(&tally.recovery, 99.0)),
            max_ms: millis(tally.recovery.last().copied().unwrap_or_default()),
        },
        decisions,
        hook_calls,
        hook_timeouts: counters.hook_timeouts,
        budget_refusals: counters.budget_refusals,
        budget_left: remediator.budget().map(RetryBudget::available),
        breaker_openings,
        simulated_span_ms: millis(span),
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
