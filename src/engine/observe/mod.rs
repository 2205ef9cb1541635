//! What the engine counts and tells: the typed event stream, the counters a host reads, and the names it gives
//! the [`metrics`] facade.

pub(crate) mod counted;
pub(crate) mod counters;
pub(crate) mod decision_counts;
pub(crate) mod events;
pub mod metric_names;
