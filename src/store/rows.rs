//! The rows a store keeps and the messages it takes: jobs, their leases, the ledger of side-effecting calls,
//! reports.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::clock::Timestamp;
use crate::classify::catalogue::Category;

/// The store's id of one remediation of one asset: a later job of the same asset gets another, so that
/// idempotency keys (which carry it) are never reused.
///
/// Durable stores number their jobs; the engine's in-memory jobs draw theirs from a random start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    /// The number, padded as the formatter asks (`{:<10}` lines up a column).
    ///
    /// ```
    /// use lightflow_remedy::store::JobId;
    /// assert_eq!(format!("{:<4}|{:>4}", JobId(7), JobId(42)), "7   |  42");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Where a job stands, as far as the store needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Between attempts: due at `wake_at` (a decision, a delay, a dead letter to deliver).
    Waiting,
    /// A side-effecting hook call was started and has not answered (the ledger has it).
    Calling,
    /// An attempt was submitted to LightFlow; its result is reported later, or checked at `wake_at`.
    Awaiting,
    /// Ended; kept for the retention period.
    Finished,
}

impl Phase {
    /// Its name in rows and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Calling => "calling",
            Phase::Awaiting => "awaiting",
            Phase::Finished => "finished",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "waiting" => Ok(Phase::Waiting),
            "calling" => Ok(Phase::Calling),
            "awaiting" => Ok(Phase::Awaiting),
            "finished" => Ok(Phase::Finished),
            other => Err(format!("`{other}` is not a phase (waiting, calling, awaiting, finished)")),
        }
    }
}

/// A job to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The asset: one active job each.
    pub asset_id: &'a str,
    /// The engine's payload (JSON) and its version.
    pub payload: &'a str,
    /// The payload's version.
    pub version: u32,
    /// The failure being remediated, e.g. `2404` or `http:503`.
    pub last_code: &'a str,
    /// When it is first due.
    pub wake_at: Timestamp,
    /// What makes this hand-over the same as an earlier one (e.g. the failed asset's LightFlow uuid): a job
    /// submitted with a key a job of the store already has (active, or finished and not yet pruned) is not
    /// made again ([`Submitted::Deduplicated`]). `None`: no deduplication beyond one active job per asset.
    pub dedupe_key: Option<&'a str>,
}

impl<'a> NewJob<'a> {
    /// A job for `asset_id` with the engine's `payload` (of `version`), remediating `last_code`, first due at
    /// `wake_at`, without a dedupe key.
    ///
    /// ```
    /// use lightflow_remedy::store::{NewJob, Timestamp};
    /// let new = NewJob::new("a1", "{}", 1, "2001", Timestamp(0)).with_dedupe_key("uuid-1");
    /// assert_eq!(new.dedupe_key, Some("uuid-1"));
    /// ```
    pub fn new(asset_id: &'a str, payload: &'a str, version: u32, last_code: &'a str, wake_at: Timestamp) -> Self {
        NewJob { asset_id, payload, version, last_code, wake_at, dedupe_key: None }
    }

    /// The same job, deduplicated by `key`.
    pub fn with_dedupe_key(mut self, key: &'a str) -> Self {
        self.dedupe_key = Some(key);
        self
    }
}

/// What a submit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// A new job.
    New(JobId),
    /// The asset already had an active job: this one.
    Joined(JobId),
    /// A job of the store (active, or finished within the retention) was made with the same dedupe key:
    /// this one. Nothing was written.
    Deduplicated(JobId),
}

impl Submitted {
    /// The job the submit made or found.
    pub fn job(self) -> JobId {
        match self {
            Submitted::New(id) | Submitted::Joined(id) | Submitted::Deduplicated(id) => id,
        }
    }
}

/// A holder's right to a job: the job and the epoch of its claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// Grows at every claim: a write of an older epoch is refused.
    pub epoch: u64,
    /// Who holds it.
    pub owner: Arc<str>,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The lease taken.
    pub lease: Lease,
    /// The job's row as it was claimed.
    pub row: JobRow,
    /// Whether an earlier holder's lease had expired on it (a takeover), rather than the job being at rest.
    pub taken_over: bool,
}

