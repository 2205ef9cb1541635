//! A store whose rows live in this process (a remediator's own by default): the same leases, fencing, ledger and
//! reports as the durable stores; nothing survives the process. It is one file: short methods over the same maps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::actions::{ActionRow, NewAction};
use super::assets::{AssetRecord, LineageRow};
use super::category::category_of;
use super::clock::Timestamp;
use super::error::StoreError;
use super::judge::{Effect, Reported, judge};
use super::options::StoreOptions;
use super::rows::{
    CallRow, CancelAnswer, Claimed, GuardRow, JobId, JobRow, Lease, LedgerWrite, ListFilter, NewJob, Phase, Renewed,
    ReportAnswer, ReportTarget, Save, Saved, Stats, Submitted,
};
use super::tally::{TallyRow, state_of};
use super::{Store, StoreFuture, validate};

/// Job rows in memory.
///
/// ```
/// use lightflow_remedy::store::{MemoryStore, NewJob, Store, Submitted, Timestamp};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let new = NewJob::new("a1", "{}", 1, "2001", Timestamp(0));
/// let Submitted::New(id) = store.submit(new, Timestamp(0)).await? else { unreachable!() };
/// assert_eq!(store.submit(new, Timestamp(0)).await?, Submitted::Joined(id), "one active job per asset");
/// let claimed = store.claim("replica-1", Timestamp(10), Duration::from_secs(30), 10).await?;
/// assert_eq!(claimed[0].lease.job, id);
/// assert!(store.claim("replica-2", Timestamp(20), Duration::from_secs(30), 10).await?.is_empty(), "leased");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    rows: Mutex<Rows>,
    /// The most reports for unknown references held, and for how long (milliseconds).
    max_held: u64,
    held_life: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_options(&StoreOptions::default())
    }
}

#[derive(Debug, Default)]
struct Rows {
    next: u64,
    jobs: BTreeMap<JobId, JobRow>,
    /// The active job of each asset.
    active: HashMap<String, JobId>,
    /// Active jobs by when they are next due.
    wakes: BTreeSet<(Timestamp, JobId)>,
    calls: HashMap<JobId, Vec<CallRow>>,
    /// Every reference an attempt of a job answered with.
    references: HashMap<String, JobId>,
    /// Reports for references not known yet, with when they came.
    held: HashMap<String, (String, Timestamp)>,
    /// Held reports dropped to keep within the cap.
    held_dropped: u64,
    /// The job each dedupe key was submitted with.
    dedupe: HashMap<String, JobId>,
    /// Assets as they were created, by id, and their ids by alias; those whose first end is known.
    assets: HashMap<String, AssetRecord>,
    settled: std::collections::HashSet<String>,
    aliases: HashMap<String, String>,
    /// The attempts that replaced each asset, and the asset of each reference.
    lineage: HashMap<String, Vec<LineageRow>>,
    lineage_of: HashMap<String, String>,
    /// The shared guards' states.
    guards: HashMap<String, GuardRow>,
    /// Operators' actions, oldest first.
    actions: Vec<ActionRow>,
}

impl Rows {
    fn set_wake(&mut self, id: JobId, wake: Timestamp) {
        if let Some(row) = self.jobs.get_mut(&id) {
            self.wakes.remove(&(row.wake_at, id));
            row.wake_at = wake;
            if row.phase != Phase::Finished {
                self.wakes.insert((wake, id));
            }
        }
    }

    fn finish(&mut self, id: JobId, outcome: &str, now: Timestamp) {
        if let Some(row) = self.jobs.get_mut(&id) {
            self.wakes.remove(&(row.wake_at, id));
            row.phase = Phase::Finished;
            row.outcome = Some(outcome.to_owned());
            row.finished_at = Some(now);
            row.lease_owner = None;
            row.updated_at = now;
            if self.active.get(&row.asset_id) == Some(&id) {
                self.active.remove(&row.asset_id);
            }
        }
    }

