//! Jobs counted by when they came, what failed and how they stand: what an overview draws as a chart over the
//! last hours, counted by the store rather than read job by job.

use serde::Serialize;

use super::clock::Timestamp;

/// How many jobs submitted in one interval, remediating one failure, stand one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TallyRow {
    /// The interval's start: the jobs' submission times rounded down to a multiple of the interval (since the
    /// Unix epoch, so that hours start on the hour).
    pub bucket: Timestamp,
    /// The failure they remediate now (`2404`, `http:503`).
    pub code: String,
    /// `running` for active jobs, else how they ended (`recovered`, `failed`, `cancelled`).
    pub state: String,
    /// How many.
    pub jobs: u64,
}

/// The state of a job in a tally: its outcome, or `running`.
pub(crate) fn state_of(outcome: Option<&str>) -> &str {
    outcome.unwrap_or(RUNNING)
}

/// The state of active jobs in a tally.
pub const RUNNING: &str = "running";
