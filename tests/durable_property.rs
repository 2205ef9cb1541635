//! A property of the engine on the SQLite store (a temp file, under paused time): jobs that fail with codes of
//! the LightFlow catalogue (classified from LightFlow's documents), hooks that answer at once (succeeded,
//! failed with a code, an error, no answer at all) or submit the attempt and have its result reported later
//! (duplicated, late, early, for an older attempt, by asset or by reference, or never: `check` then), and the
//! process killed at random moments (`crash()`, then a new remediator on the same file): at random times, and
//! inside hook calls, before the host acted, after it acted, or as it answers.
//!
//! What must hold, checked from the host's log of its calls, the reports' answers and the store's rows:
//!
//! - every job ends exactly once: the store finishes it, its `Finished` event comes once (none only when the
//!   process was killed at the moment of the write), the `failed` hook gets the verdict of a failed job (again
//!   only after a call a kill cut off), and no hook is called for a job after it ended;
//! - its outcome and recorded history are what `decide` makes of its failures and the hooks' answers (a model
//!   of the engine's loop replays them), and its verdict is what `decide` says on its recorded history;
//! - no call of a job starts while another of its calls is under way, and no side-effecting call (resubmit,
//!   republish, fix_credentials, notify, failed) starts after an attempt's call was cut off by a kill unless a
//!   reconcile of that attempt came first;
//! - repeated attempts reuse their idempotency key (and are repeated only when a kill cut off their answer),
//!   and keys are the job's own;
//! - reports for older attempts, for references nobody submitted and for ended jobs change nothing.
#![cfg(feature = "sqlite")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use lightflow_remedy::classify::catalogue;
use lightflow_remedy::decide::{CredentialScope, LivePolicies};
use lightflow_remedy::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, Event, HookError, HookName, Hooks, Job, JobId, Notice, Outcome,
    OutcomeKind, Pending, Reconciled, Remediator, ReportAnswer, ReportTarget, Reported, StoreSettings, StoredJob,
    Verdict, VerdictKind,
};
use lightflow_remedy::store::{
    CallRow, CancelAnswer, Claimed, Clock, GuardRow, JobRow, Lease, ListFilter, NewJob, Renewed, Save, Saved,
    SqliteStore, Stats, Store, StoreError, StoreFuture, StoreOptions, Submitted, Timestamp, TokioClock,
};
use lightflow_remedy::{Action, Context, Failure, History, Policies};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a submitted attempt's result may take before the engine asks `check`.
const AWAIT: Duration = Duration::from_secs(2 * 3600);
const HOOK_TIMEOUT: Duration = Duration::from_secs(60);
const LEASE: Duration = Duration::from_secs(30);
/// How long `check` takes for an attempt whose report races it.
const RACE_CHECK: Duration = Duration::from_secs(4);
const HOST_ERROR: &str = "the host refused the call";
/// Where the store's clock starts: 2027-01-01.
const START: Timestamp = Timestamp(1_798_761_600_000);
/// A run that has not ended after this long has lost jobs.
const HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);
const LOOK_EVERY: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------------------------
// The plan of a case.

/// A failure as LightFlow gives it: an asset's `assetError`, or a failed API call (JSON body or a proxy's HTML,
/// with or without Retry-After), classified by the crate.
#[derive(Debug, Clone, PartialEq)]
enum Code {
    Asset(u16),
    Api { status: u16, html: bool, retry_after: Option<u16> },
}

impl Code {
    fn failure(&self) -> Failure {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600);
        match self {
            Code::Asset(code) => {
                let asset = format!(
                    r#"{{"uuid": "4f1c", "status": "error", "assetError": {{"code": {code}, "message": "LightFlow says {code}"}}}}"#
                );
                Failure::from_json(&asset, now).unwrap()
            }
            Code::Api { status, html, retry_after } => {
                let body = if *html {
                    format!("<html><head><title>{status} Bad Gateway</title></head><body>nginx</body></html>")
                } else {
                    r#"{"message": "asset not found"}"#.to_owned()
                };
                let header = retry_after.map(|s| s.to_string());
                Failure::from_api_response(*status, &body, header.as_deref(), now).unwrap()
            }
        }
    }
}

/// How a submitted attempt ends at LightFlow.
#[derive(Debug, Clone, PartialEq)]
enum Ends {
    Succeeded,
    Failed(Code),
    Canceled,
}

impl Ends {
    fn reported(&self) -> Reported {
        match self {
            Ends::Succeeded => Reported::Succeeded,
            Ends::Failed(code) => Reported::Failed { failure: code.failure() },
            Ends::Canceled => Reported::Canceled,
        }
    }

    fn checked(&self) -> Checked {
        match self {
            Ends::Succeeded => Checked::Succeeded,
            Ends::Failed(code) => Checked::Failed(code.failure()),
            Ends::Canceled => unreachable!("the plans give `check` no canceled attempt"),
        }
    }
}

/// How the host learns a submitted attempt's result.
#[derive(Debug, Clone, PartialEq)]
enum Delivery {
    /// Reported `after` seconds after the submission, first by asset or by reference, then `dups` more times
    /// by reference.
    Report { after: u64, by_key: bool, dups: u8 },
    /// Reported while the hook is still being called, before it answers `Submitted`, then `dups` more times.
    Early { by_key: bool, dups: u8 },
    /// Never reported: `check` says `Running` until `after` seconds have passed, then the result.
    Check { after: u64 },
    /// Reported by reference while the engine's `check` (which knows the result too) is under way.
    Race,
    /// Never reported, and `check` does not know: a timeout.
    Lost,
}

/// What an attempt's hook (resubmit or republish) answers.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Succeed,
    Fail(Code),
    /// No answer: the engine's hook timeout ends the call.
    Hang,
    Error,
    Submit(Ends, Delivery),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fix {
    Fixed,
    Unable,
    Hang,
}

/// Where a kill inside a hook call comes: before the host acted; after it acted, before it answered; or as it
/// answers (the engine has the answer, and may not have written it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Die {
    Before,
    After,
    Answering,
}

