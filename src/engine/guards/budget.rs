//! The fleet's retry budget: a token bucket shared by every job, so that a wide outage does not turn into a
//! retry storm.
//!
//! Two well-known disciplines, counted as their sources count them:
//!
//! - **The AWS SDK standard retry quota** (the SDKs' `standard` retry mode; botocore
//!   `botocore/retries/standard.py` and `quota.py`, and the AWS SDKs and Tools reference guide, "Retry
//!   behavior"): 500 tokens; each retry takes its cost before it is made, and is refused when the bucket holds
//!   less; the retry that ends a job successfully gives its own cost back, and a request that succeeds on its
//!   first try (reported by the host) gives 1 back. The costs depend on the class of the failure
//!   ([`ErrorClass`]):
//!   - [`RetryBudget::aws_standard`], the updated standard mode (the SDKs' default from November 2026): a
//!     throttling failure costs 5, any other 14;
//!   - [`RetryBudget::aws_standard_pre_2026`], the earlier costs: a timeout costs 10, any other 5.
//! - **gRPC retry throttling** (gRFC A6, "Retry throttling", as grpc-go's `retryThrottler` implements it): a
//!   bucket of `max_tokens` (at most 1000); every failure that the policy would retry takes one token, the
//!   first failure of a job included, never below 0; every success gives `token_ratio` back (kept to three
//!   decimals, as A6 says), never above `max_tokens`; retries are refused while the bucket holds `max_tokens / 2`
//!   or less.
//!
//! Which LightFlow failures are throttling ([`ErrorClass::of`]): an API call answered 429, an input server that
//! answered 429 while LightFlow downloaded the source (2429), and one that answered 503 (2503, which the default
//! policies treat as throttled). A hook that did not answer in time is a timeout; everything else is transient.
//!
//! ```
//! use lightflow_remedy::engine::{ErrorClass, RetryBudget};
//!
//! let budget = RetryBudget::aws_standard();
//! let retry = budget.try_acquire(ErrorClass::Transient).unwrap();
//! assert_eq!(budget.available(), 486.0);
//! budget.succeeded(Some(retry));
//! assert_eq!(budget.available(), 500.0);
//! let throttled = budget.try_acquire(ErrorClass::Throttling).unwrap();
//! assert_eq!(budget.available(), 495.0);
//! # let _ = throttled;
//! ```

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::{Failure, FailureKey, FailureKind};

/// What kind of failure a retry follows: the AWS quota charges by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The other side asked us to slow down: API 429, asset codes 2429 and 2503.
    Throttling,
    /// A hook that did not answer in time.
    Timeout,
    /// Any other failure worth retrying.
    Transient,
}

impl ErrorClass {
    /// The class of a LightFlow failure.
    ///
    /// ```
    /// use lightflow_remedy::engine::ErrorClass;
    /// use lightflow_remedy::{Downstream, Failure};
    /// assert_eq!(ErrorClass::of(&Failure::api(429, "slow down")?), ErrorClass::Throttling);
    /// assert_eq!(ErrorClass::of(&Failure::asset(2429, "")?), ErrorClass::Throttling);
    /// assert_eq!(ErrorClass::of(&Failure::asset(2503, "")?), ErrorClass::Throttling);
    /// assert_eq!(ErrorClass::of(&Failure::api(503, "")?), ErrorClass::Transient);
    /// assert_eq!(ErrorClass::of(&Failure::timeout(Downstream::Brightcove, "")), ErrorClass::Timeout);
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn of(failure: &Failure) -> Self {
        const THROTTLING: [FailureKey; 3] = [FailureKey::api(429), FailureKey::asset(2429), FailureKey::asset(2503)];
        match failure.kind() {
            FailureKind::Timeout => ErrorClass::Timeout,
            _ if THROTTLING.contains(&failure.key()) => ErrorClass::Throttling,
            _ => ErrorClass::Transient,
        }
    }
}

/// The costs of the AWS quota, by class of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCosts {
    /// A retry after a throttling failure.
    pub throttling: u32,
    /// A retry after a timeout.
    pub timeout: u32,
    /// A retry after any other failure.
    pub transient: u32,
}

