//! Watching the policies directories: a [`LivePolicies`] reloaded when one of its files changes.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::decide::LivePolicies;

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

impl LivePolicies {
    /// Reloads whenever a file of the policies directories changes, until the returned watcher is dropped.
    /// Changes that come together (an editor's save) are taken as one: the reload waits for `settle` of
    /// quiet.
    ///
    /// ```no_run
    /// use lightflow_remedy::Policies;
    /// use lightflow_remedy::decide::{LivePolicies, ReloadEvent};
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
        let directories = self.directories();
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
