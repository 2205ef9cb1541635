//! Hot reload: a policy set that is replaced whole, atomically, while decisions go on.
//!
//! Decisions read the current set without locking (`arc-swap`): one already under way keeps the set it
//! started with, the next one gets the new set, and none ever sees a mix. A reload that fails validation keeps
//! the last good set in force and reports the errors (a [`ReloadEvent`] and `tracing`).
//!
//! ```
//! use lightflow_remedy::reload::LivePolicies;
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
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::broadcast;

use crate::diagnostic::Diagnostic;
use crate::policies::{LoadError, Policies, PoliciesBuilder};

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

/// Why watching the policies directories could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    /// The directory.
    pub path: String,
    /// The watcher's error.
    #[source]
    pub source: notify::Error,
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

    /// What every reload comes to, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.events.subscribe()
    }

    /// Reloads whenever a file of the policies directories changes, until the returned watcher is dropped.
    /// Changes that come together (an editor's save) are taken as one: the reload waits for `settle` of
    /// quiet.
    ///
    /// ```no_run
    /// use lightflow_remedy::Policies;
    /// use lightflow_remedy::reload::{LivePolicies, ReloadEvent};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let live = Arc::new(LivePolicies::load(Policies::builder().directory("/etc/lightflow/policies"))?);
    /// let mut events = live.subscribe();
    /// let _watching = live.watch(Duration::from_millis(200))?;
    /// while let Ok(event) = events.recv().await {
    ///     if let ReloadEvent::Refused { errors } = event {
    ///         eprintln!("policies not reloaded, the last good set stays: {errors:?}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(self: &Arc<Self>, settle: Duration) -> Result<PolicyWatcher, WatchError> {
        let directories: Vec<PathBuf> = self.source.as_ref().map(|s| s.directories()).unwrap_or_default();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })
        .map_err(|source| WatchError { path: "the policies directories".to_owned(), source })?;
        for dir in &directories {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError { path: dir.display().to_string(), source })?;
        }
        let live = Arc::downgrade(self);
        let reloader = std::thread::Builder::new()
            .name("policy-reload".to_owned())
            .spawn(move || {
                // Ends when the watcher (the sender) is dropped, or the policies are.
                while rx.recv().is_ok() {
                    while rx.recv_timeout(settle).is_ok() {}
                    let Some(live) = live.upgrade() else { return };
                    let _ = live.reload();
                }
            })
            .map_err(|e| WatchError { path: "a reload thread".to_owned(), source: notify::Error::io(e) })?;
        Ok(PolicyWatcher { _watcher: watcher, _reloader: reloader })
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

/// Watches the policies directories; dropping it stops the watching.
pub struct PolicyWatcher {
    _watcher: notify::RecommendedWatcher,
    _reloader: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyWatcher")
    }
}
