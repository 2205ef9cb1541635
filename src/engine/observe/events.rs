//! Observability: a typed event stream a host can subscribe to.

use std::sync::Arc;

use serde::Serialize;

use crate::classify::FailureKey;
use crate::classify::catalogue::Downstream;
use crate::decide::ActionKind;
use crate::engine::guards::breaker::BreakerState;
use crate::engine::outcome::OutcomeKind;

/// Which hook a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookName {
    /// [`Hooks::resubmit`](super::Hooks::resubmit)
    Resubmit,
    /// [`Hooks::fix_credentials`](super::Hooks::fix_credentials)
    FixCredentials,
    /// [`Hooks::republish`](super::Hooks::republish)
    Republish,
    /// [`Hooks::reconcile`](super::Hooks::reconcile)
    Reconcile,
    /// [`Hooks::notify`](super::Hooks::notify)
    Notify,
    /// [`Hooks::failed`](super::Hooks::failed)
    Failed,
    /// [`Hooks::check`](super::Hooks::check)
    Check,
}

crate::names::names!(HookName {
    Resubmit => "resubmit",
    FixCredentials => "fix_credentials",
    Republish => "republish",
    Reconcile => "reconcile",
    Notify => "notify",
    Failed => "failed",
    Check => "check",
});

impl HookName {
    /// Whether a call of this hook changes something outside (and so goes in a durable store's ledger, and is
    /// reconciled before it is repeated after a crash): every hook but `reconcile` and `check`, which only ask.
    pub fn has_side_effects(self) -> bool {
        !matches!(self, HookName::Reconcile | HookName::Check)
    }
}

/// Something that happened in the engine. Subscribe with [`Remediator::subscribe`](super::Remediator::subscribe).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job started.
    Submitted {
        /// The asset.
        asset_id: Arc<str>,
        /// Its failure.
        failure: FailureKey,
    },
    /// A report for an asset already being remediated joined the running job.
    Joined {
        /// The asset.
        asset_id: Arc<str>,
        /// The reported failure.
        failure: FailureKey,
    },
    /// A decision.
    Decided {
        /// The asset.
        asset_id: Arc<str>,
        /// The failure decided on.
        failure: FailureKey,
        /// What to do.
        action: ActionKind,
        /// After how long, in milliseconds.
        delay_ms: Option<u64>,
        /// The stage of the chain, from 1 (`None` when exhausted).
        stage: Option<usize>,
        /// The attempt within the stage, from 1.
        attempt: u32,
        /// The rule (`file:line:col on(..)`).
        rule: String,
    },
    /// A hook is being called.
    HookCalled {
        /// The asset.
        asset_id: Arc<str>,
        /// Which hook.
        hook: HookName,
        /// The attempt number, for resubmissions and re-publications.
        attempt: Option<u32>,
    },
    /// A hook answered (or did not).
    HookAnswered {
        /// The asset.
        asset_id: Arc<str>,
        /// Which hook.
        hook: HookName,
        /// `succeeded`, `failed <code>`, `submitted <reference>`, `fixed`, `cannot fix`, `done`, `not done`,
        /// `running`, `unknown`, `ok`, `error: ..`, `timeout`, `panic: ..`, or `interrupted` (a cancellation or
        /// the shutdown deadline cut it off).
        answer: String,
    },
    /// The retry budget refused an attempt.
    BudgetRefused {
        /// The asset.
        asset_id: Arc<str>,
        /// Tokens left.
        available: f64,
    },
    /// A job waits for a downstream's breaker.
    BreakerWait {
        /// The asset.
        asset_id: Arc<str>,
        /// The downstream.
        downstream: Downstream,
    },
    /// A breaker changed state.
    BreakerChanged {
        /// The downstream.
        downstream: Downstream,
        /// Before.
        from: BreakerState,
        /// After.
        to: BreakerState,
    },
    /// A job ended.
    Finished {
        /// The asset.
        asset_id: Arc<str>,
        /// How.
        outcome: OutcomeKind,
    },
}
