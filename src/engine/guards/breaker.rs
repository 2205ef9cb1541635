//! A circuit breaker per downstream: after a run of failures of one downstream (Brightcove, the input storage,
//! a DRM server, ...), jobs that need it wait instead of hammering it; after `open_for`, a few probes go through
//! (half-open) and their results close or reopen it.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::classify::catalogue::Downstream;

/// How the breakers behave.
///
/// ```
/// use lightflow_remedy::engine::BreakerConfig;
/// use std::time::Duration;
/// let config = BreakerConfig { failure_threshold: 20, ..BreakerConfig::default() };
/// assert_eq!(config.open_for, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failures of a downstream that open its breaker. Default 10.
    pub failure_threshold: u32,
    /// How long it stays open before probes may go through. Default 30 s.
    pub open_for: Duration,
    /// How many probes may be in flight while half-open. Default 1.
    pub half_open_probes: u32,
    /// How long one job waits for a breaker before it fails with `CircuitOpen`. Default 1 h.
    pub max_wait: Duration,
    /// The jobs that wait for a breaker come back spread evenly over this long after it may let them through,
    /// not all at once (a closing breaker would otherwise let a herd through). Zero: all at once. Default 5 s.
    #[serde(default = "default_release_over")]
    pub release_over: Duration,
}

fn default_release_over() -> Duration {
    Duration::from_secs(5)
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 10,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
            max_wait: Duration::from_secs(3600),
            release_over: default_release_over(),
        }
    }
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls wait.
    Open,
    /// A few probes go through; the rest wait for their result.
    HalfOpen,
}

crate::names::names!(BreakerState {
    Closed => "closed",
    Open => "open",
    HalfOpen => "half_open",
});

/// A change of state, for events and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) downstream: Downstream,
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
}

/// What a job may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Go; `probe` (the half-open generation) when this call is a probe whose result decides the breaker.
    Pass { probe: Option<u64> },
    /// Wait until then (the breaker is open).
    Until(Instant),
    /// Wait for the probes in flight.
    ForProbes,
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    failures: u32,
    open_until: Instant,
    /// When it last opened or closed here, so that a change another replica made later is taken in and an
    /// older one is not. `None` before its first change.
    changed_at: Option<Instant>,
    probes: u32,
    /// Counts half-open periods, so that a probe of an earlier one does not decide the current one.
    generation: u64,
    /// Jobs sent to rest for it since it last opened: each one's place in the release.
    resting: u32,
}

/// One breaker per downstream.
#[derive(Debug)]
pub(crate) struct Breakers {
    config: BreakerConfig,
    breakers: Vec<Mutex<Breaker>>,
    changed: Vec<Notify>,
}

