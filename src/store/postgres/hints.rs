//! Wake hints between replicas: a write that makes a job due sends a notification on the store's channel,
//! inside its own transaction (so it is delivered only if the write commits); each store listens on a
//! connection of its own and wakes whoever waits on its [`Notify`]. Hints are only hints: a lost one (the listener reconnecting,
//! a replica behind PgBouncer) costs a claimer's poll interval, never a job.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::Notify;

use super::conn::Task;
use crate::store::StoreError;

/// The channel of the replicas of a database that keep their tables where the `search_path` says.
const CHANNEL: &str = "lightflow_remedy_due";

/// PostgreSQL's longest channel name (`NAMEDATALEN - 1`).
const LONGEST: usize = 63;

/// The channel of the replicas of one store: `lightflow_remedy_due`, or with a `schema`,
/// `lightflow_remedy_due.SCHEMA` (cut at 63 bytes: two long names that begin alike share a channel, which
/// costs useless claims, nothing more), so that the stores a database holds do not wake each other.
pub(super) fn channel(schema: Option<&str>) -> String {
    let mut channel = match schema {
        Some(schema) => format!("{CHANNEL}.{schema}"),
        None => CHANNEL.to_owned(),
    };
    // Schema names are ASCII (see `open`): any byte is a character boundary.
    channel.truncate(LONGEST);
    channel
}

/// The expression that sends a hint on the channel bound as parameter `$n`, where a statement makes a job
/// due: `true` (`pg_notify` returns `void`, never `NULL`), evaluated only when the `CASE` holding it says
/// so. A `NULL` channel sends nothing (hints off).
macro_rules! send_hint {
    ($n:literal) => {
        concat!("pg_notify($", $n, ", '') IS NULL")
    };
}
pub(super) use send_hint;

/// The longest wait between attempts to listen again when the database cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A listener on its own connection, and the task that turns its notifications into wake-ups.
#[derive(Debug)]
pub(super) struct Listening {
    pub(super) notify: Arc<Notify>,
    pub(super) task: Task,
}

/// Listens on `channel` with a connection made from `connect` (one of its own, outside the store's pool, so
/// that it never takes an operation's place), from now on.
pub(super) async fn listen(connect: PgConnectOptions, channel: &str, store: &str) -> Result<Listening, StoreError> {
    let err = |e: sqlx::Error| StoreError::Database { store: store.to_owned(), message: format!("listening: {e}") };
    // One connection, kept: no reaper, no lifetime (their timers would run on a paused clock).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_lazy_with(connect);
    let mut listener = PgListener::connect_with(&pool).await.map_err(err)?;
    listener.listen(channel).await.map_err(err)?;
    let notify = Arc::new(Notify::new());
    let task = Task::spawn(forward(listener, notify.clone(), store.to_owned()));
    Ok(Listening { notify, task })
}

/// Wakes every waiter, and leaves a permit for the next one to wait (a claimer between its claim and its wait
/// would otherwise miss the hint until it polls).
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

async fn forward(mut listener: PgListener, notify: Arc<Notify>, store: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => {
                // Many hints at once are one wake-up.
                while listener.next_buffered().is_some() {}
                wake(&notify);
                backoff = Duration::from_millis(100);
            }
            // The connection was lost and is made again at the next receive: hints sent meanwhile are lost, so
            // look now; and wait a little, so that a connection lost again at once is not remade in a hot loop.
            Ok(None) => {
                wake(&notify);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                tracing::warn!(store = %store, error = %e, retry_in = ?backoff, "listening for wake hints failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wake(&notify);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schema_has_a_channel_of_its_own_within_postgres_length() {
        let long = "s".repeat(63);
        let table = [
            (None, "lightflow_remedy_due".to_owned()),
            (Some("remedy"), "lightflow_remedy_due.remedy".to_owned()),
            (Some(long.as_str()), format!("lightflow_remedy_due.{}", &long[..42])),
        ];
        for (schema, expected) in table {
            assert_eq!(channel(schema), expected, "{schema:?}");
            assert!(channel(schema).len() <= 63);
        }
    }
}
