//! Watching the policies directories: a [`LivePolicies`] reloaded when one of its files changes.
//!
//! A change is loaded once the files have stayed unchanged for a while (a file still being written is not
//! taken for the whole; one that changes while it is read is read again), and whatever a script does, the
//! reload thread goes on: a failed load keeps the last good set, and should the thread ever stop for another
//! reason than the watcher being dropped, it says so in the log.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};

use crate::decide::script::limits;
use crate::decide::{LivePolicies, ReloadEvent};
use crate::diagnostic::Diagnostic;

/// How long the files must stay unchanged before they are loaded, at least: longer than a writer's pause
/// between two writes of one file, in practice.
const MIN_STABLE: Duration = Duration::from_millis(250);
/// How long a reload waits for files that keep changing before it loads them anyway.
const MAX_WAIT: Duration = Duration::from_secs(10);

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
    ///
    /// Changes that come together (an editor's save) are taken as one: the reload waits for `settle` of quiet,
    /// then until the directories' files (their names, sizes and modification times) have stayed the same for
    /// `settle` (at least 250 ms) in all, so that a file being written is loaded once it is whole.
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
    /// let watching = live.watch(Duration::from_millis(200))?;
    /// while let Ok(event) = events.recv().await {
    ///     if let ReloadEvent::Refused { errors } = event {
    ///         eprintln!("policies not reloaded, the last good set stays: {errors:?}");
    ///     }
    ///     assert!(watching.is_watching());
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
                let _loud = SaysWhenItDies;
                // Ends when the watcher (the sender) is dropped, or the policies are.
                while rx.recv().is_ok() {
                    if !settled(&rx, &directories, settle) {
                        return;
                    }
                    let Some(live) = live.upgrade() else { return };
                    reload(&live);
                }
            })
            .map_err(|e| WatchError { path: "a reload thread".to_owned(), source: notify::Error::io(e) })?;
        Ok(PolicyWatcher { _watcher: watcher, reloader })
    }
}

/// Reloads `live`; a panic (a bug, which no script should reach) is reported like a refused set, and the
/// watching goes on.
fn reload(live: &LivePolicies) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| live.reload())).is_err() {
        tracing::error!("a policy reload panicked; the last good set stays in force and watching goes on");
        let error = Diagnostic::error(&Arc::from("the policies directories"), None, "the reload failed (a bug)");
        live.report(ReloadEvent::Refused { errors: vec![error] });
    }
}

/// Waits for `settle` without events, then until the files of `directories` stay the same for a while.
/// `false` when the watcher is gone.
fn settled(rx: &Receiver<()>, directories: &[PathBuf], settle: Duration) -> bool {
    let window = settle.max(MIN_STABLE);
    let started = Instant::now();
    let mut before = snapshot(directories);
    loop {
        // Quiet first: every event starts the wait again.
        loop {
            match rx.recv_timeout(settle) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        std::thread::sleep(window.saturating_sub(settle));
        let now = snapshot(directories);
        if now == before || started.elapsed() > MAX_WAIT {
            return true;
        }
        before = now;
    }
}

/// What tells the files' versions apart without reading them: each `*.rhai` file's name, size and
/// modification time.
fn snapshot(directories: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    for dir in directories {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten().take(limits::MAX_ENTRIES) {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "rhai")
                && let Ok(m) = std::fs::metadata(&path)
            {
                files.push((path, m.len(), m.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

/// Logs an error if the reload thread ends by a panic: watching would otherwise stop without a word.
struct SaysWhenItDies;

impl Drop for SaysWhenItDies {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the policy reload thread stopped: policy files are no longer watched");
        }
    }
}

/// Watches the policies directories; dropping it stops the watching.
pub struct PolicyWatcher {
    _watcher: notify::RecommendedWatcher,
    reloader: std::thread::JoinHandle<()>,
}

impl PolicyWatcher {
    /// Whether the reload thread is still running (it ends only when the policies it watches are dropped).
    pub fn is_watching(&self) -> bool {
        !self.reloader.is_finished()
    }
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher").field("watching", &self.is_watching()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_size_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        std::fs::write(dir.path().join("a.rhai"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let one = snapshot(&dirs);
        assert_eq!(one.len(), 1);
        std::fs::write(dir.path().join("a.rhai"), "xy").unwrap();
        assert_ne!(snapshot(&dirs), one);
    }
}
