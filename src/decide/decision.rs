//! Decisions: what to do about one failure, where in the chain it stands, how long to wait, and why.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::action::{Action, ActionKind};
use super::policy::Stage;
use super::rules::Rule;
use super::schedule::DelaySource;
use crate::diagnostic::Diagnostic;

/// The action of a decision whose chain has run out.
static EXHAUSTED: LazyLock<Action> =
    LazyLock::new(|| Action::Fail { reason: Arc::from("every stage of the policy is exhausted") });

/// The rule a decision came from: borrowed from the loaded table, or owned when a `decide` function built it.
#[derive(Debug, Clone)]
pub(crate) enum RuleRef<'p> {
    Table(&'p Arc<Rule>),
    Owned(Arc<Rule>),
}

impl RuleRef<'_> {
    #[inline]
    pub(super) fn get(&self) -> &Rule {
        match self {
            RuleRef::Table(rule) => rule,
            RuleRef::Owned(rule) => rule,
        }
    }
}

/// What to do about one failure.
///
/// It borrows the [`Policies`](crate::Policies) it came from; [`Decision::into_owned`] detaches it.
///
/// ```
/// use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
///
/// let policies = Policies::defaults();
/// let decision = policies.decide(&Failure::asset(2404, "not found")?, &History::new(0), &Context::new());
/// assert_eq!(decision.kind(), ActionKind::Fail);
/// assert!(decision.reason().unwrap().contains("URL"));
/// assert_eq!(decision.rule().origin().file.as_ref(), "policies/00-lightflow.rhai");
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    pub(super) rule: RuleRef<'p>,
    /// u32, not usize: a running job keeps its decision while it waits.
    pub(super) stage: Option<u32>,
    pub(super) attempt: u32,
    pub(super) delay: Option<Duration>,
    pub(super) delay_source: Option<DelaySource>,
    pub(super) script_error: Option<Box<Diagnostic>>,
}

impl<'p> Decision<'p> {
    /// The stage the decision is at; `None` when the chain is exhausted.
    pub fn stage_ref(&self) -> Option<&Stage> {
        self.stage.map(|i| &self.rule.get().policy().stages()[i as usize])
    }

    /// What to do.
    #[inline]
    pub fn action(&self) -> &Action {
        match self.stage {
            Some(i) => self.rule.get().policy().stages()[i as usize].action(),
            None => &EXHAUSTED,
        }
    }

    /// The action's name.
    #[inline]
    pub fn kind(&self) -> ActionKind {
        self.action().kind()
    }

    /// How long to wait before acting; `None` for actions that do not wait.
    #[inline]
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Whether the delay came from the backoff sequence or from the server's Retry-After.
    pub fn delay_source(&self) -> Option<DelaySource> {
        self.delay_source
    }

