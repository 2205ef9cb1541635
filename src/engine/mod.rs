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
//! - Every job lives in a store (the remediator's own memory store unless it is given one) and ends in exactly
//!   one [`Outcome`]: recovered, failed, cancelled, or suspended at shutdown (on its own store, with its state,
//!   which [`Remediator::resume`] continues).
//!
//! The public face is at the top of this folder; its parts are folders: [`walk`] (a held job's walk and its
//! steps), [`guards`] (the retry budget, the breakers, their sharing), [`replica`] (claimer, heartbeat, pruner,
//! held jobs, the stored payload), [`observe`] (events, counters, metric names).
//! - `tracing` spans per job and events per decision and hook call; a typed [`Event`] stream; counters.
//! - Time is `tokio::time` only, so tests under `tokio::time::pause()` are exact.

// The public face: the remediator, its builder and what a host hands it or gets back.
mod builder;
mod hand_over;
mod handle;
mod health;
mod hooks;
mod job;
mod outcome;
mod remediator;
mod report;
mod shared;
mod verdict;

// Its parts: a job's walk and its steps; the fleet guards; the replica's machinery; what it counts and tells.
pub(crate) mod guards;
pub(crate) mod observe;
pub(crate) mod replica;
pub(crate) mod walk;

pub use crate::store::JobId;
pub use crate::store::{ReportAnswer, ReportTarget};
pub use builder::{DEFAULT_AWAIT_RESULT, DEFAULT_HOOK_TIMEOUT, RemediatorBuilder};
pub use guards::breaker::{BreakerConfig, BreakerState};
pub use guards::budget::{
    AwsCosts, BudgetConfig, BudgetError, ErrorClass, Refused, RetryBudget, Withdrawal, aws_backoff,
};
pub use handle::JobHandle;
pub use health::Health;
pub use hooks::{Attempt, Checked, CredentialFix, HookError, Hooks, Notice, Pending, Reconciled};
pub use job::{AttemptKey, Job};
pub use observe::counters::CounterSnapshot;
pub use observe::events::{Event, HookName};
pub use observe::metric_names;
pub use outcome::{Outcome, OutcomeKind, SuspendedJob};
pub use remediator::{Remediator, SubmitError};
pub use replica::StoreSettings;
pub use replica::record::{PAYLOAD_VERSION, StoredJob};
pub use report::Reported;
pub use verdict::{Verdict, VerdictKind};
pub use walk::state::Awaiting;
