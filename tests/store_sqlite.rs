//! The SQLite store's own guarantees, besides the store contract: a reopened file keeps its jobs, ledgers and
//! held reports; two stores on one file take turns; a schema newer than this build, or an edited migration,
//! is refused; errors name the file; URLs name relative and absolute files and memory; paused time stands
//! still while the database works; a write that failed (at a statement or at its commit) leaves the store
//! working once the cause is gone; a file deleted or replaced under it is seen; a missing file is not made when
//! the store is opened for reading.
#![cfg(feature = "sqlite")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::store::{
    Clock, LedgerWrite, ListFilter, NewJob, Phase, ReportAnswer, ReportTarget, Save, SqliteStore, Store, StoreError,
    StoreOptions, Submitted, Timestamp, TokioClock, open_url,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

const LEASE: Duration = Duration::from_secs(30);

fn job(asset: &str) -> NewJob<'_> {
    NewJob::new(asset, r#"{"v":1}"#, 1, "2001", Timestamp(0))
}

fn calling<'a>(ledger: &'a [LedgerWrite<'a>]) -> Save<'a> {
    Save {
        phase: Phase::Calling,
        wake_at: Timestamp(0),
        release: false,
        payload: r#"{"v":2}"#,
        version: 1,
        last_code: "2001",
        attempts: 1,
        attempt: 1,
        fence_until: Timestamp(0),
        wake_on_report: true,
        reference: None,
        ledger,
        take_report: false,
        outcome: None,
    }
}

/// Runs `sql` on the file with a connection of its own, as another program would.
async fn raw(path: &std::path::Path, sql: &'static str) {
    let mut conn = SqliteConnectOptions::new().filename(path).connect().await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn rows_the_ledger_and_held_reports_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path, &StoreOptions::default()).await.unwrap();
    let Submitted::New(id) = store.submit(job("a1"), Timestamp(0)).await.unwrap() else { panic!("new") };
    let lease = store.claim("r1", Timestamp(0), LEASE, 10).await.unwrap().remove(0).lease;
    let begin = LedgerWrite::Begin { key: "a1#1.1", hook: "resubmit" };
    store.save(&lease, calling(std::slice::from_ref(&begin)), Timestamp(5)).await.unwrap();
    assert_eq!(store.report(ReportTarget::Reference("uuid-1"), "ok", Timestamp(6)).await.unwrap(), ReportAnswer::Held);
    let row = store.job(id).await.unwrap().unwrap();
    let calls = store.calls(id).await.unwrap();
    store.close().await;
    drop(store);

    // The process is gone; a new one opens the file.
    let store = SqliteStore::open(&path, &StoreOptions::default()).await.unwrap();
    assert_eq!(store.job(id).await.unwrap().as_ref(), Some(&row));
    assert_eq!(store.calls(id).await.unwrap(), calls);
    assert_eq!(calls.len(), 1);
    assert_eq!(store.stats(Timestamp(7)).await.unwrap().held_reports, 1);
    // The dead holder's lease expires; the job is taken over with its unanswered call, and the held report
    // is picked up by the save that names its reference.
    let next = store.claim("r2", Timestamp(30_000), LEASE, 10).await.unwrap().remove(0);
    assert!(next.taken_over);
    assert_eq!(next.lease.epoch, 2);
    let submitted = Save {
        phase: Phase::Awaiting,
        release: true,
        wake_at: Timestamp(3_600_000),
        reference: Some("uuid-1"),
        ledger: &[LedgerWrite::End { key: "a1#1.1", answer: "submitted: uuid-1" }],
        ..calling(&[])
    };
    let saved = store.save(&next.lease, submitted, Timestamp(30_001)).await.unwrap();
    assert_eq!(saved.report.as_deref(), Some("ok"));
    store.close().await;
}

