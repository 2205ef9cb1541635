//! Decides what to do when a LightFlow video asset or API call fails, and does it.
//!
//! LightFlow assets end in `error` with an `assetError` code from a documented catalogue; LightFlow API calls
//! fail with an HTTP status. This library maps each code and code range to a policy: retry with backoff,
//! repair credentials, re-publish to Brightcove, resubmit with changed parameters, or fail for good with a
//! clear reason. Operators override the rules per deployment with Rhai scripts; engineers unit-test
//! remediation decisions with it, because a decision is a pure function of its inputs.
//!
//! # Layers
//!
//! Data flows one way, and each layer is a folder (a module) that uses only the ones before it:
//!
//! ```text
//! raw input ──▶ Failure ──▶ Decision ──▶ attempt ──▶ result ──▶ Outcome
//!  (JSON, HTTP)  classify     decide      engine       └▶ new Failure ─▶ decide ...
//! ```
//!
//! - [`classify`] (`src/classify/`): an asset object, an `assetError` object or an API status with its body
//!   and Retry-After, read into a [`Failure`] with its catalogue category and downstream. Bad input is a typed
//!   [`ClassifyError`], never a panic.
//! - [`decide`] (`src/decide/`): [`Policies::decide`] gives a [`Decision`] from the failure, the job's
//!   [`History`] and the host's [`Context`]: the action, its delay, its stage, and the rule it came from. The
//!   policies are layered Rhai scripts, checked at load and run in a sandbox.
//! - [`store`] (`src/store/`): where jobs live between steps when they must survive a restart or be shared by
//!   replicas: job rows with leases, fencing, a ledger of side-effecting calls, and reports of attempts that
//!   finish later (in memory, SQLite, PostgreSQL). It knows nothing of hooks or policies.
//! - [`engine`] (`src/engine/`): a [`Remediator`] carries decisions out through the host's async
//!   [`Hooks`], one job per asset, with a retry budget, circuit breakers, shutdown and resume,
//!   events and counters.
//! - [`operate`] (`src/operate/`): live reload of the policies directories, decision tests beside the
//!   policies, replay of a failure log, and (feature `testing`) a simulated fleet.
//! - `lightflow` (feature `lightflow`, `src/lightflow/`): a client of LightFlow's documented API (bearer token
//!   from the environment or a file, every failed answer classified, no retries of its own), the callback URLs
//!   the library makes and checks, and `LightFlowHooks`: the engine's hooks carried out on LightFlow.
//! - [`testing`] (feature `testing`, `src/testing.rs`): helpers for hosts' tests: inline policies, scripted
//!   hooks, job timelines. [`diagnostic`]: errors and warnings with their file:line:column.
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
//! The language and the default table are described in `docs/policies.md`, the command `remedy` in
//! `docs/operating.md`: the user's guide, in `docs/`.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod classify;
pub mod decide;
pub mod diagnostic;
#[cfg(doctest)]
mod doc_tests;
pub mod engine;
#[cfg(feature = "lightflow")]
pub mod lightflow;
mod millis;
mod names;
pub mod operate;
#[cfg(feature = "serve")]
pub mod serve;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use classify::{Category, ClassifyError, Downstream, Failure, FailureKey, FailureKind};
pub use decide::{
    Action, ActionKind, Attempts, Backoff, Context, CredentialScope, Decision, DelaySource, Explanation, History,
    Jitter, LivePolicies, LoadError, Matcher, Origin, Policies, PoliciesBuilder, Policy, Position, Rule, RuleKey, Seen,
    Stage,
};
pub use diagnostic::{Diagnostic, Pos, Severity};
pub use engine::{Hooks, Job, Outcome, Remediator};
