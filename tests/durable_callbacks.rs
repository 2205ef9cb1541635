//! A host that learns its attempts' results from LightFlow's callbacks, on the SQLite store (a temp file,
//! under paused time), killed every few minutes and restarted on the same file: every job ends once, as
//! `decide` says.
//!
//! A simulated LightFlow takes each resubmission (`POST /assets`: a new uuid, an encode of some minutes) and
//! calls the asset's callbacks as lightflow-api.md describes them: the `POST` form (a JSON body with `uuid`,
//! `assetName`, `inputUrl`, `username`, `startDate`, `endDate`, `status` and, on error, `assetError`; a
//! `running` notice first; the final one sent twice) or the `GET` form (the host's URL, `?asset=<id>`, with
//! `status` and `endDate` appended, no `uuid`). The host's handler reads a request with the crate's
//! classifier (`Callback::from_request`) and hands it to `report_callback`; while the host is down its
//! handler answers 503 and LightFlow calls again later.
#![cfg(feature = "sqlite")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use lightflow_remedy::classify::Callback;
use lightflow_remedy::decide::{CredentialScope, LivePolicies};
use lightflow_remedy::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, Event, HookError, Hooks, Job, JobId, Outcome, OutcomeKind, Pending,
    Reconciled, Remediator, ReportAnswer, Reported, StoreSettings, StoredJob, Verdict,
};
use lightflow_remedy::store::{Clock, Phase, SqliteStore, Store, StoreOptions, Timestamp, TokioClock};
use lightflow_remedy::{Action, Context, Failure, History, Policies};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

const ASSETS: usize = 24;
const LEASE: Duration = Duration::from_secs(30);
/// How long LightFlow waits before it calls a callback again that answered 503.
const REDELIVER: Duration = Duration::from_secs(30);
/// Where the store's clock starts: 2027-01-01.
const START: Timestamp = Timestamp(1_798_761_600_000);
const HORIZON: Duration = Duration::from_secs(3 * 24 * 3600);

/// How an encode ends at LightFlow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ends {
    Finished,
    Error(u16),
    Canceled,
}

/// The codes encodes fail with: transient ones the defaults retry, and a few they do not.
const CODES: [u16; 11] = [2001, 2503, 3005, 4001, 2504, 2051, 6001, 2404, 2002, 1003, 2003];

/// How attempt `n` of asset `asset` ends, after how many minutes, and the form of its final callback: a few
/// failures, then the encode finishes; some assets' second attempts are canceled by their owner.
fn encode(asset: usize, n: u32) -> (Ends, u64, bool) {
    let failures = asset % 4;
    let ends = if asset % 7 == 6 && n == 2 {
        Ends::Canceled
    } else if (n as usize) <= failures {
        Ends::Error(CODES[(asset + n as usize) % CODES.len()])
    } else {
        Ends::Finished
    };
    let minutes = 2 + (asset as u64 * 7 + u64::from(n) * 13) % 38;
    let get_form = (asset + n as usize).is_multiple_of(3);
    (ends, minutes, get_form)
}

fn first_failure(asset: usize) -> Failure {
    let code = [2001, 2503, 4001, 3005, 2051, 2429][asset % 6];
    let document = format!(
        r#"{{"uuid": "first-{asset}", "status": "error", "assetError": {{"code": {code}, "message": "LightFlow says {code}"}}}}"#
    );
    Failure::from_json(&document, SystemTime::UNIX_EPOCH).unwrap()
}

fn asset_id(i: usize) -> String {
    format!("a{i}")
}

/// A callback request as LightFlow makes it: the query of the URL it calls, and the body of a `POST`.
#[derive(Debug, Clone)]
struct Request {
    asset: usize,
    query: String,
    body: Option<String>,
}

fn status(ends: Ends) -> &'static str {
    match ends {
        Ends::Finished => "finished",
        Ends::Error(_) => "error",
        Ends::Canceled => "canceled",
    }
}

