//! The backoff options of a waiting stage (`retry`, `resubmit`, `republish`): attempts, delays, jitter.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// How many times a stage acts before it hands over to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// At most this many.
    Limited(NonZeroU32),
    /// No count limit (a `max_elapsed` may still bound the stage).
    Unlimited,
}

impl Attempts {
    /// Exactly `n` attempts; `None` when `n` is 0.
    pub fn limited(n: u32) -> Option<Self> {
        NonZeroU32::new(n).map(Attempts::Limited)
    }

    /// Whether a stage that has acted `used` times may act again.
    #[inline]
    pub fn allows(self, used: u32) -> bool {
        match self {
            Attempts::Limited(n) => used < n.get(),
            Attempts::Unlimited => true,
        }
    }
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempts::Limited(n) => write!(f, "{n}"),
            Attempts::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// How the computed delay is spread, so that many assets do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The computed delay, exactly.
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay / 2, delay]`.
    Equal,
    /// `min(max_delay, uniform(initial, 3 × previous))`: drawn, then capped; the first from `[initial, 3 × initial]`.
    Decorrelated,
    /// Uniform in `[delay × (1 − p), delay × (1 + p)]`.
    Proportional(f64),
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jitter::None => f.write_str("none"),
            Jitter::Full => f.write_str("full"),
            Jitter::Equal => f.write_str("equal"),
            Jitter::Decorrelated => f.write_str("decorrelated"),
            Jitter::Proportional(p) => write!(f, "{p}"),
        }
    }
}

/// Backoff options of a waiting stage (`retry`, `resubmit`, `republish`).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// How many times the stage acts. Default 3 for `retry`, 1 for `resubmit` and `republish`.
    pub attempts: Attempts,
    /// The first delay. Default 1 s.
    pub initial: Duration,
    /// Each delay is the previous one times this. Default 2.
    pub multiplier: f64,
    /// No computed delay is longer. Default 5 min.
    pub max_delay: Duration,
    /// No delay, hint or jitter included, is shorter. Default 0.
    pub min_delay: Duration,
    /// The stage ends when its next delay would take it past this much time since it began. Default none.
    pub max_elapsed: Option<Duration>,
    /// How delays are spread. Default none.
    pub jitter: Jitter,
    /// Wait as the server's Retry-After says, clamped to `[min_delay, max_hint]`. Default true.
    pub respect_retry_after: bool,
    /// The longest server hint honoured. Default 5 min.
    pub max_hint: Duration,
    /// End the stage when the same code comes back right after this stage acted. Default false.
    pub give_up_on_repeat: bool,
    /// Before each attempt, ask the host whether the earlier one in fact succeeded (`reconcile`), so that a
    /// non-idempotent call such as `POST /assets` is not repeated after an ambiguous failure. Default false.
    pub reconcile_first: bool,
    /// How long an attempt of this stage that its hook answered `Submitted` may take to report its result
    /// before the engine asks the host's `check` hook (and again after each `check` that finds it still
    /// running). Default `None`: the remediator's own (`RemediatorBuilder::await_result`, 6 h unless set).
    /// At least [`Backoff::MIN_AWAIT_RESULT`] and at most [`Backoff::MAX_DURATION`]. Scripts write it
    /// `retry(#{ await_result: "2h" })`.
    ///
    /// ```
    /// use lightflow_remedy::Backoff;
    /// use std::time::Duration;
    ///
    /// let encode = Backoff { await_result: Some(Duration::from_secs(2 * 3600)), ..Backoff::default() };
    /// assert!(encode.validate().is_ok());
    /// let at_once = Backoff { await_result: Some(Duration::ZERO), ..Backoff::default() };
    /// assert!(at_once.validate().unwrap_err().contains("await_result (0s) must be at least 1ms"));
    /// ```
    pub await_result: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: Attempts::Limited(NonZeroU32::new(3).expect("3 is not zero")),
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(300),
            min_delay: Duration::ZERO,
            max_elapsed: None,
            jitter: Jitter::None,
            respect_retry_after: true,
            max_hint: Duration::from_secs(300),
            give_up_on_repeat: false,
            reconcile_first: false,
            await_result: None,
        }
    }
}

impl Backoff {
    /// The longest duration any option may give: 30 days. Longer is a mistake (a typo of unit or a runaway
    /// computation), not a policy.
    pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

