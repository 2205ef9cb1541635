//! The simulation's configuration: the fleet, the [`Mix`] of failures, an [`Outage`], and their checks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::classify::{ClassifyError, Failure, FailureKey};
use crate::engine::{BreakerConfig, BudgetConfig, BudgetError, DEFAULT_HOOK_TIMEOUT, RetryBudget, SubmitError};

/// The most assets one simulation takes (each costs some memory while the run lasts).
pub const MAX_ASSETS: usize = 10_000_000;

/// The most replicas one simulation on a store runs.
pub const MAX_REPLICAS: usize = 64;

/// The longest simulated duration a setting may have (arrivals, outage, hook timeout).
pub const MAX_SETTING: Duration = Duration::from_secs(30 * 24 * 3600);

/// How many of the most frequent reasons for failing a [`Summary`](super::Summary) lists.
pub const TOP_REASONS: usize = 10;

/// The failures the simulated LightFlow fails assets with: failure keys with relative weights.
///
/// Written and parsed as `key=weight,...`, e.g. `2001=30,3001=10,http:503=10,timeout=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    pub(super) entries: Vec<(FailureKey, u32)>,
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
    /// With a store ([`run_on_store`](super::run_on_store)): how many replicas of the engine share it.
    /// Default 1.
    pub replicas: usize,
    /// With a store: a replica is killed (dropped, no shutdown, its leases left behind) about this often, at
    /// moments drawn from the seed, and a new one started a few seconds later. Default never.
    pub crash_every: Option<Duration>,
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
            replicas: 1,
            crash_every: None,
        }
    }
}

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// `replicas` is 0 or more than [`MAX_REPLICAS`].
    #[error("replicas must be 1 to {MAX_REPLICAS}, found {0}")]
    Replicas(usize),
    /// The store failed.
    #[error("the store: {0}")]
    Store(String),
    /// The retry budget's configuration is refused by its discipline.
    #[error("budget: {0}")]
    Budget(BudgetError),
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
    /// [`run`](super::run) was called on a thread that runs a tokio runtime; it starts its own.
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
    /// Checks every setting; [`run`](super::run) does too.
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
        if let Some(budget) = self.budget {
            RetryBudget::new(budget).map_err(SimError::Budget)?;
        }
        not_too_long("arrivals_over", self.arrivals_over)?;
        if self.replicas == 0 || self.replicas > MAX_REPLICAS {
            return Err(SimError::Replicas(self.replicas));
        }
        if let Some(every) = self.crash_every {
            if every < Duration::from_secs(1) {
                return Err(SimError::Duration { name: "crash_every", value: every });
            }
            not_too_long("crash_every", every)?;
        }
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
