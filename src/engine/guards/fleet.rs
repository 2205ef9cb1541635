//! Fleet guards: with a durable store, the retry budget and the circuit breakers are one for all the replicas
//! that share it ([`StoreSettings::shared_guards`](super::StoreSettings::shared_guards), on by default).
//!
//! Each replica keeps deciding with its guards in memory, exactly as one process does, and brings them in line
//! with the store's guard rows around every stored step:
//!
//! - **before** the step, the budget's count is read from the store (and what this replica spent or earned
//!   since its last sync is added to it, compare-and-set on the row's version), and the breaker of the job's
//!   downstream is read: opened or closed by another replica, it is opened or closed here too;
//! - **after** the step, the same budget sync again, and a breaker that this replica opened or closed during
//!   the step is written for the others (a newer row of another replica wins).
//!
//! A run of failures is counted by the replica that sees it; the first replica whose count reaches the
//! threshold opens the breaker for all. When it has been open for `open_for`, each replica sends its own
//! probe; the first that succeeds closes it for all. A store that cannot be reached leaves the guards as this
//! replica has them (a warning says so): the step goes on, and the next sync catches up.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::breaker::{BreakerState, Breakers, Transition};
use super::budget::RetryBudget;
use crate::classify::catalogue::Downstream;
use crate::store::{Clock, GuardRow, Store, StoreError, Timestamp};

/// The guard row of the fleet's retry budget.
pub(crate) const BUDGET_GUARD: &str = "retry_budget";

/// The guard row of a downstream's breaker: `breaker.brightcove`, ...
pub(crate) fn breaker_guard(downstream: Downstream) -> String {
    format!("breaker.{downstream}")
}

/// How often a compare-and-set that lost to another replica is tried again before this sync gives up.
const TRIES: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
struct BudgetRow {
    /// Tokens in thousandths.
    milli: u64,
}

/// A breaker as the fleet last saw it change. Times are the store clock's milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum BreakerRow {
    Open { at: i64, until: i64 },
    Closed { at: i64 },
}

impl BreakerRow {
    fn at(&self) -> i64 {
        match *self {
            BreakerRow::Open { at, .. } | BreakerRow::Closed { at } => at,
        }
    }
}

/// The store and this replica's guards, for one sync.
#[derive(Clone, Copy)]
pub(crate) struct Guards<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) budget: Option<&'a RetryBudget>,
    pub(crate) breakers: Option<&'a Breakers>,
}

/// A replica's side of the fleet guards.
#[derive(Default)]
pub(crate) struct Fleet {
    /// The budget's count (thousandths) as last agreed with the store: what the local count moved since is
    /// this replica's to add. `None` before the first sync: the bucket was full then.
    synced: Mutex<Option<u64>>,
    /// One budget sync at a time in this replica.
    turn: tokio::sync::Mutex<()>,
    /// Breaker changes of this replica, to write after the step.
    changes: Mutex<Vec<(Downstream, BreakerRow)>>,
}

impl Fleet {
    /// Notes a change this replica's breaker made, for the others.
    pub(crate) fn noted(&self, now: Timestamp, t: Transition, open_until: Option<Instant>) {
        let row = match t.to {
            BreakerState::Open => {
                let left = open_until.map_or(Duration::ZERO, |u| u.saturating_duration_since(Instant::now()));
                BreakerRow::Open { at: now.0, until: now.after(left).0 }
            }
            BreakerState::Closed => BreakerRow::Closed { at: now.0 },
            BreakerState::HalfOpen => return,
        };
        lock(&self.changes).push((t.downstream, row));
    }

    /// Before a stored step on a failure of `downstream`: the fleet's budget and breaker brought in. Returns
    /// the change the fleet's breaker made here, if any.
    pub(crate) async fn before(&self, on: Guards<'_>, downstream: Downstream) -> Option<Transition> {
        if let Some(budget) = on.budget {
            self.sync_budget(budget, on).await;
        }
        let breakers = on.breakers?;
        let row = match read_breaker(on.store, downstream).await {
            Ok(row) => row?,
            Err(e) => {
                warn(on.store, "reading a breaker", &e);
                return None;
            }
        };
        let (now, at) = (Instant::now(), on.clock.now());
        let instant = |t: i64| instant_of(now, at, Timestamp(t));
        match row {
            BreakerRow::Open { at, until } => breakers.adopt_open(downstream, instant(at), instant(until), now),
            BreakerRow::Closed { at } => breakers.adopt_closed(downstream, instant(at)),
        }
    }

    /// After a stored step: what it spent or earned added to the fleet's budget, and its breaker changes
    /// written.
    pub(crate) async fn after(&self, on: Guards<'_>) {
        let changes = std::mem::take(&mut *lock(&self.changes));
        for (downstream, row) in changes {
            if let Err(e) = write_breaker(on.store, downstream, row).await {
                warn(on.store, "writing a breaker", &e);
            }
        }
        if let Some(budget) = on.budget {
            self.sync_budget(budget, on).await;
        }
    }

