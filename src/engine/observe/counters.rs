//! Counters since the remediator was built, and the [`CounterSnapshot`] a host reads. With
//! [`RemediatorBuilder::metrics`](super::RemediatorBuilder::metrics), each count is also given to the [`metrics`]
//! facade (names in [`super::metric_names`]), for a host that installs an exporter (Prometheus, StatsD, ...).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::counted::{bump, lock};
use super::decision_counts::DecisionCounts;
use super::events::HookName;
use super::metric_names as names;
use crate::classify::FailureKey;
use crate::classify::catalogue::Downstream;
use crate::decide::ActionKind;
use crate::engine::guards::breaker::BreakerState;
use crate::engine::outcome::OutcomeKind;

/// Counters since the remediator was built.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    decisions: DecisionCounts,
    budget_refusals: AtomicU64,
    // An ordered map: a few transitions at most, and none on the path of every decision.
    breaker_transitions: Mutex<BTreeMap<(Downstream, BreakerState), u64>>,
    // Counted on every job and hook call: atomics, indexed by the enums' order.
    outcomes: [AtomicU64; OutcomeKind::ALL.len()],
    hook_calls: [AtomicU64; HookName::ALL.len()],
    hook_timeouts: AtomicU64,
    hook_errors: AtomicU64,
    hook_panics: AtomicU64,
    takeovers: AtomicU64,
    /// Whether the counts go to the `metrics` facade too.
    metrics: bool,
}

/// The counts that are not zero, by key; `keys` in the order of `counts`.
fn nonzero<K: Ord, const N: usize>(keys: [K; N], counts: &[AtomicU64; N]) -> BTreeMap<K, u64> {
    keys.into_iter().zip(counts).map(|(k, c)| (k, c.load(Ordering::Relaxed))).filter(|(_, n)| *n > 0).collect()
}

impl Counters {
    /// Counters, given to the `metrics` facade too when `metrics`.
    pub(crate) fn new(metrics: bool) -> Self {
        Counters { metrics, ..Counters::default() }
    }

    pub(crate) fn decision(&self, key: FailureKey, action: ActionKind) {
        self.decisions.bump(key, action);
        if self.metrics {
            metrics::counter!(names::DECISIONS, "code" => key.to_string(), "action" => action.as_str()).increment(1);
        }
    }

    pub(crate) fn budget_refusal(&self) {
        self.budget_refusals.fetch_add(1, Ordering::Relaxed);
        if self.metrics {
            metrics::counter!(names::BUDGET_REFUSALS).increment(1);
        }
    }

    pub(crate) fn breaker(&self, downstream: Downstream, to: BreakerState) {
        bump(&self.breaker_transitions, (downstream, to));
        if self.metrics {
            metrics::counter!(names::BREAKER_TRANSITIONS, "downstream" => downstream.as_str(), "to" => to.as_str())
                .increment(1);
            let open = if to == BreakerState::Closed { 0.0 } else { 1.0 };
            metrics::gauge!(names::BREAKER_OPEN, "downstream" => downstream.as_str()).set(open);
        }
    }

    pub(crate) fn outcome(&self, kind: OutcomeKind) {
        self.outcomes[kind as usize].fetch_add(1, Ordering::Relaxed);
        if self.metrics {
            metrics::counter!(names::OUTCOMES, "outcome" => kind.as_str()).increment(1);
        }
    }

    pub(crate) fn hook_call(&self, hook: HookName) {
        self.hook_calls[hook as usize].fetch_add(1, Ordering::Relaxed);
        if self.metrics {
            metrics::counter!(names::HOOK_CALLS, "hook" => hook.as_str()).increment(1);
        }
    }

    /// A hook call's answer (`answer`: `ok`, `timeout`, `error`, `panic`, `interrupted`) after `seconds`.
    pub(crate) fn hook_answered(&self, hook: HookName, answer: &'static str, seconds: f64) {
        match answer {
            "timeout" => self.hook_timeouts.fetch_add(1, Ordering::Relaxed),
            "error" => self.hook_errors.fetch_add(1, Ordering::Relaxed),
            "panic" => self.hook_panics.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if self.metrics {
            metrics::histogram!(names::HOOK_SECONDS, "hook" => hook.as_str(), "answer" => answer).record(seconds);
        }
    }

    /// A report handed to the remediator, and its answer.
    pub(crate) fn report(&self, answer: &'static str) {
        if self.metrics {
            metrics::counter!(names::REPORTS, "answer" => answer).increment(1);
        }
    }

    pub(crate) fn takeover(&self) {
        self.takeovers.fetch_add(1, Ordering::Relaxed);
        if self.metrics {
            metrics::counter!(names::TAKEOVERS).increment(1);
        }
    }

    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            decisions: self.decisions.snapshot().into_iter().map(|((k, a), n)| (format!("{k} {a}"), n)).collect(),
            budget_refusals: self.budget_refusals.load(Ordering::Relaxed),
            breaker_transitions: lock(&self.breaker_transitions)
                .into_iter()
                .map(|((d, s), n)| (format!("{d} {s}"), n))
                .collect(),
            outcomes: nonzero(OutcomeKind::ALL, &self.outcomes),
            hook_calls: nonzero(HookName::ALL, &self.hook_calls),
            hook_timeouts: self.hook_timeouts.load(Ordering::Relaxed),
            hook_errors: self.hook_errors.load(Ordering::Relaxed),
            hook_panics: self.hook_panics.load(Ordering::Relaxed),
            takeovers: self.takeovers.load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Decisions by failure and action, keyed `"<code> <action>"`, e.g. `"2503 retry"`.
    pub decisions: BTreeMap<String, u64>,
    /// Attempts the retry budget refused.
    pub budget_refusals: u64,
    /// Breaker transitions by downstream and new state, keyed e.g. `"brightcove open"`.
    pub breaker_transitions: BTreeMap<String, u64>,
    /// Ended jobs by outcome.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// Hook calls by hook.
    pub hook_calls: BTreeMap<HookName, u64>,
    /// Hook calls that timed out.
    pub hook_timeouts: u64,
    /// Hook calls that returned an error.
    pub hook_errors: u64,
    /// Hook calls that panicked.
    pub hook_panics: u64,
    /// Jobs this replica took over from another whose lease had expired (durable stores).
    pub takeovers: u64,
}

impl CounterSnapshot {
    /// Adds `other`'s counts to these: the counters of several replicas, as one.
    pub fn merge(&mut self, other: &CounterSnapshot) {
        fn add<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
            for (k, n) in from {
                *into.entry(k.clone()).or_default() += n;
            }
        }
        add(&mut self.decisions, &other.decisions);
        add(&mut self.breaker_transitions, &other.breaker_transitions);
        add(&mut self.outcomes, &other.outcomes);
        add(&mut self.hook_calls, &other.hook_calls);
        self.budget_refusals += other.budget_refusals;
        self.hook_timeouts += other.hook_timeouts;
        self.hook_errors += other.hook_errors;
        self.hook_panics += other.hook_panics;
        self.takeovers += other.takeovers;
    }

    /// Decisions of `action` for `key`.
    pub fn decisions_of(&self, key: FailureKey, action: ActionKind) -> u64 {
        self.decisions.get(&format!("{key} {action}")).copied().unwrap_or(0)
    }
}