fn index(d: Downstream) -> usize {
    Downstream::ALL.iter().position(|x| *x == d).unwrap_or(0)
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let now = Instant::now();
        Breakers {
            config,
            breakers: Downstream::ALL
                .iter()
                .map(|_| {
                    Mutex::new(Breaker {
                        state: BreakerState::Closed,
                        failures: 0,
                        open_until: now,
                        changed_at: None,
                        probes: 0,
                        resting: 0,
                        generation: 0,
                    })
                })
                .collect(),
            changed: Downstream::ALL.iter().map(|_| Notify::new()).collect(),
        }
    }

    pub(crate) fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn lock(&self, d: Downstream) -> std::sync::MutexGuard<'_, Breaker> {
        self.breakers[index(d)].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `d`'s breaker.
    pub(crate) fn state(&self, d: Downstream) -> BreakerState {
        self.lock(d).state
    }

    /// Resolves when `d`'s breaker may have changed.
    pub(crate) fn changed(&self, d: Downstream) -> &Notify {
        &self.changed[index(d)]
    }

    /// May a job call `d` now?
    pub(crate) fn gate(&self, d: Downstream, now: Instant) -> (Gate, Option<Transition>) {
        let mut b = self.lock(d);
        let mut transition = None;
        if b.state == BreakerState::Open {
            if now < b.open_until {
                return (Gate::Until(b.open_until), None);
            }
            transition = Some(Transition { downstream: d, from: BreakerState::Open, to: BreakerState::HalfOpen });
            b.state = BreakerState::HalfOpen;
            b.probes = 0;
            b.generation += 1;
        }
        let gate = match b.state {
            BreakerState::HalfOpen if b.probes < self.config.half_open_probes.max(1) => {
                b.probes += 1;
                Gate::Pass { probe: Some(b.generation) }
            }
            BreakerState::HalfOpen => Gate::ForProbes,
            _ => Gate::Pass { probe: None },
        };
        (gate, transition)
    }

    /// Records how a call to `d` went.
    pub(crate) fn record(&self, d: Downstream, success: bool, probe: Option<u64>, now: Instant) -> Option<Transition> {
        let mut b = self.lock(d);
        let from = b.state;
        // Only a probe of the current half-open period decides it.
        let probe = probe == Some(b.generation) && b.state == BreakerState::HalfOpen;
        if probe {
            b.probes = b.probes.saturating_sub(1);
        }
        match (b.state, success) {
            (BreakerState::Closed, true) => b.failures = 0,
            (BreakerState::Closed, false) => {
                b.failures = b.failures.saturating_add(1);
                if b.failures >= self.config.failure_threshold.max(1) {
                    b.state = BreakerState::Open;
                    b.resting = 0;
                    b.changed_at = Some(now);
                    b.open_until = self.reopen(now);
                }
            }
            (BreakerState::HalfOpen, true) if probe => {
                b.state = BreakerState::Closed;
                b.changed_at = Some(now);
                b.failures = 0;
            }
            (BreakerState::HalfOpen, false) if probe => {
                b.state = BreakerState::Open;
                b.resting = 0;
                b.changed_at = Some(now);
                b.open_until = self.reopen(now);
            }
            // Results of calls that started before the breaker opened do not decide it.
            _ => {}
        }
        let to = b.state;
        drop(b);
        if from != to || probe {
            self.changed(d).notify_waiters();
        }
        (from != to).then_some(Transition { downstream: d, from, to })
    }

    fn reopen(&self, now: Instant) -> Instant {
        now.checked_add(self.config.open_for).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400))
    }

    /// When `d`'s breaker opens until, if it is open.
    pub(crate) fn open_until(&self, d: Downstream) -> Option<Instant> {
        let b = self.lock(d);
        (b.state == BreakerState::Open).then_some(b.open_until)
    }

    /// Another replica opened `d`'s breaker at `at`, until `until`: it is open here too, until then.
    pub(crate) fn adopt_open(&self, d: Downstream, at: Instant, until: Instant, now: Instant) -> Option<Transition> {
        let mut b = self.lock(d);
        let from = b.state;
        if until <= now || (from == BreakerState::Open && b.open_until >= until) || b.changed_at >= Some(at) {
            return None;
        }
        b.state = BreakerState::Open;
        b.resting = 0;
        b.changed_at = Some(at);
        b.open_until = until;
        drop(b);
        self.changed(d).notify_waiters();
        (from != BreakerState::Open).then_some(Transition { downstream: d, from, to: BreakerState::Open })
    }

    /// Another replica's probe closed `d`'s breaker at `at`: one that opened before then is closed here too.
    pub(crate) fn adopt_closed(&self, d: Downstream, at: Instant) -> Option<Transition> {
        let mut b = self.lock(d);
        let from = b.state;
        if from == BreakerState::Closed || b.changed_at >= Some(at) {
            return None;
        }
        b.state = BreakerState::Closed;
        b.changed_at = Some(at);
        b.failures = 0;
        drop(b);
        self.changed(d).notify_waiters();
        Some(Transition { downstream: d, from, to: BreakerState::Closed })
    }

    /// The place in `d`'s release of one more job that rests for its breaker, in `[0, 1)`: the first goes
    /// when the breaker lets jobs through (it probes), the others after it, spread by the fractional parts of
    /// multiples of the golden ratio, which fill the release evenly however many come.
    pub(crate) fn rest_place(&self, d: Downstream) -> f64 {
        let mut b = self.lock(d);
        let k = b.resting;
        b.resting = b.resting.saturating_add(1);
        (f64::from(k) * 0.618_033_988_749_894_9).fract()
    }

    /// Frees a probe slot whose call never finished (the job was cancelled or suspended).
    pub(crate) fn release_probe(&self, d: Downstream, generation: u64) {
        let mut b = self.lock(d);
        if b.generation == generation {
            b.probes = b.probes.saturating_sub(1);
        }
        drop(b);
        self.changed(d).notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Downstream = Downstream::Brightcove;

    #[tokio::test(start_paused = true)]
    async fn opens_half_opens_and_closes() {
        let b = Breakers::new(BreakerConfig { failure_threshold: 3, ..BreakerConfig::default() });
        let now = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.record(D, false, None, now), None);
        }
        let opened = b.record(D, false, None, now).unwrap();
        assert_eq!((opened.from, opened.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(b.gate(D, now).0, Gate::Until(now + Duration::from_secs(30)));
        assert_eq!(b.state(Downstream::Irdeto), BreakerState::Closed, "one breaker per downstream");

        let later = now + Duration::from_secs(30);
        let (gate, t) = b.gate(D, later);
        assert_eq!(gate, Gate::Pass { probe: Some(1) });
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        assert_eq!(b.gate(D, later).0, Gate::ForProbes, "one probe at a time");

        // The probe fails: open again for another 30 s.
        assert_eq!(b.record(D, false, Some(1), later).unwrap().to, BreakerState::Open);
        let again = later + Duration::from_secs(30);
        assert_eq!(b.gate(D, again).0, Gate::Pass { probe: Some(2) });
        // A late answer of the first period's probe does not decide the second.
        assert_eq!(b.record(D, true, Some(1), again), None);
        assert_eq!(b.state(D), BreakerState::HalfOpen);
        assert_eq!(b.record(D, true, Some(2), again).unwrap().to, BreakerState::Closed);
        assert_eq!(b.gate(D, again).0, Gate::Pass { probe: None });
    }

    #[tokio::test(start_paused = true)]
    async fn durations_too_long_to_add_do_not_panic() {
        let b =
            Breakers::new(BreakerConfig { failure_threshold: 1, open_for: Duration::MAX, ..BreakerConfig::default() });
        let now = Instant::now();
        assert_eq!(b.record(D, false, None, now).unwrap().to, BreakerState::Open);
        assert!(matches!(b.gate(D, now).0, Gate::Until(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_run() {
        let b = Breakers::new(BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() });
        let now = Instant::now();
        b.record(D, false, None, now);
        b.record(D, true, None, now);
        assert_eq!(b.record(D, false, None, now), None);
        assert_eq!(b.state(D), BreakerState::Closed);
    }
}