    /// How long an attempt made at this decision may take to report its result, if its hook answers
    /// `Submitted`, before the engine asks the host's `check` hook: the stage's `await_result` option. `None`
    /// when the stage does not set it (the remediator's own applies, 6 h unless its builder says otherwise).
    ///
    /// ```
    /// use lightflow_remedy::{Context, Failure, History, Policies};
    /// use std::time::Duration;
    ///
    /// let policies = Policies::builder()
    ///     .source("10-encodes.rhai", r#"on(2001, retry(#{ attempts: 2, initial: "1m", await_result: "2h" }));"#)
    ///     .build()?;
    /// let failure = Failure::asset(2001, "download failed")?;
    /// let decision = policies.decide(&failure, &History::new(0), &Context::new());
    /// assert_eq!(decision.await_result(), Some(Duration::from_secs(2 * 3600)));
    /// let other = policies.decide(&Failure::asset(2503, "unavailable")?, &History::new(0), &Context::new());
    /// assert_eq!(other.await_result(), None, "the defaults leave it to the remediator");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn await_result(&self) -> Option<Duration> {
        self.stage_ref().and_then(Stage::await_result)
    }

    /// The reason, for a `fail`.
    pub fn reason(&self) -> Option<&str> {
        self.action().reason()
    }

    /// The stage of the chain, counted from 1 as fixtures and `remedy explain` count it; `None` when every
    /// stage is exhausted (the action is then `fail`).
    ///
    /// ```
    /// use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
    ///
    /// let policies = Policies::defaults();
    /// let failure = Failure::asset(3003, "reference id in use")?;
    /// let mut history = History::new(0);
    /// history.record_failure(&failure);
    /// let first = policies.decide(&failure, &history, &Context::new());
    /// assert_eq!((first.kind(), first.stage(), first.stages()), (ActionKind::Reconcile, Some(1), 3));
    /// history.record(&first);
    /// let second = policies.decide(&failure, &history, &Context::new());
    /// assert_eq!((second.kind(), second.stage()), (ActionKind::Republish, Some(2)));
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn stage(&self) -> Option<usize> {
        self.stage.map(|s| s as usize + 1)
    }

    /// The stage of the chain from 0, as a [`History`](crate::History) keeps it.
    #[inline]
    pub(crate) fn stage_index(&self) -> Option<u32> {
        self.stage
    }

    /// How many stages the chain has.
    pub fn stages(&self) -> usize {
        self.rule.get().policy().stages().len()
    }

    /// The attempt within the stage, from 1 (0 when the chain is exhausted).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the chain ran out.
    pub fn is_exhausted(&self) -> bool {
        self.stage.is_none()
    }

    /// The rule the decision came from, with its origin.
    pub fn rule(&self) -> &Rule {
        self.rule.get()
    }

    /// An error of a `decide` function that was passed over on the way to this decision: the resolution
    /// went on to the next rule as if the function had returned `()`.
    pub fn script_error(&self) -> Option<&Diagnostic> {
        self.script_error.as_deref()
    }

    /// The same decision, no longer borrowing the policies.
    pub fn into_owned(self) -> Decision<'static> {
        let rule = match self.rule {
            RuleRef::Table(rule) => RuleRef::Owned(rule.clone()),
            RuleRef::Owned(rule) => RuleRef::Owned(rule),
        };
        Decision { rule, ..self }
    }
}

impl Serialize for Decision<'_> {
    /// `{action, delay_ms, delay_source, reason, stage (from 1), stages, attempt, params, rule, script_error}`;
    /// `params` has the action's parameters, `reconcile_first: true` and `await_result_ms` when the stage sets
    /// them.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let origin = self.rule().origin();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("action", &self.kind())?;
        map.serialize_entry("delay_ms", &self.delay.map(crate::millis::millis))?;
        map.serialize_entry("delay_source", &self.delay_source)?;
        map.serialize_entry("reason", &self.reason())?;
        map.serialize_entry("stage", &self.stage())?;
        map.serialize_entry("stages", &self.stages())?;
        map.serialize_entry("attempt", &self.attempt)?;
        map.serialize_entry(
            "params",
            &ActionParams(self.action(), self.stage_ref().is_some_and(Stage::reconcile_first), self.await_result()),
        )?;
        map.serialize_entry(
            "rule",
            &serde_json::json!({
                "file": origin.file,
                "line": origin.pos.map(|p| p.line),
                "column": origin.pos.map(|p| p.column),
                "matcher": origin.matcher.to_string(),
                "layer": origin.layer,
            }),
        )?;
        map.serialize_entry("script_error", &self.script_error.as_ref().map(|e| e.to_string()))?;
        map.end()
    }
}

/// The parameters of an action, as JSON, whether the host reconciles first, and the stage's `await_result`.
struct ActionParams<'a>(&'a Action, bool, Option<Duration>);

impl Serialize for ActionParams<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if self.1 {
            map.serialize_entry("reconcile_first", &true)?;
        }
        if let Some(wait) = self.2 {
            map.serialize_entry("await_result_ms", &crate::millis::millis(wait))?;
        }
        match self.0 {
            Action::Retry | Action::Reconcile => {}
            Action::Resubmit { amend } => map.serialize_entry("amend", amend.as_ref())?,
            Action::FixCredentials { scope } => map.serialize_entry("scope", scope)?,
            Action::Republish { target, new_reference_id } => {
                map.serialize_entry("target", target)?;
                map.serialize_entry("new_reference_id", new_reference_id)?;
            }
            Action::Notify { channel, message } => {
                map.serialize_entry("channel", channel)?;
                map.serialize_entry("message", message)?;
            }
            Action::Fail { reason } => map.serialize_entry("reason", reason)?,
        }
        map.end()
    }
}
