//! Helpers for testing remediation: policies from inline script text, one-line decision assertions, a
//! recording fake of the hooks with scripted answers, and a runner that takes a job to its outcome under paused
//! tokio time and returns the timeline of hook calls.
//!
//! ```
//! use lightflow_remedy::engine::{HookName, Outcome};
//! use lightflow_remedy::testing::{FakeHooks, Scripted, policies, run_job};
//! use lightflow_remedy::{ActionKind, Failure};
//! use std::time::Duration;
//!
//! let policies = policies(r#"on(2503, retry(#{ attempts: 2, initial: "1m" }).then(fail("gave up")));"#);
//! lightflow_remedy::testing::assert_decides(&policies, "2503", ActionKind::Retry);
//!
//! let unavailable = Failure::asset(2503, "unavailable").unwrap();
//! let hooks = FakeHooks::new().script("a1", HookName::Resubmit, [Scripted::Fail(unavailable.clone()), Scripted::Succeed]);
//! let run = run_job(policies, hooks, "a1", unavailable);
//! assert!(matches!(run.outcome, Outcome::Recovered { attempts: 2, .. }));
//! assert_eq!(run.times_of(HookName::Resubmit), [Duration::from_secs(60), Duration::from_secs(180)]);
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::classify::{Failure, FailureKey};
use crate::decide::{ActionKind, Context, CredentialScope, History, Policies};
use crate::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, HookError, HookName, Hooks, Job, Notice, Outcome, Pending, Reconciled,
    Remediator, RemediatorBuilder, Verdict,
};

/// The built-in defaults plus `script` as `test.rhai`. Panics with every error (file:line:col) when the script
/// does not load: this is for tests.
pub fn policies(script: &str) -> Policies {
    Policies::builder().source("test.rhai", script).build().unwrap_or_else(|e| panic!("test.rhai does not load:\n{e}"))
}

/// Asserts that the first failure with `key` (e.g. `"2404"`, `"http:429"`, `"timeout"`) gets `action`.
pub fn assert_decides(policies: &Policies, key: &str, action: ActionKind) {
    assert_decides_with(policies, key, &Context::new(), action);
}

/// Asserts that the first failure with `key` gets `action` in context `ctx`.
pub fn assert_decides_with(policies: &Policies, key: &str, ctx: &Context, action: ActionKind) {
    let key: FailureKey = key.parse().unwrap_or_else(|e| panic!("`{key}` is not a failure key: {e}"));
    let failure = Failure::from_key(key, "").unwrap_or_else(|e| panic!("{e}"));
    let mut history = History::new(0);
    history.record_failure(&failure);
    let decision = policies.decide(&failure, &history, ctx);
    assert_eq!(
        decision.kind(),
        action,
        "{key}: expected {action}, the policies decide {} (rule {})",
        decision.kind(),
        decision.rule().origin()
    );
}

/// An answer a [`FakeHooks`] gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    /// `resubmit`/`republish`: the asset is done. `check`: it had succeeded.
    Succeed,
    /// `resubmit`/`republish`: it failed again with this. `check`: it had failed with this.
    Fail(Failure),
    /// `resubmit`/`republish`: LightFlow took it under this reference; its result is reported later.
    Submit(String),
    /// `check`: still running.
    Running,
    /// `check`: cancelled where it runs.
    Canceled,
    /// `fix_credentials`: repaired.
    Fixed,
    /// `fix_credentials`: cannot.
    CannotFix,
    /// `reconcile`: the earlier attempt had succeeded.
    Done,
    /// `reconcile`: it had not.
    NotDone,
    /// `notify`, `failed`: accepted (what they answer by default; for use after a [`Scripted::Delay`]).
    Accept,
    /// Any hook: return this error.
    Error(String),
    /// Any hook: panic with this message.
    Panic(String),
    /// Any hook: never answer (the engine's timeout ends the call).
    Hang,
    /// Any hook: take this long, then give the next scripted answer.
    Delay(Duration, Box<Scripted>),
}

/// One hook call a [`FakeHooks`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When, since the fake was created (tokio time).
    pub at: Duration,
    /// Which hook.
    pub hook: HookName,
    /// For which asset.
    pub asset_id: String,
    /// The attempt key's number, for resubmissions and re-publications.
    pub attempt: Option<u32>,
    /// The attempt key's text (`asset-id#job.attempt`), for resubmissions and re-publications.
    pub key: Option<String>,
    /// The call's arguments, in words: the changes of a resubmission, the scope, the target, the message.
    pub detail: String,
}