/// The `POST` callback: the host's URL `?asset=<id>`, and LightFlow's JSON body.
fn post(
    asset: usize,
    uuid: &str,
    status: &str,
    error: Option<u16>,
    start: Timestamp,
    end: Option<Timestamp>,
) -> Request {
    let mut body = json!({
        "uuid": uuid,
        "assetName": format!("trailer {asset}"),
        "inputUrl": format!("https://media.example.com/in/{asset}.mp4"),
        "username": "ops@example.com",
        "startDate": start.to_string(),
        "status": status,
    });
    if let Some(end) = end {
        body["endDate"] = json!(end.to_string());
    }
    if let Some(code) = error {
        body["assetError"] = json!({ "code": code, "message": format!("LightFlow error {code}") });
    }
    Request { asset, query: format!("asset={}", asset_id(asset)), body: Some(body.to_string()) }
}

/// The `GET` callback: the host's URL `?asset=<id>` with `status` and `endDate` appended (percent-encoded).
fn get(asset: usize, status: &str, end: Timestamp) -> Request {
    let end = end.to_string().replace(':', "%3A");
    Request { asset, query: format!("asset={}&status={status}&endDate={end}", asset_id(asset)), body: None }
}

/// The final callback of an encode.
fn final_callback(asset: usize, uuid: &str, ends: Ends, get_form: bool, start: Timestamp, end: Timestamp) -> Request {
    let error = match ends {
        Ends::Error(code) => Some(code),
        _ => None,
    };
    if get_form { get(asset, status(ends), end) } else { post(asset, uuid, status(ends), error, start, Some(end)) }
}

/// One asset at LightFlow.
struct LfAsset {
    ends: Ends,
    ends_at: Timestamp,
}

#[derive(Default)]
struct World {
    /// LightFlow's assets by uuid, and the uuid of each attempt key it took.
    assets: HashMap<String, LfAsset>,
    by_key: HashMap<String, String>,
    next_uuid: u64,
    dead_letters: Vec<(usize, JobId, String)>,
    /// Every callback handled: the asset, whether it was a `GET`, whether it had been refused (503) before,
    /// and what the engine answered (`None`: not an end).
    handled: Vec<(usize, bool, bool, Option<ReportAnswer>)>,
    refused: u64,
    finished: Vec<(String, OutcomeKind)>,
    kill_times: Vec<Timestamp>,
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

type Slot = Arc<Mutex<Option<Remediator<Arc<Host>>>>>;

fn live(slot: &Slot) -> Option<Remediator<Arc<Host>>> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The host: resubmits through LightFlow (once per attempt key: a repeat finds the asset it created) and
/// answers `reconcile` and `check` from LightFlow's assets.
struct Host {
    clock: Arc<TokioClock>,
    world: Arc<Mutex<World>>,
    /// Where LightFlow's callbacks go; it holds the live replica, not the host.
    callbacks: tokio::sync::mpsc::UnboundedSender<(Instant, Request)>,
}

impl Host {
    async fn submit(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        // POST /assets takes a moment.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let asset: usize = job.asset_id()[1..].parse().unwrap();
        let now = self.clock.now();
        let mut w = lock(&self.world);
        if let Some(uuid) = w.by_key.get(&key.to_string()) {
            return Ok(Attempt::Submitted { reference: uuid.clone() });
        }
        w.next_uuid += 1;
        let uuid = format!("6f1c{:04x}-0000-4000-8000-{:012x}", asset, w.next_uuid);
        let (ends, minutes, get_form) = encode(asset, key.attempt);
        let ends_at = now.after(Duration::from_secs(minutes * 60));
        w.by_key.insert(key.to_string(), uuid.clone());
        w.assets.insert(uuid.clone(), LfAsset { ends, ends_at });
        drop(w);
        let at = |after: Duration| Instant::now() + after;
        let running = post(asset, &uuid, "running", None, now, None);
        let last = final_callback(asset, &uuid, ends, get_form, now, ends_at);
        let duplicate = final_callback(asset, &uuid, ends, false, now, ends_at);
        let _ = self.callbacks.send((at(Duration::from_secs(5)), running));
        let _ = self.callbacks.send((at(Duration::from_secs(minutes * 60)), last));
        let _ = self.callbacks.send((at(Duration::from_secs(minutes * 60 + 45)), duplicate));
        Ok(Attempt::Submitted { reference: uuid })
    }

