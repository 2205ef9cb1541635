//! How a failed job ends: its [`Verdict`], for the host's dead-letter queue.

use serde::{Deserialize, Serialize};

use crate::classify::Failure;

/// Why a job failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// A `fail(..)` stage of the policy.
    Policy,
    /// Every stage of the policy was used up.
    Exhausted,
    /// The fleet's retry budget refused another attempt.
    BudgetExhausted,
    /// The downstream's circuit breaker stayed open longer than the engine's patience.
    CircuitOpen,
    /// A hook returned an error.
    HookError,
    /// A hook panicked.
    HookPanicked,
    /// The policy made no progress: too many steps on one failure without a new one (notify, reconcile,
    /// skipped stages), e.g. a `decide` function that never lets its chain move on.
    NoProgress,
    /// The engine itself failed on this job (a bug; please report it).
    Internal,
}

crate::names::names!(VerdictKind {
    Policy => "policy",
    Exhausted => "exhausted",
    BudgetExhausted => "budget_exhausted",
    CircuitOpen => "circuit_open",
    HookError => "hook_error",
    HookPanicked => "hook_panicked",
    NoProgress => "no_progress",
    Internal => "internal",
});

/// The end of a failed job, for the host's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Why.
    pub kind: VerdictKind,
    /// What happened, in words.
    pub reason: String,
    /// What to do about it: the last failure's code and catalogue name.
    pub hint: String,
    /// The last failure.
    pub last_failure: Failure,
    /// The rule that decided the end, when a policy did (`file:line:col on(..)`).
    pub rule: Option<String>,
    /// Resubmissions and re-publications made.
    pub attempts: u32,
}
