//! The PostgreSQL store's own guarantees, besides the store contract: replicas (several stores on one schema)
//! claiming and submitting at once; a lease expired by hand taken over, and its old holder fenced; a report
//! and the save that names its reference never missing each other; migrations applied by stores opening at
//! once, a newer schema and an edited migration refused; wake hints reaching another store, and none sent
//! with hints off; the database's clock; errors naming the server without its password; schemas apart;
//! paused time standing still while the database works. The statements' plans are checked in
//! `src/store/postgres/plans.rs`.
//!
//! Needs `DATABASE_URL` (each test makes a schema of its own, and drops it when it passes):
//!
//! ```text
//! eval "$(../shared/tools/pg-test-server start)" && cargo test --all-features --test store_postgres
//! ```
#![cfg(feature = "postgres")]

#[path = "support/postgres.rs"]
mod pg;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Once};
use std::time::Duration;

use lightflow_remedy::store::{
    Clock, LedgerWrite, NewJob, PgStore, Phase, ReportAnswer, ReportTarget, Save, Store, StoreError, StoreOptions,
    Submitted, TimeHold, Timestamp, TokioClock, open_url,
};
use tokio::sync::Notify;

const LEASE: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// The server, or `None` (said once, loudly) when `DATABASE_URL` is not set.
fn server() -> Option<String> {
    static ONCE: Once = Once::new();
    let url = std::env::var("DATABASE_URL").ok();
    // In CI (`.ci/run` sets it) these tests must run.
    assert!(
        url.is_some() || std::env::var_os("REMEDY_REQUIRE_POSTGRES").is_none(),
        "REMEDY_REQUIRE_POSTGRES is set but DATABASE_URL is not"
    );
    if url.is_none() {
        ONCE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** store_postgres: NOT tested: DATABASE_URL is not set. To test it:\n***   eval \
                 \"$(../shared/tools/pg-test-server start)\" && cargo test --all-features --test store_postgres\n"
            );
        });
    }
    url
}

/// A schema of its own on the server, and the URL that names it.
fn fresh(url: &str, what: &str) -> (String, String) {
    let schema = pg::unique_schema(what);
    (pg::in_schema(url, &schema), schema)
}

async fn open(url: &str, options: &StoreOptions) -> Arc<PgStore> {
    Arc::new(PgStore::open(url, options).await.unwrap_or_else(|e| panic!("{e}")))
}

fn job(asset: &str, wake: Timestamp) -> NewJob<'_> {
    NewJob::new(asset, r#"{"v":1}"#, 1, "2001", wake)
}

