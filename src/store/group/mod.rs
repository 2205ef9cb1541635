//! Group commit, shared by the SQLite and PostgreSQL stores: the writes of many jobs of one replica (saves; on
//! SQLite submits and claims too) are queued for one writer task, which commits what is queued in one transaction and answers each
//! caller with its own result.
//!
//! What each caller is promised is unchanged: its future resolves only once its write is committed (or failed);
//! a fenced write whose lease is lost answers [`StoreError::LeaseLost`] to its caller alone, the others commit;
//! a statement that fails fails its own write (the others are run again without it); a commit that fails fails
//! every write of the batch, with the error.
//!
//! How long the writer waits for company: it takes whatever is queued; then it lets the tasks that are ready
//! run once (they may be about to write); then, while the batch is smaller than the previous one (company is
//! expected) and the window ([`StoreOptions::group_commit_window`](super::StoreOptions::group_commit_window))
//! has not run out, it waits for more, unless a claim or a submit is among them (its claimer, or the host that
//! hands a job over, waits for it; hand-overs made at once are queued together anyway). A lone write waits at
//! most the window, usually a yield.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Claimed, Lease, LedgerWrite, NewJob, Phase, Save, Saved, StoreError, Submitted, Timestamp};

/// The most writes one transaction takes.
pub(crate) const MAX_BATCH: usize = 256;

/// A write queued for the writer, owned: it outlives the caller's borrow while it waits.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// [`Store::save`](super::Store::save).
    Save { lease: Lease, save: OwnedSave, now: Timestamp },
    /// [`Store::submit`](super::Store::submit), or with `claim` [`Store::submit_and_claim`](super::Store::submit_and_claim).
    Submit { new: OwnedNewJob, claim: Option<(Arc<str>, Duration)>, now: Timestamp },
    /// [`Store::claim`](super::Store::claim) (SQLite's: its claims go with the saves).
    Claim { owner: Arc<str>, now: Timestamp, lease: Duration, limit: usize },
}

/// What a write did.
#[derive(Debug)]
pub(crate) enum Written {
    Saved(Saved),
    /// Boxed: a claimed row is large, and saves are most writes.
    Submitted(Submitted, Option<Box<Claimed>>),
    Claimed(Vec<Claimed>),
}

/// A [`Save`] that owns its strings.
#[derive(Debug, Clone)]
pub(crate) struct OwnedSave {
    pub(crate) phase: Phase,
    pub(crate) wake_at: Timestamp,
    pub(crate) release: bool,
    pub(crate) payload: Box<str>,
    pub(crate) version: u32,
    pub(crate) last_code: Box<str>,
    pub(crate) attempts: u32,
    pub(crate) attempt: u32,
    pub(crate) fence_until: Timestamp,
    pub(crate) wake_on_report: bool,
    pub(crate) reference: Option<Box<str>>,
    pub(crate) ledger: Vec<OwnedLedger>,
    pub(crate) take_report: bool,
    pub(crate) outcome: Option<Box<str>>,
}

/// A [`LedgerWrite`] that owns its strings.
#[derive(Debug, Clone)]
pub(crate) enum OwnedLedger {
    Begin { key: Box<str>, hook: Box<str> },
    End { key: Box<str>, answer: Box<str> },
}

impl From<&Save<'_>> for OwnedSave {
    fn from(s: &Save<'_>) -> Self {
        OwnedSave {
            phase: s.phase,
            wake_at: s.wake_at,
            release: s.release,
            payload: s.payload.into(),
            version: s.version,
            last_code: s.last_code.into(),
            attempts: s.attempts,
            attempt: s.attempt,
            fence_until: s.fence_until,
            wake_on_report: s.wake_on_report,
            reference: s.reference.map(Into::into),
            ledger: s
                .ledger
                .iter()
                .map(|entry| match *entry {
                    LedgerWrite::Begin { key, hook } => OwnedLedger::Begin { key: key.into(), hook: hook.into() },
                    LedgerWrite::End { key, answer } => OwnedLedger::End { key: key.into(), answer: answer.into() },
                })
                .collect(),
            take_report: s.take_report,
            outcome: s.outcome.map(Into::into),
        }
    }
}

