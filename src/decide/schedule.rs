//! Delays: the exponential base sequence, jitter, and server hints.
//!
//! This is the one module that knows the `backoff` crate. That crate is flagged unmaintained
//! (RUSTSEC-2025-0012), so it is used for nothing but its exponential sequence, with its own randomization
//! switched off, computed once when a policy is built. Replacing it changes this file alone.
//!
//! Jitter is ours: it takes a uniform number in `[0, 1)` that the caller draws from a seeded RNG, so a seed
//! reproduces every delay. A server hint (Retry-After) replaces the computed delay but is clamped to
//! `[min_delay, max_hint]`; the caller still counts it against attempts and `max_elapsed`.
//!
//! ```
//! use lightflow_remedy::decide::{Backoff, Jitter};
//! use lightflow_remedy::decide::{DelaySource, Schedule};
//! use std::time::Duration;
//!
//! let schedule = Schedule::new(Backoff {
//!     initial: Duration::from_secs(60),
//!     multiplier: 4.0,
//!     max_delay: Duration::from_secs(30 * 60),
//!     ..Backoff::default()
//! });
//! let delays: Vec<_> = (1..=4).map(|n| schedule.delay(n, None, None, 0.5).0).collect();
//! assert_eq!(delays, [60, 240, 960, 1800].map(Duration::from_secs));
//!
//! let (hinted, source) = schedule.delay(1, None, Some(Duration::from_secs(3600)), 0.5);
//! assert_eq!((hinted, source), (Duration::from_secs(300), DelaySource::RetryAfter)); // clamped to max_hint
//! ```

use std::cell::RefCell;
use std::time::Duration;

use backoff::backoff::Backoff as _;
use serde::{Deserialize, Serialize};

use super::backoff::{Attempts, Backoff, Jitter};

/// The longest base sequence kept; later attempts continue it with the same multiplier.
const MAX_PRECOMPUTED: usize = 64;

/// Where a delay came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelaySource {
    /// The backoff sequence, with jitter.
    Backoff,
    /// The server's Retry-After, clamped.
    RetryAfter,
}

/// How many base delays are kept inline, next to the options, so that a decision reads them without
/// following another pointer.
const INLINE: usize = 8;

/// A stage's backoff options with their base sequence computed.
///
/// The arithmetic of a decision works on whole nanoseconds in `u64` (584 years), which is several times
/// cheaper than converting `Duration`s to and from floating point.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    options: Backoff,
    initial: u64,
    min: u64,
    max: u64,
    max_hint: u64,
    /// The first base delays; `len` of them in all, the rest in `tail`.
    head: [u64; INLINE],
    len: usize,
    tail: Box<[u64]>,
}

