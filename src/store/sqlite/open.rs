//! Opening a SQLite store: where the file is (a path, or a `sqlite:` URL), how its connections are set up
//! (WAL, `synchronous = NORMAL`, foreign keys, a busy timeout), and the schema brought up to date.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::conn::{Db, FileId};
use super::migrate::migrate;
use crate::store::{StoreError, StoreOptions, TimeHold};

/// The database named by `location`, and the store's name for messages.
fn locate(location: &Path) -> Result<(SqliteConnectOptions, String, bool), StoreError> {
    let Some(url) = location.to_str().filter(|s| s.starts_with("sqlite:")) else {
        if location.as_os_str().is_empty() {
            return Err(StoreError::BadUrl { url: String::new(), reason: "the path is empty".to_owned() });
        }
        let name = format!("sqlite:{}", location.display());
        return Ok((SqliteConnectOptions::new().filename(location), name, false));
    };
    let bad = |reason: String| StoreError::BadUrl { url: url.to_owned(), reason };
    let options = SqliteConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = file == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    if memory {
        return Ok((options, "sqlite::memory:".to_owned(), true));
    }
    if file.is_empty() {
        // SQLite would open a private temporary database per connection: nothing would be shared or kept.
        return Err(bad("it names no file: write sqlite://PATH (sqlite:///ABSOLUTE/PATH) or sqlite::memory:".into()));
    }
    let name = format!("sqlite:{}", options.get_filename().display());
    Ok((options, name, false))
}

/// Opens (creating if missing, when `options.create`) and migrates the database at `location`.
pub(super) async fn open(location: &Path, options: &StoreOptions) -> Result<Db, StoreError> {
    let hold = options.hold_time.then(TimeHold::default);
    let _held = hold.as_ref().map(TimeHold::hold);
    let (connect, name, memory) = locate(location)?;
    let path = (!memory).then(|| connect.get_filename().to_path_buf());
    if let Some(path) = &path
        && !options.create
        && !path.exists()
    {
        return Err(StoreError::Missing { store: name });
    }
    let connect = connect
        .create_if_missing(options.create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
    // No reaper and no pings: the connections are local, and a reaper's timers would run on a paused clock.
    // An in-memory database lives as long as its one connection.
    let pool = |size: u32| {
        SqlitePoolOptions::new()
            .max_connections(size)
            .min_connections(u32::from(memory))
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
    };
    let err = |e: sqlx::Error| StoreError::Database { store: name.clone(), message: format!("opening: {e}") };
    let writer = pool(1).connect_with(connect.clone()).await.map_err(err)?;
    migrate(&writer, &name).await?;
    let reader = if memory {
        writer.clone()
    } else {
        pool(options.pool_size.max(1)).connect_with(connect).await.map_err(err)?
    };
    // Known once the file exists: a file deleted or replaced later is told apart from it.
    let file = match path {
        // Absolute: the process may change its working folder later.
        Some(path) => match FileId::of(&path) {
            Some(id) => Some((std::fs::canonicalize(&path).unwrap_or(path), id)),
            None => return Err(StoreError::Missing { store: name }),
        },
        None => None,
    };
    Ok(Db {
        writer,
        reader,
        name,
        hold,
        file,
        unfinished: Default::default(),
        gone: Default::default(),
        held_dropped: Default::default(),
        commits: Default::default(),
        max_held: options.max_held_reports.max(1),
        held_life: options.held_report_life,
    })
}