#[derive(Default)]
struct Script {
    answers: HashMap<(String, HookName), VecDeque<Scripted>>,
    calls: Vec<Call>,
}

/// A recording fake of the host's hooks: each hook answers from a script per asset, or by default (resubmit
/// and republish succeed, credentials get fixed, reconcile finds nothing, notify and failed accept).
#[derive(Clone)]
pub struct FakeHooks {
    start: Instant,
    script: Arc<Mutex<Script>>,
}

impl Default for FakeHooks {
    fn default() -> Self {
        FakeHooks::new()
    }
}

impl FakeHooks {
    /// A fake with no script; its clock starts now (tokio time).
    pub fn new() -> Self {
        FakeHooks { start: Instant::now(), script: Arc::new(Mutex::new(Script::default())) }
    }

    /// Queues `answers` for `hook` of `asset_id`, given in order, one per call.
    pub fn script(self, asset_id: &str, hook: HookName, answers: impl IntoIterator<Item = Scripted>) -> Self {
        self.lock().answers.entry((asset_id.to_owned(), hook)).or_default().extend(answers);
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls for one asset.
    pub fn calls_for(&self, asset_id: &str) -> Vec<Call> {
        self.lock().calls.iter().filter(|c| c.asset_id == asset_id).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call and takes its scripted answer.
    fn take(&self, job: &Job, hook: HookName, key: Option<&AttemptKey<'_>>, detail: String) -> Option<Scripted> {
        let mut script = self.lock();
        let at = Instant::now().saturating_duration_since(self.start);
        let (attempt, key) = (key.map(|k| k.attempt), key.map(|k| k.to_string()));
        script.calls.push(Call { at, hook, asset_id: job.asset_id().to_owned(), attempt, key, detail });
        script.answers.get_mut(&(job.asset_id().to_owned(), hook)).and_then(VecDeque::pop_front)
    }
}

/// Plays a scripted answer: waits, hangs, errors or panics as told, else maps the answer with `ok`.
async fn play<T>(answer: Option<Scripted>, default: T, ok: impl Fn(Scripted) -> Option<T>) -> Result<T, HookError> {
    let mut answer = answer;
    while let Some(Scripted::Delay(d, next)) = answer {
        tokio::time::sleep(d).await;
        answer = Some(*next);
    }
    match answer {
        None => Ok(default),
        Some(Scripted::Error(e)) => Err(HookError::new(e)),
        Some(Scripted::Panic(m)) => panic!("{m}"),
        Some(Scripted::Hang) => std::future::pending().await,
        Some(other) => {
            let text = format!("{other:?}");
            ok(other)
                .ok_or_else(|| HookError::new(format!("the fake was scripted {text}, which this hook cannot answer")))
        }
    }
}

fn accept(s: Scripted) -> Option<()> {
    matches!(s, Scripted::Accept).then_some(())
}

fn attempt(s: Scripted) -> Option<Attempt> {
    match s {
        Scripted::Succeed => Some(Attempt::Succeeded),
        Scripted::Fail(f) => Some(Attempt::Failed(f)),
        Scripted::Submit(reference) => Some(Attempt::Submitted { reference }),
        _ => None,
    }
}

impl Hooks for FakeHooks {
    async fn resubmit(
        &self,
        job: &Job,
        amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let answer = self.take(job, HookName::Resubmit, Some(key), Value::Object(amend.clone()).to_string());
        play(answer, Attempt::Succeeded, attempt).await
    }

    async fn fix_credentials(&self, job: &Job, scope: CredentialScope) -> Result<CredentialFix, HookError> {
        let answer = self.take(job, HookName::FixCredentials, None, scope.to_string());
        play(answer, CredentialFix::Fixed, |s| match s {
            Scripted::Fixed => Some(CredentialFix::Fixed),
            Scripted::CannotFix => Some(CredentialFix::CannotFix),
            _ => None,
        })
        .await
    }

    async fn republish(
        &self,
        job: &Job,
        target: &str,
        new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let detail = format!("{target}{}", if new_reference_id { " with a new reference id" } else { "" });
        let answer = self.take(job, HookName::Republish, Some(key), detail);
        play(answer, Attempt::Succeeded, attempt).await
    }

    async fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        let answer = self.take(job, HookName::Reconcile, None, key.to_string());
        play(answer, Reconciled::NotDone, |s| match s {
            Scripted::Done => Some(Reconciled::Done),
            Scripted::NotDone => Some(Reconciled::NotDone),
            _ => None,
        })
        .await
    }

    async fn notify(&self, job: &Job, notice: &Notice) -> Result<(), HookError> {
        let answer = self.take(job, HookName::Notify, None, format!("{}: {}", notice.channel, notice.message));
        play(answer, (), accept).await
    }

    async fn check(&self, job: &Job, pending: &Pending<'_>) -> Result<Checked, HookError> {
        let answer = self.take(job, HookName::Check, Some(&pending.key), pending.reference.to_owned());
        play(answer, Checked::Unknown, |s| match s {
            Scripted::Succeed => Some(Checked::Succeeded),
            Scripted::Fail(f) => Some(Checked::Failed(f)),
            Scripted::Running => Some(Checked::Running),
            Scripted::Canceled => Some(Checked::Canceled),
            _ => None,
        })
        .await
    }

    async fn failed(&self, job: &Job, verdict: &Verdict) -> Result<(), HookError> {
        let answer = self.take(job, HookName::Failed, None, verdict.reason.clone());
        play(answer, (), accept).await
    }
}

/// A job run to its end by [`run_job`].
#[derive(Debug, Clone)]
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// Every hook call, with its time since the start.
    pub calls: Vec<Call>,
}

