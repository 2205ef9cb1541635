//! The store contract: what every store guarantees, one function per behaviour, run against every store this
//! build has (memory; SQLite on a temporary file; PostgreSQL when `DATABASE_URL` names a server and the build
//! has that store). A store that passes here can carry the engine.
//!
//! SQLite's own guarantees (a reopened file keeps everything, a newer schema is refused, paused time stands
//! still during queries) are at the end.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Once};
use std::time::Duration;

use lightflow_remedy::store::{
    CancelAnswer, Claimed, JobId, Lease, LedgerWrite, ListFilter, MemoryStore, NewJob, Phase, ReportAnswer,
    ReportTarget, Save, Store, StoreError, StoreOptions, Submitted, Timestamp, open_url,
};

/// A store under test, empty and of its own.
struct Subject {
    name: String,
    store: Arc<dyn Store>,
    /// Keeps a file store's folder while the test runs.
    _dir: Option<tempfile::TempDir>,
}

/// Every store this build has.
async fn stores() -> Vec<Subject> {
    let mut out = vec![Subject { name: "memory".to_owned(), store: Arc::new(MemoryStore::new()), _dir: None }];
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = lightflow_remedy::store::SqliteStore::open(dir.path().join("jobs.db"), &StoreOptions::default())
            .await
            .expect("a SQLite store on a temporary file");
        out.push(Subject { name: store.describe(), store: Arc::new(store), _dir: Some(dir) });
    }
    if let Some(postgres) = postgres().await {
        out.push(postgres);
    }
    out
}

/// The PostgreSQL store, when `DATABASE_URL` names a server and this build has the store. Each test needs a
/// database of its own (the tests run at once): the store's test setup gives each call a fresh schema.
async fn postgres() -> Option<Subject> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        skipped("DATABASE_URL is not set");
        return None;
    };
    match open_url(&url, &StoreOptions::default()).await {
        Ok(store) => Some(Subject { name: store.describe(), store: Arc::from(store), _dir: None }),
        Err(StoreError::BadUrl { reason, .. }) => {
            skipped(&reason);
            None
        }
        Err(e) => panic!("DATABASE_URL is set, but its store does not open: {e}"),
    }
}

/// Says once, past the test harness's capture, that PostgreSQL was not tested and how to test it.
fn skipped(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** store contract: the PostgreSQL store was NOT tested ({why}). To test it:\n***   eval \"$(../shared/tools/pg-test-server start)\" && cargo test --all-features --test store_contract\n"
        );
    });
}

/// Runs a behaviour against every store.
macro_rules! contract {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        async fn $name() {
            for subject in stores().await {
                behaviour::$name(&subject).await;
            }
        }
    )*};
}

contract! {
    #[tokio::test]
    submit_joins_the_active_job_and_a_later_job_gets_a_new_id;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    two_claimers_never_get_the_same_job;
    #[tokio::test]
    claims_take_the_earliest_due_first_up_to_the_limit;
    #[tokio::test]
    an_expired_lease_is_taken_over_and_its_old_holder_is_fenced;
    #[tokio::test]
    the_ledger_keeps_calls_in_order_and_shows_an_unanswered_one_to_the_next_holder;
    #[tokio::test]
    release_puts_a_job_to_rest_and_a_save_without_it_keeps_the_lease;
    #[tokio::test]
    every_report_gets_its_answer;
    #[tokio::test]
    a_report_held_for_its_reference_is_picked_up_by_the_save_that_names_it;
    #[tokio::test]
    cancel_ends_a_job_at_rest_and_asks_the_holder_of_a_held_one;
    #[tokio::test]
    retry_now_makes_a_job_at_rest_due;
    #[tokio::test]
    list_filters_by_phase_outcome_and_code_newest_first;
    #[tokio::test]
    stats_count_phases_outcomes_due_held_and_held_reports;
    #[tokio::test]
    next_wake_is_the_earliest_active_job;
    #[tokio::test]
    prune_deletes_finished_jobs_and_held_reports_before_a_time;
}

/// The behaviours, each on one store.
mod behaviour {
    use super::*;

