//! How a durable store is opened: its connections, how long a write waits for the database, whether database
//! work holds tokio's paused clock, and whether replicas wake each other.

use std::time::Duration;

/// Options for opening a durable store, by [`open_url`](super::open_url) or a store's own `open`.
///
/// The defaults suit a process that runs on the system clock; simulations and tests under paused tokio time
/// turn [`hold_time`](Self::hold_time) on.
///
/// ```
/// use lightflow_remedy::store::StoreOptions;
/// use std::time::Duration;
///
/// let options = StoreOptions::default().pool_size(2).busy_timeout(Duration::from_secs(10)).hold_time(true);
/// assert_eq!(options.pool_size, 2);
/// assert!(options.hold_time);
///
/// // Behind PgBouncer in transaction mode, LISTEN does not work: no hints, the claimers poll.
/// let pooled = StoreOptions::default().wake_hints(false);
/// assert!(!pooled.wake_hints);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Connections (at least 1; 10 by default). PostgreSQL: the pool every operation takes its connection
    /// from (the wake hints' listener has one more of its own). SQLite: the connections for reads; it writes
    /// on one connection of its own besides, since it lets one writer in at a time and more would only wait
    /// for each other.
    pub pool_size: u32,
    /// How long a write waits for another process's write to end before it fails (SQLite's busy timeout).
    /// PostgreSQL's store holds row locks for one short transaction and does not use it.
    pub busy_timeout: Duration,
    /// Hold tokio's paused clock still for the duration of every database operation (see
    /// [`TimeHold`](super::TimeHold)). Without it, a paused runtime waiting for the database takes itself for
    /// idle and jumps to its next timer in the middle of a query.
    pub hold_time: bool,
    /// Whether replicas wake each other (on by default): PostgreSQL's store sends a notification when a job
    /// may have become due (a submit, a report applied, a job released due now, "retry now") and listens for
    /// the others' (see [`Store::wake_hints`](super::Store::wake_hints)). Off, it neither sends nor listens,
    /// and the claimers find due jobs by polling alone: turn it off behind PgBouncer in transaction mode, where
    /// `LISTEN` does not work. The other stores have no hints.
    pub wake_hints: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { pool_size: 10, busy_timeout: Duration::from_secs(5), hold_time: false, wake_hints: true }
    }
}

impl StoreOptions {
    /// Connections (raised to 1 if 0).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long a write waits for another process's write (SQLite).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether database work holds tokio's paused clock.
    pub fn hold_time(mut self, hold: bool) -> Self {
        self.hold_time = hold;
        self
    }

    /// Whether the store sends and listens for wake hints (PostgreSQL's `LISTEN`/`NOTIFY`).
    pub fn wake_hints(mut self, on: bool) -> Self {
        self.wake_hints = on;
        self
    }
}
