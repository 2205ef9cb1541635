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
