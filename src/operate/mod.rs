//! Operate: what an operator does with policies beside deciding.
//!
//! - [`reload`]: watch the policies directories and reload a [`LivePolicies`](crate::LivePolicies) when a
//!   file changes.
//! - [`fixtures`]: decision tests kept beside the policies (`remedy test`).
//! - [`replay`]: a log of failures decided again, or against a proposed set (`remedy replay`).
//! - `simulation` (feature `testing`): the real engine, under virtual time, against a simulated LightFlow
//!   (`remedy simulate`).

pub mod fixtures;
pub mod reload;
pub mod replay;
#[cfg(feature = "testing")]
pub mod simulation;
