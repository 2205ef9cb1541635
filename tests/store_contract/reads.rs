//! Reading a store: lists by filter, counts, the next wake; and pruning what has ended.

use lightflow_remedy::store::{LedgerWrite, ListFilter, Phase, ReportAnswer, ReportTarget, Save};

use super::Subject;
use super::common::{HOUR, LEASE, at, claim_one, finish, held, save, submit};

/// Five jobs: `w` waiting (2001), `r` recovered (2001), `f` failed (2404), `x` awaiting (2404), and a held one
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
    s.store.save(&old, Save { ledger: &[begin], ..save(Phase::Calling, false, 0) }, at(10)).await.unwrap();
    s.store.save(&old, finish("failed"), at(100)).await.unwrap();
    let recent = held(s, "recent", "r1").await;
    s.store.save(&recent, finish("recovered"), at(200)).await.unwrap();
    let active = submit(s, "active", 0).await;
    s.store.report(ReportTarget::Reference("uuid-old"), "ok", at(50)).await.unwrap();
    s.store.report(ReportTarget::Reference("uuid-new"), "ok", at(HOUR)).await.unwrap();

    assert_eq!(s.store.prune(at(100)).await.unwrap(), 0, "{}: finished at 100 is not before 100", s.name);
    assert_eq!(s.store.prune(at(150)).await.unwrap(), 1, "{}", s.name);
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

pub(super) async fn ended_reads_the_finished_jobs_among_ids(s: &Subject) {
    fleet(s).await;
    let id = |asset: &'static str| async move { s.store.job_of(asset).await.unwrap().unwrap().id };
    let (w, r, f, x, h) = (id("w").await, id("r").await, id("f").await, id("x").await, id("h").await);
    let unknown = lightflow_remedy::store::JobId(999_999);
    let table: [(Vec<_>, &[&str]); 4] = [
        (vec![w, r, f, x, h], &["r", "f"]),
        (vec![h, f, unknown, f, r], &["r", "f"]),
        (vec![w, x, unknown], &[]),
        (vec![], &[]),
    ];
    for (ids, assets) in table {
        let ended = s.store.ended(&ids).await.unwrap();
        let got: Vec<(&str, Option<&str>)> = ended.iter().map(|row| (&*row.asset_id, row.outcome.as_deref())).collect();
        let expected: Vec<(&str, Option<&str>)> =
            assets.iter().map(|&a| (a, Some(if a == "r" { "recovered" } else { "failed" }))).collect();
        assert_eq!(got, expected, "{}: {ids:?}", s.name);
    }
}