#[derive(Debug, Clone)]
struct Plan {
    first: Code,
    /// Seconds after the start when the job is enqueued.
    arrive: u64,
    /// Seconds each hook call of the job takes.
    latency: u64,
    /// The answer to attempt n is `answers[n - 1]`; later attempts succeed.
    answers: Vec<Answer>,
    fix: Fix,
    /// `reconcile` of attempt 0 (the host's own submission) finds it done.
    own_done: bool,
    /// The process is killed in the job's k-th hook call (from 0).
    kill_in: Option<(usize, Die)>,
    /// When an attempt starts, a report for an older attempt's reference comes, saying it succeeded.
    stale: bool,
    /// When an attempt starts, a report for a reference nobody submitted comes.
    phantom: bool,
}

impl Plan {
    fn answer(&self, n: u32) -> Answer {
        self.answers.get(n as usize - 1).cloned().unwrap_or(Answer::Succeed)
    }
}

#[derive(Debug, Clone)]
struct Case {
    jobs: Vec<Plan>,
    /// Seconds after the start when the process is killed, besides the kills inside hooks.
    kills: Vec<u64>,
    /// How long each restart takes, in turn.
    restarts: Vec<u64>,
    /// When the store refuses every write (as a database that went away, or a disk that errors), and for how
    /// long: seconds after the start.
    outages: Vec<(u64, u64)>,
    /// When the store's renewals stop answering, and for how long (long enough, often, for leases to run out
    /// under a replica that still runs).
    stalls: Vec<(u64, u64)>,
}

fn asset_id(i: usize) -> String {
    format!("a{i}")
}

fn asset_index(job: &Job) -> usize {
    job.asset_id()[1..].parse().unwrap()
}

fn reference(asset: usize, n: u32) -> String {
    format!("lf-{asset}-{n}")
}

// ---------------------------------------------------------------------------------------------------------
// Strategies.

fn code() -> impl Strategy<Value = Code> {
    let known = catalogue::codes();
    prop_oneof![
        8 => prop::sample::select(known).prop_map(Code::Asset),
        1 => prop::sample::select(vec![2408u16, 2410, 2502, 2599, 1004, 5001, 9123]).prop_map(Code::Asset),
        3 => (prop::sample::select(vec![401u16, 403, 404, 429, 500, 502, 503, 504]), any::<bool>(), prop::option::of(1u16..120))
            .prop_map(|(status, html, retry_after)| Code::Api { status, html, retry_after }),
    ]
}

fn ends() -> impl Strategy<Value = Ends> {
    prop_oneof![3 => Just(Ends::Succeeded), 4 => code().prop_map(Ends::Failed), 1 => Just(Ends::Canceled)]
}

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        4 => (0u64..1800, any::<bool>(), 0u8..3).prop_map(|(after, by_key, dups)| Delivery::Report { after, by_key, dups }),
        2 => (any::<bool>(), 0u8..3).prop_map(|(by_key, dups)| Delivery::Early { by_key, dups }),
        2 => (0u64..3 * AWAIT.as_secs()).prop_map(|after| Delivery::Check { after }),
        1 => Just(Delivery::Race),
        1 => Just(Delivery::Lost),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Succeed),
        10 => code().prop_map(Answer::Fail),
        8 => (ends(), delivery()).prop_map(|(ends, delivery)| {
            // `check` has no answer for a canceled asset.
            let ends = match (&delivery, ends) {
                (Delivery::Check { .. } | Delivery::Race, Ends::Canceled) => Ends::Succeeded,
                (_, ends) => ends,
            };
            Answer::Submit(ends, delivery)
        }),
        2 => Just(Answer::Hang),
        1 => Just(Answer::Error),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        code(),
        0u64..600,
        prop_oneof![Just(0u64), 1u64..20],
        prop::collection::vec(answer(), 0..6),
        prop_oneof![4 => Just(Fix::Fixed), 2 => Just(Fix::Unable), 1 => Just(Fix::Hang)],
        prop::bool::weighted(0.1),
        prop::option::weighted(
            0.35,
            (0usize..12, prop_oneof![Just(Die::Before), Just(Die::After), Just(Die::Answering)]),
        ),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(first, arrive, latency, answers, fix, own_done, kill_in, stale, phantom)| Plan {
            first,
            arrive,
            latency,
            answers,
            fix,
            own_done,
            kill_in,
            stale,
            phantom,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(plan(), 1..8),
        prop::collection::vec(0u64..4 * 3600, 0..3),
        prop::collection::vec(0u64..10, 8),
        prop::collection::vec((0u64..3 * 3600, 1u64..120), 0..3),
        prop::collection::vec((0u64..3 * 3600, 1u64..4 * LEASE.as_secs()), 0..3),
    )
        .prop_map(|(jobs, mut kills, restarts, outages, stalls)| {
            kills.sort_unstable();
            Case { jobs, kills, restarts, outages, stalls }
        })
}

// ---------------------------------------------------------------------------------------------------------
// The host: its hooks answer as the plan says, and it logs every call, what it did, and the reports.

/// One hook call, as the host saw it.
#[derive(Debug, Clone)]
struct Rec {
    asset: usize,
    hook: HookName,
    /// The attempt key's number and text, for calls that carry one.
    attempt: Option<u32>,
    key: Option<String>,
    /// The replica that called it.
    replica: u64,
    start: Timestamp,
    /// When it answered.
    end: Option<Timestamp>,
    /// When it was dropped unanswered, and whether by a kill (else by the engine's timeout).
    dropped: Option<(Timestamp, bool)>,
}

/// A submitted attempt, as LightFlow has it.
#[derive(Debug, Clone)]
struct Sub {
    ends: Ends,
    delivery: Delivery,
    /// When its encode ends (`None`: never).
    ends_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Primary,
    Dup,
    Stale,
    Phantom,
    Late,
}

#[derive(Debug, Clone)]
enum Target {
    /// By the asset alone (late reports, after every job ended).
    Asset,
    /// By the attempt's key, as a callback URL that carries it names it.
    Attempt(JobId, u32),
    Reference(String),
}

