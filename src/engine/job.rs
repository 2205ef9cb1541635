//! The host's job: one asset to remediate, its context and metadata, and the idempotency key of each attempt.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::decide::Context;
use crate::store::JobId;

/// One asset to remediate: its id, the host's context for it, and the seed of its jitter. Once submitted it
/// also carries the engine's [`JobId`].
///
/// ```
/// use lightflow_remedy::engine::Job;
/// let job = Job::new("asset-42").with_seed(7);
/// assert_eq!((job.asset_id(), job.seed()), ("asset-42", 7));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    asset_id: Arc<str>,
    #[serde(default)]
    context: Context,
    seed: u64,
    /// Given by the engine at submit; kept by suspension and resume.
    #[serde(default)]
    id: JobId,
}

impl Job {
    /// A job for `asset_id`, with an empty context and a seed derived from the id (FNV-1a), so that
    /// different assets spread their retries differently and the same asset always the same way.
    pub fn new(asset_id: impl Into<Arc<str>>) -> Self {
        let asset_id = asset_id.into();
        let seed =
            asset_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Job { asset_id, context: Context::new(), seed, id: JobId::default() }
    }

    /// The same job with the host's context (tenant, plan, asset parameters, ...).
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// The same job with an explicit jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The asset's id: one active remediation per id.
    pub fn asset_id(&self) -> &str {
        &self.asset_id
    }

    /// The host's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The jitter seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The engine's id of this remediation (0 before the job is submitted).
    pub fn job_id(&self) -> JobId {
        self.id
    }

    pub(crate) fn id(&self) -> &Arc<str> {
        &self.asset_id
    }

    pub(crate) fn set_job_id(&mut self, id: JobId) {
        self.id = id;
    }
}

impl From<&str> for Job {
    fn from(asset_id: &str) -> Self {
        Job::new(asset_id)
    }
}

/// A stable idempotency key for one attempt of one job: the host can drop a duplicate resubmission (for
/// example after a shutdown and resume repeats a call whose answer was lost). A later job of the same asset
/// has another job id, so its keys never repeat an earlier job's.
///
/// It borrows the job's asset id for the length of the call; its text, `asset-id#job.attempt`, is the form to
/// keep or to send as an idempotency key.
///
/// ```
/// use lightflow_remedy::engine::{AttemptKey, JobId};
/// let key = AttemptKey { asset_id: "asset-42", job: JobId(7), attempt: 2 };
/// assert_eq!(key.to_string(), "asset-42#7.2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AttemptKey<'a> {
    /// The asset.
    pub asset_id: &'a str,
    /// The job: one remediation of the asset.
    pub job: JobId,
    /// Which resubmission or re-publication of the job, from 1.
    pub attempt: u32,
}

impl fmt::Display for AttemptKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}.{}", self.asset_id, self.job, self.attempt)
    }
}