impl Schedule {
    /// Computes the base sequence of `options` (which should have passed [`Backoff::validate`]; bounds that
    /// contradict each other are reconciled rather than refused here).
    pub fn new(options: Backoff) -> Self {
        // `decide` functions build the same few schedules again and again; computing one costs more than
        // the rest of a decision, so each thread keeps the ones it has built.
        let key = CacheKey::of(&options);
        let hit = CACHE.with(|c| c.borrow().iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone()));
        if let Some(hit) = hit {
            return hit;
        }
        let schedule = Schedule::compute(options);
        CACHE.with(|c| {
            let mut cache = c.borrow_mut();
            if cache.len() >= CACHE_SIZE {
                cache.clear();
            }
            cache.push((key, schedule.clone()));
        });
        schedule
    }

    fn compute(options: Backoff) -> Self {
        let mut sequence = backoff::ExponentialBackoff {
            current_interval: options.initial,
            initial_interval: options.initial,
            randomization_factor: 0.0,
            multiplier: options.multiplier,
            max_interval: options.max_delay,
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        let max = nanos(options.max_delay);
        let mut base: Vec<u64> = Vec::new();
        while base.len() < MAX_PRECOMPUTED {
            // With randomization off the crate still adds a random fraction of a nanosecond; rounding to
            // whole microseconds removes it.
            let Some(next) = sequence.next_backoff() else { break };
            let next = round_to_micros(nanos(next)).min(max);
            let saturated = base.last() == Some(&next);
            base.push(next);
            if saturated || next == max {
                break;
            }
        }
        if base.is_empty() {
            base.push(nanos(options.initial).min(max));
        }
        let mut head = [0; INLINE];
        let inline = base.len().min(INLINE);
        head[..inline].copy_from_slice(&base[..inline]);
        let min = nanos(options.min_delay).min(max);
        Schedule {
            initial: nanos(options.initial),
            min,
            max,
            max_hint: nanos(options.max_hint).max(min),
            head,
            len: base.len(),
            tail: base[inline..].into(),
            options,
        }
    }

    /// The options this schedule was built from.
    pub fn options(&self) -> &Backoff {
        &self.options
    }

    /// The base delay (before jitter) of the `attempt`-th attempt, counting from 1.
    pub fn base(&self, attempt: u32) -> Duration {
        Duration::from_nanos(self.base_nanos(attempt))
    }

    #[inline]
    fn base_nanos(&self, attempt: u32) -> u64 {
        let i = attempt.max(1) as usize - 1;
        if i >= self.len {
            return self.beyond(i);
        }
        match self.head.get(i) {
            Some(n) => *n,
            None => self.tail.get(i - INLINE).copied().unwrap_or(self.max),
        }
    }

    /// Past the precomputed sequence: its last value times the multiplier for each further attempt, capped.
    #[cold]
    fn beyond(&self, i: usize) -> u64 {
        let last = self.len.saturating_sub(1);
        let known = self.head.get(last).copied().or_else(|| self.tail.get(last - INLINE).copied()).unwrap_or(self.max);
        if known >= self.max {
            return self.max;
        }
        let steps = i32::try_from(i - last).unwrap_or(i32::MAX);
        let value = known as f64 * self.options.multiplier.powi(steps);
        if value >= self.max as f64 { self.max } else { round_to_micros(value as u64) }
    }

    /// The delay before the `attempt`-th attempt (from 1), in whole milliseconds.
    ///
    /// `previous` is the stage's last delay (for decorrelated jitter), `hint` the server's Retry-After, and
    /// `unit` a uniform number in `[0, 1)` from the caller's seeded RNG.
    #[inline]
    pub fn delay(
        &self,
        attempt: u32,
        previous: Option<Duration>,
        hint: Option<Duration>,
        unit: f64,
    ) -> (Duration, DelaySource) {
        if let Some(hint) = hint.filter(|_| self.options.respect_retry_after) {
            return (millis(nanos(hint).clamp(self.min, self.max_hint)), DelaySource::RetryAfter);
        }
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        let base = self.base_nanos(attempt);
        let jittered = match self.options.jitter {
            Jitter::None => base,
            Jitter::Full => scale(base, unit),
            Jitter::Equal => base / 2 + scale(base / 2, unit),
            // min(max_delay, uniform(initial, 3 × previous)): the draw spans the whole interval and only then
            // is capped, so near the cap a share of the draws lands on it (capping the interval first would
            // spread them below it instead, and lower the mean).
            Jitter::Decorrelated => {
                let low = self.initial.min(self.max);
                let high = previous.map_or(low, nanos).saturating_mul(3).max(low);
                low.saturating_add(scale(high - low, unit)).min(self.max)
            }
            Jitter::Proportional(p) => scale(base, 1.0 - p + 2.0 * p * unit),
        };
        (millis(jittered.clamp(self.min, self.max)), DelaySource::Backoff)
    }
}

/// How many schedules each thread keeps; a policy set has a few dozen at most, so a scan is cheaper than
/// hashing.
const CACHE_SIZE: usize = 64;

thread_local! {
    static CACHE: RefCell<Vec<(CacheKey, Schedule)>> = const { RefCell::new(Vec::new()) };
}

/// Every option of a [`Backoff`], bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey([u64; 15]);

impl CacheKey {
    fn of(b: &Backoff) -> Self {
        let (jitter, proportion) = match b.jitter {
            Jitter::None => (0, 0),
            Jitter::Full => (1, 0),
            Jitter::Equal => (2, 0),
            Jitter::Decorrelated => (3, 0),
            Jitter::Proportional(p) => (4, p.to_bits()),
        };
        let attempts = match b.attempts {
            Attempts::Limited(n) => u64::from(n.get()),
            Attempts::Unlimited => 0,
        };
        CacheKey([
            attempts,
            nanos(b.initial),
            b.multiplier.to_bits(),
            nanos(b.max_delay),
            nanos(b.min_delay),
            b.max_elapsed.map_or(u64::MAX, nanos),
            jitter,
            proportion,
            u64::from(b.respect_retry_after),
            nanos(b.max_hint),
            u64::from(b.give_up_on_repeat),
            u64::from(b.reconcile_first),
            u64::from(b.max_elapsed.is_some()),
            b.await_result.map_or(u64::MAX, nanos),
            u64::from(b.await_result.is_some()),
        ])
    }
}

/// Whole nanoseconds, saturating at `u64::MAX`.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `n × factor`; `as` saturates, so no factor makes this panic.
#[inline]
fn scale(n: u64, factor: f64) -> u64 {
    (n as f64 * factor) as u64
}

fn round_to_micros(n: u64) -> u64 {
    (n / 1_000 + u64::from(n % 1_000 >= 500)).saturating_mul(1_000)
}