#[derive(Debug)]
struct Intent {
    at: Instant,
    asset: usize,
    target: Target,
    result: Reported,
    sent: Sent,
}

#[derive(Default)]
struct World {
    replica: u64,
    killed: HashSet<u64>,
    kill_times: Vec<Timestamp>,
    calls: Vec<Rec>,
    counts: HashMap<usize, usize>,
    /// Attempts that succeeded at once: the host did them.
    done: HashSet<(usize, u32)>,
    submitted: HashMap<(usize, u32), Sub>,
    /// Each asset's references, in the order of their submission.
    refs: BTreeMap<usize, Vec<String>>,
    /// Attempts whose stale and phantom reports were sent.
    started: HashSet<(usize, u32)>,
    dead_letters: Vec<(usize, JobId, VerdictKind, String)>,
    reports: Vec<(usize, Sent, Target, ReportAnswer)>,
    finished: Vec<(String, OutcomeKind)>,
    lagged: bool,
}

struct Host {
    plans: Vec<Plan>,
    clock: Arc<TokioClock>,
    world: Arc<Mutex<World>>,
    reports: mpsc::UnboundedSender<Intent>,
    kills: mpsc::UnboundedSender<u64>,
}

/// Marks its call dropped if it goes before the call answers.
struct Guard {
    world: Arc<Mutex<World>>,
    clock: Arc<TokioClock>,
    id: usize,
    answered: bool,
}

