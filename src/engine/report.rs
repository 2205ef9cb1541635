//! Results of attempts that finish later, as the host reports them (from its LightFlow callback handler or
//! its poller), and what the engine did with each report.

use serde::{Deserialize, Serialize};

use crate::classify::{CallbackResult, Failure};

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

impl Reported {
    /// What a LightFlow callback's status says of the attempt, if it ended (`queued` and `running` do not).
    ///
    /// ```
    /// use lightflow_remedy::classify::Callback;
    /// use lightflow_remedy::engine::Reported;
    /// let finished = Callback::from_query("status=finished&endDate=2026-12-01T10:00:00.000Z&uuid=u1")?;
    /// assert_eq!(Reported::from_callback(finished.result()), Some(Reported::Succeeded));
    /// let running = Callback::from_query("status=running&uuid=u1")?;
    /// assert_eq!(Reported::from_callback(running.result()), None);
    /// # Ok::<(), lightflow_remedy::classify::CallbackError>(())
    /// ```
    pub fn from_callback(result: CallbackResult) -> Option<Reported> {
        match result {
            CallbackResult::Succeeded => Some(Reported::Succeeded),
            CallbackResult::Failed(failure) => Some(Reported::Failed { failure }),
            CallbackResult::Canceled => Some(Reported::Canceled),
            CallbackResult::NotFinished => None,
        }
    }
}
