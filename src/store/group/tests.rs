//! The writer on its own, with a batch that records what it is given: one transaction for writes at once,
//! each with its own answer; failures of one write, of a statement of many, of a commit; the window.

use super::*;
use crate::store::JobId;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A batch that records the sizes of its transactions, loses the lease of job 13, fails a statement of job
/// 66, fails a statement of many writes that holds job 77 (as one statement for all saves does), and fails
/// whole transactions that hold job 99.
#[derive(Default)]
struct Recorder {
    sizes: Mutex<Vec<usize>>,
    runs: AtomicUsize,
}

fn job_of(w: &Write) -> u64 {
    match w {
        Write::Save { lease, .. } => lease.job.0,
        Write::Submit { .. } | Write::Claim { .. } => 0,
    }
}

impl Batch for Recorder {
    fn run<'a>(&'a self, writes: &'a Arc<[Write]>) -> BatchFuture<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            self.sizes.lock().unwrap().push(writes.len());
            let db = |m: &str| StoreError::Database { store: "test".into(), message: m.into() };
            if writes.iter().any(|w| job_of(w) == 99) {
                return Err(Failed::All(db("commit failed")));
            }
            if let Some(i) = writes.iter().position(|w| job_of(w) == 66) {
                return Err(Failed::At(i, db("statement failed")));
            }
            if writes.iter().any(|w| job_of(w) == 77) {
                let e = db("statement of many failed");
                return Err(if writes.len() == 1 { Failed::At(0, e) } else { Failed::Each(e) });
            }
            Ok(writes
                .iter()
                .map(|w| match w {
                    Write::Save { lease, .. } if lease.job.0 == 13 => Err(OwnedSave::lost(lease)),
                    _ => Ok(Written::Saved(Saved::default())),
                })
                .collect())
        })
    }
}

fn save(job: u64) -> Write {
    let save = Save {
        phase: Phase::Waiting,
        wake_at: Timestamp(0),
        release: false,
        payload: "{}",
        version: 1,
        last_code: "2001",
        attempts: 0,
        attempt: 0,
        fence_until: Timestamp(0),
        wake_on_report: true,
        reference: None,
        ledger: &[],
        take_report: false,
        outcome: None,
    };
    Write::Save {
        lease: Lease { job: JobId(job), epoch: 1, owner: "r".into() },
        save: (&save).into(),
        now: Timestamp(0),
    }
}

fn group(window: Duration) -> (Arc<Recorder>, Arc<Group<Recorder>>) {
    let batch = Arc::new(Recorder::default());
    (batch.clone(), Arc::new(Group::new(batch, window, true, "test".into())))
}

/// Writes of the given jobs at once; what each got, as words.
async fn at_once(group: &Arc<Group<Recorder>>, jobs: &[u64]) -> Vec<String> {
    let tasks: Vec<_> = jobs
        .iter()
        .map(|&job| {
            let group = group.clone();
            tokio::spawn(async move { group.write(save(job)).await })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(match task.await.unwrap() {
            Ok(_) => "ok".to_string(),
            Err(StoreError::LeaseLost { job, .. }) => format!("lost {job}"),
            Err(e) => e.to_string(),
        });
    }
    got
}

#[tokio::test]
async fn writes_at_once_are_one_transaction_each_with_its_own_answer() {
    let cases: &[(&[u64], &[&str], usize)] = &[
        // (jobs written at once, what each gets, transactions run)
        (&[1, 2, 3, 4], &["ok", "ok", "ok", "ok"], 1),
        (&[1, 13, 3], &["ok", "lost 13", "ok"], 1),
        (&[1, 66, 3], &["ok", "test: statement failed", "ok"], 2),
        (&[1, 77, 3], &["ok", "test: statement of many failed", "ok"], 4),
        (&[1, 99, 3], &["test: commit failed", "test: commit failed", "test: commit failed"], 1),
    ];
    for (jobs, expected, runs) in cases {
        let (batch, group) = group(Duration::from_millis(50));
        assert_eq!(at_once(&group, jobs).await, *expected, "jobs {jobs:?}");
        assert_eq!(batch.runs.load(Ordering::SeqCst), *runs, "jobs {jobs:?}");
        // The writer is still there after a failure.
        assert_eq!(at_once(&group, &[5]).await, ["ok"]);
    }
}

#[tokio::test]
async fn a_lone_write_is_not_held_for_the_window() {
    let window = Duration::from_millis(300);
    let (batch, group) = group(window);
    // The previous batch was large: the writer expects company, and waits for it no longer than the window.
    at_once(&group, &(1..=8).collect::<Vec<_>>()).await;
    let start = Instant::now();
    at_once(&group, &[1]).await;
    assert!(start.elapsed() < window + Duration::from_millis(200), "a lone write waited {:?}", start.elapsed());
    // Alone again, it no longer waits at all.
    let start = Instant::now();
    at_once(&group, &[1]).await;
    assert!(start.elapsed() < Duration::from_millis(100), "a lone write waited {:?}", start.elapsed());
    assert_eq!(*batch.sizes.lock().unwrap(), [8, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn the_window_is_waited_at_most_under_paused_time() {
    let (_, group) = group(Duration::from_millis(5));
    at_once(&group, &(1..=8).collect::<Vec<_>>()).await;
    let start = tokio::time::Instant::now();
    at_once(&group, &[1]).await;
    assert!(start.elapsed() <= Duration::from_millis(5), "waited {:?}", start.elapsed());
}
