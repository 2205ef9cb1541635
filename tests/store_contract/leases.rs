//! Jobs and their leases: submits and joins, claims (one owner each, earliest first, up to the limit),
//! takeover of an expired lease and the fencing of its old holder, the ledger, release and hold.

use std::collections::BTreeSet;
use std::time::Duration;

use lightflow_remedy::store::{JobId, Lease, LedgerWrite, Phase, Save, StoreError, Submitted};

use super::Subject;
use super::common::{HOUR, LEASE, at, claim_one, finish, held, job, save, submit};

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

pub(super) async fn a_job_submitted_and_claimed_at_once_is_held_as_a_claim_leaves_it(s: &Subject) {
    let (submitted, claimed) = s.store.submit_and_claim(job("a1", 0), "r1", LEASE, at(0)).await.unwrap();
    let c = claimed.unwrap_or_else(|| panic!("{}: held at once", s.name));
    assert_eq!(submitted, Submitted::New(c.lease.job), "{}", s.name);
    assert_eq!((c.lease.epoch, &*c.lease.owner, c.taken_over), (1, "r1", false), "{}", s.name);
    let row = s.store.job(c.lease.job).await.unwrap().unwrap();
    assert_eq!(row, c.row, "{}: the row as it was written", s.name);
    assert_eq!(
        (row.phase, row.wake_at, row.lease_owner.as_deref(), row.epoch, row.payload.as_str(), row.attempts),
        (Phase::Waiting, at(0).after(LEASE), Some("r1"), 1, r#"{"v":1}"#, 0),
        "{}: held until the lease expires",
        s.name
    );
    assert!(s.store.claim("r2", at(10_000), LEASE, 10).await.unwrap().is_empty(), "{}: held", s.name);

    // Another report of the asset joins it and claims nothing; a job due later is only submitted.
    let (joined, none) = s.store.submit_and_claim(job("a1", 0), "r2", LEASE, at(1)).await.unwrap();
    assert_eq!((joined, none), (Submitted::Joined(c.lease.job), None), "{}", s.name);
    let (later, none) = s.store.submit_and_claim(job("a2", 5_000), "r1", LEASE, at(1)).await.unwrap();
    assert!(matches!(later, Submitted::New(_)) && none.is_none(), "{}", s.name);

    // Its lease fences and is renewed like a claimed one's, and it is taken over once it expires.
    s.store.save(&c.lease, save(Phase::Calling, false, 0), at(2)).await.unwrap();
    assert!(s.store.renew(std::slice::from_ref(&c.lease), at(20_000), LEASE).await.unwrap().lost.is_empty());
    let taken = s.store.claim("r2", at(50_000), LEASE, 10).await.unwrap();
    let ids: Vec<_> = taken.iter().map(|t| (t.lease.job, t.lease.epoch, t.taken_over)).collect();
    assert!(ids.contains(&(c.lease.job, 2, true)), "{}: {ids:?}", s.name);
    assert!(matches!(
        s.store.save(&c.lease, save(Phase::Waiting, true, 0), at(50_001)).await,
        Err(StoreError::LeaseLost { .. })
    ));
}

/// What one submit of a batch made at once asks: the asset, its dedupe key, whether held at once (and due now).
struct AtOnce {
    asset: &'static str,
    key: Option<&'static str>,
    held: bool,
    wake: i64,
}

/// Submits made at once (which a store may write in one transaction, or one statement, or on connections side
/// by side) answer as if they had been made one after the other, in some order: of those that name one asset or
/// one dedupe key, one is new and the others join it or are deduplicated; a held one comes back claimed when it
/// is new and due now; a job already active is joined; the ones not held are at rest, due when asked.
pub(super) async fn submits_made_at_once_answer_as_one_after_the_other(s: &Subject) {
    use futures_util::future::join_all;
    let active = submit(s, "old", 0).await;
    let a = |asset, key, held, wake| AtOnce { asset, key, held, wake };
    let batch = [
        a("a1", None, false, 0),
        a("a1", None, true, 0),
        a("a2", None, true, 0),
        a("a2", None, false, 0),
        a("a3", Some("k3"), false, 0),
        a("a4", Some("k3"), true, 0),
        a("a5", Some("k5"), true, 5_000),
        a("old", None, true, 0),
        a("a6", None, false, 5_000),
        a("a6", Some("k6"), false, 0),
    ];
    let made = join_all(batch.iter().map(|b| {
        let mut new = job(b.asset, b.wake);
        new.dedupe_key = b.key;
        let store = s.store.clone();
        async move {
            if b.held {
                store.submit_and_claim(new, "r1", LEASE, at(0)).await.unwrap()
            } else {
                (store.submit(new, at(0)).await.unwrap(), None)
            }
        }
    }))
    .await;
    // Each group of submits that meet (one asset, or one dedupe key), and how the others of it are answered.
    type Other = fn(JobId) -> Submitted;
    let groups: [(&[usize], Other); 4] = [
        (&[0, 1], Submitted::Joined),
        (&[2, 3], Submitted::Joined),
        (&[4, 5], Submitted::Deduplicated),
        (&[8, 9], Submitted::Joined),
    ];
    let mut new = vec![6];
    for (group, other) in groups {
        let first: Vec<usize> = group.iter().copied().filter(|&i| matches!(made[i].0, Submitted::New(_))).collect();
        assert_eq!(first.len(), 1, "{}: one new job of {group:?}: {made:?}", s.name);
        let Submitted::New(id) = made[first[0]].0 else { unreachable!() };
        for &i in group.iter().filter(|&&i| i != first[0]) {
            assert_eq!((made[i].0, made[i].1.is_some()), (other(id), false), "{}: submit {i}", s.name);
        }
        new.push(first[0]);
    }
    assert!(matches!(made[6].0, Submitted::New(_)) && made[6].1.is_none(), "{}: due later, not held", s.name);
    assert_eq!((made[7].0, made[7].1.is_some()), (Submitted::Joined(active), false), "{}", s.name);
    let mut at_rest = BTreeSet::from([active]);
    for &i in &new {
        let Submitted::New(id) = made[i].0 else { unreachable!() };
        let row = s.store.job(id).await.unwrap().unwrap();
        assert_eq!((row.asset_id.as_str(), row.dedupe_key.as_deref()), (batch[i].asset, batch[i].key), "{}", s.name);
        let held_now = batch[i].held && batch[i].wake == 0;
        match &made[i].1 {
            Some(c) => {
                assert!(held_now, "{}: submit {i} claimed", s.name);
                assert_eq!((c.lease.job, c.lease.epoch, &*c.lease.owner), (id, 1, "r1"), "{}: submit {i}", s.name);
                assert_eq!(row, c.row, "{}: submit {i}", s.name);
            }
            None => {
                assert!(!held_now, "{}: submit {i} new and due now, but not held", s.name);
                if batch[i].wake == 0 {
                    at_rest.insert(id);
                }
            }
        }
    }
    let due: BTreeSet<JobId> =
        s.store.claim("r2", at(0), LEASE, 20).await.unwrap().iter().map(|c| c.lease.job).collect();
    assert_eq!(due, at_rest, "{}", s.name);
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
            let calling = Save { ledger: &[ledger], ..save(Phase::Calling, false, 0) };
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
    s.store.save(&next.lease, Save { ledger: &[end], ..finish("recovered") }, at(31_000)).await.unwrap();
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

/// Many holders save at once, as the jobs of one replica do (the durable stores commit them together): each
/// gets its own answer, a lost lease fails its own save alone and writes none of its ledger, and what the
/// others wrote (their ledgers, a held report taken, a call begun and answered in one save) is all there.
pub(super) async fn saves_at_once_each_get_their_own_answer(s: &Subject) {
    use futures_util::future::join_all;
    use lightflow_remedy::store::{ReportAnswer, ReportTarget};

    let assets = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut leases = Vec::new();
    for asset in assets {
        submit(s, asset, 0).await;
    }
    for c in s.store.claim("r1", at(0), LEASE, 100).await.unwrap() {
        leases.push(c.lease);
    }
    assert_eq!(leases.len(), assets.len(), "{}", s.name);
    assert_eq!(s.store.report(ReportTarget::Reference("uuid-c"), "done", at(1)).await.unwrap(), ReportAnswer::Held);
    // `b` saves under a lease it no longer has (another claim's epoch).
    let stale = Lease { epoch: leases[1].epoch + 1, ..leases[1].clone() };
    let keys: Vec<String> = assets.iter().map(|a| format!("{a}#1")).collect();
    let begin: Vec<[LedgerWrite<'_>; 1]> =
        keys.iter().map(|key| [LedgerWrite::Begin { key, hook: "resubmit" }]).collect();
    let begun_and_answered =
        [LedgerWrite::Begin { key: &keys[3], hook: "notify" }, LedgerWrite::End { key: &keys[3], answer: "ok" }];
    let saves: Vec<(Lease, Save<'_>)> = leases
        .iter()
        .enumerate()
        .map(|(i, lease)| {
            let calling = Save { ledger: &begin[i], ..save(Phase::Calling, false, 0) };
            match assets[i] {
                "b" => (stale.clone(), calling),
                "c" => (lease.clone(), Save { reference: Some("uuid-c"), ..save(Phase::Awaiting, true, HOUR) }),
                "d" => (lease.clone(), Save { ledger: &begun_and_answered, ..calling }),
                "e" => (lease.clone(), finish("recovered")),
                _ => (lease.clone(), calling),
            }
        })
        .collect();
    let answers = join_all(saves.iter().map(|(lease, save)| s.store.save(lease, *save, at(2)))).await;
    for (i, answer) in answers.iter().enumerate() {
        match (assets[i], answer) {
            ("b", Err(StoreError::LeaseLost { job, .. })) => assert_eq!(*job, leases[1].job.0, "{}", s.name),
            ("c", Ok(saved)) => assert_eq!(saved.report.as_deref(), Some("done"), "{}: the held report", s.name),
            (_, Ok(saved)) if assets[i] != "b" => assert_eq!(saved.report, None, "{}: {}", s.name, assets[i]),
            (asset, other) => panic!("{}: {asset}: {other:?}", s.name),
        }
    }
    for (i, lease) in leases.iter().enumerate() {
        let row = s.store.job(lease.job).await.unwrap().unwrap();
        let calls = s.store.calls(lease.job).await.unwrap();
        let ledger: Vec<(&str, Option<&str>)> = calls.iter().map(|c| (&*c.hook, c.answer.as_deref())).collect();
        let expected: (Phase, &[(&str, Option<&str>)]) = match assets[i] {
            "b" => (Phase::Waiting, &[]),
            "c" => (Phase::Awaiting, &[]),
            "d" => (Phase::Calling, &[("notify", Some("ok"))]),
            "e" => (Phase::Finished, &[]),
            _ => (Phase::Calling, &[("resubmit", None)]),
        };
        assert_eq!((row.phase, ledger.as_slice()), expected, "{}: {}", s.name, assets[i]);
    }
    // The held report was taken by `c`, and the reference is `c`'s: a report for it now finds the job.
    let stats = s.store.stats(at(3)).await.unwrap();
    assert_eq!(stats.held_reports, 0, "{}", s.name);
    let answer = s.store.report(ReportTarget::Reference("uuid-c"), "again", at(3)).await.unwrap();
    assert!(!matches!(answer, ReportAnswer::Held | ReportAnswer::Unknown), "{}: {answer:?}", s.name);
}
