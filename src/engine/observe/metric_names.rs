//! The names of the metrics the engine gives to the [`metrics`] facade when built with
//! [`RemediatorBuilder::metrics`](super::RemediatorBuilder::metrics), and their labels. A host installs any
//! exporter (`remedy serve` serves Prometheus' text at `/metrics`).
//!
//! ```
//! use lightflow_remedy::engine::metric_names;
//! assert_eq!(metric_names::DECISIONS, "remedy_decisions_total");
//! ```

/// Decisions taken, by failure key (`code`: `asset:2503`, `api:429`, `timeout`) and `action`.
pub const DECISIONS: &str = "remedy_decisions_total";
/// Jobs ended, by `outcome` (`recovered`, `failed`, `cancelled`, ...).
pub const OUTCOMES: &str = "remedy_outcomes_total";
/// Hook calls begun, by `hook`.
pub const HOOK_CALLS: &str = "remedy_hook_calls_total";
/// How long hook calls took, in seconds, by `hook` and `answer` (`ok`, `timeout`, `error`, `panic`,
/// `interrupted`).
pub const HOOK_SECONDS: &str = "remedy_hook_seconds";
/// Attempts the retry budget refused.
pub const BUDGET_REFUSALS: &str = "remedy_budget_refusals_total";
/// Circuit breaker transitions, by `downstream` and the state it went `to`.
pub const BREAKER_TRANSITIONS: &str = "remedy_breaker_transitions_total";
/// Whether a downstream's breaker is open or half-open (1) or closed (0), by `downstream`.
pub const BREAKER_OPEN: &str = "remedy_breaker_open";
/// Jobs taken over from a replica whose lease ran out.
pub const TAKEOVERS: &str = "remedy_takeovers_total";
/// Reports of attempts handed to the remediator, by `answer` (`applied`, `held`, `older_attempt`, ...).
pub const REPORTS: &str = "remedy_reports_total";
