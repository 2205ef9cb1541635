//! The database's clock, as every replica reads it: due times and leases written by several machines must be
//! on one clock, and the machines' own clocks may differ by seconds. A replica reads the database's time when
//! it opens the store and again once a minute, and between readings counts on its own monotonic clock from the
//! last one: reading the time costs no query.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;
use tokio::sync::Notify;

use super::conn::{Db, Task};
use crate::store::{Clock, StoreError, SystemClock, Timestamp};

/// The database's time now, in milliseconds since the Unix epoch (`clock_timestamp()`: the moment the
/// statement runs, not the start of its transaction).
const DATABASE_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// How long a reading is used before the next is asked for.
const READ_EVERY: Duration = Duration::from_secs(60);

/// A difference from this machine's clock worth a warning at open.
const SKEW_WORTH_SAYING: i64 = 1_000;

/// The database's clock, read every so often and counted between readings on this machine's monotonic clock
/// (so that this machine's clock being set, stepped or slewed changes nothing). Its answers never go back, not
/// even when a new reading is behind the last one's count.
///
/// A [`PgStore`](crate::store::PgStore) gives its clock with [`PgStore::clock`](crate::store::PgStore::clock):
/// hand it to the engine, so that every replica's due times and leases are on the database's clock.
///
/// ```no_run
/// use lightflow_remedy::store::{Clock, PgStore, StoreOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = PgStore::open("postgres://remedy@db/remedy", &StoreOptions::default()).await?;
/// let clock = store.database_clock();
/// println!("the database's clock is {} ms ahead of this machine's; now is {}", clock.skew(), clock.now());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DatabaseClock {
    reading: Mutex<Reading>,
    /// The latest answer: no later answer is earlier.
    answered: AtomicI64,
    /// Raised when the reading is older than `every`: the reader reads again.
    stale: Notify,
    every: Duration,
}

/// The database's time, and when (on this machine's monotonic clock) it was that time.
#[derive(Debug, Clone, Copy)]
struct Reading {
    database: Timestamp,
    at: Instant,
}

impl DatabaseClock {
    fn new(database: Timestamp, at: Instant, every: Duration) -> Self {
        DatabaseClock {
            reading: Mutex::new(Reading { database, at }),
            answered: AtomicI64::new(i64::MIN),
            stale: Notify::new(),
            every,
        }
    }

    /// Takes a reading of the database's time `database`, asked at `sent` and answered at `received`: the
    /// database read it about half-way.
    fn record(&self, database: Timestamp, sent: Instant, received: Instant) {
        let at = sent + received.saturating_duration_since(sent) / 2;
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = Reading { database, at };
    }

    /// How far the database's clock is ahead of this machine's system clock, in milliseconds (negative:
    /// behind).
    pub fn skew(&self) -> i64 {
        self.now().0.saturating_sub(SystemClock.now().0)
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> Timestamp {
        let reading = *self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = reading.at.elapsed();
        if elapsed >= self.every {
            self.stale.notify_one();
        }
        let now = reading.database.after(elapsed).0;
        Timestamp(self.answered.fetch_max(now, Ordering::SeqCst).max(now))
    }
}

/// Reads the database's time once. The round trip is timed from when a connection is in hand: a wait for
/// one of the pool's is no part of it.
async fn read(pool: &PgPool) -> Result<(Timestamp, Instant, Instant), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let sent = Instant::now();
    let database: i64 = sqlx::query_scalar(DATABASE_NOW).fetch_one(&mut *conn).await?;
    Ok((Timestamp(database), sent, Instant::now()))
}

