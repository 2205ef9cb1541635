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
///
/// // A reader that must not make an empty store out of a typo.
/// let reader = StoreOptions::default().create(false);
/// assert!(!reader.create);
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
    /// Whether a SQLite store's file is created when it is missing (on by default). Off, opening a missing
    /// file is [`StoreError::Missing`](super::StoreError::Missing): readers (`remedy jobs`) never make an
    /// empty store out of a typo.
    pub create: bool,
    /// The most reports for unknown references the store holds (10,000 by default): past it, the oldest is
    /// dropped (and counted in [`Stats::held_reports_dropped`](super::Stats::held_reports_dropped)), and the
    /// report that made room is answered [`ReportAnswer::Unknown`](super::ReportAnswer::Unknown).
    pub max_held_reports: u64,
    /// How long a report for an unknown reference is held, in case its attempt is being submitted right now
    /// (10 minutes by default); older ones are dropped.
    pub held_report_life: Duration,
    /// How long one database statement may run before the database cancels it (PostgreSQL's
    /// `statement_timeout`, 30 s by default; its `lock_timeout` and `idle_in_transaction_session_timeout` are set
    /// from it too), and how long an operation waits for a connection of the pool. No call waits forever on a
    /// database that has stopped answering.
    pub statement_timeout: Duration,
    /// How long a write of the durable stores may wait for others to commit with (2 ms by default): the saves
    /// (and on SQLite the submits and claims) of many jobs of one replica are committed together, in one
    /// transaction, each caller still answered only once its own write is committed. The writer takes what is
    /// queued at once, lets the ready tasks run once, and waits longer (up to this) only while it expects more
    /// writes than it has (as many as the previous transaction held) and none of them is a claim: a lone write
    /// is not delayed by more than this, usually not at all. Zero: no waiting, but what is already queued still
    /// goes together. Not waited on tokio's clock when [`hold_time`](Self::hold_time) holds it still.
    pub group_commit_window: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_size: 10,
            busy_timeout: Duration::from_secs(5),
            hold_time: false,
            wake_hints: true,
            create: true,
            max_held_reports: 10_000,
            held_report_life: Duration::from_secs(600),
            statement_timeout: Duration::from_secs(30),
            group_commit_window: Duration::from_millis(2),
        }
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

    /// Whether a missing SQLite file is created (off: opening it is an error).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// The most reports for unknown references held (at least 1).
    pub fn max_held_reports(mut self, n: u64) -> Self {
        self.max_held_reports = n.max(1);
        self
    }

    /// How long a report for an unknown reference is held.
    pub fn held_report_life(mut self, life: Duration) -> Self {
        self.held_report_life = life;
        self
    }

    /// How long a write may wait for company to commit with (zero: no waiting).
    ///
    /// ```
    /// use lightflow_remedy::store::StoreOptions;
    /// use std::time::Duration;
    ///
    /// let options = StoreOptions::default().group_commit_window(Duration::ZERO);
    /// assert_eq!(options.group_commit_window, Duration::ZERO);
    /// assert_eq!(StoreOptions::default().group_commit_window, Duration::from_millis(2));
    /// ```
    pub fn group_commit_window(mut self, window: Duration) -> Self {
        self.group_commit_window = window;
        self
    }

    /// How long a statement may run, and an operation wait for a connection (at least 1 ms).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }
}