    fn status(&self, uuid: Option<&String>) -> Option<Ends> {
        let now = self.clock.now();
        let w = lock(&self.world);
        uuid.and_then(|u| w.assets.get(u)).filter(|a| a.ends_at <= now).map(|a| a.ends)
    }
}

impl Hooks for Host {
    async fn resubmit(&self, job: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        self.submit(job, key).await
    }

    async fn republish(&self, job: &Job, _: &str, _: bool, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        self.submit(job, key).await
    }

    async fn fix_credentials(&self, _: &Job, _: CredentialScope) -> Result<CredentialFix, HookError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(CredentialFix::Fixed)
    }

    /// `GET /assets?uuid=...`: done if the attempt's asset finished.
    async fn reconcile(&self, _: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let uuid = lock(&self.world).by_key.get(&key.to_string()).cloned();
        Ok(if self.status(uuid.as_ref()) == Some(Ends::Finished) { Reconciled::Done } else { Reconciled::NotDone })
    }

    async fn check(&self, _: &Job, pending: &Pending<'_>) -> Result<Checked, HookError> {
        Ok(match self.status(Some(&pending.reference.to_owned())) {
            Some(Ends::Finished) => Checked::Succeeded,
            Some(Ends::Error(code)) => Checked::Failed(Failure::asset(code, "checked").unwrap()),
            Some(Ends::Canceled) | None => Checked::Running,
        })
    }

    async fn failed(&self, job: &Job, verdict: &Verdict) -> Result<(), HookError> {
        let asset = job.asset_id()[1..].parse().unwrap();
        lock(&self.world).dead_letters.push((asset, job.job_id(), verdict.reason.clone()));
        Ok(())
    }
}

/// The host's callback handler: 503 (`Err`) while it is down.
async fn handle(slot: &Slot, request: &Request) -> Result<Option<ReportAnswer>, ()> {
    let r = live(slot).ok_or(())?;
    let callback = Callback::from_request(Some(&request.query), request.body.as_deref())
        .unwrap_or_else(|e| panic!("LightFlow's callback {request:?} does not read: {e}"));
    r.report_callback(&callback).await.map_err(|_| ())
}

/// LightFlow's side of the callbacks: each at its time, again after a 503.
async fn deliver(
    mut requests: tokio::sync::mpsc::UnboundedReceiver<(Instant, Request)>,
    slot: Slot,
    world: Arc<Mutex<World>>,
) {
    while let Some((at, request)) = requests.recv().await {
        let (slot, world) = (slot.clone(), world.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let mut refused = false;
            loop {
                if let Ok(answer) = handle(&slot, &request).await {
                    let get_form = request.body.is_none();
                    lock(&world).handled.push((request.asset, get_form, refused, answer));
                    return;
                }
                refused = true;
                lock(&world).refused += 1;
                tokio::time::sleep(REDELIVER).await;
            }
        });
    }
}

async fn collect(mut events: tokio::sync::broadcast::Receiver<Event>, world: Arc<Mutex<World>>) {
    while let Ok(event) = events.recv().await {
        if let Event::Finished { asset_id, outcome } = event {
            lock(&world).finished.push((asset_id.to_string(), outcome));
        }
    }
}

async fn open(path: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path, &StoreOptions::default().hold_time(true).pool_size(1)).await.unwrap())
}

