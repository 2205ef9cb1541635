//! Opening a PostgreSQL store: the URL (sqlx's parameters, and `schema`), the pool (no reaper, no lifetime:
//! their timers would run on a paused clock), the schema brought up to date, the database's clock, and the
//! wake hints' listener.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::clock::{self, DatabaseClock};
use super::conn::{Db, Task};
use super::hints::{self, Listening};
use super::migrate::migrate;
use crate::store::redact::redact;
use crate::store::{StoreError, StoreOptions, TimeHold};

/// What the store keeps of its opening.
pub(super) struct Opened {
    pub(super) db: Arc<Db>,
    pub(super) clock: Arc<DatabaseClock>,
    pub(super) reader: Task,
    pub(super) listening: Option<Listening>,
}

/// What `application_name` says in `pg_stat_activity` unless the URL names another.
const APPLICATION: &str = "lightflow-remedy";

/// The URL's connection options (its `schema` parameter taken out: sqlx does not know it) and the schema.
fn locate(url: &str) -> Result<(PgConnectOptions, Option<String>), StoreError> {
    let bad = |reason: String| StoreError::BadUrl { url: redact(url), reason };
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", name)) => {
                if schema.replace(name.to_owned()).is_some() {
                    return Err(bad("it names `schema` twice".to_owned()));
                }
            }
            _ => kept.push(pair),
        }
    }
    if let Some(name) = &schema {
        check_schema(name).map_err(bad)?;
    }
    let sqlx_url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let mut connect = PgConnectOptions::from_str(&sqlx_url).map_err(|e| bad(e.to_string()))?;
    if connect.get_application_name().is_none() {
        connect = connect.application_name(APPLICATION);
    }
    if let Some(name) = &schema {
        // Every connection's own: the store's tables, and sqlx's record of migrations, are found there.
        connect = connect.options([("search_path", format!("\"{name}\""))]);
    }
    Ok((connect, schema))
}

/// A schema name as the store takes it: a plain lower-case identifier, so that it needs no escaping anywhere.
fn check_schema(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain || name.len() > 63 || name.starts_with("pg_") {
        return Err(format!(
            "the schema `{name}` is not a plain name: up to 63 of a-z, 0-9 and _, not starting with a digit or pg_"
        ));
    }
    Ok(())
}

/// Connects to the database `url` names, migrates it, reads its clock and starts listening for hints.
pub(super) async fn open(url: &str, options: &StoreOptions) -> Result<Opened, StoreError> {
    let hold = options.hold_time.then(TimeHold::default);
    let _held = hold.as_ref().map(TimeHold::hold);
    let (connect, schema) = locate(url)?;
    // No statement waits forever on a database that stopped answering, a lock another session holds, or a
    // transaction left open by a replica that froze half-way.
    let limit = options.statement_timeout.as_millis().to_string();
    let connect = connect.options([
        ("statement_timeout", limit.as_str()),
        ("lock_timeout", limit.as_str()),
        ("idle_in_transaction_session_timeout", limit.as_str()),
    ]);
    let name = redact(url);
    // A connection of its own first: it fails at once when the server cannot be reached (the pool would try
    // again until its acquire timeout), and holds the migrations' lock.
    let lock = PgConnection::connect_with(&connect)
        .await
        .map_err(|e| StoreError::Database { store: name.clone(), message: format!("connecting: {e}") })?;
    let pool = |size: u32| {
        PgPoolOptions::new()
            .max_connections(size)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            // sqlx tests a connection when it is given back; a test before each operation would cost a round trip.
            .test_before_acquire(false)
            .acquire_timeout(options.statement_timeout)
            .connect_lazy_with(connect.clone())
    };
    let (renewals, pool) = (pool(1), pool(options.pool_size.max(1)));
    migrate(lock, &pool, schema.as_deref(), &name).await?;
    let channel = options.wake_hints.then(|| hints::channel(schema.as_deref()));
    let db = Arc::new(Db {
        pool,
        renewals,
        name,
        hold,
        hints: channel,
        held_dropped: Default::default(),
        max_held: options.max_held_reports.max(1),
        held_life: options.held_report_life,
    });
    let (clock, reader) = clock::start(&db).await?;
    let listening = match &db.hints {
        Some(channel) => Some(hints::listen(connect, channel, &db.name).await?),
        None => None,
    };
    Ok(Opened { db, clock, reader, listening })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_and_checked() {
        let table: [(&str, Result<Option<&str>, &str>); 8] = [
            ("postgres://db/jobs", Ok(None)),
            ("postgres://db/jobs?schema=remedy", Ok(Some("remedy"))),
            ("postgres://u:pw@db/jobs?sslmode=disable&schema=test_1&application_name=x", Ok(Some("test_1"))),
            ("postgres://db/jobs?schema=Remedy", Err("not a plain name")),
            ("postgres://db/jobs?schema=", Err("not a plain name")),
            ("postgres://db/jobs?schema=a;drop", Err("not a plain name")),
            ("postgres://db/jobs?schema=pg_catalog", Err("not a plain name")),
            ("postgres://u:pw@db/jobs?schema=a&schema=b", Err("twice")),
        ];
        for (url, expected) in table {
            match (locate(url), expected) {
                (Ok((_, schema)), Ok(want)) => assert_eq!(schema.as_deref(), want, "{url}"),
                (Err(StoreError::BadUrl { url: shown, reason }), Err(says)) => {
                    assert!(reason.contains(says), "{url}: {reason}");
                    assert!(!shown.contains("pw"), "{shown}");
                }
                (got, want) => panic!("{url}: {:?}, expected {want:?}", got.map(|(_, s)| s)),
            }
        }
    }

    #[test]
    fn connections_name_the_application_and_the_schema() {
        let (connect, _) = locate("postgres://db/jobs?schema=remedy").unwrap();
        assert_eq!(connect.get_application_name(), Some(APPLICATION));
        assert_eq!(connect.get_options(), Some("-c search_path=\"remedy\""));
        let (connect, _) = locate("postgres://db/jobs?application_name=mine").unwrap();
        assert_eq!((connect.get_application_name(), connect.get_options()), (Some("mine"), None));
    }
}
