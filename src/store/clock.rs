//! One clock for due times and leases: milliseconds since the Unix epoch, read from the system, from tokio's
//! clock (paused in tests and simulations), or from the database.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A moment on a store's clock: whole milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This moment plus `d` (saturating).
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// This moment minus `d` (saturating).
    ///
    /// ```
    /// use lightflow_remedy::store::Timestamp;
    /// use std::time::Duration;
    /// assert_eq!(Timestamp(10_000).before(Duration::from_secs(3)), Timestamp(7_000));
    /// ```
    pub fn before(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// How long from `earlier` to this moment (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(self.0).unwrap_or(0));
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

/// Where the engine reads the time for due times and leases.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

impl From<SystemTime> for Timestamp {
    /// The milliseconds since the Unix epoch of a time (0 for a time before it).
    ///
    /// ```
    /// use lightflow_remedy::store::Timestamp;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// assert_eq!(Timestamp::from(UNIX_EPOCH + Duration::from_millis(1_500)), Timestamp(1_500));
    /// ```
    fn from(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The system's clock (one process, or replicas whose clocks agree).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(SystemTime::now())
    }
}

/// Tokio's clock, from a fixed start: under paused time (tests, simulations) the store's due times and leases
/// move with the virtual time that the engine's waits see.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `base` now and moves with tokio's clock. Call it inside a runtime with time enabled.
    pub fn starting_at(base: Timestamp) -> Self {
        TokioClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base.after(self.start.elapsed())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// Holds tokio's paused clock still while database work is under way: a paused runtime that waits for a
/// database (on another thread, or on a socket) would otherwise take itself for idle and jump to its next
/// timer, and leases would expire in the middle of a query. Tokio does not advance its clock while a blocking
/// task runs, so one blocking task waits for as long as any work is held. Without paused time it costs a
/// counter.
#[derive(Debug, Default)]
pub struct TimeHold {
    held: Arc<(Mutex<usize>, Condvar)>,
}

/// Held work; dropping it lets the clock move again once no other work is held.
#[derive(Debug)]
pub struct Held {
    held: Arc<(Mutex<usize>, Condvar)>,
}

impl TimeHold {
    /// A hold for the work about to start. Outside a tokio runtime it holds nothing.
    pub fn hold(&self) -> Held {
        let (count, _) = &*self.held;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        if *n == 1 && tokio::runtime::Handle::try_current().is_ok() {
            let held = self.held.clone();
            // The blocking task holds the clock from the moment it is spawned until it returns.
            drop(tokio::task::spawn_blocking(move || {
                let (count, moved) = &*held;
                let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
                while *n > 0 {
                    n = moved.wait(n).unwrap_or_else(|e| e.into_inner());
                }
            }));
        }
        Held { held: self.held.clone() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let (count, moved) = &*self.held;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            moved.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_add_and_subtract_without_overflow() {
        let t = Timestamp(1_000);
        assert_eq!(t.after(Duration::from_millis(500)), Timestamp(1_500));
        assert_eq!(t.after(Duration::MAX), Timestamp(i64::MAX));
        assert_eq!(Timestamp(1_500).since(t), Duration::from_millis(500));
        assert_eq!(t.since(Timestamp(1_500)), Duration::ZERO);
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_clock_does_not_jump_while_work_is_under_way() {
        let clock = TokioClock::starting_at(Timestamp(0));
        let hold = TimeHold::default();
        let held = hold.hold();
        // Work on another thread that takes a little real time: the paused clock must not jump to the timer.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(());
        });
        tokio::select! {
            _ = rx => {}
            _ = tokio::time::sleep(Duration::from_secs(3600)) => panic!("the clock jumped while work was held"),
        }
        drop(held);
        assert!(clock.now() < Timestamp(1_000));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.now(), Timestamp(60_000), "free again, it moves");
    }
}
