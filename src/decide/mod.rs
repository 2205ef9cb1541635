//! Decide: `Policies::decide(&Failure, &History, &Context) -> Decision`, pure and deterministic.
//!
//! - [`Policy`], [`Stage`], [`Action`] and [`Backoff`]: what a rule does, stage by stage;
//!   [`Schedule`] turns backoff options into delays (the one file that knows the `backoff` crate).
//! - Rules ([`Rule`], [`Matcher`], [`Origin`]) and the Rhai scripts that register them (`script/`), merged
//!   into a dense table at load time.
//! - [`Policies`]: the layered sources and their resolution; [`Decision`]: what to do, with the stage, the
//!   delay and the rule it came from; [`History`] and [`Context`]: what a decision depends on besides the
//!   failure; [`Explanation`]: several consecutive decisions, as `remedy explain` shows them.
//! - [`LivePolicies`]: the set in force, replaced whole and atomically while decisions go on.
//!
//! ```
//! use lightflow_remedy::decide::{Action, ActionKind, Backoff, CredentialScope, Policy, Stage};
//! use std::time::Duration;
//!
//! let policy = Policy::new(Stage::fix_credentials(CredentialScope::Storage))
//!     .then(Stage::retry(Backoff { initial: Duration::from_secs(60), ..Backoff::default() }.attempts(1)))
//!     .then(Stage::fail("Storage credentials were repaired but the download still fails"));
//! assert_eq!(policy.stages().len(), 3);
//! assert_eq!(policy.stages()[0].action().kind(), ActionKind::FixCredentials);
//! ```

mod action;
mod backoff;
mod context;
mod decision;
mod explain;
mod history;
mod live;
mod policies;
mod policy;
pub(crate) mod rules;
mod schedule;
pub(crate) mod script;
mod sources;
mod takeover;
mod walk;

pub use action::{Action, ActionKind, CredentialScope};
pub use backoff::{Attempts, Backoff, Jitter};
pub use context::{Context, ContextError};
pub use decision::Decision;
pub use explain::Explanation;
pub use history::{History, Position, Seen};
pub use live::{LivePolicies, ReloadEvent};
pub use policies::{DEFAULTS_NAME, DEFAULTS_SOURCE, LoadError, Policies, PoliciesBuilder};
pub use policy::{Policy, Stage};
pub use rules::{BadMatcher, Matcher, Origin, Rule, RuleKey};
pub use schedule::{DelaySource, Schedule};