/// Two stores on one file, as two processes would have: their writes wait for each other (`BEGIN
/// IMMEDIATE`, the busy timeout) and no job is claimed by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_never_claim_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let first = Arc::new(SqliteStore::open(&path, &StoreOptions::default()).await.unwrap());
    let second = Arc::new(SqliteStore::open(&path, &StoreOptions::default()).await.unwrap());
    let mut all = BTreeSet::new();
    for i in 0..200 {
        let store = if i % 2 == 0 { &first } else { &second };
        let Submitted::New(id) = store.submit(job(&format!("a{i}")), Timestamp(0)).await.unwrap() else {
            panic!("new")
        };
        all.insert(id);
    }
    let claimers: Vec<_> = [("left", first.clone()), ("right", second.clone())]
        .into_iter()
        .map(|(owner, store)| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store.claim(owner, Timestamp(1), Duration::from_secs(3600), 4).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|c| c.lease.job));
                }
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed by both");
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    SqliteStore::open(&path, &StoreOptions::default()).await.unwrap().close().await;
    raw(
        &path,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from a newer build', 1, x'00', 0)",
    )
    .await;
    match SqliteStore::open(&path, &StoreOptions::default()).await {
        Err(e @ StoreError::SchemaTooNew { found: 999, known }) => {
            assert_eq!(known, SqliteStore::schema_version());
            assert!(e.to_string().contains("version 999"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_edited_migration_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    SqliteStore::open(&path, &StoreOptions::default()).await.unwrap().close().await;
    raw(&path, "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1").await;
    match SqliteStore::open(&path, &StoreOptions::default()).await {
        Err(StoreError::Database { store, message }) => {
            assert_eq!(store, format!("sqlite:{}", path.display()));
            assert!(message.contains("migrat"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_cannot_be_created_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-folder").join("jobs.db");
    match SqliteStore::open(&path, &StoreOptions::default()).await {
        Err(e @ StoreError::Database { .. }) => {
            assert!(e.to_string().starts_with(&format!("sqlite:{}: ", path.display())), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn urls_name_relative_and_absolute_files_and_memory() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let absolute = dir.path().join("absolute.db");
    let store = open_url(&format!("sqlite://{}", absolute.display()), &StoreOptions::default()).await.unwrap();
    assert_eq!(store.describe(), format!("sqlite:{}", absolute.display()));
    store.submit(job("a1"), Timestamp(0)).await.unwrap();
    assert!(absolute.exists());

    let cwd = std::env::current_dir().unwrap();
    if let Ok(relative) = dir.path().join("relative.db").strip_prefix(&cwd) {
        let store = open_url(&format!("sqlite://{}", relative.display()), &StoreOptions::default()).await.unwrap();
        assert_eq!(store.describe(), format!("sqlite:{}", relative.display()));
        store.submit(job("a1"), Timestamp(0)).await.unwrap();
        assert!(dir.path().join("relative.db").exists());
    }

    let memory = open_url("sqlite::memory:", &StoreOptions::default()).await.unwrap();
    assert_eq!(memory.describe(), "sqlite::memory:");
    let Submitted::New(id) = memory.submit(job("a1"), Timestamp(0)).await.unwrap() else { panic!("new") };
    assert_eq!(memory.submit(job("a1"), Timestamp(0)).await.unwrap(), Submitted::Joined(id));
    assert_eq!(memory.list(&ListFilter::default()).await.unwrap().len(), 1, "reads see the writes");
}

/// A submit, claim, save, report and stats sequence through `store`, under paused time with a timer
/// pending. Says whether the clock moved while it ran, and how the work ended.
async fn clock_moved(store: &SqliteStore) -> (bool, Result<(), StoreError>) {
    let clock = TokioClock::starting_at(Timestamp(0));
    let work = async {
        for i in 0..20 {
            let asset = format!("a{i}");
            store.submit(job(&asset), clock.now()).await?;
            let lease = store.claim("r1", clock.now(), LEASE, 1).await?.remove(0).lease;
            let begin = LedgerWrite::Begin { key: "k", hook: "resubmit" };
            store.save(&lease, calling(std::slice::from_ref(&begin)), clock.now()).await?;
            store.report(ReportTarget::Asset(&asset), "ok", clock.now()).await?;
            store.stats(clock.now()).await?;
        }
        Ok(())
    };
    tokio::select! {
        done = work => (clock.now() != Timestamp(0), done),
        () = tokio::time::sleep(Duration::from_secs(3600)) => (true, Ok(())),
    }
}

#[tokio::test(start_paused = true)]
async fn with_hold_time_paused_time_stands_still_while_the_database_works() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::default().hold_time(true);
    let store = SqliteStore::open(dir.path().join("jobs.db"), &options).await.unwrap();
    let (moved, done) = clock_moved(&store).await;
    done.unwrap();
    assert!(!moved, "the paused clock jumped during a query");
}

/// The control: the test above can fail. Without the hold, a paused runtime waiting on the database's
/// thread takes itself for idle and jumps to its next timer.
#[tokio::test]
async fn without_hold_time_paused_time_jumps_during_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("jobs.db"), &StoreOptions::default()).await.unwrap();
    // Opened on a running clock (opening would time out on a paused one), then paused.
    tokio::time::pause();
    // The jump may also time out sqlx's wait for a connection: moved either way.
    assert!(clock_moved(&store).await.0, "the clock should have jumped without the hold");
}

/// Makes every write that changes a job fail at its commit (a deferred foreign key that the commit finds
/// broken, which leaves SQLite's transaction open, as a disk error at commit can), and every held report fail
/// at its statement, while the switch is on.
const FAULTS: &str = "CREATE TABLE fault_switch (on_ INTEGER); \
     CREATE TABLE fault_parent (id INTEGER PRIMARY KEY); \
     CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED); \
     CREATE TRIGGER fault_at_commit AFTER UPDATE ON jobs WHEN EXISTS (SELECT 1 FROM fault_switch) \
     BEGIN INSERT INTO fault_child VALUES (-1); END; \
     CREATE TRIGGER fault_at_statement BEFORE INSERT ON held_reports WHEN EXISTS (SELECT 1 FROM fault_switch) \
     BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END;";

#[tokio::test]
async fn a_write_that_failed_at_its_commit_or_its_statement_leaves_the_store_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path, &StoreOptions::default()).await.unwrap();
    raw(&path, FAULTS).await;
    store.submit(job("a1"), Timestamp(0)).await.unwrap();
    let lease = store.claim("r1", Timestamp(0), LEASE, 10).await.unwrap().remove(0).lease;
    raw(&path, "INSERT INTO fault_switch VALUES (1)").await;
    // Each row: a write while the faults are on; every one fails, none takes the store down with it.
    for round in 0..3 {
        let saved = store.save(&lease, calling(&[]), Timestamp(10 + round)).await;
        assert!(matches!(saved, Err(StoreError::Database { .. })), "{round}: {saved:?}");
        let claimed = store.claim("r2", Timestamp(10), LEASE, 10).await.map(|c| c.len());
        assert!(matches!(claimed, Ok(0) | Err(StoreError::Database { .. })), "{round}: {claimed:?}");
        let held = store.report(ReportTarget::Reference("uuid"), "ok", Timestamp(11)).await;
        assert!(matches!(&held, Err(StoreError::Database { message, .. }) if message.contains("injected")), "{held:?}");
    }
    // Another program writes while the store's writer is idle: the store holds no transaction open.
    raw(&path, "DELETE FROM fault_switch").await;
    store.save(&lease, calling(&[]), Timestamp(20)).await.expect("the next write works once the cause is gone");
    assert_eq!(store.report(ReportTarget::Reference("uuid"), "ok", Timestamp(21)).await.unwrap(), ReportAnswer::Held);
    let row = store.job_of("a1").await.unwrap().unwrap();
    assert_eq!((row.phase, row.updated_at), (Phase::Calling, Timestamp(20)), "what failed was not written");
}

#[tokio::test]
async fn a_file_deleted_or_replaced_under_the_store_is_seen_and_not_written_to() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = SqliteStore::open(&path, &StoreOptions::default()).await.unwrap();
        store.submit(job("a1"), Timestamp(0)).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        if replace {
            SqliteStore::open(&path, &StoreOptions::default()).await.unwrap().close().await;
        }
        for _ in 0..2 {
            let got = store.submit(job("a2"), Timestamp(1)).await;
            let Err(StoreError::Gone { reason, .. }) = got else { panic!("replaced {replace}: {got:?}") };
            assert!(reason.contains(if replace { "replaced" } else { "deleted" }), "{reason}");
        }
        assert!(matches!(store.claim("r1", Timestamp(1), LEASE, 1).await, Err(StoreError::Gone { .. })));
        assert_eq!(path.exists(), replace, "nothing writes a new file in its place");
    }
}

#[tokio::test]
async fn a_store_opened_only_if_it_exists_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let reader = StoreOptions::default().create(false);
    for location in [path.display().to_string(), format!("sqlite://{}", path.display())] {
        let got = SqliteStore::open(&location, &reader).await;
        let Err(StoreError::Missing { store }) = got else { panic!("{location}: {got:?}") };
        assert!(store.contains("typo.db"), "{store}");
        assert!(!path.exists(), "{location}: not made");
    }
    SqliteStore::open(&path, &StoreOptions::default()).await.unwrap().close().await;
    SqliteStore::open(&path, &reader).await.expect("an existing store opens").close().await;
}

/// Saves of many jobs at once go to the database together: a commit that fails fails each of them (and the
/// store works again once the cause is gone); a statement that fails (one job's row refused by a trigger) fails
/// that job's save alone, and the others are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_at_once_fail_together_at_their_commit_and_alone_at_their_statement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    // A long window: every save below is in one transaction, unless a statement fails.
    let options = StoreOptions::default().group_commit_window(Duration::from_millis(200));
    let store = SqliteStore::open(&path, &options).await.unwrap();
    raw(&path, FAULTS).await;
    raw(
        &path,
        "CREATE TRIGGER fault_of_poison BEFORE UPDATE ON jobs WHEN NEW.asset_id = 'poison' AND NEW.phase = 'calling' \
         BEGIN SELECT RAISE(ABORT, 'poison refused (injected)'); END",
    )
    .await;
    let assets = ["a1", "a2", "poison", "a3", "a4"];
    for asset in assets {
        store.submit(job(asset), Timestamp(0)).await.unwrap();
    }
    let leases: Vec<_> =
        store.claim("r1", Timestamp(0), LEASE, 10).await.unwrap().into_iter().map(|c| c.lease).collect();
    let save_all = |at: i64| {
        futures_util::future::join_all(leases.iter().map(|lease| store.save(lease, calling(&[]), Timestamp(at))))
    };
    raw(&path, "INSERT INTO fault_switch VALUES (1)").await;
    for (i, saved) in save_all(10).await.into_iter().enumerate() {
        assert!(matches!(saved, Err(StoreError::Database { .. })), "{}: {saved:?}", assets[i]);
    }
    raw(&path, "DELETE FROM fault_switch").await;
    for (i, saved) in save_all(20).await.into_iter().enumerate() {
        match (assets[i], saved) {
            ("poison", Err(StoreError::Database { message, .. })) => assert!(message.contains("poison"), "{message}"),
            (asset, saved) => assert!(saved.is_ok(), "{asset}: {saved:?}"),
        }
    }
    for asset in assets {
        let row = store.job_of(asset).await.unwrap().unwrap();
        let expected = if asset == "poison" { (Phase::Waiting, Timestamp(0)) } else { (Phase::Calling, Timestamp(20)) };
        assert_eq!((row.phase, row.updated_at), expected, "{asset}");
    }
}