impl AwsCosts {
    /// The updated standard mode: throttling 5, everything else 14.
    pub const STANDARD: AwsCosts = AwsCosts { throttling: 5, timeout: 14, transient: 14 };
    /// The costs before the update: timeouts 10, everything else 5.
    pub const PRE_2026: AwsCosts = AwsCosts { throttling: 5, timeout: 10, transient: 5 };

    fn of(&self, class: ErrorClass) -> u32 {
        match class {
            ErrorClass::Throttling => self.throttling,
            ErrorClass::Timeout => self.timeout,
            ErrorClass::Transient => self.transient,
        }
    }
}

/// How a [`RetryBudget`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetConfig {
    /// The AWS SDK standard retry quota.
    Aws {
        /// Tokens when full (500).
        capacity: u32,
        /// What a retry costs, by class of failure.
        costs: AwsCosts,
        /// Tokens a first-try success adds back (1).
        no_retry_increment: u32,
    },
    /// gRPC retry throttling (gRFC A6).
    Grpc {
        /// Tokens when full: more than 0, at most 1000.
        max_tokens: u32,
        /// Tokens a success adds back: more than 0; kept to three decimals.
        token_ratio: f64,
    },
}

/// A budget configuration that its discipline refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// gRPC `max_tokens` outside `(0, 1000]`.
    #[error("gRPC retry throttling: max_tokens ({0}) must lie in (0, 1000]")]
    MaxTokens(u32),
    /// gRPC `token_ratio` not a number above 0 (or 0 once kept to three decimals).
    #[error("gRPC retry throttling: token_ratio ({0}) must be a number greater than 0 (with three decimals)")]
    TokenRatio(f64),
    /// An AWS quota with no capacity, or a cost of 0.
    #[error("AWS retry quota: {0} must be at least 1")]
    Aws(&'static str),
}

/// Tokens taken by one retry; give them back with [`RetryBudget::succeeded`] when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// In thousandths of a token.
    milli: u64,
}

impl Withdrawal {
    /// Nothing taken (gRPC throttling takes its token per failure, not per retry).
    pub const NONE: Withdrawal = Withdrawal { milli: 0 };

    /// Tokens taken.
    pub fn tokens(&self) -> f64 {
        self.milli as f64 / 1000.0
    }
}

/// A refused retry: the budget is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("the retry budget is exhausted ({available} tokens left; a retry needs {}{needed})", if *.strictly_more { "more than " } else { "" })]
pub struct Refused {
    /// Tokens left.
    pub available: f64,
    /// Tokens a retry needs (the AWS quota's cost), or must exceed (gRPC throttling: half of `max_tokens`).
    pub needed: f64,
    /// Whether `available` must exceed `needed` (gRPC) rather than reach it (AWS).
    pub strictly_more: bool,
}

/// A token bucket shared by every job of a [`Remediator`](super::Remediator).
///
/// Tokens are counted in thousandths, so that gRPC's ratios add up exactly.
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    full: u64,
    tokens: Mutex<u64>,
}

const MILLI: u64 = 1000;

impl RetryBudget {
    /// A full bucket counting by `config`, or why the configuration is refused.
    pub fn new(config: BudgetConfig) -> Result<Self, BudgetError> {
        let config = match config {
            BudgetConfig::Grpc { max_tokens, token_ratio } => {
                if max_tokens == 0 || max_tokens > 1000 {
                    return Err(BudgetError::MaxTokens(max_tokens));
                }
                // A6: "up to 3 decimal places"; further digits are dropped.
                let kept = (token_ratio * 1000.0).trunc() / 1000.0;
                if !kept.is_finite() || kept <= 0.0 {
                    return Err(BudgetError::TokenRatio(token_ratio));
                }
                BudgetConfig::Grpc { max_tokens, token_ratio: kept }
            }
            BudgetConfig::Aws { capacity, costs, .. } => {
                if capacity == 0 {
                    return Err(BudgetError::Aws("capacity"));
                }
                if costs.throttling == 0 || costs.timeout == 0 || costs.transient == 0 {
                    return Err(BudgetError::Aws("every cost"));
                }
                config
            }
        };
        let full = match config {
            BudgetConfig::Aws { capacity, .. } => u64::from(capacity) * MILLI,
            BudgetConfig::Grpc { max_tokens, .. } => u64::from(max_tokens) * MILLI,
        };
        Ok(RetryBudget { config, full, tokens: Mutex::new(full) })
    }

