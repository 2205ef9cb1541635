//! Opening a SQLite store: where the file is (a path, or a `sqlite:` URL; `sqlite::memory:` is a temporary file
//! of the store's own, deleted with it: the writer's thread and the readers need one database to share), how
//! its connections are set up (WAL, `synchronous = NORMAL`, foreign keys, a busy timeout), and the schema
//! brought up to date.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::conn::{Db, FileId};
use super::migrate::migrate;
use super::writer::Writer;
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
        return Ok((SqliteConnectOptions::new().filename(temporary_file()), "sqlite::memory:".to_owned(), true));
    }
    if file.is_empty() {
        // SQLite would open a private temporary database per connection: nothing would be shared or kept.
        return Err(bad("it names no file: write sqlite://PATH (sqlite:///ABSOLUTE/PATH) or sqlite::memory:".into()));
    }
    let name = format!("sqlite:{}", options.get_filename().display());
    Ok((options, name, false))
}

/// A new file's path in the system's temporary folder, for an in-memory store.
fn temporary_file() -> std::path::PathBuf {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("lightflow-remedy-{}-{nanos}-{n}.db", std::process::id()))
}

/// Opens (creating if missing, when `options.create`) and migrates the database at `location`.
pub(super) async fn open(location: &Path, options: &StoreOptions) -> Result<Db, StoreError> {
    let hold = options.hold_time.then(TimeHold::default);
    let _held = hold.as_ref().map(TimeHold::hold);
    let (connect, name, memory) = locate(location)?;
    let path = connect.get_filename().to_path_buf();
    if !memory && !options.create && !path.exists() {
        return Err(StoreError::Missing { store: name });
    }
    let connect = connect
        .create_if_missing(options.create || memory)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
    // No reaper and no pings: the connections are local, and a reaper's timers would run on a paused clock.
    let pool = |size: u32| {
        SqlitePoolOptions::new().max_connections(size).idle_timeout(None).max_lifetime(None).test_before_acquire(false)
    };
    let err = |e: sqlx::Error| StoreError::Database { store: name.clone(), message: format!("opening: {e}") };
    let writer = pool(1).connect_with(connect.clone()).await.map_err(err)?;
    migrate(&writer, &name).await?;
    let reader = pool(options.pool_size.max(1)).connect_with(connect).await.map_err(err)?;
    // Known once the file exists: a file deleted or replaced later is told apart from it.
    let Some(id) = FileId::of(&path) else { return Err(StoreError::Missing { store: name }) };
    // Absolute: the process may change its working folder later.
    let file = (std::fs::canonicalize(&path).unwrap_or(path), id);
    let batches = Writer::start(file.0.clone(), options.busy_timeout, name.clone())?;
    Ok(Db {
        writer,
        batches,
        turns: Arc::default(),
        reader,
        name,
        hold,
        file,
        temporary: memory,
        unfinished: Default::default(),
        gone: Default::default(),
        held_dropped: Default::default(),
        commits: Default::default(),
        max_held: options.max_held_reports.max(1),
        held_life: options.held_report_life,
    })
}
