//! The fleet's retry budget: a token bucket shared by every job, so that a wide outage does not turn into a
//! retry storm.
//!
//! Two well-known disciplines:
//!
//! - the AWS SDK standard retry quota: 500 tokens; a retry costs 5, a retry after a timeout 10; a retry that
//!   succeeds gives its cost back, and a first-try success (reported by the host) adds 1;
//! - gRPC retry throttling: `max_tokens`, each failure takes 1, each success gives `token_ratio` back, and
//!   retries stop while the bucket is at or below half.
//!
//! ```
//! use lightflow_remedy::engine::RetryBudget;
//!
//! let budget = RetryBudget::aws_standard();
//! let retry = budget.try_acquire(false).unwrap();
//! assert_eq!(budget.available(), 495.0);
//! budget.succeeded(Some(retry));
//! assert_eq!(budget.available(), 500.0);
//! ```

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How a [`RetryBudget`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetConfig {
    /// The AWS SDK standard retry quota.
    Aws {
        /// Tokens when full (500).
        capacity: u32,
        /// Cost of a retry (5).
        retry_cost: u32,
        /// Cost of a retry after a timeout (10).
        timeout_cost: u32,
        /// Tokens a first-try success adds back (1).
        no_retry_increment: u32,
    },
    /// gRPC retry throttling.
    Grpc {
        /// Tokens when full.
        max_tokens: u32,
        /// Tokens a success adds back.
        token_ratio: f64,
    },
}

/// Tokens taken by one retry; give them back with [`RetryBudget::succeeded`] when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Withdrawal {
    cost: f64,
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
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    /// A full bucket counting by `config`.
    pub fn new(config: BudgetConfig) -> Self {
        let config = match config {
            // A negative ratio would take tokens on success, and NaN would refill the bucket at once.
            BudgetConfig::Grpc { max_tokens, token_ratio } if token_ratio.is_nan() || token_ratio < 0.0 => {
                BudgetConfig::Grpc { max_tokens, token_ratio: 0.0 }
            }
            other => other,
        };
        let full = match config {
            BudgetConfig::Aws { capacity, .. } => f64::from(capacity),
            BudgetConfig::Grpc { max_tokens, .. } => f64::from(max_tokens),
        };
        RetryBudget { config, tokens: Mutex::new(full) }
    }

    /// The AWS SDK standard retry quota: 500 tokens, 5 a retry, 10 a timeout retry, 1 back on a first-try
    /// success.
    pub fn aws_standard() -> Self {
        RetryBudget::new(BudgetConfig::Aws { capacity: 500, retry_cost: 5, timeout_cost: 10, no_retry_increment: 1 })
    }

    /// gRPC retry throttling with `max_tokens` and `token_ratio` (e.g. 10 and 0.1).
    ///
    /// ```
    /// use lightflow_remedy::engine::RetryBudget;
    /// let budget = RetryBudget::grpc(10, 0.1);
    /// for _ in 0..5 { budget.failed(); }
    /// assert!(budget.try_acquire(false).is_err(), "at half the bucket, retries stop");
    /// ```
    pub fn grpc(max_tokens: u32, token_ratio: f64) -> Self {
        RetryBudget::new(BudgetConfig::Grpc { max_tokens, token_ratio })
    }

    /// How it counts.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Tokens in the bucket now.
    pub fn available(&self) -> f64 {
        *self.lock()
    }

    /// Takes what a retry costs (more after a timeout), or refuses.
    pub fn try_acquire(&self, after_timeout: bool) -> Result<Withdrawal, Refused> {
        let mut tokens = self.lock();
        match self.config {
            BudgetConfig::Aws { retry_cost, timeout_cost, .. } => {
                let cost = f64::from(if after_timeout { timeout_cost } else { retry_cost });
                if *tokens < cost {
                    return Err(Refused { available: *tokens, needed: cost, strictly_more: false });
                }
                *tokens -= cost;
                Ok(Withdrawal { cost })
            }
            BudgetConfig::Grpc { max_tokens, .. } => {
                let threshold = f64::from(max_tokens) / 2.0;
                if *tokens <= threshold {
                    return Err(Refused { available: *tokens, needed: threshold, strictly_more: true });
                }
                Ok(Withdrawal { cost: 0.0 })
            }
        }
    }

    /// Records a success: of the retry `withdrawal` paid for, or of a first try (`None`).
    pub fn succeeded(&self, withdrawal: Option<Withdrawal>) {
        let mut tokens = self.lock();
        match self.config {
            BudgetConfig::Aws { capacity, no_retry_increment, .. } => {
                let back = withdrawal.map_or(f64::from(no_retry_increment), |w| w.cost);
                *tokens = (*tokens + back).min(f64::from(capacity));
            }
            BudgetConfig::Grpc { max_tokens, token_ratio } => {
                *tokens = (*tokens + token_ratio).min(f64::from(max_tokens));
            }
        }
    }

    /// Records a failure (gRPC throttling takes a token; the AWS quota does not count failures).
    pub fn failed(&self) {
        if let BudgetConfig::Grpc { .. } = self.config {
            let mut tokens = self.lock();
            *tokens = (*tokens - 1.0).max(0.0);
        }
    }

    /// Gives back tokens of a retry that never ran (the job was cancelled or suspended before it).
    pub fn refund(&self, withdrawal: Withdrawal) {
        let full = match self.config {
            BudgetConfig::Aws { capacity, .. } => f64::from(capacity),
            BudgetConfig::Grpc { max_tokens, .. } => f64::from(max_tokens),
        };
        let mut tokens = self.lock();
        *tokens = (*tokens + withdrawal.cost).min(full);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, f64> {
        // A panic elsewhere cannot leave a number half-written: the value is always usable.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_standard_quota_arithmetic() {
        let b = RetryBudget::aws_standard();
        let first = b.try_acquire(false).unwrap();
        assert_eq!(b.available(), 495.0);
        let timeout = b.try_acquire(true).unwrap();
        assert_eq!(b.available(), 485.0);
        b.succeeded(Some(timeout));
        assert_eq!(b.available(), 495.0);
        b.succeeded(Some(first));
        b.succeeded(None);
        assert_eq!(b.available(), 500.0, "capped at capacity");
        for _ in 0..100 {
            b.try_acquire(false).unwrap();
        }
        assert_eq!(b.available(), 0.0);
        assert_eq!(b.try_acquire(false), Err(Refused { available: 0.0, needed: 5.0, strictly_more: false }));
        b.succeeded(None);
        assert!(b.try_acquire(false).is_err(), "1 token is less than a retry");
    }

    #[test]
    fn grpc_throttling_stops_at_half() {
        let b = RetryBudget::grpc(10, 0.5);
        for _ in 0..4 {
            b.failed();
        }
        assert_eq!(b.available(), 6.0);
        assert!(b.try_acquire(false).is_ok());
        b.failed();
        assert_eq!(b.available(), 5.0);
        assert!(b.try_acquire(false).is_err(), "at exactly half, retries stop");
        b.succeeded(None);
        assert!(b.try_acquire(false).is_ok());
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.available(), 0.0);
        for _ in 0..100 {
            b.succeeded(None);
        }
        assert_eq!(b.available(), 10.0);
    }

    #[test]
    fn a_grpc_ratio_that_is_negative_or_not_a_number_gives_nothing_back() {
        for ratio in [-1.0, f64::NAN] {
            let b = RetryBudget::new(BudgetConfig::Grpc { max_tokens: 10, token_ratio: ratio });
            for _ in 0..5 {
                b.failed();
            }
            b.succeeded(None);
            assert_eq!(b.available(), 5.0, "ratio {ratio}");
            let refused = b.try_acquire(false).unwrap_err();
            assert_eq!(refused.to_string(), "the retry budget is exhausted (5 tokens left; a retry needs more than 5)");
        }
    }
}