    /// The AWS SDK standard retry quota as the SDKs count it from November 2026: 500 tokens, a retry after a
    /// throttling failure costs 5 and after any other 14, 1 back for a first-try success.
    pub fn aws_standard() -> Self {
        Self::aws(AwsCosts::STANDARD)
    }

    /// The AWS SDK standard retry quota with the costs before the 2026 update: 500 tokens, a retry costs 5, a
    /// retry after a timeout 10, 1 back for a first-try success.
    pub fn aws_standard_pre_2026() -> Self {
        Self::aws(AwsCosts::PRE_2026)
    }

    fn aws(costs: AwsCosts) -> Self {
        let full = 500 * MILLI;
        RetryBudget {
            config: BudgetConfig::Aws { capacity: 500, costs, no_retry_increment: 1 },
            full,
            tokens: Mutex::new(full),
        }
    }

    /// gRPC retry throttling with `max_tokens` and `token_ratio` (e.g. 10 and 0.1), validated as A6 says.
    ///
    /// ```
    /// use lightflow_remedy::engine::RetryBudget;
    /// let budget = RetryBudget::grpc(10, 0.1)?;
    /// for _ in 0..4 { assert!(budget.failed_retryable().is_ok()); }
    /// assert!(budget.failed_retryable().is_err(), "at half the bucket, retries stop");
    /// assert!(RetryBudget::grpc(0, 0.1).is_err() && RetryBudget::grpc(10, 0.0001).is_err());
    /// # Ok::<(), lightflow_remedy::engine::BudgetError>(())
    /// ```
    pub fn grpc(max_tokens: u32, token_ratio: f64) -> Result<Self, BudgetError> {
        RetryBudget::new(BudgetConfig::Grpc { max_tokens, token_ratio })
    }

    /// How it counts.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Whether it counts as gRPC throttling does (a token per failure, not a cost per retry).
    pub fn is_grpc(&self) -> bool {
        matches!(self.config, BudgetConfig::Grpc { .. })
    }

    /// Tokens in the bucket now.
    pub fn available(&self) -> f64 {
        *self.lock() as f64 / MILLI as f64
    }

    /// AWS: takes what a retry after a failure of `class` costs, or refuses (and takes nothing). gRPC: checks
    /// the bucket without taking anything (its token goes with [`RetryBudget::failed_retryable`]).
    pub fn try_acquire(&self, class: ErrorClass) -> Result<Withdrawal, Refused> {
        let mut tokens = self.lock();
        match self.config {
            BudgetConfig::Aws { costs, .. } => {
                let cost = u64::from(costs.of(class)) * MILLI;
                if *tokens < cost {
                    return Err(Refused {
                        available: *tokens as f64 / 1e3,
                        needed: cost as f64 / 1e3,
                        strictly_more: false,
                    });
                }
                *tokens -= cost;
                Ok(Withdrawal { milli: cost })
            }
            BudgetConfig::Grpc { .. } => match self.throttled(*tokens) {
                Some(refused) => Err(refused),
                None => Ok(Withdrawal { milli: 0 }),
            },
        }
    }

    /// gRPC: a failure the policy would retry takes a token, and the retry is refused when the bucket is then
    /// at half or below. AWS: nothing is taken (its quota does not count failures).
    pub fn failed_retryable(&self) -> Result<(), Refused> {
        if let BudgetConfig::Grpc { .. } = self.config {
            let mut tokens = self.lock();
            *tokens = tokens.saturating_sub(MILLI);
            if let Some(refused) = self.throttled(*tokens) {
                return Err(refused);
            }
        }
        Ok(())
    }

