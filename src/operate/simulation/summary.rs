//! What a simulation reports: the [`Summary`], and the tally it is made from.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{SimConfig, TOP_REASONS};
use crate::engine::{CounterSnapshot, Outcome, VerdictKind};
use crate::millis::millis;

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
    /// With a store: what the replicas and their crashes came to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRun>,
}

/// A simulation on a store: nothing lost, nothing ended twice, no two calls of one job at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRun {
    /// The store (`sqlite:...`, `memory`).
    pub store: String,
    /// Replicas running at once.
    pub replicas: u64,
    /// Replicas killed.
    pub crashes: u64,
    /// Jobs submitted.
    pub submitted: u64,
    /// Jobs the store has finished exactly once.
    pub ended_once: u64,
    /// Jobs submitted that had not ended when the run stopped (must be 0).
    pub lost: u64,
    /// Dead letters the host got more than once for a job (a `failed` call cut off by a crash is delivered
    /// again).
    pub repeated_dead_letters: u64,
    /// Jobs taken over from a replica whose lease had expired.
    pub takeovers: u64,
    /// Side-effecting calls with a key used before: attempts repeated after a crash (reconciled first).
    pub repeated_calls: u64,
    /// Calls that started while another call of the same job was under way (must be 0).
    pub concurrent_calls: u64,
}

impl Summary {
    /// Jobs that ended: recovered, failed and cancelled (every asset, once the run is over).
    pub fn accounted(&self) -> u64 {
        self.recovered + self.failed + self.cancelled
    }
}

/// Outcomes as they come.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) recovered: u64,
    pub(super) reconciled: u64,
    pub(super) failed: BTreeMap<&'static str, u64>,
    pub(super) reasons: HashMap<(&'static str, String), u64>,
    pub(super) cancelled: u64,
    pub(super) attempts: Vec<u32>,
    pub(super) recovery: Vec<Duration>,
}

impl Tally {
    /// The summary of a run: its tally, the remediator's counters and what the budget had left at the end.
    pub(super) fn summarize(
        self,
        config: &SimConfig,
        counters: &CounterSnapshot,
        budget_left: Option<f64>,
        span: Duration,
    ) -> Summary {
        let mut tally = self;
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
        reasons
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.verdict, &a.reason).cmp(&(&b.verdict, &b.reason))));
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
            budget_left,
            breaker_openings,
            simulated_span_ms: millis(span),
            store: None,
        }
    }

    pub(super) fn add(&mut self, outcome: Outcome) {
        let attempts = match outcome {
            Outcome::Recovered { attempts, elapsed, reconciled, .. } => {
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
pub(super) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
