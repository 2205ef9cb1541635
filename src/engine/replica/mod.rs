//! The replica's machinery: what a remediator keeps of its store (the store, its clock, this replica's name and
//! settings, the jobs it holds, the handles that wait for jobs' outcomes) and the tasks that work with them:
//! the [`claimer`] takes due jobs, each [`held`] job's task works on it until it rests or ends, the
//! [`heartbeat`] renews their leases, the [`pruner`] deletes finished jobs. Jobs at rest are rows: a replica
//! holds in memory only the jobs it is working on. The writes around hook calls are the walk's
//! ([`ledger`](crate::engine::walk::ledger)).

pub(crate) mod claimer;
pub(crate) mod heartbeat;
pub(crate) mod held;
pub(crate) mod pruner;
pub(crate) mod record;
pub(crate) mod registry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use self::record::Record;
use crate::engine::guards::fleet::Fleet;
use crate::engine::outcome::{Outcome, SuspendedJob};
use crate::engine::walk::cell::{JobCell, LOST};
use futures_util::FutureExt;

use crate::store::{
    Clock, JobId, JobRow, Lease, ListFilter, MemoryStore, Phase, Store, StoreError, Timestamp, TokioClock,
};

/// How a remediator works with its durable store.
///
/// ```
/// use lightflow_remedy::engine::StoreSettings;
/// use std::time::Duration;
/// let settings = StoreSettings { max_active_jobs: 512, ..StoreSettings::default() };
/// assert_eq!(settings.lease, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// How long a claim holds a job without a heartbeat; the heartbeat renews it every third of this.
    /// Default 30 s.
    pub lease: Duration,
    /// The most jobs this replica holds at once. Default 256.
    pub max_active_jobs: usize,
    /// The most jobs one claim takes. Default 64. A replica that holds nearly all it may takes more work
    /// (claims, and the jobs it submits itself) only once it has room for a batch again, or after a poll
    /// interval: one claim per job that ends would cost the store a write each. The room it waits for is a
    /// batch, or a quarter of `max_active_jobs` if that is less.
    pub claim_batch: usize,
    /// A job whose next step is due within this stays held and waits in its task, rather than being written to
    /// rest and claimed back (two writes and a claim saved for a short retry delay); a longer delay rests in
    /// the store. Default 1 s.
    pub hold_within: Duration,
    /// How often the claimer looks for due jobs when nothing tells it sooner. Default 1 s.
    pub poll_every: Duration,
    /// How long finished jobs are kept before they are pruned. Default 7 days.
    pub retention: Duration,
    /// This replica's name in leases; default a random one.
    pub owner: Option<String>,
    /// Whether the retry budget and the circuit breakers are one for every replica on the store (their state
    /// in the store's guard rows, brought in before each stored step and written after it), rather than each
    /// replica's own. Default on. See "Shared fleet guards" in docs/stores.md for what it costs.
    pub shared_guards: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            lease: Duration::from_secs(30),
            max_active_jobs: 256,
            claim_batch: 64,
            hold_within: Duration::from_secs(1),
            poll_every: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            owner: None,
            shared_guards: true,
        }
    }
}

/// What a remediator on a durable store shares.
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn Store>,
    /// The remediator's own store, when it was built without one: no other replica can reach it, so
    /// `shutdown` hands its unfinished jobs back.
    pub(crate) private: Option<Arc<MemoryStore>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) owner: Arc<str>,
    pub(crate) settings: StoreSettings,
    /// The fleet guards' sync, when they are shared.
    pub(crate) fleet: Option<Fleet>,
    /// A hint to the claimer: something may be due now.
    pub(crate) wake: Arc<Notify>,
    /// The jobs this replica holds.
    pub(crate) held: Mutex<HashMap<JobId, HeldJob>>,
    /// Handles waiting for jobs' outcomes.
    pub(crate) watchers: Mutex<HashMap<JobId, Vec<Weak<JobCell>>>>,
    /// The claimer, heartbeat and pruner.
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
    pub(crate) started: AtomicBool,
    pub(crate) stopping: AtomicBool,
    /// Where the next look for handles' jobs ended elsewhere starts, and when the last look was (store clock).
    looked: AtomicUsize,
    told_at: AtomicI64,
    /// When the claimer next looks for due jobs by itself, in milliseconds on the store's clock; `i64::MIN`
    /// while it looks (it then reads `let_go_due`).
    pub(crate) looks_at: AtomicI64,
    /// The earliest due time of the jobs let go since the claimer began to look (`i64::MAX`: none).
    pub(crate) let_go_due: AtomicI64,
    /// The claimer waits for room for a batch.
    pub(crate) wants_room: AtomicBool,
    /// Jobs being handed over here that will be held once their write returns (`enqueue`): counted in the
    /// room, so that hand-overs at once cannot take more than `max_active_jobs`.
    reserved: AtomicUsize,
    /// What the store's latest answers said, for [`Remediator::health`](super::Remediator::health).
    pub(crate) health: StoreHealth,
}