    /// Inserts a job unless the asset has an active one; held by `holder` (an owner, until when) if given.
    fn insert(
        &mut self,
        new: NewJob<'_>,
        now: Timestamp,
        holder: Option<(&str, Timestamp)>,
    ) -> (Submitted, Option<Claimed>) {
        if let Some(id) = new.dedupe_key.and_then(|key| self.dedupe.get(key)) {
            return (Submitted::Deduplicated(*id), None);
        }
        if let Some(id) = self.active.get(new.asset_id) {
            return (Submitted::Joined(*id), None);
        }
        self.next += 1;
        let id = JobId(self.next);
        let row = JobRow {
            id,
            asset_id: new.asset_id.to_owned(),
            phase: Phase::Waiting,
            wake_at: holder.map_or(new.wake_at, |(_, until)| until),
            lease_owner: holder.map(|(owner, _)| owner.to_owned()),
            epoch: u64::from(holder.is_some()),
            payload: new.payload.to_owned(),
            version: new.version,
            last_code: new.last_code.to_owned(),
            attempts: 0,
            attempt: 0,
            attempt_at: None,
            dedupe_key: new.dedupe_key.map(str::to_owned),
            reference: None,
            report: None,
            cancel_requested: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            outcome: None,
        };
        let claimed = holder.map(|(owner, _)| Claimed {
            lease: Lease { job: id, epoch: row.epoch, owner: Arc::from(owner) },
            row: row.clone(),
            taken_over: false,
        });
        self.active.insert(new.asset_id.to_owned(), id);
        if let Some(key) = new.dedupe_key {
            self.dedupe.insert(key.to_owned(), id);
        }
        self.wakes.insert((row.wake_at, id));
        self.jobs.insert(id, row);
        (Submitted::New(id), claimed)
    }

    /// Whether `lease` holds the job of `row`, unexpired until `until` (a held row's `wake_at` is its lease's
    /// expiry).
    fn holds(row: &JobRow, lease: &Lease, until: Timestamp) -> bool {
        row.phase != Phase::Finished
            && row.epoch == lease.epoch
            && row.lease_owner.as_deref() == Some(&*lease.owner)
            && row.wake_at > until
    }

