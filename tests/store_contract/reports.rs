//! What comes from outside the holders: reports of attempts that finish later (every answer), a report held
//! for a reference not known yet, cancellation at rest and of a held job, "retry now".

use lightflow_remedy::store::{CancelAnswer, Phase, ReportAnswer, ReportTarget, Save, StoreError};

use super::Subject;
use super::common::{HOUR, LEASE, at, awaiting, claim_one, finish, held, save, submit};

pub(super) async fn every_report_gets_its_answer(s: &Subject) {
    // Applied: the job awaits this reference, at rest: it is due at once.
    let a = awaiting(s, "applied", "uuid-1").await;
    let answer = s.store.report(ReportTarget::Reference("uuid-1"), "ok-1", at(500)).await.unwrap();
    assert_eq!(answer, ReportAnswer::Applied { job: a.job }, "{}", s.name);
    let row = s.store.job(a.job).await.unwrap().unwrap();
    assert_eq!((row.report.as_deref(), row.wake_at), (Some("ok-1"), at(500)), "{}: due now", s.name);
    // Duplicate: it already has a report for this attempt.
    let first = ReportTarget::Attempt { job: a.job, attempt: 1 };
    let again = s.store.report(first, "ok-again", at(600)).await.unwrap();
    assert_eq!(again, ReportAnswer::Duplicate { job: a.job }, "{}", s.name);
    // Ambiguous: the asset alone, without an end time, could be about any attempt.
    let vague = s.store.report(ReportTarget::Asset("applied"), "ok-again", at(600)).await.unwrap();
    assert_eq!(vague, ReportAnswer::Ambiguous { job: a.job }, "{}", s.name);
    assert_eq!(s.store.job(a.job).await.unwrap().unwrap().report.as_deref(), Some("ok-1"), "{}", s.name);
    // Finished: by asset and by the reference of its last attempt.
    let f = claim_one(s, "r3", 500).await;
    assert_eq!(f.row.report.as_deref(), Some("ok-1"), "{}", s.name);
    s.store.save(&f.lease, finish("recovered"), at(700)).await.unwrap();
    for target in [ReportTarget::Asset("applied"), ReportTarget::Reference("uuid-1"), first] {
        let answer = s.store.report(target, "after the end", at(800)).await.unwrap();
        assert_eq!(answer, ReportAnswer::Finished { job: a.job }, "{}: {target:?}", s.name);
    }

    // Applied while held: kept on the row, the holder still holds the job.
    let h = held(s, "held", "r1").await;
    s.store.save(&h, Save { reference: Some("uuid-h"), ..save(Phase::Awaiting, false, 0) }, at(1)).await.unwrap();
    let answer = s.store.report(ReportTarget::Attempt { job: h.job, attempt: 1 }, "ok-h", at(2)).await.unwrap();
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
    let answer = s.store.report(ReportTarget::AssetEndedAt("early", at(2)), "ok-e", at(2)).await.unwrap();
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
    assert_eq!((row.report.as_deref(), row.wake_at, row.reference.as_deref()), (Some("ok-9"), at(3), Some("uuid-9")));
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