impl Guard {
    fn answered(mut self) {
        self.answered = true;
        let now = self.clock.now();
        lock(&self.world).calls[self.id].end = Some(now);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.answered {
            let now = self.clock.now();
            let mut w = lock(&self.world);
            let by_kill = w.killed.contains(&w.calls[self.id].replica);
            w.calls[self.id].dropped = Some((now, by_kill));
        }
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

impl Host {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// A call starts: logged, with the kill the plan puts in it, if any.
    fn begin(&self, job: &Job, hook: HookName, key: Option<&AttemptKey<'_>>) -> (usize, Guard, Option<Die>) {
        let asset = asset_index(job);
        let now = self.clock.now();
        let mut w = self.world();
        let count = w.counts.entry(asset).or_default();
        let k = *count;
        *count += 1;
        let die = self.plans[asset].kill_in.filter(|(at, _)| *at == k).map(|(_, d)| d);
        let id = w.calls.len();
        let replica = w.replica;
        w.calls.push(Rec {
            asset,
            hook,
            attempt: key.map(|k| k.attempt),
            key: key.map(|k| k.to_string()),
            replica,
            start: now,
            end: None,
            dropped: None,
        });
        drop(w);
        (asset, Guard { world: self.world.clone(), clock: self.clock.clone(), id, answered: false }, die)
    }

    /// The process dies here: the host asks for the kill and never answers.
    async fn die(&self) -> Infallible {
        self.kill();
        std::future::pending().await
    }

    /// Asks for the kill of the replica calling: it comes as soon as the replica's task gives the runtime
    /// back.
    fn kill(&self) {
        let replica = self.world().replica;
        let _ = self.kills.send(replica);
    }

    async fn take(&self, latency: u64) {
        if latency > 0 {
            tokio::time::sleep(Duration::from_secs(latency)).await;
        }
    }

    fn report(&self, after: Duration, asset: usize, target: Target, result: Reported, sent: Sent) {
        let _ = self.reports.send(Intent { at: Instant::now() + after, asset, target, result, sent });
    }

    /// Attempt `n` starts for the first time: a stale report for an older attempt, and one for a reference
    /// nobody submitted, as the plan says.
    fn attempt_started(&self, asset: usize, n: u32) {
        let plan = &self.plans[asset];
        let older = {
            let mut w = self.world();
            if !w.started.insert((asset, n)) {
                return;
            }
            w.refs.get(&asset).and_then(|r| r.last().cloned())
        };
        if plan.stale
            && let Some(older) = older
        {
            self.report(Duration::from_secs(1), asset, Target::Reference(older), Reported::Succeeded, Sent::Stale);
        }
        if plan.phantom {
            let phantom = Target::Reference(format!("phantom-{asset}-{n}"));
            self.report(Duration::from_secs(2), asset, phantom, Reported::Succeeded, Sent::Phantom);
        }
    }

    /// LightFlow takes attempt `n` (once: a repeat with the same key is the same attempt), and its result is
    /// reported as the plan says.
    fn submit(&self, asset: usize, job: JobId, n: u32, ends: &Ends, delivery: &Delivery) -> String {
        let reference = reference(asset, n);
        let now = self.clock.now();
        {
            let mut w = self.world();
            if w.submitted.contains_key(&(asset, n)) {
                return reference;
            }
            let ends_at = match delivery {
                Delivery::Report { after, .. } => Some(now.after(Duration::from_secs(*after))),
                Delivery::Early { .. } => Some(now),
                Delivery::Check { after } => Some(now.after(Duration::from_secs(*after))),
                Delivery::Race => Some(now.after(AWAIT + RACE_CHECK / 2)),
                Delivery::Lost => None,
            };
            w.submitted.insert((asset, n), Sub { ends: ends.clone(), delivery: delivery.clone(), ends_at });
            w.refs.entry(asset).or_default().push(reference.clone());
        }
        let by_ref = || Target::Reference(reference.clone());
        let primary = |by_key: bool| if by_key { Target::Attempt(job, n) } else { by_ref() };
        let result = ends.reported();
        match delivery {
            Delivery::Report { after, by_key, dups } => {
                let at = Duration::from_secs(*after);
                self.report(at, asset, primary(*by_key), result.clone(), Sent::Primary);
                for d in 1..=u64::from(*dups) {
                    self.report(at + Duration::from_secs(7 * d), asset, by_ref(), result.clone(), Sent::Dup);
                }
            }
            Delivery::Early { by_key, dups } => {
                self.report(Duration::ZERO, asset, primary(*by_key), result.clone(), Sent::Primary);
                for d in 1..=u64::from(*dups) {
                    self.report(Duration::from_secs(d), asset, by_ref(), result.clone(), Sent::Dup);
                }
            }
            Delivery::Race => self.report(AWAIT + RACE_CHECK / 2, asset, by_ref(), result, Sent::Primary),
            Delivery::Check { .. } | Delivery::Lost => {}
        }
        reference
    }

    async fn attempt(&self, job: &Job, hook: HookName, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        let (asset, guard, die) = self.begin(job, hook, Some(key));
        let plan = &self.plans[asset];
        let n = key.attempt;
        let answer = plan.answer(n);
        self.attempt_started(asset, n);
        if die == Some(Die::Before) {
            match self.die().await {}
        }
        let mut latency = plan.latency;
        if let Answer::Submit(ends, delivery @ Delivery::Early { .. }) = &answer {
            self.submit(asset, key.job, n, ends, delivery);
            latency = latency.max(1);
        }
        self.take(latency).await;
        let result = match &answer {
            Answer::Succeed => {
                self.world().done.insert((asset, n));
                Ok(Attempt::Succeeded)
            }
            Answer::Fail(code) => Ok(Attempt::Failed(code.failure())),
            Answer::Hang => std::future::pending().await,
            Answer::Error => Err(HookError::new(HOST_ERROR)),
            Answer::Submit(ends, delivery) => {
                Ok(Attempt::Submitted { reference: self.submit(asset, key.job, n, ends, delivery) })
            }
        };
        if die == Some(Die::After) {
            match self.die().await {}
        }
        guard.answered();
        if die == Some(Die::Answering) {
            self.kill();
        }
        result
    }

    /// The common shape of the calls that act on nothing but the host.
    async fn plain<T>(
        &self,
        job: &Job,
        hook: HookName,
        key: Option<&AttemptKey<'_>>,
        latency: u64,
        answer: impl FnOnce(&Self, usize) -> Option<T>,
    ) -> T {
        let (asset, guard, die) = self.begin(job, hook, key);
        if die == Some(Die::Before) {
            match self.die().await {}
        }
        self.take(latency).await;
        let Some(result) = answer(self, asset) else { return std::future::pending().await };
        if die == Some(Die::After) {
            match self.die().await {}
        }
        guard.answered();
        if die == Some(Die::Answering) {
            self.kill();
        }
        result
    }
}

impl Hooks for Host {
    async fn resubmit(&self, job: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        self.attempt(job, HookName::Resubmit, key).await
    }

    async fn republish(&self, job: &Job, _: &str, _: bool, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        self.attempt(job, HookName::Republish, key).await
    }

    async fn fix_credentials(&self, job: &Job, _: CredentialScope) -> Result<CredentialFix, HookError> {
        let plan = &self.plans[asset_index(job)];
        let answer = |_: &Self, _| match plan.fix {
            Fix::Fixed => Some(CredentialFix::Fixed),
            Fix::Unable => Some(CredentialFix::CannotFix),
            Fix::Hang => None,
        };
        Ok(self.plain(job, HookName::FixCredentials, None, plan.latency, answer).await)
    }

    async fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        let plan = &self.plans[asset_index(job)];
        let m = key.attempt;
        let answer = |host: &Self, asset| {
            let now = host.clock.now();
            let w = host.world();
            // Done if the host did it, or LightFlow finished it well.
            let done = (m == 0 && plan.own_done)
                || w.done.contains(&(asset, m))
                || w.submitted
                    .get(&(asset, m))
                    .is_some_and(|s| s.ends == Ends::Succeeded && s.ends_at.is_some_and(|at| at <= now));
            Some(if done { Reconciled::Done } else { Reconciled::NotDone })
        };
        Ok(self.plain(job, HookName::Reconcile, Some(key), plan.latency, answer).await)
    }

    async fn check(&self, job: &Job, pending: &Pending<'_>) -> Result<Checked, HookError> {
        let asset = asset_index(job);
        let n = pending.key.attempt;
        let race = matches!(self.world().submitted.get(&(asset, n)), Some(Sub { delivery: Delivery::Race, .. }));
        let latency = if race { RACE_CHECK.as_secs() } else { self.plans[asset].latency };
        let answer = |host: &Self, asset| {
            let now = host.clock.now();
            let w = host.world();
            let sub = w.submitted.get(&(asset, n))?.clone();
            Some(match sub.delivery {
                // A report should have come: no answer here.
                Delivery::Report { .. } | Delivery::Early { .. } | Delivery::Lost => Checked::Unknown,
                Delivery::Check { .. } | Delivery::Race => match sub.ends_at {
                    Some(at) if at <= now => sub.ends.checked(),
                    _ => Checked::Running,
                },
            })
        };
        Ok(self.plain(job, HookName::Check, Some(&pending.key), latency, answer).await)
    }

    async fn notify(&self, job: &Job, _: &Notice) -> Result<(), HookError> {
        let latency = self.plans[asset_index(job)].latency;
        self.plain(job, HookName::Notify, None, latency, |_, _| Some(())).await;
        Ok(())
    }

    async fn failed(&self, job: &Job, verdict: &Verdict) -> Result<(), HookError> {
        let latency = self.plans[asset_index(job)].latency;
        let id = job.job_id();
        let answer = |host: &Self, asset| {
            host.world().dead_letters.push((asset, id, verdict.kind, verdict.reason.clone()));
            Some(())
        };
        self.plain(job, HookName::Failed, None, latency, answer).await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------
// The run: replicas on one SQLite file, killed and restarted; reports delivered through the live one.

type Slot = Arc<Mutex<Option<Remediator<Arc<Host>>>>>;

fn live(slot: &Slot) -> Option<Remediator<Arc<Host>>> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Delivers the host's reports at their time, through whichever replica is up (a report the store could not
/// take, because its replica was killed meanwhile, is sent again).
async fn pump(mut intents: mpsc::UnboundedReceiver<Intent>, slot: Slot, world: Arc<Mutex<World>>) {
    while let Some(intent) = intents.recv().await {
        let (slot, world) = (slot.clone(), world.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(intent.at).await;
            let id = asset_id(intent.asset);
            loop {
                if let Some(r) = live(&slot) {
                    let target = match &intent.target {
                        Target::Asset => ReportTarget::Asset(&id),
                        Target::Attempt(job, attempt) => ReportTarget::Attempt { job: *job, attempt: *attempt },
                        Target::Reference(reference) => ReportTarget::Reference(reference),
                    };
                    if let Ok(answer) = r.report(target, intent.result.clone()).await {
                        lock(&world).reports.push((intent.asset, intent.sent, intent.target.clone(), answer));
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Keeps the `Finished` events of one replica.
async fn collect(mut events: tokio::sync::broadcast::Receiver<Event>, world: Arc<Mutex<World>>) {
    loop {
        match events.recv().await {
            Ok(Event::Finished { asset_id, outcome }) => lock(&world).finished.push((asset_id.to_string(), outcome)),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => lock(&world).lagged = true,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct Run {
    world: World,
    rows: Vec<Option<(JobRow, StoredJob, Vec<CallRow>)>>,
}

struct Replicas {
    path: std::path::PathBuf,
    policies: Arc<LivePolicies>,
    host: Arc<Host>,
    clock: Arc<TokioClock>,
    world: Arc<Mutex<World>>,
    slot: Slot,
    replica: u64,
    store: Arc<Flaky>,
    faults: Arc<Windows>,
}

async fn open(path: &Path, faults: &Arc<Windows>) -> Arc<Flaky> {
    let sqlite = SqliteStore::open(path, &StoreOptions::default().hold_time(true).pool_size(1)).await.unwrap();
    Arc::new(Flaky { sqlite, faults: faults.clone() })
}

/// The times the store fails: writes refused, renewals that do not answer.
struct Windows {
    outages: Vec<(Instant, Instant)>,
    stalls: Vec<(Instant, Instant)>,
}

impl Windows {
    fn new(case: &Case, t0: Instant) -> Self {
        let at = |(start, long): &(u64, u64)| {
            let start = t0 + Duration::from_secs(*start);
            (start, start + Duration::from_secs(*long))
        };
        Windows { outages: case.outages.iter().map(at).collect(), stalls: case.stalls.iter().map(at).collect() }
    }

    fn down(&self) -> Result<(), StoreError> {
        let now = Instant::now();
        if self.outages.iter().any(|(from, to)| (*from..*to).contains(&now)) {
            return Err(StoreError::Database { store: "flaky".into(), message: "disk I/O error (injected)".into() });
        }
        Ok(())
    }

    /// When a renewal sent now is answered: at the end of the stall it falls in.
    fn renewal_answered(&self) -> Option<Instant> {
        let now = Instant::now();
        self.stalls.iter().filter(|(from, to)| (*from..*to).contains(&now)).map(|(_, to)| *to).max()
    }
}

/// The SQLite store, failing in the case's windows.
struct Flaky {
    sqlite: SqliteStore,
    faults: Arc<Windows>,
}

impl Flaky {
    async fn close(&self) {
        self.sqlite.close().await;
    }
}

impl Store for Flaky {
    fn describe(&self) -> String {
        self.sqlite.describe()
    }
    fn submit<'a>(&'a self, new: NewJob<'a>, now: Timestamp) -> StoreFuture<'a, Submitted> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.submit(new, now).await
        })
    }
    fn submit_and_claim<'a>(
        &'a self,
        new: NewJob<'a>,
        owner: &'a str,
        lease: Duration,
        now: Timestamp,
    ) -> StoreFuture<'a, (Submitted, Option<Claimed>)> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.submit_and_claim(new, owner, lease, now).await
        })
    }
    fn claim<'a>(&'a self, owner: &'a str, now: Timestamp, lease: Duration, n: usize) -> StoreFuture<'a, Vec<Claimed>> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.claim(owner, now, lease, n).await
        })
    }
    fn renew<'a>(&'a self, leases: &'a [Lease], now: Timestamp, lease: Duration) -> StoreFuture<'a, Renewed> {
        Box::pin(async move {
            if let Some(answered) = self.faults.renewal_answered() {
                tokio::time::sleep_until(answered).await;
            }
            self.faults.down()?;
            self.sqlite.renew(leases, now, lease).await
        })
    }
    fn save<'a>(&'a self, lease: &'a Lease, save: Save<'a>, now: Timestamp) -> StoreFuture<'a, Saved> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.save(lease, save, now).await
        })
    }
    fn report<'a>(
        &'a self,
        target: ReportTarget<'a>,
        result: &'a str,
        now: Timestamp,
    ) -> StoreFuture<'a, ReportAnswer> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.report(target, result, now).await
        })
    }
    fn cancel<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, CancelAnswer> {
        self.sqlite.cancel(asset_id, now)
    }
    fn retry_now<'a>(&'a self, asset_id: &'a str, now: Timestamp) -> StoreFuture<'a, bool> {
        self.sqlite.retry_now(asset_id, now)
    }
    fn job(&self, id: JobId) -> StoreFuture<'_, Option<JobRow>> {
        self.sqlite.job(id)
    }
    fn job_of<'a>(&'a self, asset_id: &'a str) -> StoreFuture<'a, Option<JobRow>> {
        self.sqlite.job_of(asset_id)
    }
    fn list<'a>(&'a self, filter: &'a ListFilter) -> StoreFuture<'a, Vec<JobRow>> {
        self.sqlite.list(filter)
    }
    fn calls(&self, id: JobId) -> StoreFuture<'_, Vec<CallRow>> {
        self.sqlite.calls(id)
    }
    fn stats(&self, now: Timestamp) -> StoreFuture<'_, Stats> {
        self.sqlite.stats(now)
    }
    fn next_wake(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.sqlite.next_wake()
    }
    fn prune(&self, before: Timestamp) -> StoreFuture<'_, u64> {
        self.sqlite.prune(before)
    }
    fn guard<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<GuardRow>> {
        self.sqlite.guard(name)
    }
    fn set_guard<'a>(&'a self, name: &'a str, expected: Option<u64>, value: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.faults.down()?;
            self.sqlite.set_guard(name, expected, value).await
        })
    }
}