/// What the claimer and the heartbeat last heard from the store.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    /// When the store last took a write (a claim, a renewal, a save), on the store's clock (`i64::MIN`: never).
    pub(crate) last_write: AtomicI64,
    /// Writes that failed since the last that did not.
    pub(crate) failures: AtomicU32,
    /// The latest failure.
    pub(crate) error: Mutex<Option<String>>,
}

impl StoreHealth {
    fn new() -> Self {
        StoreHealth { last_write: AtomicI64::new(i64::MIN), ..StoreHealth::default() }
    }

    /// Notes a write's result: a lost lease is an answer of a working store.
    pub(crate) fn note<T>(&self, result: &Result<T, StoreError>, now: Timestamp) {
        match result {
            Ok(_) | Err(StoreError::LeaseLost { .. }) => {
                self.last_write.fetch_max(now.0, Ordering::SeqCst);
                self.failures.store(0, Ordering::SeqCst);
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
    }
}

pub(crate) struct HeldJob {
    pub(crate) lease: Lease,
    pub(crate) cell: Arc<JobCell>,
    pub(crate) task: Option<AbortHandle>,
    /// When the lease runs out at the latest, on this machine's monotonic clock: counted from before the
    /// write that took or last renewed it. The heartbeat stops the job before then if it cannot renew.
    pub(crate) expires: Instant,
}

/// A place kept for a job being handed over to this replica; given back when dropped.
pub(crate) struct Reservation<'a>(&'a Durable);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0.reserved.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a job's task keeps for its store while it holds the job.
pub(crate) struct Stored {
    pub(crate) lease: Lease,
    pub(crate) first_failure_at: Timestamp,
    /// The key of a side-effecting call an earlier holder started and never saw answered: reconciled before
    /// it is repeated.
    pub(crate) unanswered: Option<String>,
    /// The last call's answer, written with the next write.
    pub(crate) answered: Option<(String, String)>,
    /// Whether the row's report is cleared with the next write: this task took it, or it is of an attempt that
    /// has settled otherwise (its call answered at once, or `check` answered first).
    pub(crate) clear_report: bool,
    /// Whether the job was claimed while it awaited a submitted attempt's result: its report is on the row,
    /// or the time to `check` has come.
    pub(crate) woke_awaiting: bool,
}

/// What the ledger key of an attempt's credential fix adds to the attempt's key: the fix is part of the attempt.
pub(crate) const FIX_SUFFIX: &str = "/fix";

impl Stored {
    /// Whether the call an earlier holder left unanswered was one of the attempt with key `key`: its
    /// resubmission or re-publication, or the credential fix before it. Forgotten either way: the attempt about
    /// to be made reconciles it, or it was a call of another step.
    pub(crate) fn take_unanswered(&mut self, key: &str) -> bool {
        self.unanswered
            .take()
            .is_some_and(|u| u.strip_prefix(key).is_some_and(|rest| rest.is_empty() || rest == FIX_SUFFIX))
    }
}

impl MemoryStore {
    /// Every job not finished, oldest first: what a remediator's own store hands back at its shutdown. (The
    /// memory store answers without waiting.)
    pub(crate) fn active_rows(&self) -> Vec<JobRow> {
        let every = ListFilter { limit: Some(usize::MAX), ..ListFilter::default() };
        let mut rows = self.list(&every).now_or_never().and_then(Result::ok).unwrap_or_default();
        rows.retain(|row| row.phase != Phase::Finished);
        rows.reverse();
        rows
    }
}

impl Durable {
    /// A store of the remediator's own, in memory, on tokio's clock (so that paused time moves its due times),
    /// with the fleet guards kept here: no other replica shares them.
    pub(crate) fn private() -> Self {
        let store = Arc::new(MemoryStore::new().numbered_after(crate::engine::job::first_job_id()));
        let clock = Arc::new(TokioClock::starting_at(Timestamp::from(std::time::SystemTime::now())));
        // No other replica, and nothing outlives the process: every job may be held here, and waits its delays
        // in its task (a rest would only write it and claim it back); a shutdown writes it back. No replica can
        // take a job over either: a lease of a day is renewed three times a day, not a fleet's worth of leases
        // every ten seconds.
        let settings = StoreSettings {
            lease: Duration::from_secs(24 * 3600),
            shared_guards: false,
            max_active_jobs: 1 << 20,
            claim_batch: 1024,
            hold_within: Duration::MAX,
            ..StoreSettings::default()
        };
        let mut durable = Durable::new(store.clone(), clock, settings);
        durable.private = Some(store);
        durable
    }

