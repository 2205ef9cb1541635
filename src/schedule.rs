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
//! use lightflow_remedy::policy::{Backoff, Jitter};
//! use lightflow_remedy::schedule::{DelaySource, Schedule};
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

use std::time::Duration;

use backoff::backoff::Backoff as _;
use serde::{Deserialize, Serialize};

use crate::policy::{Backoff, Jitter};

/// The longest base sequence kept; later attempts reuse its last value (a sequence that has not reached
/// `max_delay` by then grows by less than 1.2 % a step).
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

/// A stage's backoff options with their base sequence computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    options: Backoff,
    base: Box<[Duration]>,
}

impl Schedule {
    /// Computes the base sequence of `options` (which should have passed [`Backoff::validate`]).
    pub fn new(options: Backoff) -> Self {
        let mut sequence = backoff::ExponentialBackoff {
            current_interval: options.initial,
            initial_interval: options.initial,
            randomization_factor: 0.0,
            multiplier: options.multiplier,
            max_interval: options.max_delay,
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        let mut base: Vec<Duration> = Vec::new();
        while base.len() < MAX_PRECOMPUTED {
            // With randomization off the crate still adds a random fraction of a nanosecond; rounding to
            // whole microseconds removes it.
            let Some(next) = sequence.next_backoff() else { break };
            let next = round_to_micros(next).min(options.max_delay);
            let saturated = base.last() == Some(&next);
            base.push(next);
            if saturated || next == options.max_delay {
                break;
            }
        }
        if base.is_empty() {
            base.push(options.initial.min(options.max_delay));
        }
        Schedule { options, base: base.into_boxed_slice() }
    }

    /// The options this schedule was built from.
    pub fn options(&self) -> &Backoff {
        &self.options
    }

    /// The base delay (before jitter) of the `attempt`-th attempt, counting from 1. Attempts past the 64th reuse
    /// the 64th delay.
    #[inline]
    pub fn base(&self, attempt: u32) -> Duration {
        let i = (attempt.max(1) as usize - 1).min(self.base.len() - 1);
        self.base[i]
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
        let o = &self.options;
        if let Some(hint) = hint.filter(|_| o.respect_retry_after) {
            return (round_to_millis(hint.clamp(o.min_delay, o.max_hint)), DelaySource::RetryAfter);
        }
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        let base = self.base(attempt);
        let jittered = match o.jitter {
            Jitter::None => base,
            Jitter::Full => scale(base, unit),
            Jitter::Equal => base / 2 + scale(base / 2, unit),
            Jitter::Decorrelated => {
                let low = o.initial;
                let high = previous.unwrap_or(o.initial).saturating_mul(3).min(o.max_delay).max(low);
                low + scale(high - low, unit)
            }
            Jitter::Proportional(p) => scale(base, 1.0 - p + 2.0 * p * unit),
        };
        (round_to_millis(jittered.clamp(o.min_delay, o.max_delay)), DelaySource::Backoff)
    }
}

/// `d × factor` for a finite, non-negative factor; saturates instead of panicking.
fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor.max(0.0)).unwrap_or(Duration::MAX)
}

// Rounding works on seconds and nanoseconds separately: 128-bit division would cost more than the rest of a
// decision.
fn round_to_micros(d: Duration) -> Duration {
    let micros = u64::from(d.subsec_nanos() + 500) / 1_000;
    Duration::from_secs(d.as_secs()).saturating_add(Duration::from_micros(micros))
}

fn round_to_millis(d: Duration) -> Duration {
    let millis = u64::from(d.subsec_nanos() + 500_000) / 1_000_000;
    Duration::from_secs(d.as_secs()).saturating_add(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Attempts;

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
        assert_eq!(s.base(1000), secs(100));
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
        // Capped at max_delay, even with an absurd previous delay.
        assert_eq!(s.delay(2, Some(Duration::MAX), None, 0.999).0, Duration::from_millis(99_910));
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