    /// The shortest `await_result`: 1 ms, the resolution at which a durable store keeps due times (a shorter
    /// wait would be kept as none at all).
    ///
    /// ```
    /// use lightflow_remedy::Backoff;
    /// use std::time::Duration;
    ///
    /// let shortest = Backoff { await_result: Some(Backoff::MIN_AWAIT_RESULT), ..Backoff::default() };
    /// assert!(shortest.validate().is_ok());
    /// let shorter = Backoff { await_result: Some(Duration::from_micros(500)), ..Backoff::default() };
    /// assert!(shorter.validate().is_err());
    /// ```
    pub const MIN_AWAIT_RESULT: Duration = Duration::from_millis(1);

    /// The same options with `n` attempts (at least 1).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Attempts::Limited(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        self
    }

    /// Checks that the options make sense together; the message says what does not.
    ///
    /// ```
    /// use lightflow_remedy::Backoff;
    /// use std::time::Duration;
    ///
    /// assert!(Backoff::default().validate().is_ok());
    /// let absurd = Backoff { max_elapsed: Some(Duration::from_secs(86_400 * 365)), ..Backoff::default() };
    /// assert!(absurd.validate().unwrap_err().contains("max_elapsed"));
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let longest = self.initial.max(self.max_delay).max(self.min_delay).max(self.max_hint);
        let optional = self.max_elapsed.unwrap_or_default().max(self.await_result.unwrap_or_default());
        if longest.max(optional) > Backoff::MAX_DURATION {
            let durations = [
                ("initial", Some(self.initial)),
                ("max_delay", Some(self.max_delay)),
                ("min_delay", Some(self.min_delay)),
                ("max_elapsed", self.max_elapsed),
                ("max_hint", Some(self.max_hint)),
                ("await_result", self.await_result),
            ];
            for (name, d) in durations {
                if let Some(d) = d.filter(|d| *d > Backoff::MAX_DURATION) {
                    return Err(format!(
                        "{name} ({}) is longer than {}",
                        humantime::format_duration(d),
                        humantime::format_duration(Backoff::MAX_DURATION)
                    ));
                }
            }
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(format!("multiplier must be a finite number of at least 1.0, found {}", self.multiplier));
        }
        if self.initial > self.max_delay {
            return Err(format!(
                "initial ({}) is longer than max_delay ({})",
                humantime::format_duration(self.initial),
                humantime::format_duration(self.max_delay)
            ));
        }
        if self.min_delay > self.max_delay {
            return Err(format!(
                "min_delay ({}) is longer than max_delay ({})",
                humantime::format_duration(self.min_delay),
                humantime::format_duration(self.max_delay)
            ));
        }
        if self.min_delay > self.max_hint {
            return Err(format!(
                "min_delay ({}) is longer than max_hint ({})",
                humantime::format_duration(self.min_delay),
                humantime::format_duration(self.max_hint)
            ));
        }
        if let Jitter::Proportional(p) = self.jitter
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("a jitter proportion must lie within 0.0..=1.0, found {p}"));
        }
        if let Some(wait) = self.await_result
            && wait < Backoff::MIN_AWAIT_RESULT
        {
            return Err(format!(
                "await_result ({}) must be at least {}: a submitted attempt needs some time to report",
                humantime::format_duration(wait),
                humantime::format_duration(Backoff::MIN_AWAIT_RESULT)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let cases = [
            (Backoff { multiplier: 0.5, ..Backoff::default() }, "multiplier"),
            (Backoff { multiplier: f64::NAN, ..Backoff::default() }, "multiplier"),
            (Backoff { initial: Duration::from_secs(600), ..Backoff::default() }, "initial"),
            (Backoff { min_delay: Duration::from_secs(600), ..Backoff::default() }, "min_delay"),
            (Backoff { jitter: Jitter::Proportional(1.5), ..Backoff::default() }, "jitter"),
            (Backoff { max_delay: Duration::MAX, ..Backoff::default() }, "max_delay"),
            (
                Backoff { await_result: Some(Duration::ZERO), ..Backoff::default() },
                "await_result (0s) must be at least 1ms",
            ),
            (Backoff { await_result: Some(Duration::from_micros(999)), ..Backoff::default() }, "at least 1ms"),
            (Backoff { await_result: Some(Duration::from_secs(31 * 86_400)), ..Backoff::default() }, "await_result"),
        ];
        for (backoff, word) in cases {
            let err = backoff.validate().expect_err(word);
            assert!(err.contains(word), "{err}");
        }
        assert!(Backoff::default().validate().is_ok());
        for wait in [Backoff::MIN_AWAIT_RESULT, Duration::from_secs(7200), Backoff::MAX_DURATION] {
            assert!(Backoff { await_result: Some(wait), ..Backoff::default() }.validate().is_ok(), "{wait:?}");
        }
    }
}
