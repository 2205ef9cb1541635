//! How a job ends: exactly one [`Outcome`] per submitted job.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::guards::budget::Withdrawal;
use super::job::Job;
use super::report::Reported;
use super::verdict::Verdict;
use super::walk::state::{Awaiting, State};
use crate::classify::Failure;
use crate::decide::History;

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The asset is done.
    Recovered {
        /// Resubmissions and re-publications it took.
        attempts: u32,
        /// Reconciles asked of the host on the way (not attempts: they change nothing at LightFlow).
        #[serde(default)]
        reconciles: u32,
        /// Time from the first failure to the recovery.
        #[serde(with = "crate::millis")]
        elapsed: Duration,
        /// Whether `reconcile` found that an earlier attempt had in fact succeeded.
        reconciled: bool,
    },
    /// The job failed for good; the host's `failed` hook got the verdict (except an `internal` one: a bug of
    /// the engine). A job whose verdict could not be delivered before a shutdown is [`Outcome::Suspended`]
    /// with it instead, and resume delivers it.
    Failed {
        /// Why, with the last failure.
        verdict: Box<Verdict>,
    },
    /// The job was cancelled.
    Cancelled {
        /// Resubmissions and re-publications made before.
        attempts: u32,
    },
    /// The engine shut down first; [`Remediator::resume`](super::Remediator::resume) continues the job.
    Suspended {
        /// Everything needed to continue.
        state: Box<SuspendedJob>,
    },
}

impl Outcome {
    /// The outcome's name: `recovered`, `failed`, `cancelled` or `suspended`.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Recovered { .. } => OutcomeKind::Recovered,
            Outcome::Failed { .. } => OutcomeKind::Failed,
            Outcome::Cancelled { .. } => OutcomeKind::Cancelled,
            Outcome::Suspended { .. } => OutcomeKind::Suspended,
        }
    }
}

impl SuspendedJob {
    /// The job as it stands, for `resume`.
    pub(crate) fn of(job: &Job, st: State) -> Self {
        let more = st.more_ref().cloned().unwrap_or_default();
        SuspendedJob {
            job: job.clone(),
            failure: st.failure,
            history: st.history,
            remaining_delay: more.remaining,
            reconciles: more.reconciles,
            steps: st.steps,
            paid: more.paid,
            verdict: more.verdict,
            awaiting: more.awaiting,
            early_report: more.early_report,
        }
    }
}

/// The name of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// [`Outcome::Recovered`]
    Recovered,
    /// [`Outcome::Failed`]
    Failed,
    /// [`Outcome::Cancelled`]
    Cancelled,
    /// [`Outcome::Suspended`]
    Suspended,
}

crate::names::names!(OutcomeKind {
    Recovered => "recovered",
    Failed => "failed",
    Cancelled => "cancelled",
    Suspended => "suspended",
});

/// A job stopped by a shutdown, as it stood: serialize it, and resume it later with
/// [`Remediator::resume`](super::Remediator::resume).
///
/// The failure being remediated is already in the history. On resume the engine decides again on it (a
/// decision is a pure function of the history, so it is the same decision unless the policies changed) and
/// waits only what was left of its delay. A job that had failed for good but whose verdict the `failed` hook
/// had not received carries the verdict: resume delivers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspendedJob {
    /// The job.
    pub job: Job,
    /// The failure being remediated.
    pub failure: Failure,
    /// What has happened so far.
    pub history: History,
    /// What was left of the delay before the next attempt.
    #[serde(with = "crate::millis::opt", default)]
    pub remaining_delay: Option<Duration>,
    /// Reconciles asked so far.
    #[serde(default)]
    pub reconciles: u32,
    /// Decisions already made on the current failure.
    #[serde(default)]
    pub steps: u32,
    /// What the retry budget took for the last attempt made, given back if the job recovers.
    #[serde(default)]
    pub paid: Option<Withdrawal>,
    /// The verdict of a job that failed for good, not yet delivered to the `failed` hook.
    #[serde(default)]
    pub verdict: Option<Box<Verdict>>,
    /// The submitted attempt whose result the job awaited.
    #[serde(default)]
    pub awaiting: Option<Box<Awaiting>>,
    /// A report (by asset) that came while the hook call of the next attempt was under way, when the shutdown
    /// deadline cut that call off: resume repeats the call with the same key, and if it answers `Submitted`,
    /// this is its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_report: Option<Reported>,
}
