//! The engine: carries decisions out through the host's async hooks, on tokio, and protects the fleet.
//!
//! ```text
//! Failure ──▶ decide ──▶ wait ──▶ breaker ──▶ budget ──▶ hook ──▶ Succeeded ─▶ Recovered
//!                ▲                                          └──▶ Failed(next) ──┐
//!                └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! - One active remediation per asset id: a second report for the same asset joins the running job.
//! - A bound on concurrent hook calls, a timeout per call (a timeout is a failure of kind `timeout`, which
//!   policies match with `on("timeout", ..)`), and a hook that errors or panics ends that job alone.
//! - Fleet guards: a [`RetryBudget`] (AWS standard retry quota or gRPC throttling) and a circuit breaker per
//!   downstream, so that an outage of Brightcove does not have every asset hammering it.
//! - Every submitted job ends in exactly one [`Outcome`]: recovered, failed, cancelled, or suspended at
//!   shutdown with its state, which [`Remediator::resume`] continues.
//! - `tracing` spans per job and events per decision and hook call; a typed [`Event`] stream; counters.
//! - Time is `tokio::time` only, so tests under `tokio::time::pause()` are exact.

mod awaiting;
mod breaker;
mod budget;
mod builder;
mod call;
mod cell;
mod counted;
mod counters;
mod decision_counts;
mod durable;
mod ending;
mod events;
mod fleet;
mod guards;
mod handle;
mod health;
mod hooks;
mod job;
mod ledger;
pub mod metric_names;
mod outcome;
mod parts;
mod record;
mod registry;
mod remediator;
mod report;
mod runner;
mod shared;
mod state;
mod steps;
mod stored;
mod unanswered;
mod verdict;
mod wait;
mod walk;

pub use crate::store::JobId;
pub use crate::store::{ReportAnswer, ReportTarget};
pub use breaker::{BreakerConfig, BreakerState};
pub use budget::{AwsCosts, BudgetConfig, BudgetError, ErrorClass, Refused, RetryBudget, Withdrawal, aws_backoff};
pub use builder::{DEFAULT_AWAIT_RESULT, DEFAULT_HOOK_TIMEOUT, RemediatorBuilder};
pub use counters::CounterSnapshot;
pub use durable::StoreSettings;
pub use events::{Event, HookName};
pub use handle::JobHandle;
pub use health::Health;
pub use hooks::{Attempt, Checked, CredentialFix, HookError, Hooks, Notice, Pending, Reconciled};
pub use job::{AttemptKey, Job};
pub use outcome::{Outcome, OutcomeKind, SuspendedJob};
pub use record::{PAYLOAD_VERSION, StoredJob};
pub use remediator::{Remediator, SubmitError};
pub use report::Reported;
pub use state::Awaiting;
pub use verdict::{Verdict, VerdictKind};