/// A job's row.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Its id.
    pub id: JobId,
    /// The asset.
    pub asset_id: String,
    /// Where it stands.
    pub phase: Phase,
    /// When it is next due (at rest), or when its holder's lease expires (held).
    pub wake_at: Timestamp,
    /// Who holds it, if anyone (an expired holder too, until the job is taken over).
    pub lease_owner: Option<String>,
    /// The epoch of the latest claim.
    pub epoch: u64,
    /// The engine's payload (JSON).
    pub payload: String,
    /// The payload's version.
    pub version: u32,
    /// The failure being remediated.
    pub last_code: String,
    /// Resubmissions and re-publications made.
    pub attempts: u32,
    /// The attempt under way (its hook being called, or its result awaited), 0 when none is.
    pub attempt: u32,
    /// When the attempt under way began (its first call), on the store's clock.
    pub attempt_at: Option<Timestamp>,
    /// The key the job was submitted with, if any ([`NewJob::dedupe_key`]).
    pub dedupe_key: Option<String>,
    /// The reference of the attempt under way (e.g. the LightFlow asset uuid of a submitted attempt).
    pub reference: Option<String>,
    /// A report not yet taken by the engine (JSON).
    pub report: Option<String>,
    /// Whether a cancellation was asked while the job was held.
    pub cancel_requested: bool,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How it ended (`recovered`, `failed`, `cancelled`).
    pub outcome: Option<String>,
}

/// A holder's write of its job.
#[derive(Debug, Clone, Copy)]
pub struct Save<'a> {
    /// Where the job stands now.
    pub phase: Phase,
    /// When it is next due, if it goes to rest.
    pub wake_at: Timestamp,
    /// Let go of the lease: the job goes to rest until `wake_at`.
    pub release: bool,
    /// The payload and its version.
    pub payload: &'a str,
    /// The payload's version.
    pub version: u32,
    /// The failure being remediated.
    pub last_code: &'a str,
    /// Attempts made.
    pub attempts: u32,
    /// The attempt under way, 0 when none is: the one whose call this save begins, or whose result the job
    /// awaits. Reports addressed by attempt are judged against it.
    pub attempt: u32,
    /// The write is refused ([`StoreError::LeaseLost`](super::StoreError::LeaseLost)) unless the lease is
    /// unexpired at least until this time on the store's clock: `now` for a plain write, later for the write
    /// that starts a side-effecting call (a margin for the call's start), so that no call starts under a lease
    /// about to run out.
    pub fence_until: Timestamp,
    /// With `release` to [`Phase::Awaiting`]: whether a report on the row makes the job due at once (the
    /// engine's normal rest). Off for a row left alone (one this build cannot read), which must not be claimed
    /// again at once.
    pub wake_on_report: bool,
    /// The reference of the attempt under way.
    pub reference: Option<&'a str>,
    /// The ledger entries written with this save, in the same transaction, in order (typically the last
    /// call's answer, then the start of the next).
    pub ledger: &'a [LedgerWrite<'a>],
    /// Whether the row's report was taken (cleared), or is left for later.
    pub take_report: bool,
    /// How the job ended, with `Phase::Finished`.
    pub outcome: Option<&'a str>,
}

/// What a save found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// A cancellation was asked while the job was held.
    pub cancel_requested: bool,
    /// A report is waiting on the row (it came early, or was held for the reference just saved).
    pub report: Option<String>,
}

/// An entry of the ledger of side-effecting calls.
#[derive(Debug, Clone, Copy)]
pub enum LedgerWrite<'a> {
    /// A call is about to start, with this idempotency key.
    Begin {
        /// The key (`asset#job.attempt`, or the hook's name for calls without an attempt).
        key: &'a str,
        /// The hook.
        hook: &'a str,
    },
    /// The call with this key answered.
    End {
        /// The key.
        key: &'a str,
        /// Its answer, in words.
        answer: &'a str,
    },
}

/// One side-effecting call in a job's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// Its idempotency key.
    pub key: String,
    /// The hook.
    pub hook: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it answered; `None` while it has not (or its holder died first).
    pub answered_at: Option<Timestamp>,
    /// Its answer, in words.
    pub answer: Option<String>,
}

/// What a renewal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewed {
    /// Leases no longer the holder's: stop working on these jobs at once.
    pub lost: Vec<JobId>,
    /// Held jobs whose cancellation was asked.
    pub cancel_requested: Vec<JobId>,
}