fn save<'a>(phase: Phase, release: bool, wake: Timestamp, ledger: &'a [LedgerWrite<'a>]) -> Save<'a> {
    Save {
        phase,
        wake_at: wake,
        release,
        payload: r#"{"v":2}"#,
        version: 1,
        last_code: "2001",
        attempts: 1,
        attempt: u32::from(matches!(phase, Phase::Awaiting | Phase::Calling)),
        fence_until: Timestamp(0),
        wake_on_report: true,
        reference: None,
        ledger,
        take_report: false,
        outcome: None,
    }
}

async fn submit(store: &PgStore, asset: &str, wake: Timestamp) -> lightflow_remedy::store::JobId {
    match store.submit(job(asset, wake), Timestamp(0)).await.unwrap() {
        Submitted::New(id) => id,
        other => panic!("{asset}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_claiming_at_once_never_take_the_same_job() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "claims");
    let left = open(&at, &StoreOptions::default()).await;
    let right = open(&at, &StoreOptions::default()).await;
    let mut all = BTreeSet::new();
    for i in 0..400 {
        all.insert(submit(if i % 2 == 0 { &left } else { &right }, &format!("a{i}"), Timestamp(0)).await);
    }
    let claimers: Vec<_> = [("left", left.clone()), ("right", right.clone())]
        .into_iter()
        .map(|(owner, store)| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store.claim(owner, Timestamp(1), HOUR, 7).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    for c in batch {
                        assert_eq!(
                            (c.lease.epoch, c.taken_over, c.row.lease_owner.as_deref()),
                            (1, false, Some(owner))
                        );
                        got.push(c.lease.job);
                    }
                }
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut each = Vec::new();
    for claimer in claimers {
        let got = claimer.await.unwrap();
        each.push(got.len());
        for id in got {
            assert!(seen.insert(id), "job {id} was claimed by both replicas");
        }
    }
    assert_eq!(seen, all, "every job claimed once");
    assert!(each.iter().all(|n| *n > 0), "both replicas claimed: {each:?}");
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_of_one_asset_from_two_replicas_at_once_make_one_job() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "submits");
    let stores = [open(&at, &StoreOptions::default()).await, open(&at, &StoreOptions::default()).await];
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..100 {
                    answers.push(store.submit(job(&format!("a{i}"), Timestamp(0)), Timestamp(0)).await.unwrap());
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    for (i, (one, other)) in answers[0].iter().zip(&answers[1]).enumerate() {
        let ids = match (one, other) {
            (Submitted::New(a), Submitted::Joined(b)) | (Submitted::Joined(a), Submitted::New(b)) => (a, b),
            other => panic!("a{i}: one new job and one join, not {other:?}"),
        };
        assert_eq!(ids.0, ids.1, "a{i}: the join names the new job");
    }
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn a_lease_expired_by_hand_is_taken_over_and_the_old_holders_late_writes_change_nothing() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "takeover");
    let old_replica = open(&at, &StoreOptions::default()).await;
    let new_replica = open(&at, &StoreOptions::default()).await;
    let id = submit(&old_replica, "a1", Timestamp(0)).await;
    let old = old_replica.claim("old", Timestamp(0), HOUR, 10).await.unwrap().remove(0).lease;
    let begin = [LedgerWrite::Begin { key: "a1#1.1", hook: "resubmit" }];
    old_replica.save(&old, save(Phase::Calling, false, Timestamp(0), &begin), Timestamp(5)).await.unwrap();
    assert!(new_replica.claim("new", Timestamp(10), LEASE, 10).await.unwrap().is_empty(), "held for an hour");

    // The old holder is paused past its lease, as an operator would see it: the lease's expiry set by hand.
    pg::raw(&url, &format!("UPDATE \"{schema}\".jobs SET wake_at = 9 WHERE id = {id}")).await;
    let new = new_replica.claim("new", Timestamp(10), LEASE, 10).await.unwrap().remove(0);
    assert!(new.taken_over);
    assert_eq!((new.lease.job, new.lease.epoch, new.row.phase), (id, old.epoch + 1, Phase::Calling));
    let calls = new_replica.calls(id).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].key.as_str(), calls[0].answered_at), ("a1#1.1", None), "the new holder sees the call");

    // The old holder wakes up and writes: its save, with its ledger entries, changes nothing.
    let end = [LedgerWrite::End { key: "a1#1.1", answer: "succeeded" }, LedgerWrite::Begin { key: "x", hook: "x" }];
    let late = old_replica.save(&old, save(Phase::Finished, true, Timestamp(0), &end), Timestamp(11)).await;
    assert!(matches!(late, Err(StoreError::LeaseLost { job, epoch }) if job == id.0 && epoch == old.epoch), "{late:?}");
    let late = old_replica.save(&old, save(Phase::Waiting, true, Timestamp(0), &[]), Timestamp(11)).await;
    assert!(matches!(late, Err(StoreError::LeaseLost { .. })), "{late:?}");
    assert_eq!(new_replica.calls(id).await.unwrap(), calls, "the ledger is as the new holder found it");
    let row = new_replica.job(id).await.unwrap().unwrap();
    assert_eq!((row.phase, row.outcome, row.lease_owner.as_deref()), (Phase::Calling, None, Some("new")));
    // Its heartbeat finds the lease lost; the new holder's renews.
    let renewed = old_replica.renew(&[old.clone(), new.lease.clone()], Timestamp(12), LEASE).await.unwrap();
    assert_eq!(renewed.lost, vec![id]);
    let renewed = old_replica.renew(std::slice::from_ref(&old), Timestamp(12), LEASE).await.unwrap();
    assert_eq!(renewed.lost, vec![id], "alone too");
    assert_eq!(new_replica.job(id).await.unwrap().unwrap().wake_at, Timestamp(12).after(LEASE));
    pg::drop_schema(&url, &schema).await;
}