    pub(crate) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: StoreSettings) -> Self {
        let owner =
            settings.owner.clone().unwrap_or_else(|| format!("replica-{:016x}", crate::engine::job::first_job_id()));
        Durable {
            store,
            private: None,
            clock,
            owner: Arc::from(owner),
            fleet: settings.shared_guards.then(Fleet::default),
            settings,
            wake: Arc::new(Notify::new()),
            held: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            looked: AtomicUsize::new(0),
            told_at: AtomicI64::new(i64::MIN),
            stopping: AtomicBool::new(false),
            looks_at: AtomicI64::new(i64::MIN),
            let_go_due: AtomicI64::new(i64::MAX),
            wants_room: AtomicBool::new(false),
            reserved: AtomicUsize::new(0),
            health: StoreHealth::new(),
        }
    }

    /// How much of its lease a job must have left to begin a side-effecting call (a third of the lease): the
    /// store refuses the write that begins it otherwise, so that no call starts under a lease about to run
    /// out.
    pub(crate) fn call_margin(&self) -> Duration {
        self.settings.lease / 3
    }

    /// How long before its lease runs out (on this machine's count) a job that could not be renewed is
    /// stopped: a sixth of the lease.
    pub(crate) fn stop_margin(&self) -> Duration {
        self.settings.lease / 6
    }

    /// Keeps a place for a job about to be handed over here, if there is room for it.
    pub(crate) fn reserve(&self) -> Option<Reservation<'_>> {
        self.reserved.fetch_add(1, Ordering::SeqCst);
        let reservation = Reservation(self);
        // Counted with this one: another hand-over at once sees it too.
        (self.held().len() + self.reserved.load(Ordering::SeqCst) <= self.settings.max_active_jobs.max(1))
            .then_some(reservation)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn held(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, HeldJob>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<Weak<JobCell>>>> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle's cell for job `id`: given the outcome when it ends.
    pub(crate) fn watch(&self, id: JobId) -> Arc<JobCell> {
        let cell = Arc::new(JobCell::default());
        self.watchers().entry(id).or_default().push(Arc::downgrade(&cell));
        cell
    }

    /// Handles of jobs this replica does not hold, whose job may have ended elsewhere (at another replica, or
    /// cancelled at rest by `remedy jobs cancel`): their outcomes are read from the store in one read of up to 512 jobs,
    /// in turn, so that every handle resolves wherever its job ends.
    ///
    /// Not on the remediator's own store, where every job ends here (a cancellation at rest is told as it is
    /// made); elsewhere at most once a poll interval, as the handles' count can be a fleet's.
    pub(crate) async fn tell_ended_elsewhere(&self) {
        const PER_ROUND: usize = 512;
        let now = self.now();
        let due = Timestamp(self.told_at.load(Ordering::SeqCst)).after(self.settings.poll_every);
        if self.private.is_some() || now < due {
            return;
        }
        self.told_at.store(now.0, Ordering::SeqCst);
        let held: Vec<JobId> = self.held().keys().copied().collect();
        let mut ids: Vec<JobId> = {
            let mut watchers = self.watchers();
            watchers.retain(|_, cells| {
                cells.retain(|c| c.strong_count() > 0);
                !cells.is_empty()
            });
            watchers.keys().filter(|id| !held.contains(id)).copied().collect()
        };
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        let from = self.looked.fetch_add(PER_ROUND, Ordering::Relaxed) % ids.len();
        ids.rotate_left(from);
        ids.truncate(PER_ROUND);
        // The finished ones among them, in one read.
        let Ok(ended) = self.store.ended(&ids).await else { return };
        for row in ended {
            let id = row.id;
            match Record::decode(&row) {
                Ok(Record { outcome: Some(outcome), .. }) => self.tell(id, &outcome),
                // Cancelled at rest by the store itself: the payload is as the job was left.
                _ if row.outcome.as_deref() == Some("cancelled") => {
                    self.tell(id, &Outcome::Cancelled { attempts: row.attempts });
                }
                _ => {}
            }
        }
    }

    /// At the end of a shutdown: every handle of a job that did not end is given [`Outcome::Suspended`], with
    /// the job as it was left; the remediator's own store hands back every unfinished job (on a store given to
    /// it, the jobs stay there and none is handed back). Also returns how many jobs were suspended: every
    /// unfinished one of the own store, the watched ones of another.
    pub(crate) async fn suspend_watchers(&self) -> (Vec<SuspendedJob>, usize) {
        let now = self.now();
        let rows = match &self.private {
            Some(own) => own.active_rows(),
            None => {
                let ids: Vec<JobId> = self.watchers().keys().copied().collect();
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Ok(Some(row)) = self.store.job(id).await {
                        rows.push(row);
                    }
                }
                rows
            }
        };
        let mut unfinished = Vec::with_capacity(rows.len());
        for row in rows.iter().filter(|row| row.phase != Phase::Finished) {
            match Record::suspended(row, now) {
                Ok(job) => {
                    self.tell(row.id, &Outcome::Suspended { state: Box::new(job.clone()) });
                    unfinished.push(job);
                }
                Err(e) => {
                    tracing::error!(store = %self.store.describe(), job = %row.id, error = %e, "a job this build cannot read is left in the store")
                }
            }
        }
        let suspended = unfinished.len();
        if self.private.is_none() {
            unfinished.clear();
        }
        (unfinished, suspended)
    }

