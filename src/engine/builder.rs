//! Building a [`Remediator`]: its hook settings, fleet guards, events, and (see
//! [`stored`](super::hand_over)) its store.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast};

use super::guards::breaker::{BreakerConfig, Breakers};
use super::guards::budget::RetryBudget;
use super::hooks::Hooks;
use super::observe::counters::Counters;
use super::remediator::Remediator;
use super::replica::registry::Registry;
use super::replica::{Durable, StoreSettings};
use super::shared::Inner;
use crate::decide::LivePolicies;
use crate::store::{Clock, Store};

/// The most events the event channel keeps for a slow subscriber.
pub(crate) const MAX_EVENT_CAPACITY: usize = 1 << 20;
/// How long a hook call may take by default.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a submitted attempt's result may take by default before the engine asks the host's `check` hook
/// (a LightFlow encode runs for minutes to hours).
pub const DEFAULT_AWAIT_RESULT: Duration = Duration::from_secs(6 * 3600);

/// A durable store, the clock its due times and leases are read from, and the settings.
pub(crate) type StoreChoice = (Arc<dyn Store>, Arc<dyn Clock>, StoreSettings);

/// Builds a [`Remediator`]. Defaults: the jobs in a [`MemoryStore`](crate::store::MemoryStore) of its own
/// (see [`RemediatorBuilder::store`] for a durable one), hook timeout 30 s ([`DEFAULT_HOOK_TIMEOUT`]), 64 hook
/// calls at once, a circuit breaker per downstream ([`BreakerConfig::default`]), no retry budget, room for 1024
/// unread events per subscriber.
pub struct RemediatorBuilder<H> {
    policies: Arc<LivePolicies>,
    hooks: H,
    hook_timeout: Duration,
    max_concurrent_hook_calls: usize,
    budget: Option<RetryBudget>,
    breaker: Option<BreakerConfig>,
    event_capacity: usize,
    await_result: Duration,
    metrics: bool,
    pub(crate) store: Option<StoreChoice>,
}

impl<H: Hooks> RemediatorBuilder<H> {
    pub(crate) fn new(policies: Arc<LivePolicies>, hooks: H) -> Self {
        RemediatorBuilder {
            policies,
            hooks,
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            max_concurrent_hook_calls: 64,
            budget: None,
            breaker: Some(BreakerConfig::default()),
            event_capacity: 1024,
            await_result: DEFAULT_AWAIT_RESULT,
            metrics: false,
            store: None,
        }
    }

    /// Gives the remediator's counts to the [`metrics`] facade as well ([`metric_names`](super::observe::metric_names)),
    /// for a host that installs an exporter; off by default (labels are made for every decision and hook call).
    /// `remedy serve` turns it on.
    ///
    /// ```
    /// # use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Remediator};
    /// # use lightflow_remedy::Policies;
    /// # use serde_json::{Map, Value};
    /// # struct Host;
    /// # impl Hooks for Host {
    /// #     async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
    /// #         Ok(Attempt::Succeeded)
    /// #     }
    /// # }
    /// let remediator = Remediator::builder(Policies::defaults(), Host).metrics(true).build();
    /// # drop(remediator);
    /// ```
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// How long a hook call may take; longer is a failure of kind `timeout`, which policies can match.
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hook_timeout = timeout;
        self
    }

    /// How many hook calls may be in flight at once, across all jobs.
    pub fn max_concurrent_hook_calls(mut self, n: usize) -> Self {
        self.max_concurrent_hook_calls = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// A retry budget shared by all jobs, e.g. [`RetryBudget::aws_standard`].
    ///
    /// The AWS quota refills only from successes: a retry that succeeds gives its cost back, and the host
    /// reports its first-try successes (which the engine never sees) with
    /// [`Remediator::record_first_try_success`]. A refused retry ends its job with `BudgetExhausted`.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The circuit breakers' settings.
    pub fn circuit_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// How long a submitted attempt's result may take before the engine asks the host's `check` hook
    /// (default [`DEFAULT_AWAIT_RESULT`], 6 h), and again after each `check` that finds it still running. A
    /// stage's own `await_result` option (`retry(#{ await_result: "2h" })`) takes precedence for the attempts of
    /// that stage; this is the wait of every other one (and of `fix_credentials` stages, which take no options).
    pub fn await_result(mut self, wait: Duration) -> Self {
        self.await_result = wait;
        self
    }

    /// No circuit breakers.
    pub fn without_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// How many events a slow subscriber may fall behind before it misses some (1 to 1,048,576, rounded up
    /// to a power of two: the channel keeps that many events).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.clamp(1, MAX_EVENT_CAPACITY);
        self
    }

    /// The remediator. With a durable store, its claimer, heartbeat and pruner start on the current tokio
    /// runtime (or, built outside one, at the first [`Remediator::start`] or [`Remediator::enqueue`]).
    pub fn build(self) -> Remediator<H> {
        let (events, _) = broadcast::channel(self.event_capacity);
        let durable = match self.store {
            Some((store, clock, settings)) => Durable::new(store, clock, settings),
            None => Durable::private(),
        };
        let remediator = Remediator {
            inner: Arc::new(Inner {
                policies: self.policies,
                hooks: self.hooks,
                hook_timeout: self.hook_timeout,
                hook_slots: Semaphore::new(self.max_concurrent_hook_calls),
                budget: self.budget,
                breakers: self.breaker.map(Breakers::new),
                counters: Counters::new(self.metrics),
                events,
                listened: AtomicBool::new(false),
                jobs: Mutex::new(Registry::default()),
                accepting: AtomicBool::new(true),
                idle: Notify::new(),
                await_result: self.await_result,
                durable,
            }),
        };
        remediator.start();
        remediator
    }
}

impl<H: Hooks> Remediator<H> {
    /// A builder for a remediator deciding with `policies` (a [`Policies`], or a shared [`LivePolicies`] that
    /// can be reloaded while jobs run) and acting through `hooks`.
    pub fn builder(policies: impl Into<Arc<LivePolicies>>, hooks: H) -> RemediatorBuilder<H> {
        RemediatorBuilder::new(policies.into(), hooks)
    }
}