    /// Holds a report for a reference no job has named yet, within the cap and the life of held reports:
    /// whether it was held without dropping another.
    fn hold_report(&mut self, reference: &str, report: &str, now: Timestamp, max: u64, life: Duration) -> bool {
        let oldest_kept = now.before(life);
        self.held.retain(|_, (_, at)| *at >= oldest_kept);
        let mut room = true;
        while !self.held.contains_key(reference) && self.held.len() as u64 >= max {
            let Some(oldest) = self.held.iter().min_by_key(|(_, (_, at))| *at).map(|(r, _)| r.clone()) else { break };
            self.held.remove(&oldest);
            self.held_dropped += 1;
            room = false;
        }
        self.held.insert(reference.to_owned(), (report.to_owned(), now));
        room
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store holding reports for unknown references as `options` say ([`StoreOptions::max_held_reports`],
    /// [`StoreOptions::held_report_life`]); its other options are the database stores'.
    pub fn with_options(options: &StoreOptions) -> Self {
        MemoryStore {
            rows: Mutex::default(),
            max_held: options.max_held_reports.max(1),
            held_life: options.held_report_life,
        }
    }

    /// The store numbering its jobs after `last` (a remediator's own: ids unlike those of its earlier runs).
    pub(crate) fn numbered_after(self, last: u64) -> Self {
        self.rows().next = last;
        self
    }
    /// Takes a job under its earlier id (resumed after a shutdown: its keys stay), or a new one if that is taken.
    pub(crate) fn submit_as(&self, id: JobId, new: NewJob<'_>, now: Timestamp) -> Result<Submitted, StoreError> {
        validate::new_job(&new)?;
        let mut rows = self.rows();
        let next = rows.next;
        rows.next = id.0.checked_sub(1).filter(|_| !rows.jobs.contains_key(&id)).unwrap_or(next);
        let (submitted, _) = rows.insert(new, now, None);
        rows.next = next.max(rows.next);
        Ok(submitted)
    }

    fn rows(&self) -> MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ready<'a, T: Send + 'a>(value: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        if let Err(e) = validate::new_job(&new) {
            return ready(Err(e));
        }
        ready(Ok(self.rows().insert(new, now, None).0))
    }

    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        if let Err(e) = validate::new_job(&new) {
            return ready(Err(e));
        }
        let holder = (new.wake_at <= now).then(|| (owner, now.after(lease)));
        ready(Ok(self.rows().insert(new, now, holder)))
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Claimed>> {
        let mut rows = self.rows();
        let due: Vec<JobId> = rows.wakes.iter().take_while(|(t, _)| *t <= now).take(limit).map(|(_, id)| *id).collect();
        let owner: Arc<str> = Arc::from(owner);
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            let until = now.after(lease);
            rows.set_wake(id, until);
            let Some(row) = rows.jobs.get_mut(&id) else { continue };
            let taken_over = row.lease_owner.is_some();
            row.epoch += 1;
            row.lease_owner = Some(owner.to_string());
            row.updated_at = now;
            claimed.push(Claimed {
                lease: Lease { job: id, epoch: row.epoch, owner: owner.clone() },
                row: row.clone(),
                taken_over,
            });
        }
        ready(Ok(claimed))
    }

    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed> {
        let mut rows = self.rows();
        let mut renewed = Renewed::default();
        for l in leases {
            // An expired lease is not renewed: its job may be claimed by now, or about to be.
            let held = rows.jobs.get(&l.job).is_some_and(|row| Rows::holds(row, l, now));
            if !held {
                renewed.lost.push(l.job);
                continue;
            }
            rows.set_wake(l.job, now.after(lease));
            if rows.jobs.get(&l.job).is_some_and(|row| row.cancel_requested) {
                renewed.cancel_requested.push(l.job);
            }
        }
        ready(Ok(renewed))
    }

    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved> {
        let mut rows = self.rows();
        let id = lease.job;
        let until = save.fence_until.max(now);
        if !rows.jobs.get(&id).is_some_and(|row| Rows::holds(row, lease, until)) {
            return ready(Err(StoreError::LeaseLost { job: id.0, epoch: lease.epoch }));
        }
        // A report held for the reference this save names is the job's now.
        let held = match (save.phase, save.reference) {
            (Phase::Awaiting, Some(reference)) => rows.held.remove(reference).map(|(report, _)| report),
            _ => None,
        };
        if let (Phase::Awaiting, Some(reference)) = (save.phase, save.reference) {
            // A reference stays with the job that named it first.
            rows.references.entry(reference.to_owned()).or_insert(id);
        }
        for entry in save.ledger {
            let calls = rows.calls.entry(id).or_default();
            match *entry {
                LedgerWrite::Begin { key, hook } => calls.push(CallRow {
                    key: key.to_owned(),
                    hook: hook.to_owned(),
                    started_at: now,
                    answered_at: None,
                    answer: None,
                }),
                LedgerWrite::End { key, answer } => {
                    if let Some(call) = calls.iter_mut().rev().find(|c| c.key == key && c.answered_at.is_none()) {
                        call.answered_at = Some(now);
                        call.answer = Some(answer.to_owned());
                    }
                }
            }
        }
        let Some(row) = rows.jobs.get_mut(&id) else {
            return ready(Err(StoreError::LeaseLost { job: id.0, epoch: lease.epoch }));
        };
        row.payload = save.payload.to_owned();
        row.version = save.version;
        row.last_code = save.last_code.to_owned();
        row.attempts = save.attempts;
        if row.attempt != save.attempt {
            row.attempt_at = (save.attempt > 0).then_some(now);
        }
        row.attempt = save.attempt;
        row.reference = save.reference.map(str::to_owned);
        row.updated_at = now;
        if save.take_report {
            row.report = None;
        }
        if row.report.is_none() {
            row.report = held;
        }
        let saved = Saved { cancel_requested: row.cancel_requested, report: row.report.clone() };
        if save.phase == Phase::Finished {
            rows.finish(id, save.outcome.unwrap_or("finished"), now);
            return ready(Ok(saved));
        }
        row.phase = save.phase;
        if save.release {
            row.lease_owner = None;
            // A report already here makes the job due at once, as does a cancellation asked meanwhile.
            let reported = saved.report.is_some() && save.phase == Phase::Awaiting && save.wake_on_report;
            let wake = if reported || saved.cancel_requested { now } else { save.wake_at };
            rows.set_wake(id, wake);
        }
        ready(Ok(saved))
    }

    fn report<'a>(
        &'a self,
        target: ReportTarget<'a>,
        result: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ReportAnswer> {
        if let Err(e) = validate::report(target, result) {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        let id = match target {
            ReportTarget::Asset(asset) | ReportTarget::AssetEndedAt(asset, _) => match rows.active.get(asset) {
                Some(id) => *id,
                None => {
                    let finished = rows.jobs.values().rev().find(|r| r.asset_id == asset).map(|r| r.id);
                    return ready(Ok(finished.map_or(ReportAnswer::Unknown, |job| ReportAnswer::Finished { job })));
                }
            },
            ReportTarget::Reference(reference) => match rows.references.get(reference) {
                Some(id) => *id,
                None => {
                    let kept = rows.hold_report(reference, result, now, self.max_held, self.held_life);
                    return ready(Ok(if kept { ReportAnswer::Held } else { ReportAnswer::Unknown }));
                }
            },
            ReportTarget::Attempt { job, .. } => job,
        };
        let Some(row) = rows.jobs.get_mut(&id) else { return ready(Ok(ReportAnswer::Unknown)) };
        let seen = Reported {
            job: id,
            phase: row.phase,
            attempts: row.attempts,
            attempt: row.attempt,
            attempt_at: row.attempt_at,
            reference: row.reference.as_deref(),
            has_report: row.report.is_some(),
            held: row.lease_owner.is_some(),
        };
        let (answer, effect) = judge(target, &seen);
        let at_rest = row.lease_owner.is_none();
        match effect {
            Effect::None => {}
            Effect::Keep => row.report = Some(result.to_owned()),
            Effect::Apply => {
                row.report = Some(result.to_owned());
                row.updated_at = now;
                if at_rest {
                    rows.set_wake(id, now);
                }
            }
            Effect::Check => {
                let wake = row.wake_at.min(now);
                rows.set_wake(id, wake);
            }
        }
        ready(Ok(answer))
    }

    fn cancel<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, CancelAnswer> {
        if let Err(e) = validate::id("asset id", asset_id) {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        let Some(id) = rows.active.get(asset_id).copied() else { return ready(Ok(CancelAnswer::NoJob)) };
        let Some(row) = rows.jobs.get_mut(&id) else { return ready(Ok(CancelAnswer::NoJob)) };
        let held = row.lease_owner.is_some() && row.wake_at > now;
        if held {
            row.cancel_requested = true;
            return ready(Ok(CancelAnswer::Requested { job: id }));
        }
        rows.finish(id, "cancelled", now);
        ready(Ok(CancelAnswer::Cancelled { job: id }))
    }

    fn retry_now<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, bool> {
        if let Err(e) = validate::id("asset id", asset_id) {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        let Some(id) = rows.active.get(asset_id).copied() else { return ready(Ok(false)) };
        let at_rest = rows.jobs.get(&id).is_some_and(|r| r.lease_owner.is_none());
        if at_rest {
            rows.set_wake(id, now);
        }
        ready(Ok(at_rest))
    }

    fn job(&self, id: JobId) -> StoreFuture<'_, Option<JobRow>> {
        ready(Ok(self.rows().jobs.get(&id).cloned()))
    }

    fn ended<'a>(&'a self, ids: &'a [JobId]) -> StoreFuture<'a, Vec<JobRow>> {
        let (rows, ids) = (self.rows(), ids.iter().collect::<BTreeSet<_>>());
        let finished = ids.into_iter().filter_map(|id| rows.jobs.get(id)).filter(|r| r.phase == Phase::Finished);
        ready(Ok(finished.cloned().collect()))
    }

    fn job_of<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Option<JobRow>> {
        if let Err(e) = validate::id("asset id", asset_id) {
            return ready(Err(e));
        }
        let rows = self.rows();
        let row = match rows.active.get(asset_id) {
            Some(id) => rows.jobs.get(id).cloned(),
            None => rows.jobs.values().rev().find(|r| r.asset_id == asset_id).cloned(),
        };
        ready(Ok(row))
    }

    fn list<'a>(&'a self, filter: &'a ListFilter) -> StoreFuture<'a, Vec<JobRow>> {
        let rows = self.rows();
        let limit = filter.limit.unwrap_or(100);
        let found = rows
            .jobs
            .values()
            .rev()
            .filter(|r| filter.phase.is_none_or(|p| r.phase == p))
            .filter(|r| filter.outcome.as_deref().is_none_or(|o| r.outcome.as_deref() == Some(o)))
            .filter(|r| filter.code.as_deref().is_none_or(|c| r.last_code == c))
            .filter(|r| filter.asset.as_deref().is_none_or(|a| r.asset_id.contains(a)))
            .filter(|r| filter.category.is_none_or(|c| category_of(&r.last_code) == Some(c)))
            .skip(filter.offset)
            .take(limit)
            .cloned()
            .collect();
        ready(Ok(found))
    }

    fn calls(&self, id: JobId) -> StoreFuture<'_, Vec<CallRow>> {
        ready(Ok(self.rows().calls.get(&id).cloned().unwrap_or_default()))
    }

    fn stats(&self, now: Timestamp) -> StoreFuture<'_, Stats> {
        let rows = self.rows();
        let mut stats =
            Stats { held_reports: rows.held.len() as u64, held_reports_dropped: rows.held_dropped, ..Stats::default() };
        for row in rows.jobs.values() {
            match &row.outcome {
                Some(outcome) => *stats.by_outcome.entry(outcome.clone()).or_default() += 1,
                None => {
                    *stats.by_phase.entry(row.phase.to_string()).or_default() += 1;
                    let held = row.lease_owner.is_some() && row.wake_at > now;
                    stats.held += u64::from(held);
                    stats.due_now += u64::from(!held && row.wake_at <= now);
                }
            }
        }
        ready(Ok(stats))
    }

    fn next_wake(&self) -> StoreFuture<'_, Option<Timestamp>> {
        ready(Ok(self.rows().wakes.first().map(|(t, _)| *t)))
    }