fn start(
    store: &Arc<SqliteStore>,
    policies: &Arc<LivePolicies>,
    host: &Arc<Host>,
    clock: &Arc<TokioClock>,
    world: &Arc<Mutex<World>>,
    replica: u64,
) -> Remediator<Arc<Host>> {
    let settings = StoreSettings {
        lease: LEASE,
        poll_every: Duration::from_secs(3600),
        owner: Some(format!("host-{replica}")),
        ..StoreSettings::default()
    };
    let r = Remediator::builder(policies.clone(), host.clone())
        .without_circuit_breaker()
        .event_capacity(1 << 16)
        .store_with(store.clone(), clock.clone(), settings)
        .build();
    tokio::spawn(collect(r.subscribe(), world.clone()));
    r
}

/// What `decide` makes of an asset's encodes, their failures read from the same callbacks LightFlow sends.
fn expected(policies: &Policies, asset: usize) -> (OutcomeKind, u32, Option<String>) {
    let mut f = first_failure(asset);
    let mut h = History::new(Job::new(asset_id(asset)).seed());
    h.record_failure(&f);
    for _ in 0..1000 {
        let d = policies.decide(&f, &h, &Context::new());
        match d.action().clone() {
            Action::Fail { reason } => return (OutcomeKind::Failed, h.attempts(), Some(reason.to_string())),
            // Notices are sent; a reconcile finds nothing done (every earlier attempt failed).
            Action::Notify { .. } | Action::Reconcile => h.record(&d),
            action => {
                if let Action::FixCredentials { scope } = action {
                    h.mark_repaired(scope);
                }
                h.record(&d);
                let n = h.attempts();
                let (ends, _, get_form) = encode(asset, n);
                let request = final_callback(asset, "uuid", ends, get_form, START, START);
                let callback = Callback::from_request(Some(&request.query), request.body.as_deref()).unwrap();
                match Reported::from_callback(callback.result()).unwrap() {
                    Reported::Succeeded => return (OutcomeKind::Recovered, n, None),
                    Reported::Canceled => return (OutcomeKind::Cancelled, n, None),
                    Reported::Failed { failure } => {
                        // A `GET` callback says `error` without a code: the engine asks `check`, which finds the
                        // encode's own.
                        let failure = match ends {
                            Ends::Error(code) if failure.code() == Failure::NO_CODE => {
                                Failure::asset(code, "checked").unwrap()
                            }
                            _ => failure,
                        };
                        h.record_failure(&failure);
                        f = failure;
                    }
                }
            }
        }
    }
    panic!("a{asset} never ends");
}