    /// Gives the watchers of `id` its outcome.
    pub(crate) fn tell(&self, id: JobId, outcome: &Outcome) {
        let cells = self.watchers().remove(&id).unwrap_or_default();
        for cell in cells.iter().filter_map(Weak::upgrade) {
            cell.deliver(outcome.clone());
        }
    }

    /// How many more jobs this replica may hold.
    pub(crate) fn free(&self) -> usize {
        let taken = self.held().len() + self.reserved.load(Ordering::SeqCst);
        self.settings.max_active_jobs.max(1).saturating_sub(taken)
    }

    /// The room a busy replica waits for before it takes more work: a claim's batch, or a quarter of what it
    /// may hold if that is less (at least one job).
    pub(crate) fn room(&self) -> usize {
        self.settings.claim_batch.min(self.settings.max_active_jobs / 4).max(1)
    }

    /// Whether the replica has room to take work now.
    pub(crate) fn has_room(&self) -> bool {
        self.free() >= self.room()
    }

    /// A held job is let go by the task of its lease of `epoch`: at rest until `due`, or ended or stopped
    /// (`None`). A task of an older lease (the job lost, then claimed again here) lets nothing go: the job is
    /// the newer task's. The claimer is told if it waits for the room this makes, or if the job is due before
    /// the claimer would look again by itself.
    pub(crate) fn let_go(&self, id: JobId, epoch: u64, due: Option<Timestamp>) {
        {
            let mut held = self.held();
            if held.get(&id).is_some_and(|h| h.lease.epoch == epoch) {
                held.remove(&id);
            } else {
                return;
            }
        }
        let mut tell = self.has_room() && self.wants_room.swap(false, Ordering::SeqCst);
        if let Some(due) = due {
            // Read by a claimer that is looking now, whose query may not have seen the job's write.
            self.let_go_due.fetch_min(due.0, Ordering::SeqCst);
            tell |= due.0 < self.looks_at.load(Ordering::SeqCst);
        }
        if tell {
            self.wake.notify_one();
        }
    }

    /// Stops claiming.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Drops every task of this replica at once, as a crash would: nothing more is written, and the leases
    /// it held are left to expire.
    pub(crate) fn crash(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
        for held in self.held().values() {
            held.cell.raise(LOST);
            if let Some(task) = &held.task {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, SystemClock};

    fn held(epoch: u64) -> HeldJob {
        let lease = Lease { job: JobId(7), epoch, owner: Arc::from("one") };
        HeldJob { lease, cell: Arc::new(JobCell::default()), task: None, expires: Instant::now() }
    }

    #[test]
    fn a_task_of_an_older_lease_lets_nothing_go() {
        let d = Durable::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), StoreSettings::default());
        // Each row: the epoch held, the epoch of the task that lets go, whether the job is still held after.
        for (holding, letting_go, still_held) in [(2, 1, true), (2, 3, true), (2, 2, false), (1, 1, false)] {
            d.held().insert(JobId(7), held(holding));
            d.let_go(JobId(7), letting_go, None);
            assert_eq!(d.held().contains_key(&JobId(7)), still_held, "held {holding}, let go by {letting_go}");
            d.held().clear();
        }
    }

    #[test]
    fn hand_overs_at_once_take_no_more_room_than_there_is() {
        let settings = StoreSettings { max_active_jobs: 3, ..StoreSettings::default() };
        let d = Durable::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), settings);
        d.held().insert(JobId(7), held(1));
        let first = d.reserve();
        let second = d.reserve();
        assert!(first.is_some() && second.is_some());
        assert!(d.reserve().is_none(), "one held and two on their way: full");
        assert_eq!(d.free(), 0);
        drop(first);
        assert_eq!(d.free(), 1);
        assert!(d.reserve().is_some());
    }
}
