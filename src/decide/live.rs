//! The live policy set: replaced whole, atomically, while decisions go on (watching files for changes is
//! [`operate::reload`](crate::operate::reload)).
//!
//! Decisions read the current set without locking (`arc-swap`): one already under way keeps the set it
//! started with, the next one gets the new set, and none ever sees a mix. A reload that fails validation keeps
//! the last good set in force and reports the errors (a [`ReloadEvent`] and `tracing`).
//!
//! ```
//! use lightflow_remedy::LivePolicies;
//! use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("10-site.rhai"), r#"on(2404, retry());"#)?;
//! let live = LivePolicies::load(Policies::builder().directory(dir.path()))?;
//! let f = Failure::asset(2404, "")?;
//! assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).kind(), ActionKind::Retry);
//!
//! std::fs::write(dir.path().join("10-site.rhai"), r#"on(2404, fail("gone"));"#)?;
//! live.reload()?;
//! assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).kind(), ActionKind::Fail);
//!
//! // A broken file is refused; the last good set stays.
//! std::fs::write(dir.path().join("10-site.rhai"), r#"on(2404, retry(#{ attempts: 0 }));"#)?;
//! assert!(live.reload().is_err());
//! assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).kind(), ActionKind::Fail);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use super::policies::{LoadError, Policies, PoliciesBuilder};
use crate::diagnostic::Diagnostic;

/// What a reload came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadEvent {
    /// The new set is in force.
    Reloaded {
        /// Its sources.
        sources: usize,
        /// Its warnings.
        warnings: Vec<Diagnostic>,
    },
    /// The new set was refused; the last good one stays in force.
    Refused {
        /// Why, each naming file:line:column.
        errors: Vec<Diagnostic>,
    },
}

/// A policy set that can be reloaded while decisions run. Share it behind an `Arc`; the
/// [`Remediator`](crate::engine::Remediator) takes one.
pub struct LivePolicies {
    current: ArcSwap<Policies>,
    /// How to load the set again; `None` for a fixed set.
    source: Option<PoliciesBuilder>,
    /// Serializes reloads (decisions never take it).
    reloading: Mutex<()>,
    events: broadcast::Sender<ReloadEvent>,
}

impl std::fmt::Debug for LivePolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePolicies").field("current", &self.current.load()).finish()
    }
}

impl LivePolicies {
    /// Loads the set `builder` describes; [`LivePolicies::reload`] loads it again from the same sources.
    pub fn load(builder: PoliciesBuilder) -> Result<Self, LoadError> {
        let policies = builder.clone().build()?;
        Ok(LivePolicies::with(policies, Some(builder)))
    }

    /// A set that only changes by [`LivePolicies::replace`].
    pub fn fixed(policies: Policies) -> Self {
        LivePolicies::with(policies, None)
    }

    fn with(policies: impl Into<Arc<Policies>>, source: Option<PoliciesBuilder>) -> Self {
        let (events, _) = broadcast::channel(64);
        LivePolicies { current: ArcSwap::new(policies.into()), source, reloading: Mutex::new(()), events }
    }

    /// The set in force now. Lock-free; keep the `Arc` for as long as one decision needs the same set.
    pub fn current(&self) -> Arc<Policies> {
        self.current.load_full()
    }

    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<Policies>> {
        self.current.load()
    }

    /// Puts `policies` in force.
    pub fn replace(&self, policies: impl Into<Arc<Policies>>) {
        let policies = policies.into();
        let event = ReloadEvent::Reloaded { sources: policies.sources().len(), warnings: policies.warnings().to_vec() };
        self.current.store(policies);
        let _ = self.events.send(event);
    }

    /// Loads the sources again and, if they are valid, puts the new set in force; otherwise the last good set
    /// stays and the errors are returned (and reported). A fixed set reloads as itself.
    pub fn reload(&self) -> Result<Arc<Policies>, LoadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let Some(source) = &self.source else { return Ok(self.current()) };
        match source.clone().build() {
            Ok(policies) => {
                let policies = Arc::new(policies);
                tracing::info!(sources = policies.sources().len(), "policies reloaded");
                self.replace(policies.clone());
                Ok(policies)
            }
            Err(e) => {
                tracing::error!(errors = %e, "policy reload refused; the last good set stays in force");
                let _ = self.events.send(ReloadEvent::Refused { errors: e.errors().cloned().collect() });
                Err(e)
            }
        }
    }

    /// Tells the subscribers what a reload came to (the watcher's own failures).
    pub(crate) fn report(&self, event: ReloadEvent) {
        let _ = self.events.send(event);
    }

    /// What every reload comes to, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.events.subscribe()
    }

    /// The directories the set is loaded from (none for a fixed set), for watching.
    pub(crate) fn directories(&self) -> Vec<PathBuf> {
        self.source.as_ref().map(|s| s.directories()).unwrap_or_default()
    }
}

impl From<Policies> for LivePolicies {
    fn from(policies: Policies) -> Self {
        LivePolicies::fixed(policies)
    }
}

impl From<Policies> for Arc<LivePolicies> {
    fn from(policies: Policies) -> Self {
        Arc::new(LivePolicies::fixed(policies))
    }
}