    /// Adds what the local count moved since the last sync to the store's count, and takes the result as the
    /// local count (keeping what moved here while the store was asked).
    async fn sync_budget(&self, budget: &RetryBudget, on: Guards<'_>) {
        let _turn = self.turn.lock().await;
        let full = budget.full_milli();
        for _ in 0..TRIES {
            let local = budget.milli();
            let synced = *lock(&self.synced);
            let row = match on.store.guard(BUDGET_GUARD).await {
                Ok(row) => row,
                Err(e) => return warn(on.store, "reading the retry budget", &e),
            };
            let (fleet, version) = match &row {
                Some(GuardRow { value, version }) => {
                    let fleet = serde_json::from_str::<BudgetRow>(value).map_or(full, |b| b.milli.min(full));
                    (fleet, Some(*version))
                }
                None => (full, None),
            };
            let moved = signed(local) - signed(synced.unwrap_or(full));
            let agreed = u64::try_from((signed(fleet) + moved).clamp(0, signed(full))).unwrap_or(0);
            if moved != 0 || version.is_none() {
                let value = serde_json::json!({ "milli": agreed }).to_string();
                match on.store.set_guard(BUDGET_GUARD, version, &value).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return warn(on.store, "writing the retry budget", &e),
                }
            }
            budget.adjust(signed(agreed) - signed(local));
            *lock(&self.synced) = Some(agreed);
            return;
        }
        tracing::warn!(store = %on.store.describe(), "the retry budget's row changed under every try: synced later");
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn read_breaker(store: &dyn Store, downstream: Downstream) -> Result<Option<BreakerRow>, StoreError> {
    let row = store.guard(&breaker_guard(downstream)).await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.value).ok()))
}

/// Writes `row` unless the store holds a newer change.
async fn write_breaker(store: &dyn Store, downstream: Downstream, row: BreakerRow) -> Result<(), StoreError> {
    let name = breaker_guard(downstream);
    let value = serde_json::to_string(&row).unwrap_or_default();
    for _ in 0..TRIES {
        let version = match store.guard(&name).await? {
            Some(r) => {
                if serde_json::from_str::<BreakerRow>(&r.value).is_ok_and(|b| b.at() > row.at()) {
                    return Ok(());
                }
                Some(r.version)
            }
            None => None,
        };
        if store.set_guard(&name, version, &value).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// The instant of store time `t`, given that `now` is `at` on the store's clock.
fn instant_of(now: Instant, at: Timestamp, t: Timestamp) -> Instant {
    if t >= at { now + t.since(at) } else { now.checked_sub(at.since(t)).unwrap_or(now) }
}

fn warn(store: &dyn Store, what: &str, e: &StoreError) {
    tracing::warn!(store = %store.describe(), error = %e, "fleet guards: {what} failed; this replica's own view holds");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::guards::budget::{BudgetConfig, ErrorClass};
    use crate::engine::{AwsCosts, BreakerConfig};
    use crate::store::{MemoryStore, TokioClock};

    fn aws(capacity: u32) -> RetryBudget {
        let costs = AwsCosts { throttling: 1, timeout: 1, transient: 1 };
        RetryBudget::new(BudgetConfig::Aws { capacity, costs, no_retry_increment: 1 }).unwrap()
    }

    /// Replicas that spend and earn between their syncs, in any order, end with one count: what all of them
    /// moved, added up (within the bucket).
    #[tokio::test]
    async fn replicas_spending_between_syncs_add_up_to_one_count() {
        let store = MemoryStore::new();
        let clock = TokioClock::starting_at(Timestamp(0));
        let budgets = [aws(100), aws(100), aws(100)];
        let fleets = [Fleet::default(), Fleet::default(), Fleet::default()];
        let on = |i: usize| Guards { store: &store, clock: &clock, budget: Some(&budgets[i]), breakers: None };
        // (replica, tokens spent before its next sync, successes)
        let plan = [(0, 7, 0), (1, 5, 2), (2, 0, 0), (0, 3, 1), (2, 11, 0), (1, 0, 3), (0, 0, 0)];
        let mut spent = 0;
        for (i, take, earn) in plan {
            for _ in 0..take {
                budgets[i].try_acquire(ErrorClass::Transient).unwrap();
            }
            for _ in 0..earn {
                budgets[i].succeeded(None);
            }
            spent += take as i64 - earn as i64;
            fleets[i].after(on(i)).await;
        }
        for (i, fleet) in fleets.iter().enumerate() {
            fleet.before(on(i), Downstream::Brightcove).await;
        }
        let row = store.guard(BUDGET_GUARD).await.unwrap().unwrap();
        let fleet: BudgetRow = serde_json::from_str(&row.value).unwrap();
        assert_eq!(fleet.milli as i64, (100 - spent) * 1000);
        for b in &budgets {
            assert_eq!(b.milli(), fleet.milli, "every replica sees the fleet's count after a sync");
        }
    }

    /// A breaker change is written unless the store holds a newer one, and taken in by a replica that has seen
    /// nothing newer.
    #[tokio::test(start_paused = true)]
    async fn breaker_rows_keep_the_newest_change() {
        let store = MemoryStore::new();
        let clock = TokioClock::starting_at(Timestamp(10_000));
        let here = Breakers::new(BreakerConfig::default());
        let on = Guards { store: &store, clock: &clock, budget: None, breakers: Some(&here) };
        let d = Downstream::Brightcove;
        write_breaker(&store, d, BreakerRow::Open { at: 20_000, until: 50_000 }).await.unwrap();
        write_breaker(&store, d, BreakerRow::Closed { at: 15_000 }).await.unwrap();
        assert_eq!(read_breaker(&store, d).await.unwrap(), Some(BreakerRow::Open { at: 20_000, until: 50_000 }));
        let fleet = Fleet::default();
        let t = fleet.before(on, d).await.expect("opened here");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(here.state(d), BreakerState::Open);
        write_breaker(&store, d, BreakerRow::Closed { at: 30_000 }).await.unwrap();
        let t = fleet.before(on, d).await.expect("closed here");
        assert_eq!(t.to, BreakerState::Closed);
        // An old open seen again changes nothing.
        write_breaker(&store, d, BreakerRow::Open { at: 20_000, until: 50_000 }).await.unwrap();
        assert_eq!(fleet.before(on, d).await, None);
    }
}
