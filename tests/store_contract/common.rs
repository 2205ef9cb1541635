//! What the behaviours share: a fixed clock, jobs and saves of the usual shape, and jobs brought to where a
//! behaviour starts.

use std::time::Duration;

use lightflow_remedy::store::{Claimed, JobId, Lease, NewJob, Phase, Save, Submitted, Timestamp};

use super::Subject;

pub(super) const T: i64 = 1_700_000_000_000;
pub(super) const LEASE: Duration = Duration::from_secs(30);
pub(super) const HOUR: i64 = 3_600_000;

pub(super) fn at(ms: i64) -> Timestamp {
    Timestamp(T + ms)
}

pub(super) fn job(asset: &str, wake: i64) -> NewJob<'_> {
    NewJob::new(asset, r#"{"v":1}"#, 1, "2001", at(wake))
}

/// A save to `phase`: released to rest until `wake` if `release`.
pub(super) fn save(phase: Phase, release: bool, wake: i64) -> Save<'static> {
    Save {
        phase,
        wake_at: at(wake),
        release,
        payload: r#"{"v":2}"#,
        version: 1,
        last_code: "2001",
        attempts: 1,
        attempt: u32::from(matches!(phase, Phase::Awaiting | Phase::Calling)),
        fence_until: Timestamp(0),
        wake_on_report: true,
        reference: None,
        ledger: &[],
        take_report: false,
        outcome: None,
    }
}

pub(super) fn finish(outcome: &'static str) -> Save<'static> {
    Save { outcome: Some(outcome), ..save(Phase::Finished, true, 0) }
}

pub(super) async fn submit(s: &Subject, asset: &str, wake: i64) -> JobId {
    match s.store.submit(job(asset, wake), at(0)).await.unwrap() {
        Submitted::New(id) => id,
        other => panic!("{}: {asset} should be new: {other:?}", s.name),
    }
}

/// Claims the one due job at `now` for `owner`.
pub(super) async fn claim_one(s: &Subject, owner: &str, now: i64) -> Claimed {
    let mut claimed = s.store.claim(owner, at(now), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "{}: one job due at {now}", s.name);
    claimed.remove(0)
}

/// A job submitted and claimed by `owner` at 0.
pub(super) async fn held(s: &Subject, asset: &str, owner: &str) -> Lease {
    let id = submit(s, asset, 0).await;
    let c = claim_one(s, owner, 0).await;
    assert_eq!(c.lease.job, id, "{}", s.name);
    c.lease
}

/// A job submitted, claimed, and put to rest awaiting the result of the attempt with `reference`.
pub(super) async fn awaiting(s: &Subject, asset: &str, reference: &'static str) -> Lease {
    let lease = held(s, asset, "r1").await;
    let to_rest = Save { reference: Some(reference), ..save(Phase::Awaiting, true, 2 * HOUR) };
    s.store.save(&lease, to_rest, at(1)).await.unwrap();
    lease
}
