//! The host's side: a [`Job`] to remediate and the [`Hooks`] the engine calls to carry decisions out.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use serde::Serialize;
use serde_json::{Map, Value};

use super::job::{AttemptKey, Job};
use super::verdict::Verdict;
use crate::classify::Failure;
use crate::decide::CredentialScope;

/// What a resubmission or re-publication came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The asset is done.
    Succeeded,
    /// It failed again; the engine decides on this failure next.
    Failed(Failure),
    /// LightFlow accepted the attempt and will report its end later (an encode runs for minutes to hours):
    /// the job waits for [`Remediator::report`](super::Remediator::report), addressed by asset or by this
    /// `reference` (e.g. the new asset's uuid), holding no hook slot; when the stage's `await_result` runs
    /// out first, the engine asks [`Hooks::check`].
    Submitted {
        /// What names this attempt at LightFlow, e.g. the uuid `POST /assets` returned.
        reference: String,
    },
}

/// The host's answer to [`Hooks::check`]: what became of a submitted attempt that has not reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// It succeeded.
    Succeeded,
    /// It failed with this; the engine decides on it next.
    Failed(Failure),
    /// It is still running: wait another `await_result`.
    Running,
    /// It was cancelled where it runs (e.g. canceled at LightFlow by its owner): the job ends cancelled, as a
    /// report of the cancellation would end it.
    Canceled,
    /// No answer: the engine decides on a `timeout` failure.
    Unknown,
}

/// A submitted attempt that has not reported, as [`Hooks::check`] gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<'a> {
    /// The attempt's key.
    pub key: AttemptKey<'a>,
    /// Its reference, as the hook answered `Submitted`.
    pub reference: &'a str,
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
/// resubmits the whole asset, `reconcile` answers "not done", `check` does not know, `notify` logs through
/// `tracing`, and `failed` does nothing.
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

    /// Says whether an earlier attempt in fact succeeded: the one of `key` (attempt 0 is the host's own
    /// submission, before the engine's first). Asked by `reconcile()` stages and `reconcile_first`, and before
    /// an attempt whose call was under way when a replica died is repeated. The default: it did not.
    fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> impl Future<Output = Result<Reconciled, HookError>> + Send {
        let _ = (job, key);
        async { Ok(Reconciled::NotDone) }
    }

    /// Says what became of a submitted attempt whose result was not reported within its stage's
    /// `await_result`. The default does not know ([`Checked::Unknown`]): the engine decides on a `timeout`.
    fn check(&self, job: &Job, pending: &Pending<'_>) -> impl Future<Output = Result<Checked, HookError>> + Send {
        let _ = (job, pending);
        async { Ok(Checked::Unknown) }
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

/// Hooks shared behind an `Arc`: several remediators (replicas of one process, a remediator and a
/// restarted one) can call the same host.
impl<T: Hooks> Hooks for Arc<T> {
    fn resubmit(
        &self,
        job: &Job,
        amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> impl Future<Output = Result<Attempt, HookError>> + Send {
        (**self).resubmit(job, amend, key)
    }

    fn fix_credentials(
        &self,
        job: &Job,
        scope: CredentialScope,
    ) -> impl Future<Output = Result<CredentialFix, HookError>> + Send {
        (**self).fix_credentials(job, scope)
    }

    fn republish(
        &self,
        job: &Job,
        target: &str,
        new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> impl Future<Output = Result<Attempt, HookError>> + Send {
        (**self).republish(job, target, new_reference_id, key)
    }

    fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> impl Future<Output = Result<Reconciled, HookError>> + Send {
        (**self).reconcile(job, key)
    }

    fn check(&self, job: &Job, pending: &Pending<'_>) -> impl Future<Output = Result<Checked, HookError>> + Send {
        (**self).check(job, pending)
    }

    fn notify(&self, job: &Job, notice: &Notice) -> impl Future<Output = Result<(), HookError>> + Send {
        (**self).notify(job, notice)
    }

    fn failed(&self, job: &Job, verdict: &Verdict) -> impl Future<Output = Result<(), HookError>> + Send {
        (**self).failed(job, verdict)
    }
}
