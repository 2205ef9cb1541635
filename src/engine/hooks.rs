//! The host's side: a [`Job`] to remediate and the [`Hooks`] the engine calls to carry decisions out.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::Failure;
use crate::decide::{Context, CredentialScope};
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

/// What a resubmission or re-publication came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The asset is done.
    Succeeded,
    /// It failed again; the engine decides on this failure next.
    Failed(Failure),
}

/// The host's answer to `fix_credentials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFix {
    /// Repaired: the engine resubmits.
    Fixed,
    /// Not possible: the policy goes on to its next stage.
    CannotFix,
}

/// The host's answer to `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciled {
    /// The earlier attempt in fact succeeded: the job ends recovered, with no duplicate.
    Done,
    /// It did not: the policy goes on.
    NotDone,
}

/// A message for an operator, from a `notify` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Where to send it.
    pub channel: Arc<str>,
    /// What to say.
    pub message: Arc<str>,
    /// The failure it is about, e.g. `3004` or `http:503`.
    pub about: String,
}

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

/// A hook's own error: the job ends failed with [`VerdictKind::HookError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        HookError(message.into())
    }
}

/// The changes of a plain resubmission.
pub(crate) static NO_CHANGES: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// What the host implements so that the engine can carry decisions out. All hooks are async and `Send`.
///
/// Only [`Hooks::resubmit`] is required; the others have defaults: `fix_credentials` cannot fix, `republish`
/// resubmits the whole asset, `reconcile` answers "not done", `notify` logs through `tracing`, and `failed`
/// does nothing.
///
/// ```
/// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job};
/// use serde_json::{Map, Value};
///
/// struct MyHost;
///
/// impl Hooks for MyHost {
///     async fn resubmit(&self, job: &Job, amend: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
///         // POST the asset again with `amend` applied, using `key` as the idempotency key ...
///         let _ = (job, amend, key);
///         Ok(Attempt::Succeeded)
///     }
/// }
/// ```
pub trait Hooks: Send + Sync + 'static {
    /// Resubmits the asset, with `amend` applied to its parameters (empty for a plain retry), and reports how
    /// it went. `key` identifies this attempt.
    fn resubmit(
        &self,
        job: &Job,
        amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> impl Future<Output = Result<Attempt, HookError>> + Send;

    /// Repairs credentials of `scope`. The default cannot.
    fn fix_credentials(
        &self,
        job: &Job,
        scope: CredentialScope,
    ) -> impl Future<Output = Result<CredentialFix, HookError>> + Send {
        let _ = (job, scope);
        async { Ok(CredentialFix::CannotFix) }
    }

    /// Redoes only the publication to `target`, under a new reference id if asked. The default resubmits the
    /// whole asset.
    fn republish(
        &self,
        job: &Job,
        target: &str,
        new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> impl Future<Output = Result<Attempt, HookError>> + Send {
        let _ = (target, new_reference_id);
        self.resubmit(job, &NO_CHANGES, key)
    }

    /// Says whether the earlier attempt in fact succeeded. The default: it did not.
    fn reconcile(&self, job: &Job) -> impl Future<Output = Result<Reconciled, HookError>> + Send {
        let _ = job;
        async { Ok(Reconciled::NotDone) }
    }

    /// Tells an operator. The default logs a warning through `tracing`.
    fn notify(&self, job: &Job, notice: &Notice) -> impl Future<Output = Result<(), HookError>> + Send {
        tracing::warn!(asset = job.asset_id(), channel = %notice.channel, about = %notice.about, "{}", notice.message);
        async { Ok(()) }
    }

    /// Receives the verdict of a job that failed for good (the host's dead-letter queue). The default does
    /// nothing.
    fn failed(&self, job: &Job, verdict: &Verdict) -> impl Future<Output = Result<(), HookError>> + Send {
        let _ = (job, verdict);
        async { Ok(()) }
    }
}
