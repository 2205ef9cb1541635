//! Explain: what the engine does at the N-th consecutive failure with one code.

use super::action::{Action, ActionKind};
use super::context::Context;
use super::decision::Decision;
use super::history::History;
use super::policies::Policies;
use crate::classify::Failure;

/// A bound on steps taken for one failure, in case a chain of non-waiting stages is very long.
const MAX_STEPS_PER_FAILURE: usize = 64;

/// The steps the engine takes at one failure.
///
/// A step whose stage asks `reconcile_first` is preceded, when the engine carries it out, by a `reconcile`
/// that is not a decision of its own: [`Explanation::actions`] lists it, [`Explanation::reconciles_before`]
/// says where.
///
/// ```
/// use lightflow_remedy::{ActionKind, Context, Failure, Policies};
///
/// let policies = Policies::defaults();
/// let e = policies.explain(&Failure::api(503, "")?, 1, &Context::new(), 0);
/// assert_eq!(e.steps.len(), 1);
/// assert_eq!(e.actions(), [ActionKind::Reconcile, ActionKind::Retry]);
/// assert!(e.reconciles_before(0));
/// assert_eq!(e.stage_of(0), Some(1));
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Explanation<'p> {
    /// Which consecutive failure the steps are for (from 1). Smaller than asked when the job had already
    /// ended.
    pub attempt: u32,
    /// The steps in order: zero or more `notify`/`reconcile`, then the step that waits for the host's answer
    /// (`retry`, `resubmit`, `fix_credentials`, `republish`) or ends the job (`fail`).
    pub steps: Vec<Decision<'p>>,
    /// The history as it stood at the first step.
    pub history: History,
}

impl Explanation<'_> {
    /// The first step: what the engine does first at this failure.
    pub fn first(&self) -> &Decision<'_> {
        &self.steps[0]
    }

    /// Whether the job had ended before the failure asked for.
    pub fn ended_before(&self, asked: u32) -> bool {
        self.attempt < asked.max(1)
    }

    /// Whether the engine reconciles before carrying out step `step` (its stage's `reconcile_first`): after
    /// the step's wait, it asks the host whether the earlier attempt in fact succeeded.
    pub fn reconciles_before(&self, step: usize) -> bool {
        self.steps.get(step).and_then(Decision::stage_ref).is_some_and(|s| s.reconcile_first())
    }

    /// Every action the engine takes at this failure, in order: each step's, with the `reconcile` a stage's
    /// `reconcile_first` runs before its step. This is what fixtures' `steps` are compared with.
    pub fn actions(&self) -> Vec<ActionKind> {
        let mut actions = Vec::with_capacity(self.steps.len() + 1);
        for (i, step) in self.steps.iter().enumerate() {
            if self.reconciles_before(i) {
                actions.push(ActionKind::Reconcile);
            }
            actions.push(step.kind());
        }
        actions
    }

    /// The stage of step `step`, counted from 1 as reports and fixtures show it; `None` when the chain is
    /// exhausted (or there is no such step).
    pub fn stage_of(&self, step: usize) -> Option<usize> {
        // `Decision::stage` counts from 1, as reports and fixtures show it.
        self.steps.get(step)?.stage()
    }
}

impl Policies {
    /// What the engine does at the `attempt`-th consecutive failure (from 1) with `failure`'s code.
    ///
    /// The walk assumes what a host most often answers: credentials get fixed, `reconcile` finds the earlier
    /// attempt did not succeed, and every resubmission fails again with the same code.
    ///
    /// ```
    /// use lightflow_remedy::{ActionKind, Context, Failure, Policies};
    ///
    /// let policies = Policies::defaults();
    /// let failure = Failure::asset(2007, "storage credentials")?;
    /// let kinds = |n| -> Vec<ActionKind> {
    ///     policies.explain(&failure, n, &Context::new(), 0).steps.iter().map(|d| d.kind()).collect()
    /// };
    /// assert_eq!(kinds(1), [ActionKind::FixCredentials]);
    /// assert_eq!(kinds(2), [ActionKind::Retry]);
    /// assert_eq!(kinds(3), [ActionKind::Fail]);
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn explain(&self, failure: &Failure, attempt: u32, ctx: &Context, seed: u64) -> Explanation<'_> {
        let mut history = History::new(seed);
        let mut n = 1;
        loop {
            history.record_failure(failure);
            let before = history.clone();
            let (steps, ended) = self.steps(failure, &mut history, ctx);
            if n >= attempt.max(1) || ended {
                return Explanation { attempt: n, steps, history: before };
            }
            n += 1;
        }
    }

    /// The steps the engine takes at `failure`, given the job's `history` with that failure already recorded.
    ///
    /// ```
    /// use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
    ///
    /// let policies = Policies::defaults();
    /// let failure = Failure::asset(2001, "download failed")?;
    /// let mut history = History::new(0);
    /// history.record_failure(&failure);
    /// let steps = policies.explain_from(&failure, history, &Context::new()).steps;
    /// assert_eq!(steps[0].kind(), ActionKind::Retry);
    /// # Ok::<(), lightflow_remedy::ClassifyError>(())
    /// ```
    pub fn explain_from(&self, failure: &Failure, history: History, ctx: &Context) -> Explanation<'_> {
        let attempt = history.streak().max(1);
        let mut walked = history.clone();
        let (steps, _) = self.steps(failure, &mut walked, ctx);
        Explanation { attempt, steps, history }
    }

    /// Decides until a step waits for the host's answer or ends the job; `true` when it ended.
    fn steps(&self, failure: &Failure, history: &mut History, ctx: &Context) -> (Vec<Decision<'_>>, bool) {
        let mut steps = Vec::new();
        while steps.len() < MAX_STEPS_PER_FAILURE {
            let decision = self.decide(failure, history, ctx);
            let kind = decision.kind();
            if kind == ActionKind::Fail {
                steps.push(decision);
                return (steps, true);
            }
            history.record(&decision);
            history.advance(decision.delay().unwrap_or_default());
            if let Action::FixCredentials { scope } = decision.action() {
                history.mark_repaired(*scope);
            }
            steps.push(decision);
            if kind.awaits_outcome() {
                break;
            }
        }
        (steps, false)
    }
}