impl Replicas {
    /// Starts a replica on the store last opened.
    async fn start(&mut self) {
        let settings = StoreSettings {
            lease: LEASE,
            poll_every: Duration::from_secs(3600),
            owner: Some(format!("replica-{}", self.replica)),
            ..StoreSettings::default()
        };
        let r = Remediator::builder(self.policies.clone(), self.host.clone())
            .without_circuit_breaker()
            .hook_timeout(HOOK_TIMEOUT)
            .await_result(AWAIT)
            .event_capacity(1 << 16)
            .store_with(self.store.clone(), self.clock.clone(), settings)
            .build();
        lock(&self.world).replica = self.replica;
        tokio::spawn(collect(r.subscribe(), self.world.clone()));
        *self.slot.lock().unwrap() = Some(r);
    }

    /// Kills the replica (no shutdown: its leases are left to expire), and starts another on the same file
    /// after `restart`.
    async fn kill(&mut self, restart: Duration) {
        let Some(r) = self.slot.lock().unwrap().take() else { return };
        {
            let mut w = lock(&self.world);
            w.killed.insert(self.replica);
            w.kill_times.push(self.clock.now());
        }
        r.crash();
        drop(r);
        // The process is gone: so are its connections (a transaction it had open rolls back).
        self.store.close().await;
        tokio::time::sleep(restart).await;
        self.replica += 1;
        self.store = open(&self.path, &self.faults).await;
        self.start().await;
    }
}

