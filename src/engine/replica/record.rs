//! A job as a durable store keeps it: the engine's payload of a row (JSON, versioned), written after each step
//! and read back when the job is due again, by this replica or another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::Failure;
use crate::decide::History;
use crate::engine::guards::budget::Withdrawal;
use crate::engine::job::Job;
use crate::engine::outcome::{Outcome, SuspendedJob};
use crate::engine::verdict::Verdict;
use crate::engine::walk::state::{Awaiting, More, State};
use crate::store::{JobRow, Phase, StoreError, Timestamp};

/// The version of the payload this build writes. A build reads every version up to its own, and refuses a
/// newer one ([`StoreError::PayloadTooNew`]): during a rolling deploy, an older replica leaves a newer
/// replica's rows alone.
pub const PAYLOAD_VERSION: u32 = 1;

/// The payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) job: Job,
    pub(crate) failure: Failure,
    pub(crate) history: History,
    /// When the job's first failure happened, on the store's clock.
    pub(crate) first_failure_at: Timestamp,
    #[serde(default)]
    pub(crate) lent: Option<Withdrawal>,
    #[serde(default)]
    pub(crate) paid: Option<Withdrawal>,
    #[serde(default)]
    pub(crate) reconciles: u32,
    #[serde(default)]
    pub(crate) steps: u32,
    #[serde(default)]
    pub(crate) verdict: Option<Box<Verdict>>,
    #[serde(default)]
    pub(crate) awaiting: Option<Box<Awaiting>>,
    /// How the job ended, once it has.
    #[serde(default)]
    pub(crate) outcome: Option<Outcome>,
    /// The key of a side-effecting call an earlier holder started and never saw answered, not yet
    /// reconciled.
    #[serde(default)]
    pub(crate) unanswered: Option<String>,
    /// What was left of the delay before the next attempt when the job went to rest; `None` when it had none
    /// to wait (just enqueued, or stopped by a shutdown before its next decision): claimed, such a job decides
    /// and waits its delay. A row written before this field was kept is taken as having waited.
    #[serde(with = "crate::millis::opt", default = "waited")]
    pub(crate) remaining: Option<Duration>,
    /// A report that came during a call a shutdown cut off, handed back with the job and resumed: the result
    /// of the call's repetition if it answers `Submitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) early_report: Option<crate::engine::report::Reported>,
    /// Whether it rests for its downstream's breaker rather than a delay of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) breaker_rest: bool,
}

fn waited() -> Option<Duration> {
    Some(Duration::ZERO)
}

impl Record {
    /// The record of a job's state.
    pub(crate) fn of(job: &Job, st: &State, first_failure_at: Timestamp) -> Self {
        Record {
            job: job.clone(),
            failure: st.failure.clone(),
            history: st.history.clone(),
            first_failure_at,
            lent: st.lent(),
            paid: st.more_ref().and_then(|m| m.paid),
            reconciles: st.reconciles(),
            steps: st.steps,
            verdict: st.more_ref().and_then(|m| m.verdict.clone()),
            awaiting: st.more_ref().and_then(|m| m.awaiting.clone()),
            outcome: None,
            unanswered: None,
            remaining: st.remaining(),
            early_report: st.more_ref().and_then(|m| m.early_report.clone()),
            breaker_rest: st.more_ref().is_some_and(|m| m.breaker_rest),
        }
    }

    /// The state to go on from.
    pub(crate) fn into_state(self) -> (Job, State) {
        let more = More {
            remaining: self.remaining,
            lent: self.lent,
            paid: self.paid,
            reconciles: self.reconciles,
            verdict: self.verdict,
            awaiting: self.awaiting,
            early_report: self.early_report,
            breaker_rest: self.breaker_rest,
        };
        let mut state = State::new(self.failure, self.history).with_more(more);
        state.steps = self.steps;
        (self.job, state)
    }

    /// The JSON of the payload.
    pub(crate) fn encode(&self) -> String {
        // Every part is a plain serde type: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a row's payload, refusing a version newer than this build's.
    pub(crate) fn decode(row: &JobRow) -> Result<Record, StoreError> {
        if row.version > PAYLOAD_VERSION {
            return Err(StoreError::PayloadTooNew { job: row.id.0, found: row.version, known: PAYLOAD_VERSION });
        }
        let mut record: Record = serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::Corrupt { job: row.id.0, reason: e.to_string() })?;
        record.job.set_job_id(row.id);
        Ok(record)
    }
}

impl Record {
    /// A job at rest (or left in the middle of a call by a shutdown's deadline) as [`SuspendedJob`], at `now`:
    /// what was left of its wait goes with it, and a report its row kept for the attempt under way.
    pub(crate) fn suspended(row: &JobRow, now: Timestamp) -> Result<SuspendedJob, StoreError> {
        let record = Record::decode(row)?;
        let first_failure_at = record.first_failure_at;
        let rested = record.remaining.is_some();
        // The breaker it rested for stays with this process: the delay before it was spent.
        let spent = record.breaker_rest;
        let (job, mut state) = record.into_state();
        let left = row.wake_at.since(now);
        match row.phase {
            Phase::Waiting if spent => state.set_remaining(Some(Duration::ZERO)),
            Phase::Waiting => state.set_remaining(rested.then_some(left)),
            Phase::Awaiting => {
                if let Some(a) = state.awaiting_mut() {
                    a.left = left;
                }
            }
            // Cut off in its call: repeated at once on resume, with the same key.
            Phase::Calling => state.set_remaining(Some(Duration::ZERO)),
            Phase::Finished => {}
        }
        if let Some(report) = row.report.as_deref().and_then(|r| serde_json::from_str(r).ok()) {
            state.more().early_report = Some(report);
        }
        state.history.set_elapsed(now.since(first_failure_at));
        Ok(SuspendedJob::of(&job, state))
    }
}

/// A job as its store keeps it, read back: for operators (`remedy jobs show`) and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredJob {
    /// The job, with the metadata its hooks kept.
    pub job: Job,
    /// The failure being remediated.
    pub failure: Failure,
    /// What has happened so far.
    pub history: History,
    /// When its first failure happened.
    pub first_failure_at: Timestamp,
    /// Reconciles asked so far.
    pub reconciles: u32,
    /// A verdict the `failed` hook has not received yet.
    pub verdict: Option<Box<Verdict>>,
    /// The submitted attempt whose result it awaits.
    pub awaiting: Option<Box<Awaiting>>,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// A side-effecting call an earlier holder started and never saw answered, not yet reconciled.
    pub unanswered: Option<String>,
}

impl StoredJob {
    /// Reads a row's payload; a version newer than this build's is refused.
    pub fn from_row(row: &JobRow) -> Result<StoredJob, StoreError> {
        let r = Record::decode(row)?;
        Ok(StoredJob {
            job: r.job,
            failure: r.failure,
            history: r.history,
            first_failure_at: r.first_failure_at,
            reconciles: r.reconciles,
            verdict: r.verdict,
            awaiting: r.awaiting,
            outcome: r.outcome,
            unanswered: r.unanswered,
        })
    }
}