impl OwnedSave {
    /// The reference this save names for a job that goes to await its result: a report held for it is taken.
    pub(crate) fn awaiting(&self) -> Option<&str> {
        match (self.phase, &self.reference) {
            (Phase::Awaiting, Some(reference)) => Some(reference),
            _ => None,
        }
    }

    /// The error of a save whose lease is lost.
    pub(crate) fn lost(lease: &Lease) -> StoreError {
        StoreError::LeaseLost { job: lease.job.0, epoch: lease.epoch }
    }
}

/// A [`NewJob`] that owns its strings.
#[derive(Debug, Clone)]
pub(crate) struct OwnedNewJob {
    pub(crate) asset_id: Box<str>,
    pub(crate) payload: Box<str>,
    pub(crate) version: u32,
    pub(crate) last_code: Box<str>,
    pub(crate) wake_at: Timestamp,
    pub(crate) dedupe_key: Option<Box<str>>,
}

impl From<&NewJob<'_>> for OwnedNewJob {
    fn from(n: &NewJob<'_>) -> Self {
        OwnedNewJob {
            asset_id: n.asset_id.into(),
            payload: n.payload.into(),
            version: n.version,
            last_code: n.last_code.into(),
            wake_at: n.wake_at,
            dedupe_key: n.dedupe_key.map(Into::into),
        }
    }
}

#[cfg(feature = "postgres")]
impl OwnedNewJob {
    /// As the submit that queued it had it (PostgreSQL submits alone what its statement of many did not insert).
    pub(crate) fn borrowed(&self) -> super::NewJob<'_> {
        super::NewJob {
            asset_id: &self.asset_id,
            payload: &self.payload,
            version: self.version,
            last_code: &self.last_code,
            wake_at: self.wake_at,
            dedupe_key: self.dedupe_key.as_deref(),
        }
    }
}

/// Why a batch did not commit.
#[derive(Debug)]
pub(crate) enum Failed {
    /// A statement of the write at this index failed: it fails with `error`; the others run again without it.
    At(usize, StoreError),
    /// A statement of many writes failed: each runs again alone, to fail only the one it was about.
    #[cfg_attr(
        not(any(test, feature = "postgres")),
        allow(dead_code, reason = "PostgreSQL's statements of many writes")
    )]
    Each(StoreError),
    /// The transaction failed as a whole (begin, commit, the connection): every write of the batch fails.
    All(StoreError),
}

/// A boxed future of the writer.
pub(crate) type BatchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Result<Written, StoreError>>, Failed>> + Send + 'a>>;

/// A store's side of group commit: runs writes in one transaction.
pub(crate) trait Batch: Send + Sync + 'static {
    /// Whether submits go in batches of their own, ahead of the other writes queued with them (PostgreSQL's are
    /// a statement that commits by itself).
    const SUBMITS_APART: bool = false;

    /// Runs `writes` in one transaction and commits it: each write's own result (a lost lease is an `Err` of its
    /// own, in place, and does not stop the others), in order; or why nothing was committed. Shared, so that a
    /// store may hand them to a thread of its own without copying them.
    fn run<'a>(&'a self, writes: &'a Arc<[Write]>) -> BatchFuture<'a>;
}

type Pending = (Write, oneshot::Sender<Result<Written, StoreError>>);

/// The queue of a store's writes and its writer task (started by the first write, and again by the first write
/// after its runtime ended).
pub(crate) struct Group<B: Batch> {
    batch: Arc<B>,
    queue: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
    window: Duration,
    /// Whether the writer may wait on tokio's clock: not when it is held still (`hold_time`), where a timer could
    /// not run out while the callers wait.
    timed: bool,
    name: String,
}

impl<B: Batch> std::fmt::Debug for Group<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("window", &self.window).finish_non_exhaustive()
    }
}