#[test]
fn a_host_fed_by_callbacks_and_killed_mid_run_ends_every_job_once() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let clock = Arc::new(TokioClock::starting_at(START));
        let world = Arc::new(Mutex::new(World::default()));
        let (callbacks, requests) = tokio::sync::mpsc::unbounded_channel();
        let host = Arc::new(Host { clock: clock.clone(), world: world.clone(), callbacks });
        let policies: Arc<LivePolicies> = Policies::defaults().into();
        let slot: Slot = Arc::default();
        tokio::spawn(deliver(requests, slot.clone(), world.clone()));
        let mut store = open(&path).await;
        let mut replica = 0;
        *slot.lock().unwrap() = Some(start(&store, &policies, &host, &clock, &world, replica));

        // A kill every 3 to 9 minutes (a fixed sequence), each restart taking up to 20 s.
        let mut draw = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |range: u64| {
            draw ^= draw << 13;
            draw ^= draw >> 7;
            draw ^= draw << 17;
            draw % range
        };
        let t0 = Instant::now();
        let mut enqueued = 0;
        let mut kill_at = t0 + Duration::from_secs(180 + next(360));
        loop {
            let now = Instant::now();
            while enqueued < ASSETS && t0 + Duration::from_secs(20 * enqueued as u64) <= now {
                let r = live(&slot).unwrap();
                r.enqueue(Job::new(asset_id(enqueued)), first_failure(enqueued)).await.unwrap();
                enqueued += 1;
            }
            if kill_at <= now {
                let r = slot.lock().unwrap().take().unwrap();
                lock(&world).kill_times.push(clock.now());
                r.crash();
                drop(r);
                store.close().await;
                tokio::time::sleep(Duration::from_secs(next(20))).await;
                replica += 1;
                store = open(&path).await;
                *slot.lock().unwrap() = Some(start(&store, &policies, &host, &clock, &world, replica));
                kill_at = Instant::now() + Duration::from_secs(180 + next(360));
                continue;
            }
            let stats = store.stats(clock.now()).await.unwrap();
            let finished: u64 = stats.by_outcome.values().sum();
            if enqueued == ASSETS && finished == ASSETS as u64 {
                break;
            }
            assert!(now.duration_since(t0) < HORIZON, "jobs still active: {stats:?}");
            let arrival = t0 + Duration::from_secs(20 * enqueued as u64);
            let wake = if enqueued < ASSETS { arrival.min(kill_at) } else { kill_at };
            tokio::time::sleep_until(wake.min(now + Duration::from_secs(60))).await;
        }
        // Late and duplicate callbacks still on their way.
        tokio::time::sleep(Duration::from_secs(3600)).await;

        let w = std::mem::take(&mut *lock(&world));
        assert!(w.kill_times.len() >= 5, "{} kills", w.kill_times.len());
        assert!(w.refused > 0, "no callback came while the host was down");
        let policies = Policies::defaults();
        for asset in 0..ASSETS {
            let id = asset_id(asset);
            let row = store.job_of(&id).await.unwrap().unwrap();
            assert_eq!(row.phase, Phase::Finished, "{id}: {row:?}");
            let stored = StoredJob::from_row(&row).unwrap();
            let outcome = stored.outcome.clone().unwrap();
            let (kind, attempts, reason) = expected(&policies, asset);
            let got = match &outcome {
                Outcome::Recovered { attempts, .. } | Outcome::Cancelled { attempts } => {
                    (outcome.kind(), *attempts, None)
                }
                Outcome::Failed { verdict } => (outcome.kind(), verdict.attempts, Some(verdict.reason.clone())),
                Outcome::Suspended { .. } => panic!("{id} suspended"),
            };
            assert_eq!(got, (kind, attempts, reason.clone()), "{id}");
            // Ended once: one Finished event (none only if the process was killed as the end was written), and
            // a failed job's verdict in the host's dead-letter queue under its own job id.
            let events = w.finished.iter().filter(|(a, _)| *a == id).count();
            let finished_at = row.finished_at.unwrap();
            assert!(
                events == 1 || (events == 0 && w.kill_times.contains(&finished_at)),
                "{id}: {events} Finished events"
            );
            let letters: Vec<_> = w.dead_letters.iter().filter(|d| d.0 == asset).collect();
            match kind {
                OutcomeKind::Failed => {
                    assert!(!letters.is_empty(), "{id}: no dead letter");
                    assert!(
                        letters.iter().all(|d| d.1 == row.id && Some(&d.2) == reason.as_ref()),
                        "{id}: {letters:?}"
                    );
                }
                _ => assert!(letters.is_empty(), "{id}: {letters:?}"),
            }
        }
        // Both forms of callback were the results of attempts, some only after the host had refused them.
        let applied = |get_form: bool| {
            w.handled
                .iter()
                .filter(|h| {
                    h.1 == get_form
                        && matches!(
                            h.3,
                            Some(ReportAnswer::Applied { .. } | ReportAnswer::Early { .. } | ReportAnswer::Held)
                        )
                })
                .count()
        };
        assert!(applied(true) > 0 && applied(false) > 0, "{:?}", w.handled);
        assert!(w.handled.iter().any(|h| h.2 && h.3.is_some()), "no refused callback was a result");
        // `running` notices report nothing; duplicates and late callbacks change nothing.
        assert!(w.handled.iter().all(|h| !matches!(h.3, Some(ReportAnswer::Unknown))), "{:?}", w.handled);
        let r = slot.lock().unwrap().take().unwrap();
        r.shutdown(Duration::from_secs(5)).await;
        store.close().await;
    });
}
