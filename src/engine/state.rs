//! Where a job stands between two steps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budget::Withdrawal;
use super::verdict::Verdict;
use crate::classify::Failure;
use crate::decide::History;

/// The most steps a job takes on one failure without a new one (notifications, reconciles, stages skipped)
/// before it ends with [`VerdictKind::NoProgress`](super::VerdictKind::NoProgress). A chain has at most 64
/// stages, so a policy that moves on never comes near it.
pub(crate) const MAX_STEPS_PER_FAILURE: u32 = 128;

/// Where a job stands: the failure being remediated (already recorded in the history), what was left of a
/// delay when it was suspended, the budget's tokens it holds, and a dead letter not yet delivered.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) failure: Failure,
    pub(crate) history: History,
    pub(crate) remaining: Option<Duration>,
    /// What the retry budget lent to the attempt about to be made: given back if it is not made.
    pub(crate) lent: Option<Withdrawal>,
    /// What the budget took for the last attempt made: given back when the job recovers (the AWS quota).
    pub(crate) paid: Option<Withdrawal>,
    /// Reconciles asked of the host.
    pub(crate) reconciles: u32,
    /// Decisions on the current failure (the first one counts it against gRPC throttling).
    pub(crate) steps: u32,
    /// A verdict the `failed` hook has not received yet.
    pub(crate) verdict: Option<Box<Verdict>>,
    /// The submitted attempt whose result the job awaits.
    pub(crate) awaiting: Option<Box<Awaiting>>,
}

/// A submitted attempt whose result is reported later, or checked when `await_result` runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awaiting {
    /// The attempt's number.
    pub attempt: u32,
    /// Its reference, as its hook answered `Submitted`.
    pub reference: String,
    /// How long after the submission its result may still come before the engine asks `check`.
    #[serde(with = "crate::millis")]
    pub left: Duration,
}

impl State {
    /// A job's state at its first failure (already recorded in `history`).
    pub(crate) fn new(failure: Failure, history: History) -> Self {
        State {
            failure,
            history,
            remaining: None,
            lent: None,
            paid: None,
            reconciles: 0,
            steps: 0,
            verdict: None,
            awaiting: None,
        }
    }

    /// The next failure of the job, to decide on.
    pub(crate) fn failed_again(&mut self, next: Failure) {
        self.history.record_failure(&next);
        self.failure = next;
        self.steps = 0;
    }
}