impl<B: Batch> Group<B> {
    pub(crate) fn new(batch: Arc<B>, window: Duration, timed: bool, name: String) -> Self {
        Group { batch, queue: Mutex::new(None), window, timed, name }
    }

    /// Queues `write` and waits until its batch is committed.
    pub(crate) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.sender().send((write, answer)).map_err(|_| self.stopped())?;
        answered.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> StoreError {
        StoreError::Database {
            store: self.name.clone(),
            message: "the store's writer stopped (its runtime ended)".into(),
        }
    }

    fn sender(&self) -> mpsc::UnboundedSender<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = queue.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(rx, self.batch.clone(), self.window, self.timed));
        *queue = Some(tx.clone());
        tx
    }
}

/// The writer: takes a batch from the queue, runs it, answers its callers, until the store is dropped.
async fn writer<B: Batch>(mut rx: mpsc::UnboundedReceiver<Pending>, batch: Arc<B>, window: Duration, timed: bool) {
    let mut last = 1;
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        gather(&mut rx, &mut pending, window, timed, last).await;
        last = pending.len();
        run(&*batch, pending).await;
    }
}

/// Adds to `pending` what comes within the window (see the [module](self)).
async fn gather(
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    pending: &mut Vec<Pending>,
    window: Duration,
    timed: bool,
    expected: usize,
) {
    let deadline = Instant::now() + window;
    let drain = |rx: &mut mpsc::UnboundedReceiver<Pending>, pending: &mut Vec<Pending>| {
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
    };
    drain(rx, pending);
    if window.is_zero() || pending.len() >= MAX_BATCH {
        return;
    }
    // Tasks that are ready may be about to write: one turn for them costs no time.
    tokio::task::yield_now().await;
    drain(rx, pending);
    // A claim is not held for company: its claimer waits for it to bring the next round's work; nor a submit:
    // a host waits for it, and hand-overs made at once are in the queue already.
    if !timed || pending.iter().any(|(w, _)| matches!(w, Write::Claim { .. } | Write::Submit { .. })) {
        return;
    }
    while pending.len() < expected.min(MAX_BATCH) {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { return };
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(p)) => {
                let waited_for = matches!(p.0, Write::Claim { .. } | Write::Submit { .. });
                pending.push(p);
                drain(rx, pending);
                if waited_for {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Runs `pending` until each has its answer, submits first on their own if the store wants them apart.
async fn run<B: Batch>(batch: &B, pending: Vec<Pending>) {
    if B::SUBMITS_APART {
        let (submits, others): (Vec<Pending>, Vec<Pending>) =
            pending.into_iter().partition(|(write, _)| matches!(write, Write::Submit { .. }));
        run_all(batch, submits).await;
        run_all(batch, others).await;
    } else {
        run_all(batch, pending).await;
    }
}

/// Runs `pending` until each has its answer: a write whose statement failed is answered and the rest run again.
async fn run_all<B: Batch>(batch: &B, mut pending: Vec<Pending>) {
    // Callers that gave up (their future was dropped) are still written: a save may have been half-way
    // through its caller's step, and the lease fences whatever follows.
    while !pending.is_empty() {
        let (writes, answers): (Vec<Write>, Vec<_>) = pending.drain(..).unzip();
        let writes: Arc<[Write]> = writes.into();
        match batch.run(&writes).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(Failed::All(e)) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
            Err(Failed::Each(e)) if answers.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(e));
                }
            }
            Err(Failed::Each(_)) => {
                // Copied only here, where a batch failed and its writes go again.
                for pending in writes.iter().cloned().zip(answers) {
                    Box::pin(run_all(batch, vec![pending])).await;
                }
            }
            Err(Failed::At(i, e)) => {
                let mut rest: Vec<Pending> = writes.iter().cloned().zip(answers).collect();
                let (_, answer) = rest.remove(i);
                let _ = answer.send(Err(e));
                pending = rest;
            }
        }
    }
}

#[cfg(test)]
mod tests;