/// A report by reference and the save that names the reference, from two replicas at once: whichever comes
/// first, the job gets its report (on the row, or handed to the save), and nothing is left held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_and_the_save_that_names_its_reference_never_miss_each_other() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "races");
    let holder = open(&at, &StoreOptions::default()).await;
    let reporter = open(&at, &StoreOptions::default()).await;
    const JOBS: usize = 60;
    for i in 0..JOBS {
        submit(&holder, &format!("a{i}"), Timestamp(0)).await;
    }
    let leases: Vec<_> =
        holder.claim("r1", Timestamp(0), HOUR, JOBS).await.unwrap().into_iter().map(|c| c.lease).collect();
    let references: Vec<String> = (0..leases.len()).map(|i| format!("uuid-{i}")).collect();
    let saves = {
        let (holder, leases, references) = (holder.clone(), leases.clone(), references.clone());
        tokio::spawn(async move {
            let mut reports = Vec::new();
            for (lease, reference) in leases.iter().zip(&references) {
                let submitted = Save {
                    reference: Some(reference),
                    ..save(Phase::Awaiting, true, Timestamp(HOUR.as_millis() as i64), &[])
                };
                reports.push(holder.save(lease, submitted, Timestamp(1)).await.unwrap().report);
            }
            reports
        })
    };
    let reports = {
        let references = references.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for reference in references.iter().rev() {
                answers.push(reporter.report(ReportTarget::Reference(reference), "ok", Timestamp(1)).await.unwrap());
            }
            answers
        })
    };
    let (saved, answers) = (saves.await.unwrap(), reports.await.unwrap());
    let held = answers.iter().filter(|a| **a == ReportAnswer::Held).count();
    for (lease, saved) in leases.iter().zip(&saved) {
        let row = holder.job(lease.job).await.unwrap().unwrap();
        assert_eq!(row.report.as_deref(), Some("ok"), "job {}: its report is on the row", lease.job);
        if saved.is_some() {
            assert_eq!(row.wake_at, Timestamp(1), "job {}: handed to the save, due at once", lease.job);
        }
    }
    assert_eq!(holder.stats(Timestamp(2)).await.unwrap().held_reports, 0, "none left held ({held} were, for a while)");
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_at_once_on_a_fresh_schema_migrate_it_once() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "migrate");
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let at = at.clone();
            tokio::spawn(async move { PgStore::open(&at, &StoreOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap_or_else(|e| panic!("an open of four failed: {e}")));
    }
    let id = submit(&stores[0], "a1", Timestamp(0)).await;
    for store in &stores {
        assert_eq!(store.job_of("a1").await.unwrap().map(|r| r.id), Some(id), "one schema for all four");
    }
    let check = format!(
        "DO $$ BEGIN IF (SELECT array_agg(version ORDER BY version) FROM \"{schema}\"._sqlx_migrations) \
         <> ARRAY[1, 2, 3, 4, 5]::bigint[] THEN RAISE EXCEPTION 'migrations applied more than once, or not all'; END IF; END $$"
    );
    pg::raw(&url, &check).await;
    assert_eq!(PgStore::schema_version(), 5);
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "newer");
    PgStore::open(&at, &StoreOptions::default()).await.unwrap().close().await;
    pg::raw(
        &url,
        &format!(
            "INSERT INTO \"{schema}\"._sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'from a newer build', true, '\\x00', 0)"
        ),
    )
    .await;
    match PgStore::open(&at, &StoreOptions::default()).await {
        Err(e @ StoreError::SchemaTooNew { found: 999, known }) => {
            assert_eq!(known, PgStore::schema_version());
            assert!(e.to_string().contains("version 999"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn an_edited_migration_is_refused_naming_the_store() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "edited");
    PgStore::open(&at, &StoreOptions::default()).await.unwrap().close().await;
    pg::raw(&url, &format!("UPDATE \"{schema}\"._sqlx_migrations SET checksum = '\\x00' WHERE version = 1")).await;
    match PgStore::open(&at, &StoreOptions::default()).await {
        Err(StoreError::Database { store, message }) => {
            assert!(store.ends_with(&format!("schema={schema}")), "{store}");
            assert!(message.contains("migrat"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    pg::drop_schema(&url, &schema).await;
}

/// Whether `notify` is woken within `within` after `action` (a permit left by an earlier hint is taken first).
async fn hinted<F: std::future::Future>(notify: &Notify, within: Duration, action: F) -> bool {
    while tokio::time::timeout(Duration::from_millis(100), notify.notified()).await.is_ok() {}
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    action.await;
    tokio::time::timeout(within, woken).await.is_ok()
}

#[tokio::test]
async fn the_wake_hint_reaches_another_store_and_none_is_sent_with_hints_off() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "hints");
    let sender = open(&at, &StoreOptions::default()).await;
    let listener = open(&at, &StoreOptions::default()).await;
    let quiet = open(&at, &StoreOptions::default().wake_hints(false)).await;
    assert!(quiet.wake_hints().is_none(), "hints off: no notify, polling only");
    let notify = listener.wake_hints().expect("hints on by default");
    let soon = Duration::from_secs(5);
    let not_yet = Duration::from_millis(500);
    let now = Timestamp(1_000);

    assert!(hinted(&notify, soon, sender.submit(job("a1", now), now)).await, "a submit");
    assert!(!hinted(&notify, not_yet, quiet.submit(job("a2", now), now)).await, "hints off: none sent");
    let claimed = sender.claim("r1", now, LEASE, 10).await.unwrap();
    let (a1, a2) = (claimed[0].lease.clone(), claimed[1].lease.clone());
    let later = Timestamp(now.0 + 60_000);
    let rest = sender.save(&a1, save(Phase::Waiting, true, later, &[]), now);
    assert!(!hinted(&notify, not_yet, rest).await, "a release due later: no hint");
    let due = sender.save(&a2, save(Phase::Waiting, true, now, &[]), now);
    assert!(hinted(&notify, soon, due).await, "a release due now");
    assert!(hinted(&notify, soon, sender.retry_now("a1", now)).await, "retry now");
    let a1 = sender.claim("r1", now, LEASE, 1).await.unwrap().remove(0).lease;
    let awaiting = Save { reference: Some("uuid-1"), ..save(Phase::Awaiting, true, later, &[]) };
    sender.save(&a1, awaiting, now).await.unwrap();
    let applied = sender.report(ReportTarget::Reference("uuid-1"), "ok", now);
    assert!(hinted(&notify, soon, applied).await, "a report applied");
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn stores_in_two_schemas_of_one_database_are_apart() {
    let Some(url) = server() else { return };
    let ((first_at, first), (second_at, second)) = (fresh(&url, "apart"), fresh(&url, "apart"));
    let one = open(&first_at, &StoreOptions::default()).await;
    let other = open(&second_at, &StoreOptions::default()).await;
    let id = submit(&one, "a1", Timestamp(0)).await;
    assert_eq!(other.job_of("a1").await.unwrap(), None, "the other schema has no such job");
    assert!(other.claim("r1", Timestamp(0), LEASE, 10).await.unwrap().is_empty());
    assert!(matches!(other.submit(job("a1", Timestamp(0)), Timestamp(0)).await.unwrap(), Submitted::New(_)));
    let notify = other.wake_hints().unwrap();
    assert!(!hinted(&notify, Duration::from_millis(500), one.submit(job("a2", Timestamp(0)), Timestamp(0))).await);
    assert_eq!(one.job_of("a1").await.unwrap().map(|r| r.id), Some(id));
    pg::drop_schema(&url, &first).await;
    pg::drop_schema(&url, &second).await;
}

#[tokio::test]
async fn the_clock_is_the_databases() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "clock");
    let store = open(&at, &StoreOptions::default()).await;
    let clock = store.clock();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let before = clock.now();
    let database: i64 = sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let after = clock.now();
    assert!(
        before.0 - 500 <= database && database <= after.0 + 500,
        "the database said {database}, the clock {before} .. {after}"
    );
    // The server runs on this machine: their clocks agree.
    assert!(store.database_clock().skew().abs() < 1_000, "{}", store.database_clock().skew());
    pg::drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn urls_open_the_store_and_errors_name_the_server_without_its_password() {
    let unreachable = "postgres://remedy:s3cret@127.0.0.1:1/remedy?schema=remedy";
    match open_url(unreachable, &StoreOptions::default()).await {
        Err(e @ StoreError::Database { .. }) => {
            let said = e.to_string();
            assert!(said.starts_with("postgres://remedy:***@127.0.0.1:1/remedy?schema=remedy: "), "{said}");
            assert!(!said.contains("s3cret"), "{said}");
        }
        Err(other) => panic!("{other}"),
        Ok(store) => panic!("opened {}", store.describe()),
    }
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "url");
    let store = open_url(&at.replacen("postgres://", "postgresql://", 1), &StoreOptions::default()).await.unwrap();
    assert!(store.describe().starts_with("postgresql://") && store.describe().ends_with(&schema));
    assert!(matches!(store.submit(job("a1", Timestamp(0)), Timestamp(0)).await.unwrap(), Submitted::New(_)));
    pg::drop_schema(&url, &schema).await;
}

/// A submit, claim, save, report and stats sequence through `store`, under paused time with a timer pending.
/// Says whether the clock moved while it ran, and how the work ended.
async fn clock_moved(store: &dyn Store) -> (bool, Result<(), StoreError>) {
    let clock = TokioClock::starting_at(Timestamp(0));
    let work = async {
        for i in 0..20 {
            let asset = format!("a{i}");
            store.submit(job(&asset, clock.now()), clock.now()).await?;
            let lease = store.claim("r1", clock.now(), LEASE, 1).await?.remove(0).lease;
            let begin = [LedgerWrite::Begin { key: "k", hook: "resubmit" }];
            store.save(&lease, save(Phase::Calling, false, clock.now(), &begin), clock.now()).await?;
            store.report(ReportTarget::Asset(&asset), "ok", clock.now()).await?;
            store.stats(clock.now()).await?;
        }
        Ok(())
    };
    tokio::select! {
        done = work => (clock.now() != Timestamp(0), done),
        () = tokio::time::sleep(HOUR) => (true, Ok(())),
    }
}

#[tokio::test(start_paused = true)]
async fn with_hold_time_paused_time_stands_still_while_the_database_works() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "paused");
    let store = PgStore::open(&at, &StoreOptions::default().hold_time(true)).await.unwrap();
    let (moved, done) = clock_moved(&store).await;
    done.unwrap();
    assert!(!moved, "the paused clock jumped during a query");
    let hold = TimeHold::default();
    let _held = hold.hold();
    pg::drop_schema(&url, &schema).await;
}

/// The control: the test above can fail. Without the hold, a paused runtime waiting on the database's socket
/// takes itself for idle and jumps to its next timer.
#[tokio::test]
async fn without_hold_time_paused_time_jumps_during_queries() {
    let Some(url) = server() else { return };
    let (at, schema) = fresh(&url, "unheld");
    // Opened on a running clock (opening would time out on a paused one), then paused.
    let store = PgStore::open(&at, &StoreOptions::default()).await.unwrap();
    tokio::time::pause();
    // The jump may also time out sqlx's wait for a connection: moved either way.
    assert!(clock_moved(&store).await.0, "the clock should have jumped without the hold");
    tokio::time::resume();
    pg::drop_schema(&url, &schema).await;
}

/// Connections terminated by the server (a restart, an operator's `pg_terminate_backend`), with and without a
/// transaction under way: what failed says so, and the store works again at once, without a new open.
#[tokio::test]
async fn connections_terminated_under_the_store_are_replaced() {
    let Some(server) = server() else { return };
    let (url, schema) = fresh(&server, "terminated");
    let app = format!("terminated_{}", std::process::id());
    let named = format!("{url}&application_name={app}");
    let store = open(&named, &StoreOptions::default().wake_hints(false).pool_size(2)).await;
    let clock = store.clock();
    let Submitted::New(id) = store.submit(job("a1", clock.now()), clock.now()).await.unwrap() else { panic!() };
    let lease = store.claim("r1", clock.now(), LEASE, 10).await.unwrap().remove(0).lease;
    let kill = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'");
    for round in 0..3 {
        pg::raw(&server, &kill).await;
        // Each operation either works or fails with the database's error; within a few tries they all work.
        let mut worked = false;
        for _ in 0..4 {
            let begin = LedgerWrite::Begin { key: "a1#1.1", hook: "resubmit" };
            let ledger = [begin];
            let saved = store.save(&lease, save(Phase::Calling, false, clock.now(), &ledger), clock.now()).await;
            let reported = store.report(ReportTarget::Reference("uuid-x"), "ok", clock.now()).await;
            let read = store.job(id).await;
            match (&saved, &reported, &read) {
                (Ok(_), Ok(_), Ok(Some(_))) => {
                    worked = true;
                    break;
                }
                _ => {
                    for e in [saved.err(), reported.err(), read.err()].into_iter().flatten() {
                        assert!(matches!(e, StoreError::Database { .. }), "round {round}: {e:?}");
                    }
                }
            }
        }
        assert!(worked, "round {round}: the store works again after its connections were terminated");
    }
    assert!(store.renew(std::slice::from_ref(&lease), clock.now(), LEASE).await.unwrap().lost.is_empty());
    store.close().await;
    pg::drop_schema(&server, &schema).await;
}

/// What a callback carries reaches no statement unchecked: a NUL (which PostgreSQL's text cannot hold), a
/// 20 KB uuid, a large report are refused as such, not as database errors.
#[tokio::test]
async fn odd_callback_values_are_refused_before_the_database() {
    let Some(server) = server() else { return };
    let (url, schema) = fresh(&server, "odd");
    let store = open(&url, &StoreOptions::default().wake_hints(false)).await;
    let now = store.clock().now();
    let long = "u".repeat(20_000);
    let report = "r".repeat(100_000);
    let table: [(ReportTarget<'_>, &str); 4] = [
        (ReportTarget::Reference("uu\0id"), "ok"),
        (ReportTarget::Reference(&long), "ok"),
        (ReportTarget::Asset("as\0set"), "ok"),
        (ReportTarget::Reference("uuid"), &report),
    ];
    for (target, result) in table {
        let got = store.report(target, result, now).await;
        assert!(matches!(got, Err(StoreError::Invalid { .. })), "{:?}: {got:?}", &format!("{target:?}")[..40]);
    }
    assert_eq!(store.stats(now).await.unwrap().held_reports, 0);
    store.close().await;
    pg::drop_schema(&server, &schema).await;
}