/// Whom a report is for.
///
/// The surest address is the attempt itself ([`ReportTarget::Attempt`]: a callback URL that carries the attempt's
/// key names it). A report by reference is about the attempt that answered `Submitted` with it. A report by
/// asset alone is applied only when it cannot be about an earlier attempt: it must say when the attempt it is
/// about ended ([`ReportTarget::AssetEndedAt`], e.g. a LightFlow callback's `endDate`), and that must not be
/// before the attempt under way began; one without an end time ([`ReportTarget::Asset`]) could be about any
/// attempt of the job, and is answered [`ReportAnswer::Ambiguous`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTarget<'a> {
    /// The active job of this asset, for its attempt under way, with no word of when the attempt ended: it
    /// changes nothing ([`ReportAnswer::Ambiguous`]), and a job awaiting a result asks `check` at once.
    Asset(&'a str),
    /// The active job of this asset, for an attempt that ended at this time (on the reporter's clock): applied
    /// to the attempt under way unless it ended before that attempt began.
    AssetEndedAt(&'a str, Timestamp),
    /// The attempt that answered `Submitted` with this reference (e.g. a LightFlow uuid).
    Reference(&'a str),
    /// The attempt `attempt` of job `job`, as its key names it (`asset#job.attempt`).
    Attempt {
        /// The job.
        job: JobId,
        /// Which attempt of it, from 1.
        attempt: u32,
    },
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ReportAnswer {
    /// It is the result of the attempt the job awaits: the job goes on with it.
    Applied {
        /// The job.
        job: JobId,
    },
    /// The job's attempt is still being submitted (its hook has not answered): the report is kept, and
    /// applied when the hook answers `Submitted`.
    Early {
        /// The job.
        job: JobId,
    },
    /// No job awaits this reference yet: the report is held for a while, in case its attempt is being
    /// submitted right now; otherwise it is dropped.
    Held,
    /// The job already had a report for this attempt: this one changes nothing.
    Duplicate {
        /// The job.
        job: JobId,
    },
    /// The report is about an earlier attempt of the job (or the job has no attempt under way): it changes
    /// nothing.
    OlderAttempt {
        /// The job.
        job: JobId,
    },
    /// The job has ended: the report changes nothing.
    Finished {
        /// The job.
        job: JobId,
    },
    /// The report could be about more than one attempt of the job (it names the asset alone, and says
    /// nothing of when its attempt ended): it changes nothing. A job awaiting a result asks the host's `check`
    /// at once, which decides.
    Ambiguous {
        /// The job.
        job: JobId,
    },
    /// No job of this asset, reference or attempt is known (or, for a report by reference, the store holds as
    /// many reports for unknown references as it may, and this one replaced the oldest): the report changes
    /// nothing.
    Unknown,
}

impl ReportAnswer {
    /// The answer's name, as in its JSON (`applied`, `early`, `held`, `duplicate`, `older_attempt`, `finished`,
    /// `ambiguous`, `unknown`).
    ///
    /// ```
    /// use lightflow_remedy::store::{JobId, ReportAnswer};
    /// assert_eq!(ReportAnswer::OlderAttempt { job: JobId(1) }.as_str(), "older_attempt");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportAnswer::Applied { .. } => "applied",
            ReportAnswer::Early { .. } => "early",
            ReportAnswer::Held => "held",
            ReportAnswer::Duplicate { .. } => "duplicate",
            ReportAnswer::OlderAttempt { .. } => "older_attempt",
            ReportAnswer::Finished { .. } => "finished",
            ReportAnswer::Ambiguous { .. } => "ambiguous",
            ReportAnswer::Unknown => "unknown",
        }
    }
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum CancelAnswer {
    /// The job was at rest and is now cancelled.
    Cancelled {
        /// The job.
        job: JobId,
    },
    /// The job is held by a replica, which is asked to cancel it.
    Requested {
        /// The job.
        job: JobId,
    },
    /// The asset has no active job.
    NoJob,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only in this phase.
    pub phase: Option<Phase>,
    /// Only with this outcome (`recovered`, `failed`, `cancelled`).
    pub outcome: Option<String>,
    /// Only remediating this failure (`2404`, `http:503`).
    pub code: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
    /// Only of an asset whose id contains this text (as written: case counts).
    pub asset: Option<String>,
    /// Only remediating a failure of this category (the catalogue's: `2404` is storage, `http:503` api).
    pub category: Option<Category>,
    /// Skips this many of the jobs that match, newest first (a page further on).
    pub offset: usize,
}

/// A shared guard's state as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRow {
    /// The engine's JSON.
    pub value: String,
    /// Grows at every write.
    pub version: u64,
}

/// Counts of a store's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Active jobs by phase.
    pub by_phase: std::collections::BTreeMap<String, u64>,
    /// Finished jobs kept, by outcome.
    pub by_outcome: std::collections::BTreeMap<String, u64>,
    /// Active jobs due now and not held.
    pub due_now: u64,
    /// Jobs held by a replica whose lease has not expired.
    pub held: u64,
    /// Held reports waiting for their reference.
    pub held_reports: u64,
    /// Held reports this process dropped to keep within the store's cap, since it opened the store.
    pub held_reports_dropped: u64,
    /// Write transactions this process committed on a SQLite store since it opened it (0 on the other
    /// stores): over the writes made, how well group commit gathers them.
    pub commits: u64,
}

/// The rows that could be read, in order; one that could not is left out (and said), so that one damaged row
/// does not hold back the others read with it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn readable(rows: impl Iterator<Item = Result<JobRow, super::StoreError>>, store: &str) -> Vec<JobRow> {
    rows.filter_map(|row| row.inspect_err(|e| tracing::error!(store, error = %e, "a job's row is unreadable")).ok())
        .collect()
}