    fn prune(&self, before: Timestamp) -> StoreFuture<'_, u64> {
        let mut rows = self.rows();
        let old: Vec<JobId> =
            rows.jobs.values().filter(|r| r.finished_at.is_some_and(|t| t < before)).map(|r| r.id).collect();
        for id in &old {
            rows.jobs.remove(id);
            rows.calls.remove(id);
        }
        rows.references.retain(|_, id| !old.contains(id));
        rows.dedupe.retain(|_, id| !old.contains(id));
        let active: std::collections::HashSet<String> = rows.active.keys().cloned().collect();
        let gone: Vec<String> = rows
            .assets
            .values()
            .filter(|a| a.created_at < before && rows.settled.contains(&a.asset_id) && !active.contains(&a.asset_id))
            .map(|a| a.asset_id.clone())
            .collect();
        for id in &gone {
            rows.assets.remove(id);
            rows.settled.remove(id);
            rows.aliases.retain(|_, of| of != id);
            for l in rows.lineage.remove(id).unwrap_or_default() {
                rows.lineage_of.remove(&l.reference);
            }
        }
        rows.held.retain(|_, (_, at)| *at >= before);
        rows.actions.retain(|a| a.at >= before);
        ready(Ok(old.len() as u64))
    }

    fn guard<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<GuardRow>> {
        ready(Ok(self.rows().guards.get(name).cloned()))
    }

    fn set_guard<'a>(&'a self, name: &'a str, expected: Option<u64>, value: &'a str) -> StoreFuture<'a, bool> {
        let mut rows = self.rows();
        let current = rows.guards.get(name).map(|g| g.version);
        if current != expected {
            return ready(Ok(false));
        }
        let version = expected.map_or(1, |v| v + 1);
        rows.guards.insert(name.to_owned(), GuardRow { value: value.to_owned(), version });
        ready(Ok(true))
    }

    fn put_asset<'a>(
        &'a self,
        asset_id: &'a str,
        alias: Option<&'a str>,
        parameters: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        if let Err(e) = validate::asset(asset_id, alias, parameters) {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        let alias = alias.map(str::to_owned).or_else(|| rows.assets.get(asset_id).and_then(|a| a.alias.clone()));
        if let Some(alias) = &alias {
            rows.aliases.entry(alias.clone()).or_insert_with(|| asset_id.to_owned());
        }
        let created_at = rows.assets.get(asset_id).map_or(now, |a| a.created_at);
        let record =
            AssetRecord { asset_id: asset_id.to_owned(), alias, parameters: parameters.to_owned(), created_at };
        rows.assets.insert(asset_id.to_owned(), record);
        ready(Ok(()))
    }

    fn asset<'a>(&'a self, id_or_alias: &'a str) -> StoreFuture<'a, Option<AssetRecord>> {
        if let Err(e) = validate::id("asset id", id_or_alias) {
            return ready(Err(e));
        }
        let rows = self.rows();
        let id = rows.aliases.get(id_or_alias).map_or(id_or_alias, String::as_str);
        ready(Ok(rows.assets.get(id_or_alias).or_else(|| rows.assets.get(id)).cloned()))
    }

    fn add_lineage<'a>(
        &'a self,
        asset_id: &'a str,
        reference: &'a str,
        attempt_key: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let valid = validate::id("asset id", asset_id)
            .and_then(|()| validate::id("reference", reference))
            .and_then(|()| validate::id("attempt key", attempt_key));
        if let Err(e) = valid {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        if rows.lineage_of.contains_key(reference) {
            return ready(Ok(()));
        }
        rows.lineage_of.insert(reference.to_owned(), asset_id.to_owned());
        let row = LineageRow { reference: reference.to_owned(), attempt_key: attempt_key.to_owned(), at: now };
        rows.lineage.entry(asset_id.to_owned()).or_default().push(row);
        ready(Ok(()))
    }

    fn open_assets(&self, created_before: Timestamp, limit: usize) -> StoreFuture<'_, Vec<AssetRecord>> {
        let rows = self.rows();
        let mut open: Vec<AssetRecord> = rows
            .assets
            .values()
            .filter(|a| a.created_at < created_before && !rows.settled.contains(&a.asset_id))
            .cloned()
            .collect();
        open.sort_by_key(|a| a.created_at);
        open.truncate(limit);
        ready(Ok(open))
    }

    fn settle_asset<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, ()> {
        if let Err(e) = validate::id("asset id", asset_id) {
            return ready(Err(e));
        }
        self.rows().settled.insert(asset_id.to_owned());
        ready(Ok(()))
    }

    fn lineage<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Vec<LineageRow>> {
        if let Err(e) = validate::id("asset id", asset_id) {
            return ready(Err(e));
        }
        ready(Ok(self.rows().lineage.get(asset_id).cloned().unwrap_or_default()))
    }

    fn log_action<'a>(&'a self, action: NewAction<'a>, now: Timestamp) -> StoreFuture<'a, ()> {
        if let Err(e) = validate::action(&action) {
            return ready(Err(e));
        }
        let mut rows = self.rows();
        let id = rows.actions.last().map_or(1, |a| a.id + 1);
        rows.actions.push(ActionRow {
            id,
            at: now,
            asset_id: action.asset_id.to_owned(),
            job: action.job,
            action: action.action.to_owned(),
            role: action.role.to_owned(),
            who: action.who.to_owned(),
            answer: action.answer.to_owned(),
        });
        ready(Ok(()))
    }

    fn actions<'a>(&'a self, asset_id: Option<&'a str>, limit: usize) -> StoreFuture<'a, Vec<ActionRow>> {
        let rows = self.rows();
        let found = rows
            .actions
            .iter()
            .rev()
            .filter(|a| asset_id.is_none_or(|id| a.asset_id == id))
            .take(limit)
            .cloned()
            .collect();
        ready(Ok(found))
    }

    fn tally(&self, since: Timestamp, bucket: Duration) -> StoreFuture<'_, Vec<TallyRow>> {
        let width = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows = self.rows();
        let mut counts: BTreeMap<(i64, &str, &str), u64> = BTreeMap::new();
        for row in rows.jobs.values().filter(|r| r.created_at >= since) {
            let at = row.created_at.0.div_euclid(width) * width;
            *counts.entry((at, &row.last_code, state_of(row.outcome.as_deref()))).or_default() += 1;
        }
        let tally = counts
            .into_iter()
            .map(|((at, code, state), jobs)| TallyRow {
                bucket: Timestamp(at),
                code: code.to_owned(),
                state: state.to_owned(),
                jobs,
            })
            .collect();
        ready(Ok(tally))
    }
}
