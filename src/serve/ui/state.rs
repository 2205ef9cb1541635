//! What every page of the view reads: the store, its clock, the engine's live state (counters, breakers, the
//! retry budget, the policies in force and when they were loaded), and the access rules.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::access::UiAccess;
use crate::classify::catalogue::Downstream;
use crate::decide::{LivePolicies, Policies, ReloadEvent};
use crate::engine::{BreakerState, CounterSnapshot, Hooks, Remediator};
use crate::store::{Clock, Store};

/// What the view reads of a remediator, whatever its hooks.
pub(crate) trait Engine: Send + Sync {
    /// The counters since it was built.
    fn counters(&self) -> CounterSnapshot;
    /// A downstream's breaker.
    fn breaker(&self, downstream: Downstream) -> BreakerState;
    /// The retry budget's tokens now and when full, if it has one.
    fn budget(&self) -> Option<(f64, f64)>;
    /// The policies in force.
    fn policies(&self) -> Arc<LivePolicies>;
}

impl<H: Hooks> Engine for Remediator<H> {
    fn counters(&self) -> CounterSnapshot {
        Remediator::counters(self)
    }

    fn breaker(&self, downstream: Downstream) -> BreakerState {
        self.breaker_state(downstream)
    }

    fn budget(&self) -> Option<(f64, f64)> {
        let budget = Remediator::budget(self)?;
        let full = match budget.config() {
            crate::engine::BudgetConfig::Aws { capacity, .. } => f64::from(capacity),
            crate::engine::BudgetConfig::Grpc { max_tokens, .. } => f64::from(max_tokens),
        };
        Some((budget.available(), full))
    }

    fn policies(&self) -> Arc<LivePolicies> {
        self.live_policies().clone()
    }
}

/// When the policies in force were loaded, and what the last reload that was refused said.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// When the set in force was put in force (or the view started, for the first).
    pub(crate) at: SystemTime,
    /// The errors of the last refused reload, with when, if one came after.
    pub(crate) refused: Option<(SystemTime, Vec<String>)>,
}

/// The view's state, shared by its handlers.
pub(crate) struct View {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) access: UiAccess,
    pub(crate) loaded: Arc<Mutex<Loaded>>,
    /// How often the overview reloads itself.
    pub(crate) refresh: Duration,
    /// The effective table of the policy set it was made for (kept alive by it, so never mistaken for another).
    pub(crate) table: Mutex<Option<(Arc<Policies>, maud::Markup)>>,
}

impl View {
    /// The view of `engine`'s jobs in `store`. Inside a tokio runtime, it follows the policies' reloads.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        engine: Arc<dyn Engine>,
        access: UiAccess,
        refresh: Duration,
    ) -> View {
        let loaded = Arc::new(Mutex::new(Loaded { at: SystemTime::now(), refused: None }));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut events = engine.policies().subscribe();
            let follow = Arc::downgrade(&loaded);
            runtime.spawn(async move {
                loop {
                    let event = match events.recv().await {
                        Ok(event) => event,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    let Some(loaded) = follow.upgrade() else { return };
                    let mut loaded = loaded.lock().unwrap_or_else(|e| e.into_inner());
                    match event {
                        ReloadEvent::Reloaded { .. } => *loaded = Loaded { at: SystemTime::now(), refused: None },
                        ReloadEvent::Refused { errors } => {
                            let errors = errors.iter().map(ToString::to_string).collect();
                            loaded.refused = Some((SystemTime::now(), errors));
                        }
                    }
                }
            });
        }
        View { store, clock, engine, access, loaded, refresh, table: Mutex::new(None) }
    }

    /// When the policies were loaded, and the last refusal.
    pub(crate) fn loaded(&self) -> Loaded {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