/// Nanoseconds to the nearest whole millisecond.
#[inline]
fn millis(n: u64) -> Duration {
    Duration::from_millis(n / 1_000_000 + u64::from(n % 1_000_000 >= 500_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn schedule(jitter: Jitter) -> Schedule {
        Schedule::new(Backoff {
            initial: secs(10),
            multiplier: 2.0,
            max_delay: secs(100),
            jitter,
            ..Backoff::default()
        })
    }

    #[test]
    fn base_sequence_grows_then_caps() {
        let s = Schedule::new(Backoff { attempts: Attempts::Unlimited, ..schedule(Jitter::None).options().clone() });
        let bases: Vec<_> = (1..=6).map(|n| s.base(n)).collect();
        assert_eq!(bases, [10, 20, 40, 80, 100, 100].map(secs));
        // A slow sequence runs past the inline part.
        let slow =
            Schedule::new(Backoff { initial: secs(1), multiplier: 1.5, max_delay: secs(3600), ..Backoff::default() });
        let bases: Vec<_> = (1..=12).map(|n| slow.base(n).as_millis()).collect();
        assert_eq!(bases, [1000, 1500, 2250, 3375, 5062, 7593, 11390, 17085, 25628, 38443, 57665, 86497]);
        assert_eq!(s.base(1000), secs(100));
        // A sequence still growing after the precomputed part goes on growing.
        let long = Schedule::new(Backoff {
            attempts: Attempts::Unlimited,
            initial: Duration::from_millis(1),
            multiplier: 1.2,
            max_delay: secs(3600),
            ..Backoff::default()
        });
        assert!(long.base(80) > long.base(70) && long.base(70) > long.base(64), "{:?}", long.base(80));
        assert_eq!(long.base(80).as_secs(), 1800, "1 ms × 1.2^79");
        assert_eq!(long.base(100), secs(3600));
        assert_eq!(s.base(0), secs(10));
    }

    #[test]
    fn jitter_stays_in_its_bounds() {
        // (jitter, attempt, unit, expected) with base 40 s at attempt 3.
        let table = [
            (Jitter::None, 0.9, secs(40)),
            (Jitter::Full, 0.0, secs(0)),
            (Jitter::Full, 0.5, secs(20)),
            (Jitter::Equal, 0.0, secs(20)),
            (Jitter::Equal, 0.5, secs(30)),
            (Jitter::Proportional(0.25), 0.0, secs(30)),
            (Jitter::Proportional(0.25), 0.5, secs(40)),
            (Jitter::Proportional(0.25), 1.0, secs(50)),
        ];
        for (jitter, unit, expected) in table {
            assert_eq!(schedule(jitter).delay(3, None, None, unit), (expected, DelaySource::Backoff), "{jitter}");
        }
    }

    #[test]
    fn decorrelated_jitter_follows_the_previous_delay() {
        let s = schedule(Jitter::Decorrelated);
        assert_eq!(s.delay(2, Some(secs(20)), None, 0.0).0, secs(10));
        assert_eq!(s.delay(2, Some(secs(20)), None, 0.5).0, secs(35));
        // Drawn from [10 s, 120 s], then capped: draws above 100 s land on the cap.
        assert_eq!(s.delay(2, Some(secs(40)), None, 0.5).0, secs(65));
        assert_eq!(s.delay(2, Some(secs(40)), None, 0.9).0, secs(100));
        // The first draw spans [initial, 3 × initial].
        assert_eq!(s.delay(1, None, None, 0.5).0, secs(20));
        // An absurd previous delay does not overflow.
        assert_eq!(s.delay(2, Some(Duration::MAX), None, 0.999).0, secs(100));
        assert_eq!(s.delay(2, Some(Duration::MAX), None, 0.0).0, secs(10));
    }

    #[test]
    fn hints_are_clamped_and_rounded() {
        let s = Schedule::new(Backoff {
            min_delay: secs(2),
            max_hint: secs(60),
            ..schedule(Jitter::Full).options().clone()
        });
        assert_eq!(s.delay(1, None, Some(Duration::ZERO), 0.3), (secs(2), DelaySource::RetryAfter));
        assert_eq!(s.delay(1, None, Some(Duration::MAX), 0.3), (secs(60), DelaySource::RetryAfter));
        assert_eq!(s.delay(1, None, Some(Duration::from_micros(5_400_600)), 0.3).0, Duration::from_millis(5_401));
        let ignoring = Schedule::new(Backoff { respect_retry_after: false, ..s.options().clone() });
        assert_eq!(ignoring.delay(1, None, Some(secs(50)), 0.5).1, DelaySource::Backoff);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let s = schedule(Jitter::Full);
        for unit in [f64::NAN, f64::INFINITY, -1.0, 2.0] {
            let (d, _) = s.delay(1, None, None, unit);
            assert!(d <= secs(100));
        }
        let zero = Schedule::new(Backoff { initial: Duration::ZERO, ..Backoff::default() });
        assert_eq!(zero.delay(5, None, None, 0.5).0, Duration::ZERO);
    }
}
