//! What a stage does: the [`Action`], its [`ActionKind`], and the [`CredentialScope`] it repairs.

use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which credentials `fix_credentials` asks the host to repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialScope {
    /// The input storage (bucket credentials).
    Storage,
    /// The Brightcove account.
    Brightcove,
    /// The output upload destination.
    Upload,
    /// The DRM key server.
    Drm,
    /// The LightFlow API token.
    Api,
}

crate::names::names!(CredentialScope {
    Storage => "storage",
    Brightcove => "brightcove",
    Upload => "upload",
    Drm => "drm",
    Api => "api",
});

impl FromStr for CredentialScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialScope::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            // A name from a script or fixture may be long: quote the start of it.
            let shown: String = s.chars().take(64).collect();
            let more = if shown.len() < s.len() { "…" } else { "" };
            format!("unknown credential scope `{shown}{more}` (expected one of: storage, brightcove, upload, drm, api)")
        })
    }
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Resubmit the asset unchanged after a backoff delay.
    Retry,
    /// Resubmit with changed parameters; the map goes to the host's `resubmit` hook.
    Resubmit {
        /// The parameters to change, e.g. `{"4k": false}`.
        amend: Arc<Map<String, Value>>,
    },
    /// Ask the host to repair credentials, then resubmit.
    FixCredentials {
        /// Which credentials.
        scope: CredentialScope,
    },
    /// Redo only the publication, not the encoding.
    Republish {
        /// Where to publish, e.g. `brightcove`.
        target: Arc<str>,
        /// Ask the host for a new reference id.
        new_reference_id: bool,
    },
    /// Ask the host whether the earlier attempt in fact succeeded.
    Reconcile,
    /// Tell an operator; not terminal.
    Notify {
        /// Where to send it, e.g. `ops`.
        channel: Arc<str>,
        /// What to say.
        message: Arc<str>,
    },
    /// Give up, with a reason for the host's dead-letter queue.
    Fail {
        /// Why.
        reason: Arc<str>,
    },
}

impl Action {
    /// The action's name, as in JSON and scripts.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Retry => ActionKind::Retry,
            Action::Resubmit { .. } => ActionKind::Resubmit,
            Action::FixCredentials { .. } => ActionKind::FixCredentials,
            Action::Republish { .. } => ActionKind::Republish,
            Action::Reconcile => ActionKind::Reconcile,
            Action::Notify { .. } => ActionKind::Notify,
            Action::Fail { .. } => ActionKind::Fail,
        }
    }

    /// The reason of a `fail`, if this is one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Action::Fail { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The name of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `retry`
    Retry,
    /// `resubmit`
    Resubmit,
    /// `fix_credentials`
    FixCredentials,
    /// `republish`
    Republish,
    /// `reconcile`
    Reconcile,
    /// `notify`
    Notify,
    /// `fail`
    Fail,
}

impl ActionKind {
    /// Whether the host's answer to this action is a new outcome of the asset (a resubmission or a
    /// re-publication), as opposed to a step taken before the next one (`notify`, `reconcile`) or the end.
    pub const fn awaits_outcome(self) -> bool {
        matches!(self, ActionKind::Retry | ActionKind::Resubmit | ActionKind::FixCredentials | ActionKind::Republish)
    }
}

crate::names::names!(ActionKind {
    Retry => "retry",
    Resubmit => "resubmit",
    FixCredentials => "fix_credentials",
    Republish => "republish",
    Reconcile => "reconcile",
    Notify => "notify",
    Fail => "fail",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awaits_outcome_splits_actions() {
        let waits: Vec<_> = ActionKind::ALL.into_iter().filter(|k| k.awaits_outcome()).collect();
        assert_eq!(waits.len(), 4);
    }
}
