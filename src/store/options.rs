//! How a durable store is opened: its connections, how long a write waits for the database, and whether
//! database work holds tokio's paused clock.

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
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Connections for reads (at least 1). SQLite writes on one connection of its own besides: it lets one
    /// writer in at a time, so more would only wait for each other.
    pub pool_size: u32,
    /// How long a write waits for another process's write to end before it fails (SQLite's busy timeout).
    pub busy_timeout: Duration,
    /// Hold tokio's paused clock still for the duration of every database operation (see
    /// [`TimeHold`](super::TimeHold)). Without it, a paused runtime waiting for the database takes itself for
    /// idle and jumps to its next timer in the middle of a query.
    pub hold_time: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { pool_size: 4, busy_timeout: Duration::from_secs(5), hold_time: false }
    }
}

impl StoreOptions {
    /// Connections for reads (raised to 1 if 0).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long a write waits for another process's write.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether database work holds tokio's paused clock.
    pub fn hold_time(mut self, hold: bool) -> Self {
        self.hold_time = hold;
        self
    }
}
