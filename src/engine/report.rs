//! Results of attempts that finish later, as the host reports them (from its LightFlow callback handler or
//! its poller), and what the engine did with each report.

use serde::{Deserialize, Serialize};

use crate::classify::Failure;

/// The result of a submitted attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reported {
    /// The asset is done.
    Succeeded,
    /// It failed with this; the engine decides on it next.
    Failed {
        /// The failure.
        failure: Failure,
    },
    /// It was cancelled at LightFlow (by its owner): the job ends cancelled.
    Canceled,
}