/// The longest wait before a failed reading is tried again.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The clock of `db`'s database, from a first reading, and the task that reads it again when it is stale (it
/// waits for an answer to find the reading old, not on a timer, so that it never runs on a paused clock).
pub(super) async fn start(db: &Arc<Db>) -> Result<(Arc<DatabaseClock>, Task), StoreError> {
    let (database, sent, received) =
        read(&db.pool).await.map_err(|e| db.err(format!("reading the database's clock: {e}")))?;
    let clock = Arc::new(DatabaseClock::new(database, sent, READ_EVERY));
    clock.record(database, sent, received);
    let skew = clock.skew();
    if skew.abs() >= SKEW_WORTH_SAYING {
        tracing::warn!(store = %db.name, skew_ms = skew, "this machine's clock differs from the database's: \
            due times and leases are on the database's");
    }
    let task = Task::spawn(keep_reading(Arc::downgrade(db), clock.clone()));
    Ok((clock, task))
}

async fn keep_reading(db: Weak<Db>, clock: Arc<DatabaseClock>) {
    let mut retry = Duration::from_millis(500);
    loop {
        clock.stale.notified().await;
        let Some(store) = db.upgrade() else { return };
        let read = {
            let _held = store.held();
            read(&store.pool).await
        };
        match read {
            Ok((database, sent, received)) => {
                clock.record(database, sent, received);
                retry = Duration::from_millis(500);
            }
            Err(e) => {
                // Counted on from the last reading; asked again at the next answer after a wait that grows, so
                // that a database that is down is not asked at every answer.
                tracing::warn!(store = %store.name, error = %e, retry_in = ?retry, "reading the database's clock failed");
                drop(store);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock whose database is `ahead` ms ahead of this machine's system clock, read just now.
    fn ahead_by(ahead: i64, every: Duration) -> DatabaseClock {
        DatabaseClock::new(Timestamp(SystemClock.now().0 + ahead), Instant::now(), every)
    }

    fn close(a: i64, b: i64, within: i64) -> bool {
        (a - b).abs() <= within
    }

    #[test]
    fn it_answers_the_database_time_counted_on_this_machines_monotonic_clock() {
        let table = [("an hour ahead", 3_600_000), ("a minute behind", -60_000), ("the same", 0)];
        for (what, ahead) in table {
            let clock = ahead_by(ahead, READ_EVERY);
            assert!(close(clock.now().0, SystemClock.now().0 + ahead, 50), "{what}");
            assert!(close(clock.skew(), ahead, 50), "{what}: skew {}", clock.skew());
            let before = clock.now();
            std::thread::sleep(Duration::from_millis(30));
            let moved = clock.now().since(before);
            assert!(moved >= Duration::from_millis(30) && moved < Duration::from_secs(1), "{what}: {moved:?}");
        }
    }

    #[test]
    fn a_reading_counts_from_half_way_through_its_round_trip() {
        let clock = ahead_by(0, READ_EVERY);
        let received = Instant::now();
        let sent = received - Duration::from_millis(400);
        clock.record(Timestamp(1_000_000), sent, received);
        // Read half-way (200 ms ago): now is about 200 ms past the reading.
        assert!(close(clock.now().0, 1_000_200, 50), "{}", clock.now());
    }

    #[test]
    fn a_later_reading_moves_it_forward_and_an_earlier_one_never_back() {
        let clock = ahead_by(0, READ_EVERY);
        let first = clock.now();
        let now = Instant::now();
        clock.record(Timestamp(first.0 + 10_000), now, now);
        assert!(close(clock.now().0, first.0 + 10_000, 50), "forward: {}", clock.now());
        let forward = clock.now();
        clock.record(Timestamp(first.0 - 5_000), now, now);
        assert!(clock.now() >= forward, "never back: {} after {forward}", clock.now());
    }

    #[tokio::test]
    async fn a_stale_reading_asks_for_another() {
        let clock = ahead_by(0, Duration::from_millis(20));
        clock.now();
        let asked = clock.stale.notified();
        tokio::pin!(asked);
        let fresh = tokio::time::timeout(Duration::from_millis(5), asked.as_mut()).await;
        assert!(fresh.is_err(), "fresh: no reading asked for");
        std::thread::sleep(Duration::from_millis(30));
        clock.now();
        tokio::time::timeout(Duration::from_secs(1), asked).await.expect("stale: a reading is asked for");
    }
}
