//! What operators did: the web view's actions (cancel, retry now), each with who did it, logged beside the jobs
//! so that every replica's page lists them.

use serde::Serialize;

use super::clock::Timestamp;
use super::rows::JobId;

/// An action to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAction<'a> {
    /// The asset acted on.
    pub asset_id: &'a str,
    /// Its job, when it had one.
    pub job: Option<JobId>,
    /// What was asked (`cancel`, `retry_now`).
    pub action: &'a str,
    /// The role of who asked (`operator`).
    pub role: &'a str,
    /// Who asked: a short fingerprint of their token, never the token.
    pub who: &'a str,
    /// What came of it (`cancelled`, `requested`, `no_job`, `due_now`, `not_at_rest`).
    pub answer: &'a str,
}

/// An action as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRow {
    /// Its number, growing.
    pub id: u64,
    /// When it was taken, on the store's clock.
    pub at: Timestamp,
    /// The asset acted on.
    pub asset_id: String,
    /// Its job, when it had one.
    pub job: Option<JobId>,
    /// What was asked.
    pub action: String,
    /// The role of who asked.
    pub role: String,
    /// Who asked (a token's fingerprint).
    pub who: String,
    /// What came of it.
    pub answer: String,
}

/// The columns of an action row as a database store reads them: id, at, asset, job, action, role, who, answer.
pub(crate) type ActionColumns = (i64, i64, String, Option<i64>, String, String, String, String);

impl ActionRow {
    /// An action from the columns a database store read.
    pub(crate) fn from_columns((id, at, asset_id, job, action, role, who, answer): ActionColumns) -> ActionRow {
        ActionRow {
            id: u64::try_from(id).unwrap_or(0),
            at: Timestamp(at),
            asset_id,
            job: job.and_then(|j| u64::try_from(j).ok()).map(JobId),
            action,
            role,
            who,
            answer,
        }
    }
}
