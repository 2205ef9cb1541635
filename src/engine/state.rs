//! Where a job stands between two steps.

use std::time::Duration;

use crate::classify::Failure;
use crate::decide::History;

/// Where a job stands: the failure being remediated (already recorded in the history), and what was left of
/// a delay when it was suspended.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) failure: Failure,
    pub(crate) history: History,
    pub(crate) remaining: Option<Duration>,
}
