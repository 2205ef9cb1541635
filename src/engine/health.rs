//! Whether a remediator can do its work, for a readiness check: its store answers, it wrote lately, and its
//! claimer runs.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::hooks::Hooks;
use super::remediator::Remediator;
use crate::store::Timestamp;

/// What [`Remediator::health`] says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The store (its [`describe`](crate::store::Store::describe)), if the remediator has one.
    pub store: Option<String>,
    /// Whether the store's latest answer to a write (a claim, a renewal, a save) was not an error.
    pub store_reachable: bool,
    /// When the store last took a write, on the store's clock.
    pub last_write: Option<Timestamp>,
    /// Writes that failed in a row since.
    pub failures: u32,
    /// The latest failure, if the store is unreachable.
    pub error: Option<String>,
    /// Whether the claimer (which takes due jobs) is running.
    pub claimer_running: bool,
    /// Jobs this replica holds now.
    pub held_jobs: usize,
}

impl Health {
    /// Whether the remediator can do its work: its store answers and its claimer runs (a remediator without
    /// a store always can).
    pub fn is_healthy(&self) -> bool {
        self.store.is_none() || (self.store_reachable && self.claimer_running)
    }
}

impl<H: Hooks> Remediator<H> {
    /// Whether this remediator can do its work, for a readiness check: with a store, whether the store's
    /// latest answer to a write was not an error (a SQLite file deleted or unwritable, a database that went
    /// away), when it last took one, and whether the claimer runs.
    ///
    /// ```
    /// use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator, StoreSettings};
    /// use lightflow_remedy::store::{MemoryStore, TokioClock, Timestamp};
    /// use lightflow_remedy::Policies;
    /// use serde_json::{Map, Value};
    /// use std::sync::Arc;
    ///
    /// struct Host;
    /// impl Hooks for Host {
    ///     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    ///         Ok(Attempt::Succeeded)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let clock = Arc::new(TokioClock::starting_at(Timestamp(0)));
    /// let remediator = Remediator::builder(Policies::defaults(), Host)
    ///     .store_with(Arc::new(MemoryStore::new()), clock, StoreSettings::default())
    ///     .build();
    /// tokio::time::sleep(std::time::Duration::from_millis(10)).await; // the claimer's first look
    /// let health = remediator.health();
    /// assert!(health.is_healthy(), "{health:?}");
    /// assert_eq!(health.store.as_deref(), Some("memory"));
    /// # }
    /// ```
    pub fn health(&self) -> Health {
        let d = &self.inner.durable;
        let failures = d.health.failures.load(Ordering::SeqCst);
        let last = d.health.last_write.load(Ordering::SeqCst);
        let claimer_running = !d.stopping.load(Ordering::SeqCst)
            && d.started.load(Ordering::SeqCst)
            && d.tasks.lock().unwrap_or_else(|e| e.into_inner()).first().is_some_and(|claimer| !claimer.is_finished());
        Health {
            store: Some(d.store.describe()),
            store_reachable: failures == 0,
            last_write: (last != i64::MIN).then_some(Timestamp(last)),
            failures,
            error: if failures > 0 { d.health.error.lock().unwrap_or_else(|e| e.into_inner()).clone() } else { None },
            claimer_running,
            held_jobs: d.held().len(),
        }
    }
}