    fn throttled(&self, tokens: u64) -> Option<Refused> {
        let threshold = self.full / 2;
        (tokens <= threshold).then(|| Refused {
            available: tokens as f64 / MILLI as f64,
            needed: threshold as f64 / MILLI as f64,
            strictly_more: true,
        })
    }

    /// Records a success: of the retry `withdrawal` paid for (AWS gives its cost back), or of a first try
    /// (`None`: AWS adds `no_retry_increment`). gRPC adds `token_ratio` either way.
    pub fn succeeded(&self, withdrawal: Option<Withdrawal>) {
        let back = match self.config {
            BudgetConfig::Aws { no_retry_increment, .. } => {
                withdrawal.map_or(u64::from(no_retry_increment) * MILLI, |w| w.milli)
            }
            BudgetConfig::Grpc { token_ratio, .. } => (token_ratio * 1000.0).round() as u64,
        };
        let mut tokens = self.lock();
        *tokens = tokens.saturating_add(back).min(self.full);
    }

    /// Gives back tokens of a retry that never ran (the job was cancelled or suspended before it).
    pub fn refund(&self, withdrawal: Withdrawal) {
        let mut tokens = self.lock();
        *tokens = tokens.saturating_add(withdrawal.milli).min(self.full);
    }

    /// Tokens now, in thousandths.
    pub(crate) fn milli(&self) -> u64 {
        *self.lock()
    }

    /// Tokens when full, in thousandths.
    pub(crate) fn full_milli(&self) -> u64 {
        self.full
    }

