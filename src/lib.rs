//! Decides what to do when a LightFlow video asset or API call fails.
//!
//! LightFlow assets end in `error` with an `assetError` code from a documented catalogue; LightFlow API calls
//! fail with an HTTP status. This library maps each code and code range to a policy: retry with backoff,
//! repair credentials, re-publish to Brightcove, resubmit with changed parameters, or fail for good with a
//! clear reason. Operators override the rules per deployment with Rhai scripts; engineers unit-test
//! remediation decisions with it, because a decision is a pure function of its inputs.
//!
//! Data flows one way:
//!
//! ```text
//! raw input ──▶ Failure ──▶ Decision
//!  (JSON, HTTP)  classify     decide
//! ```
//!
//! - **Classify** ([`Failure`]): parse an asset object, an `assetError` object, or an API status with its body
//!   and Retry-After. Bad input is a typed [`ClassifyError`], never a panic.
//! - **Decide** ([`Policies::decide`]): the policies, the failure, the job's [`History`] and the host's
//!   [`Context`] give a [`Decision`]: the action, its delay, its stage in the chain, and the rule it came from.
//! - **Remediate** ([`engine::Remediator`]): carry decisions out through the host's async [`engine::Hooks`],
//!   one job per asset, with a retry budget, circuit breakers, shutdown and resume, events and counters.
//!
//! Around them: [`reload::LivePolicies`] (policies reloaded while deciding), [`fixtures`] (decision tests kept
//! beside the policies), [`replay`] (a log of failures decided again, or against a proposed set), and, with
//! the `testing` feature, `simulation` (a fleet under virtual time) and `testing` (helpers for hosts' tests:
//! inline policies, scripted hooks, job timelines).
//!
//! # Example
//!
//! ```
//! use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
//! use std::time::SystemTime;
//!
//! let policies = Policies::defaults();
//! let failure = Failure::from_json(
//!     r#"{"id": "a1", "status": "error", "assetError": {"code": 3001, "message": "connect timeout"}}"#,
//!     SystemTime::now(),
//! )?;
//! let mut history = History::new(42);
//! history.record_failure(&failure);
//! let decision = policies.decide(&failure, &history, &Context::new());
//! assert_eq!(decision.kind(), ActionKind::Retry);
//! println!("{} in {:?} (rule {})", decision.kind(), decision.delay(), decision.rule().origin());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Policies
//!
//! The built-in defaults (`policies/00-lightflow.rhai`, embedded) cover every catalogue code. A deployment adds
//! directories of `*.rhai` files; later sources win:
//!
//! ```
//! use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
//!
//! let policies = Policies::builder()
//!     .source("10-site.rhai", r#"
//!         fn decide(f, ctx) {
//!             if ctx.plan == "trial" { return fail("Trial accounts are not remediated"); }
//!         }
//!         on(2006, resubmit(#{ "4k": false }));
//!     "#)
//!     .build()?;
//! let f = Failure::asset(2006, "below 2560 px")?;
//! let h = History::new(0);
//! assert_eq!(policies.decide(&f, &h, &Context::new()).kind(), ActionKind::Resubmit);
//! let trial = Context::new().with("plan", "trial");
//! assert_eq!(policies.decide(&f, &h, &trial).kind(), ActionKind::Fail);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The language, the default table and the command `remedy` are described in README.md.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod catalogue;
pub mod context;
mod decision;
pub mod diagnostic;
pub mod engine;
mod explain;
pub mod failure;
pub mod fixtures;
mod history;
mod millis;
mod names;
mod policies;
pub mod policy;
pub mod reload;
pub mod replay;
pub mod rules;
pub mod schedule;
mod script;
#[cfg(feature = "testing")]
pub mod simulation;
#[cfg(feature = "testing")]
pub mod testing;

pub use catalogue::{Category, Downstream};
pub use context::Context;
pub use decision::Decision;
pub use diagnostic::{Diagnostic, Pos, Severity};
pub use explain::Explanation;
pub use failure::{ClassifyError, Failure, FailureKey, FailureKind};
pub use history::{History, Position, Seen};
pub use policies::{DEFAULTS_NAME, DEFAULTS_SOURCE, LoadError, Policies, PoliciesBuilder};
pub use policy::{Action, ActionKind, Attempts, Backoff, CredentialScope, Jitter, Policy, Stage};
pub use rules::{Matcher, Origin, Rule, RuleKey};
pub use schedule::DelaySource;