    const T: i64 = 1_700_000_000_000;
    const LEASE: Duration = Duration::from_secs(30);
    const HOUR: i64 = 3_600_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp(T + ms)
    }

    fn job(asset: &str, wake: i64) -> NewJob<'_> {
        NewJob { asset_id: asset, payload: r#"{"v":1}"#, version: 1, last_code: "2001", wake_at: at(wake) }
    }

    /// A save to `phase`: released to rest until `wake` if `release`.
    fn save(phase: Phase, release: bool, wake: i64) -> Save<'static> {
        Save {
            phase,
            wake_at: at(wake),
            release,
            payload: r#"{"v":2}"#,
            version: 1,
            last_code: "2001",
            attempts: 1,
            reference: None,
            ledger: None,
            take_report: false,
            outcome: None,
        }
    }

    fn finish(outcome: &'static str) -> Save<'static> {
        Save { outcome: Some(outcome), ..save(Phase::Finished, true, 0) }
    }

    async fn submit(s: &Subject, asset: &str, wake: i64) -> JobId {
        match s.store.submit(job(asset, wake), at(0)).await.unwrap() {
            Submitted::New(id) => id,
            other => panic!("{}: {asset} should be new: {other:?}", s.name),
        }
    }

    /// Claims the one due job at `now` for `owner`.
    async fn claim_one(s: &Subject, owner: &str, now: i64) -> Claimed {
        let mut claimed = s.store.claim(owner, at(now), LEASE, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "{}: one job due at {now}", s.name);
        claimed.remove(0)
    }

    /// A job submitted and claimed by `owner` at 0.
    async fn held(s: &Subject, asset: &str, owner: &str) -> Lease {
        let id = submit(s, asset, 0).await;
        let c = claim_one(s, owner, 0).await;
        assert_eq!(c.lease.job, id, "{}", s.name);
        c.lease
    }

    /// A job submitted, claimed, and put to rest awaiting the result of the attempt with `reference`.
    async fn awaiting(s: &Subject, asset: &str, reference: &'static str) -> Lease {
        let lease = held(s, asset, "r1").await;
        let to_rest = Save { reference: Some(reference), ..save(Phase::Awaiting, true, 2 * HOUR) };
        s.store.save(&lease, to_rest, at(1)).await.unwrap();
        lease
    }

    pub(super) async fn submit_joins_the_active_job_and_a_later_job_gets_a_new_id(s: &Subject) {
        let first = submit(s, "a1", 0).await;
        assert_eq!(s.store.submit(job("a1", 50), at(5)).await.unwrap(), Submitted::Joined(first), "{}", s.name);
        let other = submit(s, "a2", 0).await;
        assert_ne!(other, first, "{}", s.name);
        let row = s.store.job(first).await.unwrap().unwrap();
        assert_eq!(
            (row.asset_id.as_str(), row.phase, row.wake_at, row.lease_owner, row.epoch),
            ("a1", Phase::Waiting, at(0), None, 0),
            "{}: the join changed nothing",
            s.name
        );
        assert_eq!(
            (row.payload.as_str(), row.version, row.last_code.as_str(), row.attempts),
            (r#"{"v":1}"#, 1, "2001", 0),
            "{}",
            s.name
        );
        assert_eq!((row.created_at, row.updated_at, row.finished_at, row.outcome), (at(0), at(0), None, None));

        // Once it has finished, the asset's next failure is a new job with a new id.
        let lease = s.store.claim("r1", at(0), LEASE, 10).await.unwrap().remove(0).lease;
        assert_eq!(lease.job, first, "{}: the earlier of the two due at 0 (ids break the tie)", s.name);
        s.store.save(&lease, finish("recovered"), at(10)).await.unwrap();
        let again = submit(s, "a1", 20).await;
        assert!(again > other, "{}: ids grow: {again} after {other}", s.name);
        assert_eq!(s.store.job_of("a1").await.unwrap().map(|r| r.id), Some(again), "{}: the active one", s.name);
        assert_eq!(s.store.job(first).await.unwrap().and_then(|r| r.outcome).as_deref(), Some("recovered"));
        assert_eq!(s.store.job(JobId(999_999)).await.unwrap(), None, "{}", s.name);
        assert_eq!(s.store.job_of("nobody").await.unwrap(), None, "{}", s.name);
    }

    pub(super) async fn two_claimers_never_get_the_same_job(s: &Subject) {
        for round in 0..5 {
            let mut all = BTreeSet::new();
            for i in 0..60 {
                all.insert(submit(s, &format!("round{round}-{i}"), 0).await);
            }
            let claimers: Vec<_> = ["left", "right"]
                .into_iter()
                .map(|owner| {
                    let store = s.store.clone();
                    tokio::spawn(async move {
                        let mut got = Vec::new();
                        loop {
                            let batch = store.claim(owner, at(1), Duration::from_secs(3600), 3).await.unwrap();
                            if batch.is_empty() {
                                return got;
                            }
                            for c in batch {
                                assert_eq!(&*c.lease.owner, owner);
                                assert_eq!(c.row.lease_owner.as_deref(), Some(owner));
                                got.push(c.lease.job);
                            }
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            let mut seen = BTreeSet::new();
            for claimer in claimers {
                for id in claimer.await.unwrap() {
                    assert!(seen.insert(id), "{}: job {id} was given to two owners in round {round}", s.name);
                }
            }
            assert_eq!(seen, all, "{}: every job claimed once in round {round}", s.name);
        }
    }

    pub(super) async fn claims_take_the_earliest_due_first_up_to_the_limit(s: &Subject) {
        let c = submit(s, "c", 30).await;
        let a = submit(s, "a", 10).await;
        let b = submit(s, "b", 20).await;
        submit(s, "later", 40).await;
        assert!(s.store.claim("r1", at(35), LEASE, 0).await.unwrap().is_empty(), "{}: limit 0", s.name);
        let first: BTreeSet<JobId> =
            s.store.claim("r1", at(35), LEASE, 2).await.unwrap().iter().map(|c| c.lease.job).collect();
        assert_eq!(first, BTreeSet::from([a, b]), "{}: the two earliest", s.name);
        let next = s.store.claim("r1", at(35), LEASE, 5).await.unwrap();
        assert_eq!(next.iter().map(|c| c.lease.job).collect::<Vec<_>>(), vec![c], "{}: not `later`", s.name);
        let claimed = &next[0];
        assert_eq!((claimed.lease.epoch, claimed.taken_over), (1, false), "{}", s.name);
        assert_eq!(claimed.row.epoch, 1, "{}: the row as claimed", s.name);
        assert_eq!(claimed.row.wake_at, at(35).after(LEASE), "{}: held until the lease expires", s.name);
        assert!(s.store.claim("r1", at(35), LEASE, 5).await.unwrap().is_empty(), "{}", s.name);
    }

    pub(super) async fn an_expired_lease_is_taken_over_and_its_old_holder_is_fenced(s: &Subject) {
        let old = held(s, "a1", "r1").await;
        assert!(s.store.claim("r2", at(10_000), LEASE, 10).await.unwrap().is_empty(), "{}: still held", s.name);
        // r1 goes silent; its lease expires at 30 s.
        let new = claim_one(s, "r2", 30_000).await;
        assert!(new.taken_over, "{}", s.name);
        assert_eq!((new.lease.job, new.lease.epoch), (old.job, old.epoch + 1), "{}", s.name);
        assert_eq!(new.row.lease_owner.as_deref(), Some("r2"), "{}", s.name);

        let late = s.store.save(&old, save(Phase::Waiting, true, 0), at(31_000)).await;
        assert!(
            matches!(late, Err(StoreError::LeaseLost { job, epoch }) if job == old.job.0 && epoch == old.epoch),
            "{}: {late:?}",
            s.name
        );
        let renewed = s.store.renew(&[old.clone(), new.lease.clone()], at(31_000), LEASE).await.unwrap();
        assert_eq!(renewed.lost, vec![old.job], "{}: the old lease is lost, the new one renewed", s.name);
        let row = s.store.job(old.job).await.unwrap().unwrap();
        assert_eq!((row.payload.as_str(), row.epoch), (r#"{"v":1}"#, 2), "{}: the late save changed nothing", s.name);
        assert_eq!(row.wake_at, at(31_000).after(LEASE), "{}: renewed", s.name);

        // The new holder writes; a release and a claim is no takeover.
        s.store.save(&new.lease, save(Phase::Waiting, true, 40_000), at(32_000)).await.unwrap();
        let again = claim_one(s, "r1", 40_000).await;
        assert!(!again.taken_over, "{}: the job was at rest", s.name);
        assert_eq!(again.lease.epoch, 3, "{}", s.name);
        // A finished job's lease is lost too.
        s.store.save(&again.lease, finish("failed"), at(41_000)).await.unwrap();
        assert_eq!(
            s.store.renew(std::slice::from_ref(&again.lease), at(42_000), LEASE).await.unwrap().lost,
            vec![again.lease.job]
        );
        assert!(matches!(
            s.store.save(&again.lease, finish("failed"), at(42_000)).await,
            Err(StoreError::LeaseLost { .. })
        ));
        assert!(s.store.renew(&[], at(42_000), LEASE).await.unwrap().lost.is_empty(), "{}", s.name);
    }

    pub(super) async fn the_ledger_keeps_calls_in_order_and_shows_an_unanswered_one_to_the_next_holder(s: &Subject) {
        let lease = held(s, "a1", "r1").await;
        let write = |ledger, at_ms| {
            let store = s.store.clone();
            let lease = lease.clone();
            async move {
                let calling = Save { ledger: Some(ledger), ..save(Phase::Calling, false, 0) };
                store.save(&lease, calling, at(at_ms)).await.unwrap()
            }
        };
        write(LedgerWrite::Begin { key: "a1#1.1", hook: "resubmit" }, 100).await;
        write(LedgerWrite::End { key: "a1#1.1", answer: "failed: 2001" }, 200).await;
        write(LedgerWrite::Begin { key: "a1#1.2", hook: "resubmit" }, 300).await;
        // Its holder dies here. The next holder finds the call started and never answered.
        let next = claim_one(s, "r2", 30_000).await;
        assert!(next.taken_over, "{}", s.name);
        assert_eq!(next.row.phase, Phase::Calling, "{}", s.name);
        let calls = s.store.calls(lease.job).await.unwrap();
        let seen: Vec<_> = calls
            .iter()
            .map(|c| (c.key.as_str(), c.hook.as_str(), c.started_at, c.answered_at, c.answer.as_deref()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("a1#1.1", "resubmit", at(100), Some(at(200)), Some("failed: 2001")),
                ("a1#1.2", "resubmit", at(300), None, None),
            ],
            "{}",
            s.name
        );
        // It reconciles, and answers the call with the same key.
        let end = LedgerWrite::End { key: "a1#1.2", answer: "reconciled: succeeded" };
        s.store.save(&next.lease, Save { ledger: Some(end), ..finish("recovered") }, at(31_000)).await.unwrap();
        let last = s.store.calls(lease.job).await.unwrap().pop().unwrap();
        assert_eq!((last.answered_at, last.answer.as_deref()), (Some(at(31_000)), Some("reconciled: succeeded")));
        assert!(s.store.calls(JobId(999_999)).await.unwrap().is_empty(), "{}", s.name);
    }

    pub(super) async fn release_puts_a_job_to_rest_and_a_save_without_it_keeps_the_lease(s: &Subject) {
        let lease = held(s, "a1", "r1").await;
        s.store.save(&lease, save(Phase::Calling, false, 5), at(1_000)).await.unwrap();
        let row = s.store.job(lease.job).await.unwrap().unwrap();
        assert_eq!((row.phase, row.lease_owner.as_deref()), (Phase::Calling, Some("r1")), "{}", s.name);
        assert_eq!(row.wake_at, at(0).after(LEASE), "{}: due when the lease expires, not at 5", s.name);
        assert_eq!((row.payload.as_str(), row.attempts, row.updated_at), (r#"{"v":2}"#, 1, at(1_000)));
        assert!(s.store.claim("r2", at(1_000), LEASE, 10).await.unwrap().is_empty(), "{}: still held", s.name);

        s.store.save(&lease, save(Phase::Waiting, true, 60_000), at(2_000)).await.unwrap();
        let row = s.store.job(lease.job).await.unwrap().unwrap();
        assert_eq!((row.phase, row.lease_owner, row.wake_at), (Phase::Waiting, None, at(60_000)), "{}", s.name);
        assert_eq!(s.store.next_wake().await.unwrap(), Some(at(60_000)), "{}", s.name);
        assert!(s.store.claim("r2", at(59_999), LEASE, 10).await.unwrap().is_empty(), "{}: not due", s.name);
        let c = claim_one(s, "r2", 60_000).await;
        assert!(!c.taken_over, "{}", s.name);
        // The holder of a released job no longer holds it.
        assert!(matches!(
            s.store.save(&lease, save(Phase::Waiting, true, 0), at(60_001)).await,
            Err(StoreError::LeaseLost { .. })
        ));
    }

    pub(super) async fn every_report_gets_its_answer(s: &Subject) {
        // Applied: the job awaits this reference, at rest: it is due at once.
        let a = awaiting(s, "applied", "uuid-1").await;
        let answer = s.store.report(ReportTarget::Reference("uuid-1"), "ok-1", at(500)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Applied { job: a.job }, "{}", s.name);
        let row = s.store.job(a.job).await.unwrap().unwrap();
        assert_eq!((row.report.as_deref(), row.wake_at), (Some("ok-1"), at(500)), "{}: due now", s.name);
        // Duplicate: it already has a report for this attempt.
        let again = s.store.report(ReportTarget::Asset("applied"), "ok-again", at(600)).await.unwrap();
        assert_eq!(again, ReportAnswer::Duplicate { job: a.job }, "{}", s.name);
        assert_eq!(s.store.job(a.job).await.unwrap().unwrap().report.as_deref(), Some("ok-1"), "{}", s.name);
        // Finished: by asset and by the reference of its last attempt.
        let f = claim_one(s, "r3", 500).await;
        assert_eq!(f.row.report.as_deref(), Some("ok-1"), "{}", s.name);
        s.store.save(&f.lease, finish("recovered"), at(700)).await.unwrap();
        for target in [ReportTarget::Asset("applied"), ReportTarget::Reference("uuid-1")] {
            let answer = s.store.report(target, "after the end", at(800)).await.unwrap();
            assert_eq!(answer, ReportAnswer::Finished { job: a.job }, "{}: {target:?}", s.name);
        }

        // Applied while held: kept on the row, the holder still holds the job.
        let h = held(s, "held", "r1").await;
        s.store.save(&h, Save { reference: Some("uuid-h"), ..save(Phase::Awaiting, false, 0) }, at(1)).await.unwrap();
        let answer = s.store.report(ReportTarget::Asset("held"), "ok-h", at(2)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Applied { job: h.job }, "{}", s.name);
        let row = s.store.job(h.job).await.unwrap().unwrap();
        assert_eq!((row.report.as_deref(), row.wake_at), (Some("ok-h"), at(0).after(LEASE)), "{}", s.name);
        // The holder takes it with its next save.
        let taken = Save { take_report: true, ..save(Phase::Waiting, true, HOUR) };
        assert_eq!(s.store.save(&h, taken, at(3)).await.unwrap().report, None, "{}", s.name);
        assert_eq!(s.store.job(h.job).await.unwrap().unwrap().report, None, "{}", s.name);

        // Early: the attempt's hook has not answered yet; the report waits for its `Submitted`.
        let e = held(s, "early", "r1").await;
        s.store.save(&e, save(Phase::Calling, false, 0), at(1)).await.unwrap();
        let answer = s.store.report(ReportTarget::Asset("early"), "ok-e", at(2)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Early { job: e.job }, "{}", s.name);
        let submitted = Save { reference: Some("uuid-e"), ..save(Phase::Awaiting, true, 2 * HOUR) };
        let saved = s.store.save(&e, submitted, at(3)).await.unwrap();
        assert_eq!(saved.report.as_deref(), Some("ok-e"), "{}", s.name);
        assert_eq!(s.store.job(e.job).await.unwrap().unwrap().wake_at, at(3), "{}: due at once", s.name);

        // Older attempt: a report for the reference of an earlier attempt, or for a job between attempts.
        awaiting(s, "older", "uuid-o1").await;
        let claimed = s.store.claim("r2", at(2 * HOUR), LEASE, 10).await.unwrap();
        let o = claimed.into_iter().find(|c| c.row.asset_id == "older").unwrap().lease;
        let next_attempt = Save { reference: Some("uuid-o2"), ..save(Phase::Awaiting, true, 4 * HOUR) };
        s.store.save(&o, next_attempt, at(2 * HOUR)).await.unwrap();
        let answer = s.store.report(ReportTarget::Reference("uuid-o1"), "late", at(2 * HOUR + 1)).await.unwrap();
        assert_eq!(answer, ReportAnswer::OlderAttempt { job: o.job }, "{}", s.name);
        assert_eq!(s.store.job(o.job).await.unwrap().unwrap().report, None, "{}: changes nothing", s.name);
        let w = submit(s, "waiting", HOUR).await;
        let answer = s.store.report(ReportTarget::Asset("waiting"), "stray", at(5)).await.unwrap();
        assert_eq!(answer, ReportAnswer::OlderAttempt { job: w }, "{}", s.name);
        assert_eq!(s.store.job(w).await.unwrap().unwrap().wake_at, at(HOUR), "{}: changes nothing", s.name);

        // Unknown: no job of this asset was ever known.
        let answer = s.store.report(ReportTarget::Asset("nobody"), "?", at(900)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Unknown, "{}", s.name);
    }

    pub(super) async fn a_report_held_for_its_reference_is_picked_up_by_the_save_that_names_it(s: &Subject) {
        let lease = held(s, "a1", "r1").await;
        s.store.save(&lease, save(Phase::Calling, false, 0), at(1)).await.unwrap();
        // The callback for the new LightFlow asset comes before the hook has answered `Submitted`.
        let answer = s.store.report(ReportTarget::Reference("uuid-9"), "ok-9", at(2)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Held, "{}", s.name);
        assert_eq!(s.store.stats(at(2)).await.unwrap().held_reports, 1, "{}", s.name);
        assert_eq!(s.store.job(lease.job).await.unwrap().unwrap().report, None, "{}: not the job's yet", s.name);

        let submitted = Save { reference: Some("uuid-9"), ..save(Phase::Awaiting, true, 2 * HOUR) };
        let saved = s.store.save(&lease, submitted, at(3)).await.unwrap();
        assert_eq!(saved.report.as_deref(), Some("ok-9"), "{}", s.name);
        let row = s.store.job(lease.job).await.unwrap().unwrap();
        assert_eq!(
            (row.report.as_deref(), row.wake_at, row.reference.as_deref()),
            (Some("ok-9"), at(3), Some("uuid-9"))
        );
        assert_eq!(s.store.stats(at(3)).await.unwrap().held_reports, 0, "{}: taken", s.name);
        let c = claim_one(s, "r2", 3).await;
        assert_eq!(c.row.report.as_deref(), Some("ok-9"), "{}: due now, with its report", s.name);
        // The same callback again is a duplicate.
        let answer = s.store.report(ReportTarget::Reference("uuid-9"), "ok-9", at(4)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Duplicate { job: lease.job }, "{}", s.name);
    }

    pub(super) async fn cancel_ends_a_job_at_rest_and_asks_the_holder_of_a_held_one(s: &Subject) {
        let rest = submit(s, "rest", HOUR).await;
        assert_eq!(s.store.cancel("rest", at(10)).await.unwrap(), CancelAnswer::Cancelled { job: rest }, "{}", s.name);
        let row = s.store.job(rest).await.unwrap().unwrap();
        assert_eq!(
            (row.phase, row.outcome.as_deref(), row.finished_at),
            (Phase::Finished, Some("cancelled"), Some(at(10)))
        );
        assert_eq!(s.store.cancel("rest", at(11)).await.unwrap(), CancelAnswer::NoJob, "{}: ended", s.name);
        assert_eq!(s.store.cancel("nobody", at(11)).await.unwrap(), CancelAnswer::NoJob, "{}", s.name);
        assert!(s.store.claim("r1", at(2 * HOUR), LEASE, 10).await.unwrap().is_empty(), "{}: never due again", s.name);

        let lease = held(s, "busy", "r1").await;
        assert_eq!(s.store.cancel("busy", at(10)).await.unwrap(), CancelAnswer::Requested { job: lease.job });
        let row = s.store.job(lease.job).await.unwrap().unwrap();
        assert!(row.cancel_requested && row.phase != Phase::Finished, "{}: {row:?}", s.name);
        let renewed = s.store.renew(std::slice::from_ref(&lease), at(20), LEASE).await.unwrap();
        assert_eq!((renewed.lost, renewed.cancel_requested), (vec![], vec![lease.job]), "{}", s.name);
        let saved = s.store.save(&lease, save(Phase::Calling, false, 0), at(21)).await.unwrap();
        assert!(saved.cancel_requested, "{}", s.name);
        s.store.save(&lease, finish("cancelled"), at(22)).await.unwrap();
        assert_eq!(s.store.job(lease.job).await.unwrap().unwrap().outcome.as_deref(), Some("cancelled"));

        // A job whose holder's lease has expired is at rest for a cancel.
        let gone = held(s, "gone", "r1").await;
        assert_eq!(s.store.cancel("gone", at(30_000)).await.unwrap(), CancelAnswer::Cancelled { job: gone.job });
        assert!(matches!(
            s.store.save(&gone, save(Phase::Waiting, true, 0), at(30_001)).await,
            Err(StoreError::LeaseLost { .. })
        ));
    }

    pub(super) async fn retry_now_makes_a_job_at_rest_due(s: &Subject) {
        let id = submit(s, "a1", HOUR).await;
        assert!(s.store.claim("r1", at(10), LEASE, 10).await.unwrap().is_empty(), "{}", s.name);
        assert!(s.store.retry_now("a1", at(10)).await.unwrap(), "{}", s.name);
        assert_eq!(s.store.job(id).await.unwrap().unwrap().wake_at, at(10), "{}", s.name);
        let c = claim_one(s, "r1", 10).await;
        assert!(!s.store.retry_now("a1", at(20)).await.unwrap(), "{}: held, its holder decides", s.name);
        assert_eq!(s.store.job(id).await.unwrap().unwrap().wake_at, at(10).after(LEASE), "{}", s.name);
        s.store.save(&c.lease, finish("recovered"), at(30)).await.unwrap();
        assert!(!s.store.retry_now("a1", at(40)).await.unwrap(), "{}: ended", s.name);
        assert!(!s.store.retry_now("nobody", at(40)).await.unwrap(), "{}", s.name);
    }

    /// Four jobs: `w` waiting (2001), `r` recovered (2001), `f` failed (2404), `x` awaiting (2404), and a held one
    /// (`h`, calling, 2001), in that order of submission.
    async fn fleet(s: &Subject) {
        submit(s, "w", HOUR).await;
        for (asset, outcome, code) in [("r", "recovered", "2001"), ("f", "failed", "2404")] {
            let lease = held(s, asset, "r1").await;
            s.store.save(&lease, Save { last_code: code, ..finish(outcome) }, at(100)).await.unwrap();
        }
        let x = held(s, "x", "r1").await;
        let to_rest = Save { last_code: "2404", reference: Some("uuid-x"), ..save(Phase::Awaiting, true, 2 * HOUR) };
        s.store.save(&x, to_rest, at(200)).await.unwrap();
        let h = held(s, "h", "r1").await;
        s.store.save(&h, save(Phase::Calling, false, 0), at(300)).await.unwrap();
    }

    pub(super) async fn list_filters_by_phase_outcome_and_code_newest_first(s: &Subject) {
        fleet(s).await;
        let table: [(ListFilter, &[&str]); 8] = [
            (ListFilter::default(), &["h", "x", "f", "r", "w"]),
            (ListFilter { phase: Some(Phase::Finished), ..ListFilter::default() }, &["f", "r"]),
            (ListFilter { phase: Some(Phase::Awaiting), ..ListFilter::default() }, &["x"]),
            (ListFilter { outcome: Some("failed".into()), ..ListFilter::default() }, &["f"]),
            (ListFilter { code: Some("2404".into()), ..ListFilter::default() }, &["x", "f"]),
            (ListFilter { limit: Some(2), ..ListFilter::default() }, &["h", "x"]),
            (ListFilter { phase: Some(Phase::Waiting), code: Some("2404".into()), ..ListFilter::default() }, &[]),
            (
                ListFilter {
                    outcome: Some("recovered".into()),
                    code: Some("2001".into()),
                    limit: Some(9),
                    ..ListFilter::default()
                },
                &["r"],
            ),
        ];
        for (filter, assets) in table {
            let listed: Vec<String> = s.store.list(&filter).await.unwrap().into_iter().map(|r| r.asset_id).collect();
            assert_eq!(listed, assets, "{}: {filter:?}", s.name);
        }
    }

    pub(super) async fn stats_count_phases_outcomes_due_held_and_held_reports(s: &Subject) {
        fleet(s).await;
        s.store.report(ReportTarget::Reference("uuid-nobody-knows"), "ok", at(400)).await.unwrap();
        let stats = s.store.stats(at(1_000)).await.unwrap();
        let count =
            |m: &std::collections::BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>();
        assert_eq!(
            count(&stats.by_phase),
            vec![("awaiting".into(), 1), ("calling".into(), 1), ("waiting".into(), 1)],
            "{}",
            s.name
        );
        assert_eq!(count(&stats.by_outcome), vec![("failed".into(), 1), ("recovered".into(), 1)], "{}", s.name);
        assert_eq!((stats.due_now, stats.held, stats.held_reports), (0, 1, 1), "{}", s.name);
        // An hour on, `w` is due, and `h`'s holder has been silent past its lease: due, no longer counted held.
        let later = s.store.stats(at(HOUR)).await.unwrap();
        assert_eq!((later.due_now, later.held), (2, 0), "{}", s.name);
    }

    pub(super) async fn next_wake_is_the_earliest_active_job(s: &Subject) {
        assert_eq!(s.store.next_wake().await.unwrap(), None, "{}: empty", s.name);
        submit(s, "late", 2 * HOUR).await;
        let early = submit(s, "early", HOUR).await;
        assert_eq!(s.store.next_wake().await.unwrap(), Some(at(HOUR)), "{}", s.name);
        let c = claim_one(s, "r1", HOUR).await;
        assert_eq!(c.lease.job, early);
        assert_eq!(s.store.next_wake().await.unwrap(), Some(at(HOUR).after(LEASE)), "{}: its lease's expiry", s.name);
        s.store.save(&c.lease, finish("recovered"), at(HOUR + 1)).await.unwrap();
        assert_eq!(s.store.next_wake().await.unwrap(), Some(at(2 * HOUR)), "{}: a finished job never wakes", s.name);
    }

    pub(super) async fn prune_deletes_finished_jobs_and_held_reports_before_a_time(s: &Subject) {
        let old = held(s, "old", "r1").await;
        let begin = LedgerWrite::Begin { key: "old#1.1", hook: "resubmit" };
        s.store.save(&old, Save { ledger: Some(begin), ..save(Phase::Calling, false, 0) }, at(10)).await.unwrap();
        s.store.save(&old, finish("failed"), at(100)).await.unwrap();
        let recent = held(s, "recent", "r1").await;
        s.store.save(&recent, finish("recovered"), at(HOUR)).await.unwrap();
        let active = submit(s, "active", 0).await;
        s.store.report(ReportTarget::Reference("uuid-old"), "ok", at(50)).await.unwrap();
        s.store.report(ReportTarget::Reference("uuid-new"), "ok", at(HOUR)).await.unwrap();

        assert_eq!(s.store.prune(at(100)).await.unwrap(), 0, "{}: finished at 100 is not before 100", s.name);
        assert_eq!(s.store.prune(at(1_000)).await.unwrap(), 1, "{}", s.name);
        assert_eq!(s.store.job(old.job).await.unwrap(), None, "{}", s.name);
        assert!(s.store.calls(old.job).await.unwrap().is_empty(), "{}: its ledger went with it", s.name);
        assert!(s.store.job(recent.job).await.unwrap().is_some(), "{}", s.name);
        assert!(s.store.job(active).await.unwrap().is_some(), "{}: active jobs are never pruned", s.name);
        assert_eq!(s.store.stats(at(HOUR)).await.unwrap().held_reports, 1, "{}: the newer held report stays", s.name);
        assert_eq!(s.store.report(ReportTarget::Asset("old"), "?", at(2_000)).await.unwrap(), ReportAnswer::Unknown);
        // Ids are never reused, pruned or not.
        let next = submit(s, "old", 0).await;
        assert!(next > active, "{}: {next} after {active}", s.name);
    }
}

/// SQLite's own guarantees.
#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use lightflow_remedy::store::{Clock, SqliteStore, TokioClock};
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    const LEASE: Duration = Duration::from_secs(30);

    fn job(asset: &str) -> NewJob<'_> {
        NewJob { asset_id: asset, payload: r#"{"v":1}"#, version: 1, last_code: "2001", wake_at: Timestamp(0) }
    }

    fn calling(ledger: Option<LedgerWrite<'static>>) -> Save<'static> {
        Save {
            phase: Phase::Calling,
            wake_at: Timestamp(0),
            release: false,
            payload: r#"{"v":2}"#,
            version: 1,
            last_code: "2001",
            attempts: 1,
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
        store.save(&lease, calling(Some(begin)), Timestamp(5)).await.unwrap();
        assert_eq!(
            store.report(ReportTarget::Reference("uuid-1"), "ok", Timestamp(6)).await.unwrap(),
            ReportAnswer::Held
        );
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
            ledger: Some(LedgerWrite::End { key: "a1#1.1", answer: "submitted: uuid-1" }),
            ..calling(None)
        };
        let saved = store.save(&next.lease, submitted, Timestamp(30_001)).await.unwrap();
        assert_eq!(saved.report.as_deref(), Some("ok"));
        store.close().await;
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
                store.save(&lease, calling(Some(begin)), clock.now()).await?;
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
}