impl Run {
    /// When `hook` was called, in order.
    pub fn times_of(&self, hook: HookName) -> Vec<Duration> {
        self.calls.iter().filter(|c| c.hook == hook).map(|c| c.at).collect()
    }

    /// The hooks called, in order.
    pub fn hooks(&self) -> Vec<HookName> {
        self.calls.iter().map(|c| c.hook).collect()
    }
}

/// Runs one job to its outcome on a fresh single-threaded runtime with paused time, so that every delay
/// passes at once and is recorded exactly. Uses the default remediator settings without circuit breakers; see
/// [`run_job_with`] for others.
pub fn run_job(policies: Policies, hooks: FakeHooks, job: impl Into<Job>, failure: Failure) -> Run {
    run_job_with(policies, hooks, job, failure, |builder| builder)
}

/// [`run_job`] with the remediator's settings of the test: `setup` gets the builder (without circuit breakers)
/// and returns it configured.
///
/// ```
/// use lightflow_remedy::engine::{HookName, Job, Outcome, RetryBudget, VerdictKind};
/// use lightflow_remedy::testing::{FakeHooks, Scripted, policies, run_job_with};
/// use lightflow_remedy::Failure;
///
/// let down = Failure::asset(2001, "download failed").unwrap();
/// let hooks = FakeHooks::new().script("a1", HookName::Resubmit, vec![Scripted::Fail(down.clone()); 5]);
/// let job = Job::new("a1").with_seed(7);
/// // A gRPC budget of 4 tokens: the first failure leaves 3, the retry's failure 2 (half): no more retries.
/// let run = run_job_with(policies(""), hooks, job, down, |b| b.retry_budget(RetryBudget::grpc(4, 0.1).unwrap()));
/// assert!(matches!(&run.outcome, Outcome::Failed { verdict } if verdict.kind == VerdictKind::BudgetExhausted));
/// assert_eq!(run.times_of(HookName::Resubmit).len(), 1);
/// ```
pub fn run_job_with(
    policies: Policies,
    hooks: FakeHooks,
    job: impl Into<Job>,
    failure: Failure,
    setup: impl FnOnce(RemediatorBuilder<FakeHooks>) -> RemediatorBuilder<FakeHooks>,
) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("a test runtime: {e}"));
    let job = job.into();
    runtime.block_on(async move {
        // The fake's clock starts with the job.
        let hooks = FakeHooks { start: Instant::now(), script: hooks.script };
        let remediator = setup(Remediator::builder(policies, hooks.clone()).without_circuit_breaker()).build();
        let handle = remediator.enqueue(job, failure).await.unwrap_or_else(|e| panic!("{e}"));
        let outcome = handle.await;
        Run { outcome, calls: hooks.calls() }
    })
}
