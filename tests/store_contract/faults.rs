//! What hostile input and expiring leases meet: reports addressed to an attempt that is not the one under way,
//! writes of a holder whose lease is about to run out, values no id has, the same hand-over twice, reports for
//! references nobody named, a cancel asked while a job is held.

use lightflow_remedy::store::{
    CallRow, LedgerWrite, MAX_ID_BYTES, MAX_REPORT_BYTES, NewJob, Phase, ReportAnswer, ReportTarget, Save, StoreError,
    Submitted,
};

use super::Subject;
use super::common::{HOUR, LEASE, at, awaiting, claim_one, finish, held, job, save, submit};

/// A job that made attempt 1 (`uuid-1`), and now awaits attempt 2 (`uuid-2`), begun at `began`.
async fn second_attempt(s: &Subject, asset: &str, began: i64) -> lightflow_remedy::store::Lease {
    let first = awaiting(s, asset, "uuid-1").await;
    let c = s.store.claim("r2", at(2 * HOUR), LEASE, 10).await.unwrap();
    let c = c.into_iter().find(|c| c.lease.job == first.job).unwrap();
    let second = Save { attempts: 2, attempt: 2, reference: Some("uuid-2"), ..save(Phase::Awaiting, true, 4 * HOUR) };
    s.store.save(&c.lease, second, at(began)).await.unwrap();
    c.lease
}