    /// Moves the tokens by `by` thousandths, kept within the bucket (the fleet's count brought in).
    pub(crate) fn adjust(&self, by: i64) {
        let mut tokens = self.lock();
        *tokens = tokens.saturating_add_signed(by).min(self.full);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A panic elsewhere cannot leave a number half-written: the value is always usable.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The AWS SDKs' standard backoff, for a host that wants the engine to wait as the SDKs do: a random
/// `unit` in `[0, 1)` times `base × 2^(attempt − 1)`, capped at 20 s; `base` is 1 s after a throttling
/// failure and 50 ms after any other (the updated standard mode; botocore's `ExponentialBackoff`). A policy
/// writes the same with `retry(#{ initial: "50ms", multiplier: 2.0, max_delay: "20s", jitter: "full" })`.
///
/// ```
/// use lightflow_remedy::engine::{ErrorClass, aws_backoff};
/// use std::time::Duration;
/// let top: Vec<_> = (1..=11).map(|n| aws_backoff(n, ErrorClass::Transient, 1.0)).collect();
/// assert_eq!(top[0], Duration::from_millis(50));
/// assert_eq!(top[8], Duration::from_millis(12_800));
/// assert_eq!(top[9], Duration::from_secs(20));
/// assert_eq!(aws_backoff(1, ErrorClass::Throttling, 0.5), Duration::from_millis(500));
/// ```
pub fn aws_backoff(attempt: u32, class: ErrorClass, unit: f64) -> Duration {
    const MAX: Duration = Duration::from_secs(20);
    let base = match class {
        ErrorClass::Throttling => Duration::from_secs(1),
        _ => Duration::from_millis(50),
    };
    let exponent = attempt.saturating_sub(1).min(30);
    let top = base.saturating_mul(1 << exponent).min(MAX);
    top.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_standard_costs_by_class() {
        let b = RetryBudget::aws_standard();
        let transient = b.try_acquire(ErrorClass::Transient).unwrap();
        assert_eq!(b.available(), 486.0);
        let timeout = b.try_acquire(ErrorClass::Timeout).unwrap();
        assert_eq!(b.available(), 472.0);
        let throttled = b.try_acquire(ErrorClass::Throttling).unwrap();
        assert_eq!(b.available(), 467.0);
        b.succeeded(Some(throttled));
        b.succeeded(Some(timeout));
        b.succeeded(Some(transient));
        b.succeeded(None);
        assert_eq!(b.available(), 500.0, "capped at capacity");
        // 35 retries of 14 leave 10: less than a transient retry, enough for two throttled ones.
        for _ in 0..35 {
            b.try_acquire(ErrorClass::Transient).unwrap();
        }
        assert_eq!(b.available(), 10.0);
        assert_eq!(
            b.try_acquire(ErrorClass::Transient),
            Err(Refused { available: 10.0, needed: 14.0, strictly_more: false })
        );
        assert_eq!(b.available(), 10.0, "a refusal takes nothing");
        b.try_acquire(ErrorClass::Throttling).unwrap();
        b.try_acquire(ErrorClass::Throttling).unwrap();
        assert!(b.try_acquire(ErrorClass::Throttling).is_err());
    }

    #[test]
    fn aws_pre_2026_costs() {
        let b = RetryBudget::aws_standard_pre_2026();
        let first = b.try_acquire(ErrorClass::Transient).unwrap();
        assert_eq!(b.available(), 495.0);
        let timeout = b.try_acquire(ErrorClass::Timeout).unwrap();
        assert_eq!(b.available(), 485.0);
        b.try_acquire(ErrorClass::Throttling).unwrap();
        assert_eq!(b.available(), 480.0);
        b.succeeded(Some(timeout));
        b.succeeded(Some(first));
        assert_eq!(b.available(), 495.0);
        for _ in 0..99 {
            b.try_acquire(ErrorClass::Transient).unwrap();
        }
        assert_eq!(b.available(), 0.0);
        b.succeeded(None);
        assert!(b.try_acquire(ErrorClass::Transient).is_err(), "1 token is less than a retry");
    }

    /// grpc-go's TestRetryThrottling, counted on the bucket alone: max 10, ratio 0.5.
    #[test]
    fn grpc_throttling_counts_as_a6() {
        let b = RetryBudget::grpc(10, 0.5).unwrap();
        // An RPC that fails twice and then succeeds: 10 - 2 + 0.5.
        assert!(b.failed_retryable().is_ok());
        assert!(b.failed_retryable().is_ok());
        b.succeeded(None);
        assert_eq!(b.available(), 8.5);
        for _ in 0..3 {
            assert!(b.failed_retryable().is_ok());
        }
        assert_eq!(b.available(), 5.5);
        assert!(b.failed_retryable().is_err(), "at exactly half, retries stop");
        assert_eq!(b.available(), 4.5);
        for _ in 0..100 {
            let _ = b.failed_retryable();
        }
        assert_eq!(b.available(), 0.0, "never below 0");
        for _ in 0..100 {
            b.succeeded(None);
        }
        assert_eq!(b.available(), 10.0, "never above max_tokens");
    }

    #[test]
    fn grpc_configurations_a6_rejects_are_refused() {
        for (max, ratio) in [(0, 0.1), (1001, 0.1), (10, 0.0), (10, -1.0), (10, f64::NAN), (10, 0.0004)] {
            assert!(RetryBudget::grpc(max, ratio).is_err(), "{max} {ratio}");
        }
        let b = RetryBudget::grpc(1000, 0.1239).unwrap();
        assert_eq!(b.config(), BudgetConfig::Grpc { max_tokens: 1000, token_ratio: 0.123 }, "three decimals");
        let _ = b.failed_retryable();
        b.succeeded(None);
        assert_eq!(b.available(), 999.123);
    }

    #[test]
    fn aws_backoff_follows_the_sdks() {
        let top: Vec<u128> = (1..=11).map(|n| aws_backoff(n, ErrorClass::Transient, 1.0).as_millis()).collect();
        assert_eq!(top, [50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 20000, 20000]);
        let throttled: Vec<u128> = (1..=6).map(|n| aws_backoff(n, ErrorClass::Throttling, 1.0).as_millis()).collect();
        assert_eq!(throttled, [1000, 2000, 4000, 8000, 16000, 20000]);
        assert_eq!(aws_backoff(u32::MAX, ErrorClass::Transient, 0.5), Duration::from_secs(10));
        assert_eq!(aws_backoff(3, ErrorClass::Transient, 0.0), Duration::ZERO);
    }
}
