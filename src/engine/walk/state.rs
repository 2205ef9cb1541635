//! Where a job stands between two steps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::Failure;
use crate::decide::History;
use crate::engine::guards::budget::Withdrawal;
use crate::engine::report::Reported;
use crate::engine::verdict::Verdict;

/// The most steps a job takes on one failure without a new one (notifications, reconciles, stages skipped)
/// before it ends with [`VerdictKind::NoProgress`](super::VerdictKind::NoProgress). A chain has at most 64
/// stages, so a policy that moves on never comes near it.
pub(crate) const MAX_STEPS_PER_FAILURE: u32 = 128;

/// Where a job stands: the failure being remediated (already recorded in the history), and, in a box made on
/// first use, what fewer jobs need (what was left of a delay when it stopped, the budget's tokens it holds,
/// reconciles, a dead letter not yet delivered, an attempt submitted): a fleet keeps a hundred thousand of
/// these.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) failure: Failure,
    pub(crate) history: History,
    /// Decisions on the current failure (the first one counts it against gRPC throttling).
    pub(crate) steps: u32,
    more: Option<Box<More>>,
}

/// The parts of a job's state that fewer jobs need.
#[derive(Clone, Default)]
pub(crate) struct More {
    /// What was left of a delay when the job stopped (suspended, or at rest in its store): `None` when it
    /// decides anew.
    pub(crate) remaining: Option<Duration>,
    /// What the retry budget lent to the attempt about to be made: given back if it is not made.
    pub(crate) lent: Option<Withdrawal>,
    /// What the budget took for the last attempt made: given back when the job recovers (the AWS quota).
    pub(crate) paid: Option<Withdrawal>,
    /// Reconciles asked of the host.
    pub(crate) reconciles: u32,
    /// A verdict the `failed` hook has not received yet.
    pub(crate) verdict: Option<Box<Verdict>>,
    /// The submitted attempt whose result the job awaits.
    pub(crate) awaiting: Option<Box<Awaiting>>,
    /// A report that came while a call cut off by the shutdown deadline was under way: kept for that call's
    /// repetition.
    pub(crate) early_report: Option<Reported>,
    /// Whether the job rests for its downstream's breaker, not for a delay of its own: a shutdown hands it
    /// back with no delay left (the breaker is this process's).
    pub(crate) breaker_rest: bool,
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
    /// How long each wait for its result lasts (the first, and each after a `check` that finds it still
    /// running): its stage's `await_result`. `None` (also in states written before the option existed): the
    /// remediator's own.
    #[serde(default, with = "crate::millis::opt", skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
}

impl Awaiting {
    /// How long each wait for the result lasts: the stage's `await_result`, else the remediator's `default`.
    ///
    /// ```
    /// use lightflow_remedy::engine::Awaiting;
    /// use std::time::Duration;
    ///
    /// let hour = Duration::from_secs(3600);
    /// let staged = Awaiting { attempt: 1, reference: "uuid-1".into(), left: hour, wait: Some(hour) };
    /// assert_eq!(staged.wait_or(Duration::from_secs(6 * 3600)), hour);
    /// // A state written before stages could say, read back: the remediator's own.
    /// let old: Awaiting = serde_json::from_str(r#"{"attempt": 1, "reference": "uuid-1", "left": 60000}"#)?;
    /// assert_eq!(old.wait_or(Duration::from_secs(6 * 3600)), Duration::from_secs(6 * 3600));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn wait_or(&self, default: Duration) -> Duration {
        self.wait.unwrap_or(default)
    }
}

impl State {
    /// A job's state at its first failure (already recorded in `history`).
    pub(crate) fn new(failure: Failure, history: History) -> Self {
        State { failure, history, steps: 0, more: None }
    }

    /// The state with these rarer parts.
    pub(crate) fn with_more(mut self, more: More) -> Self {
        self.more = Some(Box::new(more));
        self
    }

    /// The rarer parts, made on first use.
    pub(crate) fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// The rarer parts, if there are any.
    pub(crate) fn more_ref(&self) -> Option<&More> {
        self.more.as_deref()
    }

    /// What was left of the delay when the job stopped.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.more.as_ref().and_then(|m| m.remaining)
    }

    /// Sets (or clears) what is left of the delay.
    pub(crate) fn set_remaining(&mut self, remaining: Option<Duration>) {
        if remaining.is_some() || self.more.is_some() {
            self.more().remaining = remaining;
        }
    }

    /// Takes what was left of the delay.
    pub(crate) fn take_remaining(&mut self) -> Option<Duration> {
        self.more.as_mut().and_then(|m| m.remaining.take())
    }

    /// Takes the report kept for the repetition of a call the shutdown deadline cut off.
    pub(crate) fn take_early_report(&mut self) -> Option<Reported> {
        self.more.as_mut().and_then(|m| m.early_report.take())
    }

    /// What the budget lent to the attempt about to be made.
    pub(crate) fn lent(&self) -> Option<Withdrawal> {
        self.more.as_ref().and_then(|m| m.lent)
    }

    /// Takes what the budget lent.
    pub(crate) fn take_lent(&mut self) -> Option<Withdrawal> {
        self.more.as_mut().and_then(|m| m.lent.take())
    }

    /// Reconciles asked so far.
    pub(crate) fn reconciles(&self) -> u32 {
        self.more.as_ref().map_or(0, |m| m.reconciles)
    }

    /// Whether a verdict waits for the `failed` hook.
    pub(crate) fn has_verdict(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.verdict.is_some())
    }

    /// The job fails for good with `verdict`.
    pub(crate) fn set_verdict(&mut self, verdict: Box<Verdict>) {
        self.more().verdict = Some(verdict);
    }

    /// The submitted attempt the job awaits.
    pub(crate) fn awaiting(&self) -> Option<&Awaiting> {
        self.more.as_ref().and_then(|m| m.awaiting.as_deref())
    }

    /// The submitted attempt the job awaits, to update.
    pub(crate) fn awaiting_mut(&mut self) -> Option<&mut Awaiting> {
        self.more.as_mut().and_then(|m| m.awaiting.as_deref_mut())
    }

    /// Sets (or clears) the attempt the job awaits.
    pub(crate) fn set_awaiting(&mut self, awaiting: Option<Box<Awaiting>>) {
        if awaiting.is_some() || self.more.is_some() {
            self.more().awaiting = awaiting;
        }
    }

    /// The next failure of the job, to decide on.
    pub(crate) fn failed_again(&mut self, next: Failure) {
        self.history.record_failure(&next);
        self.failure = next;
        self.steps = 0;
    }
}