pub(super) async fn reports_are_applied_only_to_the_attempt_they_name(s: &Subject) {
    let began = 2 * HOUR;
    let lease = second_attempt(s, "a", began).await;
    let job = lease.job;
    let row = s.store.job(job).await.unwrap().unwrap();
    assert_eq!((row.attempt, row.attempt_at), (2, Some(at(began))), "{}: the attempt under way", s.name);
    let attempt = |n| ReportTarget::Attempt { job, attempt: n };
    // Each row: a report, and what it answers; none of them changes the job but the one for attempt 2.
    let table: &[(ReportTarget<'_>, ReportAnswer)] = &[
        (attempt(1), ReportAnswer::OlderAttempt { job }),
        (attempt(3), ReportAnswer::Unknown),
        (attempt(0), ReportAnswer::Unknown),
        (
            ReportTarget::Attempt { job: lightflow_remedy::store::JobId(job.0 + 1000), attempt: 1 },
            ReportAnswer::Unknown,
        ),
        (ReportTarget::Reference("uuid-1"), ReportAnswer::OlderAttempt { job }),
        (ReportTarget::AssetEndedAt("a", at(began - 1)), ReportAnswer::OlderAttempt { job }),
        (ReportTarget::Asset("a"), ReportAnswer::Ambiguous { job }),
    ];
    for (target, answer) in table {
        let got = s.store.report(*target, "stale", at(began + 10)).await.unwrap();
        assert_eq!(got, *answer, "{}: {target:?}", s.name);
        let row = s.store.job(job).await.unwrap().unwrap();
        assert_eq!(row.report, None, "{}: {target:?} changes no report", s.name);
    }
    // The ambiguous report made the job due now, to ask `check`, with nothing on its row.
    let row = s.store.job(job).await.unwrap().unwrap();
    assert_eq!(row.wake_at, at(began + 10), "{}: due at once, to check", s.name);
    // An end time after the attempt began, and the attempt's own key, are the attempt's.
    let got = s.store.report(ReportTarget::AssetEndedAt("a", at(began + 5)), "ok", at(began + 20)).await.unwrap();
    assert_eq!(got, ReportAnswer::Applied { job }, "{}", s.name);
    let got = s.store.report(attempt(2), "ok", at(began + 21)).await.unwrap();
    assert_eq!(got, ReportAnswer::Duplicate { job }, "{}", s.name);
    assert_eq!(s.store.job(job).await.unwrap().unwrap().report.as_deref(), Some("ok"), "{}", s.name);
}

pub(super) async fn a_fenced_write_needs_a_lease_unexpired_past_its_margin(s: &Subject) {
    // Claimed at 0 with a 30 s lease: it runs out at 30 000.
    let lease = held(s, "a", "r1").await;
    let begin = LedgerWrite::Begin { key: "a#1.1", hook: "resubmit" };
    let calling = |fence: i64| Save {
        fence_until: at(fence),
        ledger: std::slice::from_ref(&begin),
        ..save(Phase::Calling, false, 0)
    };
    // Each row: when the write is made, the time the lease must outlive, whether it is taken.
    let table: &[(i64, i64, bool)] = &[
        (10_000, 25_000, true),
        (10_000, 29_999, true),
        (10_000, 30_000, false),
        (20_000, 40_000, false),
        (29_999, 0, true),
        (30_000, 0, false),
        (31_000, 0, false),
    ];
    for &(now, fence, taken) in table {
        let result = s.store.save(&lease, calling(fence), at(now)).await;
        match (result, taken) {
            (Ok(_), true) | (Err(StoreError::LeaseLost { .. }), false) => {}
            (got, _) => panic!("{}: at {now}, fenced to {fence}: {got:?}", s.name),
        }
    }
    let calls: Vec<CallRow> = s.store.calls(lease.job).await.unwrap();
    assert_eq!(calls.len(), 3, "{}: only the writes taken began calls", s.name);
    // An expired lease is not renewed, even before another holder claims the job.
    let renewed = s.store.renew(std::slice::from_ref(&lease), at(30_000), LEASE).await.unwrap();
    assert_eq!(renewed.lost, vec![lease.job], "{}", s.name);
    let taken = claim_one(s, "r2", 30_000).await;
    assert!(taken.taken_over, "{}", s.name);
}

pub(super) async fn values_no_id_has_are_refused_and_the_store_goes_on(s: &Subject) {
    let long = "u".repeat(MAX_ID_BYTES + 1);
    let report = "x".repeat(MAX_REPORT_BYTES + 1);
    let ids: &[(&str, &str)] = &[
        ("", "empty"),
        ("a\0b", "U+0000"),
        ("line\nbreak", "U+000A"),
        ("tab\there", "U+0009"),
        ("\u{1b}[31m", "U+001B"),
        (&long, "bytes long"),
    ];
    let refused = |what: String, got: Result<String, StoreError>, why: &str| match got {
        Err(StoreError::Invalid { reason, .. }) if reason.contains(why) => {}
        other => panic!("{}: {what}: {other:?}", s.name),
    };
    for (id, why) in ids {
        let shown = format!("{:?}", &id[..id.len().min(20)]);
        refused(format!("submit {shown}"), s.store.submit(job(id, 0), at(0)).await.map(|x| format!("{x:?}")), why);
        let keyed = NewJob { dedupe_key: Some(id), ..job("fine", 0) };
        refused(format!("dedupe key {shown}"), s.store.submit(keyed, at(0)).await.map(|x| format!("{x:?}")), why);
        for target in [ReportTarget::Reference(id), ReportTarget::Asset(id), ReportTarget::AssetEndedAt(id, at(0))] {
            let got = s.store.report(target, "ok", at(0)).await.map(|x| format!("{x:?}"));
            refused(format!("report {target:?}"), got, why);
        }
        refused(format!("cancel {shown}"), s.store.cancel(id, at(0)).await.map(|x| format!("{x:?}")), why);
        refused(format!("job of {shown}"), s.store.job_of(id).await.map(|x| format!("{x:?}")), why);
        refused(format!("retry {shown}"), s.store.retry_now(id, at(0)).await.map(|x| format!("{x:?}")), why);
    }
    let got = s.store.report(ReportTarget::Reference("uuid"), &report, at(0)).await.map(|x| format!("{x:?}"));
    refused("a large report".into(), got, "bytes long");
    // Nothing was kept, and the store works on.
    let stats = s.store.stats(at(0)).await.unwrap();
    assert_eq!((stats.held_reports, stats.by_phase.len()), (0, 0), "{}: {stats:?}", s.name);
    let unicode = "asset/ä-✓";
    submit(s, unicode, 0).await;
    assert_eq!(s.store.job_of(unicode).await.unwrap().unwrap().asset_id, unicode, "{}", s.name);
    let max = "r".repeat(MAX_ID_BYTES);
    assert_eq!(s.store.report(ReportTarget::Reference(&max), "ok", at(1)).await.unwrap(), ReportAnswer::Held);
}

pub(super) async fn a_dedupe_key_makes_one_job_for_as_long_as_the_first_is_kept(s: &Subject) {
    let keyed = |asset, key| NewJob { dedupe_key: Some(key), ..job(asset, 0) };
    let Submitted::New(first) = s.store.submit(keyed("a", "uuid-f"), at(0)).await.unwrap() else { panic!() };
    // Each row: a hand-over, and what it makes, while the first job is active and after it ended.
    assert_eq!(s.store.submit(keyed("a", "uuid-f"), at(1)).await.unwrap(), Submitted::Deduplicated(first));
    assert_eq!(s.store.submit(keyed("other", "uuid-f"), at(1)).await.unwrap(), Submitted::Deduplicated(first));
    assert_eq!(s.store.submit(keyed("a", "uuid-g"), at(1)).await.unwrap(), Submitted::Joined(first));
    let (_, claimed) = s.store.submit_and_claim(keyed("a", "uuid-f"), "r1", LEASE, at(1)).await.unwrap();
    assert!(claimed.is_none(), "{}: a deduplicated hand-over claims nothing", s.name);
    let c = claim_one(s, "r1", 1).await;
    s.store.save(&c.lease, finish("recovered"), at(2)).await.unwrap();
    assert_eq!(
        s.store.submit(keyed("a", "uuid-f"), at(3)).await.unwrap(),
        Submitted::Deduplicated(first),
        "{}",
        s.name
    );
    let (again, claimed) = s.store.submit_and_claim(keyed("a", "uuid-f"), "r1", LEASE, at(3)).await.unwrap();
    assert_eq!((again, claimed.is_none()), (Submitted::Deduplicated(first), true), "{}", s.name);
    let Submitted::New(second) = s.store.submit(keyed("a", "uuid-h"), at(4)).await.unwrap() else { panic!() };
    assert!(second > first, "{}", s.name);
    assert_eq!(s.store.job(first).await.unwrap().unwrap().dedupe_key.as_deref(), Some("uuid-f"), "{}", s.name);
    // Once pruned, the key is free again.
    s.store.prune(at(HOUR)).await.unwrap();
    let c = claim_one(s, "r1", 4).await;
    s.store.save(&c.lease, finish("recovered"), at(5)).await.unwrap();
    assert!(matches!(s.store.submit(keyed("a", "uuid-f"), at(6)).await.unwrap(), Submitted::New(_)), "{}", s.name);
}

pub(super) async fn a_reference_stays_with_the_job_that_named_it_first(s: &Subject) {
    let first = awaiting(s, "a", "uuid-same").await;
    let c = claim_one(s, "r2", 2 * HOUR).await;
    s.store.save(&c.lease, finish("recovered"), at(2 * HOUR)).await.unwrap();
    let later = held(s, "b", "r1").await;
    let to_rest = Save { reference: Some("uuid-same"), ..save(Phase::Awaiting, true, 4 * HOUR) };
    s.store.save(&later, to_rest, at(1)).await.unwrap();
    let answer = s.store.report(ReportTarget::Reference("uuid-same"), "ok", at(2)).await.unwrap();
    assert_eq!(answer, ReportAnswer::Finished { job: first.job }, "{}: the first job's", s.name);
    assert_eq!(s.store.job(later.job).await.unwrap().unwrap().report, None, "{}", s.name);
}

pub(super) async fn a_cancel_asked_while_held_makes_the_released_job_due_at_once(s: &Subject) {
    let lease = held(s, "a", "r1").await;
    s.store.cancel("a", at(10)).await.unwrap();
    let to_rest = Save { reference: Some("uuid-c"), ..save(Phase::Awaiting, true, 4 * HOUR) };
    let saved = s.store.save(&lease, to_rest, at(20)).await.unwrap();
    assert!(saved.cancel_requested, "{}", s.name);
    assert_eq!(s.store.job(lease.job).await.unwrap().unwrap().wake_at, at(20), "{}: due now, not in 4 h", s.name);
    let c = claim_one(s, "r2", 20).await;
    assert!(c.row.cancel_requested, "{}", s.name);
}

pub(super) async fn held_reports_are_bounded(s: &Subject) {
    // A cap of 3 and a life of 60 s. Each row: a reference nobody named, when it comes, what it is answered,
    // and how many are held after it.
    let table: &[(&str, i64, ReportAnswer, u64)] = &[
        ("u1", 0, ReportAnswer::Held, 1),
        ("u2", 1, ReportAnswer::Held, 2),
        ("u3", 2, ReportAnswer::Held, 3),
        ("u3", 3, ReportAnswer::Held, 3),
        ("u4", 4, ReportAnswer::Unknown, 3),
        ("u5", 5, ReportAnswer::Unknown, 3),
        ("u6", 70_000, ReportAnswer::Held, 1),
    ];
    for (reference, when, answer, kept) in table {
        let got = s.store.report(ReportTarget::Reference(reference), "ok", at(*when)).await.unwrap();
        assert_eq!(got, *answer, "{}: {reference} at {when}", s.name);
        let stats = s.store.stats(at(*when)).await.unwrap();
        assert_eq!(stats.held_reports, *kept, "{}: after {reference} at {when}", s.name);
    }
    assert_eq!(s.store.stats(at(70_000)).await.unwrap().held_reports_dropped, 2, "{}: u1 and u2", s.name);
    // The newest held report is still picked up by the save that names it.
    submit(s, "a", 0).await;
    let c = claim_one(s, "r1", 70_000).await;
    let to_rest = Save { reference: Some("u6"), ..save(Phase::Awaiting, true, HOUR) };
    let saved = s.store.save(&c.lease, to_rest, at(70_001)).await.unwrap();
    assert_eq!(saved.report.as_deref(), Some("ok"), "{}", s.name);
}

pub(super) async fn assets_keep_their_parameters_and_lineage(s: &Subject) {
    s.store.put_asset("uuid-a", Some("gw-1"), r#"{"input":{"urlPath":"a.mp4"}}"#, at(1)).await.unwrap();
    for key in ["uuid-a", "gw-1"] {
        let found = s.store.asset(key).await.unwrap().unwrap();
        assert_eq!((found.asset_id.as_str(), found.alias.as_deref()), ("uuid-a", Some("gw-1")), "{}: {key}", s.name);
    }
    assert_eq!(s.store.asset("nobody").await.unwrap(), None, "{}", s.name);
    // A second record replaces the parameters and keeps the alias.
    s.store.put_asset("uuid-a", None, r#"{"input":{"urlPath":"b.mp4"}}"#, at(2)).await.unwrap();
    let found = s.store.asset("gw-1").await.unwrap().unwrap();
    assert!(found.parameters.contains("b.mp4") && found.alias.as_deref() == Some("gw-1"), "{}: {found:?}", s.name);
    // Lineage: once per reference, oldest first.
    for (reference, key, when) in [("uuid-b", "uuid-a#1.1", 10), ("uuid-c", "uuid-a#1.2", 20), ("uuid-b", "x#9.9", 30)]
    {
        s.store.add_lineage("uuid-a", reference, key, at(when)).await.unwrap();
    }
    let lineage = s.store.lineage("uuid-a").await.unwrap();
    let got: Vec<(&str, &str)> = lineage.iter().map(|l| (l.reference.as_str(), l.attempt_key.as_str())).collect();
    assert_eq!(got, [("uuid-b", "uuid-a#1.1"), ("uuid-c", "uuid-a#1.2")], "{}", s.name);
    // Open until settled; pruned once settled, recorded before the cutoff, and without an active job.
    s.store.put_asset("uuid-e", None, "{}", at(5)).await.unwrap();
    let open: Vec<String> = s.store.open_assets(at(10), 10).await.unwrap().into_iter().map(|a| a.asset_id).collect();
    assert_eq!(open, ["uuid-a", "uuid-e"], "{}", s.name);
    s.store.settle_asset("uuid-a").await.unwrap();
    s.store.settle_asset("uuid-e").await.unwrap();
    submit(s, "uuid-e", HOUR).await;
    assert!(s.store.open_assets(at(10), 10).await.unwrap().is_empty(), "{}", s.name);
    s.store.prune(at(100)).await.unwrap();
    assert_eq!(s.store.asset("uuid-a").await.unwrap(), None, "{}: settled, no job: pruned", s.name);
    assert!(s.store.lineage("uuid-a").await.unwrap().is_empty(), "{}: its lineage with it", s.name);
    assert!(s.store.asset("uuid-e").await.unwrap().is_some(), "{}: an active job keeps its asset", s.name);
    let big = "x".repeat(lightflow_remedy::store::MAX_PARAMETERS_BYTES + 1);
    assert!(matches!(s.store.put_asset("uuid-d", None, &big, at(3)).await, Err(StoreError::Invalid { .. })));
    assert!(matches!(s.store.put_asset("uu\0id", None, "{}", at(3)).await, Err(StoreError::Invalid { .. })));
}