async fn run(case: &Case) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = Arc::new(TokioClock::starting_at(START));
    let world = Arc::new(Mutex::new(World::default()));
    let (reports, intents) = mpsc::unbounded_channel();
    let (kills, mut kill_requests) = mpsc::unbounded_channel();
    let host = Arc::new(Host { plans: case.jobs.clone(), clock: clock.clone(), world: world.clone(), reports, kills });
    let slot: Slot = Arc::default();
    tokio::spawn(pump(intents, slot.clone(), world.clone()));
    let faults = Arc::new(Windows::new(case, Instant::now()));
    let mut replicas = Replicas {
        store: open(&path, &faults).await,
        faults,
        path,
        policies: Policies::defaults().into(),
        host: host.clone(),
        clock: clock.clone(),
        world: world.clone(),
        slot: slot.clone(),
        replica: 0,
    };
    replicas.start().await;

    let t0 = Instant::now();
    let mut arrivals: Vec<(Instant, usize)> =
        case.jobs.iter().enumerate().map(|(i, p)| (t0 + Duration::from_secs(p.arrive), i)).collect();
    arrivals.sort();
    let mut arrivals = arrivals.into_iter().peekable();
    let mut timed_kills = case.kills.iter().map(|s| t0 + Duration::from_secs(*s)).peekable();
    let mut restarts = case.restarts.iter().cycle().map(|s| Duration::from_secs(*s));
    let mut look = t0 + LOOK_EVERY;
    loop {
        let now = Instant::now();
        while let Some((_, i)) = arrivals.next_if(|(at, _)| *at <= now) {
            // The pipeline hands the failure over until the store takes it.
            let r = live(&slot).unwrap();
            while r.enqueue(Job::new(asset_id(i)), case.jobs[i].first.failure()).await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if timed_kills.next_if(|at| *at <= now).is_some() {
            replicas.kill(restarts.next().unwrap()).await;
            continue;
        }
        if look <= now {
            look = now + LOOK_EVERY;
            let stats = replicas.store.stats(clock.now()).await.unwrap();
            let active: u64 = stats.by_phase.values().sum();
            let finished: u64 = stats.by_outcome.values().sum();
            if arrivals.peek().is_none() && active == 0 && finished == case.jobs.len() as u64 {
                break;
            }
            if now.duration_since(t0) > HORIZON {
                break;
            }
        }
        let mut wake = look;
        if let Some((at, _)) = arrivals.peek() {
            wake = wake.min(*at);
        }
        if let Some(at) = timed_kills.peek() {
            wake = wake.min(*at);
        }
        tokio::select! {
            Some(replica) = kill_requests.recv() => {
                if replica == replicas.replica {
                    replicas.kill(restarts.next().unwrap()).await;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }

    // Late reports, for every attempt and by asset, once every job has ended.
    let refs: Vec<(usize, String)> =
        lock(&world).refs.iter().flat_map(|(a, refs)| refs.iter().map(|r| (*a, r.clone()))).collect();
    for (asset, reference) in refs {
        host.report(Duration::ZERO, asset, Target::Reference(reference), Reported::Succeeded, Sent::Late);
    }
    for i in 0..case.jobs.len() {
        host.report(Duration::ZERO, i, Target::Asset, Reported::Succeeded, Sent::Late);
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;

    let store = replicas.store.clone();
    let mut rows = Vec::new();
    for i in 0..case.jobs.len() {
        let row = store.job_of(&asset_id(i)).await.unwrap();
        rows.push(match row {
            Some(row) => {
                let stored = StoredJob::from_row(&row).unwrap();
                let calls = store.calls(row.id).await.unwrap();
                Some((row, stored, calls))
            }
            None => None,
        });
    }
    let r = slot.lock().unwrap().take().unwrap();
    r.shutdown(Duration::from_secs(5)).await;
    drop(r);
    store.close().await;
    let world = std::mem::take(&mut *lock(&world));
    Run { world, rows }
}

// ---------------------------------------------------------------------------------------------------------
// The model: the engine's loop replayed with `decide` and the plan's answers.

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Recovered { attempts: u32, reconciled: bool },
    Failed { kind: VerdictKind, reason: String, attempts: u32 },
    Cancelled { attempts: u32 },
}

fn model(policies: &Policies, i: usize, plan: &Plan) -> (Expected, History) {
    let job = Job::new(asset_id(i));
    let mut f = plan.first.failure();
    let mut h = History::new(job.seed());
    h.record_failure(&f);
    let ctx = Context::new();
    let reconciled = |m: u32| m == 0 && plan.own_done;
    for _ in 0..10_000 {
        let d = policies.decide(&f, &h, &ctx);
        match d.action().clone() {
            Action::Fail { reason } => {
                let kind = if d.is_exhausted() { VerdictKind::Exhausted } else { VerdictKind::Policy };
                return (Expected::Failed { kind, reason: reason.to_string(), attempts: h.attempts() }, h);
            }
            Action::Notify { .. } => h.record(&d),
            Action::Reconcile => {
                if reconciled(h.attempts()) {
                    return (Expected::Recovered { attempts: h.attempts(), reconciled: true }, h);
                }
                h.record(&d);
            }
            action => {
                let n = h.attempts() + 1;
                if d.stage_ref().is_some_and(|s| s.reconcile_first()) && reconciled(n - 1) {
                    return (Expected::Recovered { attempts: h.attempts(), reconciled: true }, h);
                }
                let answer = match action {
                    Action::FixCredentials { scope } => match plan.fix {
                        Fix::Fixed => {
                            h.mark_repaired(scope);
                            plan.answer(n)
                        }
                        Fix::Unable => {
                            h.skip_stage(&d);
                            continue;
                        }
                        Fix::Hang => Answer::Hang,
                    },
                    _ => plan.answer(n),
                };
                h.record(&d);
                let next = match answer {
                    Answer::Succeed => return (Expected::Recovered { attempts: n, reconciled: false }, h),
                    Answer::Fail(code) => code.failure(),
                    Answer::Hang | Answer::Submit(_, Delivery::Lost) => Failure::timeout(f.downstream(), ""),
                    Answer::Error => {
                        let reason = format!("a hook failed: {HOST_ERROR}");
                        return (Expected::Failed { kind: VerdictKind::HookError, reason, attempts: n }, h);
                    }
                    Answer::Submit(Ends::Succeeded, _) => {
                        return (Expected::Recovered { attempts: n, reconciled: false }, h);
                    }
                    Answer::Submit(Ends::Canceled, _) => return (Expected::Cancelled { attempts: n }, h),
                    Answer::Submit(Ends::Failed(code), _) => code.failure(),
                };
                h.record_failure(&next);
                f = next;
            }
        }
    }
    panic!("the model never ended for a{i}: {plan:?}");
}

/// A history as JSON, without what depends on when things happened (no default policy bounds a stage's
/// elapsed time).
fn timeless(h: &History) -> Value {
    let mut v = serde_json::to_value(h).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("elapsed");
        if let Some(Value::Array(positions)) = o.get_mut("positions") {
            for p in positions {
                if let Some(p) = p.as_object_mut() {
                    p.remove("started");
                }
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------------------
// The properties.

fn check(case: &Case, run: &Run) -> Result<(), TestCaseError> {
    let policies = Policies::defaults();
    let w = &run.world;
    prop_assert!(!w.lagged, "an event collector fell behind");
    let killed_at = |t: Timestamp| w.kill_times.contains(&t);
    // Within a time the store failed (writes refused, renewals stuck): a call's answer may not have been written,
    // or its replica may have stopped it for a lease it could not renew; either way its key is repeated.
    let faulted = |t: Timestamp| {
        case.outages.iter().chain(&case.stalls).any(|&(start, long)| {
            let from = START.0 + i64::try_from(start * 1000).unwrap() - 1000;
            let to = START.0 + i64::try_from((start + long) * 1000).unwrap() + 1000;
            (from..=to).contains(&t.0)
        })
    };
    for (i, plan) in case.jobs.iter().enumerate() {
        let id = asset_id(i);
        let Some((row, stored, ledger)) = &run.rows[i] else {
            return Err(TestCaseError::fail(format!("{id} has no row")));
        };
        let ctx = format!("{id} (job {}) {plan:?}", row.id);
        let calls: Vec<&Rec> = w.calls.iter().filter(|c| c.asset == i).collect();

        // Ended once, in the store and for the host.
        prop_assert_eq!(row.phase, lightflow_remedy::store::Phase::Finished, "{} lost: {:?}", ctx, row);
        let finished_at = row.finished_at.unwrap();
        let outcome = stored.outcome.clone().unwrap_or(Outcome::Cancelled { attempts: row.attempts });
        prop_assert_eq!(row.outcome.as_deref(), Some(outcome.kind().as_str()), "{}", ctx);
        let events = w.finished.iter().filter(|(a, _)| *a == id).count();
        prop_assert!(events <= 1, "{}: {} Finished events", ctx, events);
        prop_assert!(events == 1 || killed_at(finished_at), "{}: no Finished event", ctx);
        if let Some((_, kind)) = w.finished.iter().find(|(a, _)| *a == id) {
            prop_assert_eq!(*kind, outcome.kind(), "{}", ctx);
        }
        for c in &calls {
            prop_assert!(c.start <= finished_at, "{}: {:?} called after the job ended", ctx, c);
        }
        for l in ledger {
            prop_assert!(l.started_at <= finished_at, "{}: ledger entry after the end: {:?}", ctx, l);
        }

        // The outcome and the history are what `decide` makes of the plan.
        let (expected, mut history) = model(&policies, i, plan);
        history.set_elapsed(stored.history.elapsed());
        prop_assert_eq!(timeless(&stored.history), timeless(&history), "{}: recorded history", ctx);
        let reconcile_found = |attempt: u32| {
            w.calls
                .iter()
                .any(|c| c.asset == i && c.hook == HookName::Reconcile && c.attempt == Some(attempt) && c.end.is_some())
        };
        match (&outcome, &expected) {
            (
                Outcome::Recovered { attempts, reconciled, .. },
                Expected::Recovered { attempts: want, reconciled: model_reconciled },
            ) => {
                prop_assert_eq!(attempts, want, "{}", ctx);
                // A kill that cut off the attempt's answer: the reconcile before its repeat finds it done.
                prop_assert!(
                    reconciled == model_reconciled || (*reconciled && reconcile_found(*attempts)),
                    "{}: reconciled {} (model {})",
                    ctx,
                    reconciled,
                    model_reconciled
                );
            }
            (Outcome::Failed { verdict }, Expected::Failed { kind, reason, attempts }) => {
                prop_assert_eq!(
                    (verdict.kind, &verdict.reason, verdict.attempts),
                    (*kind, reason, *attempts),
                    "{}",
                    ctx
                );
                // What `decide` says on the recorded history.
                if matches!(verdict.kind, VerdictKind::Policy | VerdictKind::Exhausted) {
                    let d = policies.decide(&stored.failure, &stored.history, &Context::new());
                    prop_assert_eq!(
                        d.action().reason(),
                        Some(verdict.reason.as_str()),
                        "{}: decide on the record",
                        ctx
                    );
                    prop_assert_eq!(d.is_exhausted(), verdict.kind == VerdictKind::Exhausted, "{}", ctx);
                }
                prop_assert_eq!(verdict.last_failure.key(), stored.failure.key(), "{}", ctx);
            }
            (Outcome::Cancelled { attempts }, Expected::Cancelled { attempts: want }) => {
                prop_assert_eq!(attempts, want, "{}", ctx);
            }
            (got, want) => return Err(TestCaseError::fail(format!("{ctx}: ended {got:?}, the model says {want:?}"))),
        }

        // The dead letter: the failed job's verdict, again only after a call a kill cut off.
        let letters: Vec<_> = w.dead_letters.iter().filter(|d| d.0 == i).collect();
        let failed_calls: Vec<&&Rec> = calls.iter().filter(|c| c.hook == HookName::Failed).collect();
        match &outcome {
            Outcome::Failed { verdict } => {
                prop_assert!(!letters.is_empty(), "{}: no dead letter", ctx);
                for (_, job, kind, reason) in &letters {
                    prop_assert_eq!((*job, *kind, reason), (row.id, verdict.kind, &verdict.reason), "{}", ctx);
                }
                let answered: Vec<_> = failed_calls.iter().filter(|c| c.end.is_some()).collect();
                prop_assert!(!answered.is_empty(), "{}: the failed hook never answered", ctx);
                for c in &answered[..answered.len() - 1] {
                    let end = c.end.unwrap();
                    prop_assert!(
                        killed_at(end) || faulted(end),
                        "{}: the failed hook answered twice: {:?}",
                        ctx,
                        calls
                    );
                }
            }
            _ => prop_assert!(letters.is_empty() && failed_calls.is_empty(), "{}: a dead letter", ctx),
        }

        // No call while another of the job's is under way; after an attempt's call cut off by a kill, no
        // side-effecting call before a reconcile of that attempt.
        for (j, c) in calls.iter().enumerate() {
            for earlier in &calls[..j] {
                let over = earlier.end.or(earlier.dropped.map(|d| d.0));
                prop_assert!(
                    over.is_some_and(|t| t <= c.start),
                    "{}: {:?} started while {:?} was under way",
                    ctx,
                    c,
                    earlier
                );
                let Some((dropped, true)) = earlier.dropped else { continue };
                let attempt_call =
                    matches!(earlier.hook, HookName::Resubmit | HookName::Republish | HookName::FixCredentials);
                if !attempt_call || !c.hook.has_side_effects() {
                    continue;
                }
                let reconciled = calls[..j].iter().any(|r| {
                    r.hook == HookName::Reconcile
                        && r.start >= dropped
                        && (earlier.attempt.is_none() || r.attempt == earlier.attempt)
                });
                prop_assert!(reconciled, "{}: {:?} after {:?} was cut off, without a reconcile of it", ctx, c, earlier);
            }
        }

        // The attempts' keys: the job's own, one per attempt, in order; the same key again only for a call
        // whose answer a kill cut off.
        let attempts: Vec<&&Rec> =
            calls.iter().filter(|c| matches!(c.hook, HookName::Resubmit | HookName::Republish)).collect();
        let mut highest = 0;
        for (j, c) in attempts.iter().enumerate() {
            let n = c.attempt.unwrap();
            prop_assert_eq!(c.key.clone().unwrap(), format!("{id}#{}.{n}", row.id), "{}", ctx);
            // A `fix_credentials` that timed out used an attempt of its stage without a resubmission: its number
            // is skipped.
            prop_assert!(n >= highest, "{}: attempt {} after {}", ctx, n, highest);
            if n == highest {
                let before = attempts[..j].iter().rev().find(|e| e.attempt == Some(n)).unwrap();
                let cut = before.dropped.is_some_and(|d| d.1 || faulted(d.0))
                    || before.end.is_some_and(|t| killed_at(t) || faulted(t));
                prop_assert!(cut, "{}: attempt {} repeated after it answered: {:?}", ctx, n, before);
            }
            highest = n;
        }
        prop_assert!(highest <= row.attempts, "{}: attempt {} made, {} recorded", ctx, highest, row.attempts);
    }

    // Reports that must change nothing. A reference the engine never took (its `Submitted` answer was cut off
    // by a kill, and the reconcile found the attempt done) is unknown to it: a report for it is held.
    let known = |asset: usize, reference: &str| {
        let submitted = format!("submitted {reference}");
        run.rows[asset]
            .as_ref()
            .is_some_and(|(_, _, ledger)| ledger.iter().any(|l| l.answer.as_deref() == Some(&submitted)))
    };
    for (asset, sent, target, answer) in &w.reports {
        let ok = match sent {
            Sent::Stale => matches!(answer, ReportAnswer::OlderAttempt { .. } | ReportAnswer::Finished { .. }),
            Sent::Phantom => *answer == ReportAnswer::Held,
            Sent::Late => match target {
                Target::Reference(r) if !known(*asset, r) => *answer == ReportAnswer::Held,
                _ => matches!(answer, ReportAnswer::Finished { .. }),
            },
            Sent::Primary | Sent::Dup => !matches!(answer, ReportAnswer::Unknown),
        };
        prop_assert!(ok, "a{}: a {:?} report to {:?} answered {:?}", asset, sent, target, answer);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_job_ends_once_as_decide_says_through_kills_and_reports(case in case()) {
        let run = runtime().block_on(run(&case));
        check(&case, &run)?;
    }
}
