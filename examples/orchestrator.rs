//! An orchestrator that embeds the remediation engine on a SQLite store, against a simulated LightFlow, and
//! goes on after a crash in the middle.
//!
//! What it shows of a host's integration:
//!
//! - **The store.** The jobs live in one SQLite file (a temporary one, or the path given), not in this process:
//!   `Remediator::builder(..).store_with(store, clock, settings)`, failures handed over with
//!   `enqueue(..).await`.
//! - **Attempts that finish later.** The hooks (`Host`) talk to a simulated LightFlow. A resubmission is a
//!   `POST /assets`: LightFlow takes it and the hook answers `Attempt::Submitted { reference: uuid }`. The
//!   encode runs for minutes; LightFlow tells the host's callback endpoint that it is running (the `GET` form)
//!   and then how it ended (the `POST` form, JSON), now and then twice, now and then never. A few `POST`s fail
//!   outright (API 503 or 429, with `Retry-After`); encodes end in `error` with catalogue codes, or are canceled
//!   by their owner.
//! - **The callback endpoint.** Each request is read with `Callback::from_request` and handed to
//!   `Remediator::report_callback`; its answer (`applied`, `held`, `duplicate`, `older_attempt`, `finished`,
//!   or none for `running`) is tallied. An end that was never called back is found by the `check` hook once
//!   `await_result` (30 minutes here) runs out.
//! - **A crash.** Eight minutes in, while jobs wait for their delays and encodes and an attempt is under way,
//!   the remediator is killed (`crash()`: no shutdown, its leases left to expire) and the host is down for
//!   90 s: callbacks sent meanwhile are lost, new failures wait in the pipeline's queue. A new remediator is
//!   built on the same file and goes on: the attempt that was under way is reconciled and repeated with the
//!   same idempotency key, and LightFlow answers it with the encode it had already started.
//! - **Exactly once.** At the end the store is read back: one job per asset, each finished, each end told once
//!   by the replicas' event streams, each failed job dead-lettered once.
//!
//! Time is tokio's paused clock, and the store holds it still while SQLite works (`StoreOptions::hold_time`),
//! so hours of remediation pass in a second or two. `tests/orchestrator.rs` runs it.
//!
//! ```text
//! cargo run --example orchestrator
//! cargo run --example orchestrator -- /tmp/jobs.db      # keep the file: remedy jobs --store sqlite:///tmp/jobs.db list
//! cargo run --example orchestrator -- --assets 200 --seed 3
//! ```
//!
//! (Longer than 500 lines: a host, a simulated service and the account of a run belong together here.)

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightflow_remedy::classify::Callback;
use lightflow_remedy::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, Event, HookError, Hooks, Job, Notice, Pending, Reconciled, Remediator,
    StoreSettings, StoredJob, Verdict,
};
use lightflow_remedy::store::{
    ListFilter, Phase, ReportAnswer, SqliteStore, Store, StoreOptions, Timestamp, TokioClock,
};
use lightflow_remedy::{CredentialScope, Failure, LivePolicies, Policies};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Map, Value, json};
use tokio::time::{Instant, sleep};

const USAGE: &str = "\
usage: orchestrator [DB] [--assets N] [--seed N]

  DB          the SQLite file the jobs are kept in (default: a temporary file, removed at the end)
  --assets N  failed assets handed to the engine (default 40)
  --seed N    seed of the simulated LightFlow and of the jobs' jitter (default 7)";

/// New failures come from the pipeline's queue over this much simulated time.
const ARRIVALS_OVER: Duration = Duration::from_secs(20 * 60);
/// When the first remediator is killed (at the first moment after it that an attempt is under way).
const CRASH_AT: Duration = Duration::from_secs(8 * 60);
/// How long the host is down.
const DOWN_FOR: Duration = Duration::from_secs(90);
/// How long a submitted encode may take to call back before the engine asks `check` (the default is 6 h).
const AWAIT_RESULT: Duration = Duration::from_secs(30 * 60);
/// How often the run looks whether every job has ended.
const LOOK_EVERY: Duration = Duration::from_secs(10);
/// The run gives up after this much simulated time (the jobs left count as not ended).
const HORIZON: Duration = Duration::from_secs(3 * 24 * 3600);
/// Where the store's clock starts: 2026-01-01, so that its times read as dates.
const CLOCK_START: Timestamp = Timestamp(1_767_225_600_000);

// ---------------------------------------------------------------------------------------------------------------
// Command line

/// What to run.
pub struct Options {
    /// Failed assets handed to the engine.
    pub assets: usize,
    /// Seed of the simulated LightFlow and of the jobs' jitter.
    pub seed: u64,
    /// The SQLite file; `None`: a temporary one.
    pub db: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { assets: 40, seed: 7, db: None }
    }
}

/// `Ok(None)` means: help was asked for.
fn parse_args() -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if !flag.starts_with('-') {
            options.db = Some(PathBuf::from(flag));
            continue;
        }
        if flag != "--assets" && flag != "--seed" {
            return Err(format!("unknown option `{flag}`"));
        }
        let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: `{v}` is not a whole number"));
        match flag.as_str() {
            "--assets" => options.assets = usize::try_from(number(&value)?).map_err(|e| e.to_string())?.max(1),
            _ => options.seed = number(&value)?,
        }
    }
    Ok(Some(options))
}

fn main() {
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => return println!("{USAGE}"),
        Err(message) => {
            eprintln!("orchestrator: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run_paused(&options, &mut std::io::stdout()) {
        eprintln!("orchestrator: {e}");
        std::process::exit(1);
    }
}

/// Runs [`run`] on a runtime of its own whose clock starts paused (with I/O, for SQLite).
pub fn run_paused(options: &Options, out: &mut dyn Write) -> Result<Report, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(run(options, out))
}

// ---------------------------------------------------------------------------------------------------------------
// The simulated LightFlow

/// How a first failure reached the host: the asset's error callback, or the pipeline's own `POST /assets` that
/// LightFlow's API refused.
#[derive(Clone, Copy)]
enum First {
    Asset(u16, &'static str),
    Api(u16, &'static str),
}

/// The first failures, by weight.
const FIRST_FAILURES: &[(u32, First)] = &[
    (20, First::Asset(2001, "Error downloading input file: connection reset by peer")),
    (8, First::Asset(2503, "Error downloading input file: remote server returned HTTP 503")),
    (8, First::Asset(3005, "Error publishing asset on Brightcove")),
    (5, First::Asset(3001, "Cannot connect to Brightcove")),
    (5, First::Asset(2007, "Access denied to the input storage")),
    (3, First::Asset(3003, "The reference id of this asset is already in use in Brightcove")),
    (3, First::Asset(2404, "Error downloading input file: remote server returned HTTP 404")),
    (2, First::Asset(2003, "The input file is invalid or corrupt")),
    (2, First::Asset(1001, "Unknown error")),
    (4, First::Api(503, r#"{"message": "Service Unavailable"}"#)),
];

/// How an encode ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Finished,
    Error(u16, &'static str),
    Canceled,
}

/// How often an encode ends in error, and with what; 2% are canceled by their owner; the rest finish.
const ENCODE_ERRORS: &[(f64, u16, &str)] = &[
    (0.08, 2001, "Error downloading input file: connection reset by peer"),
    (0.03, 2503, "Error downloading input file: remote server returned HTTP 503"),
    (0.04, 3005, "Error publishing asset on Brightcove"),
    (0.02, 2007, "Access denied to the input storage"),
    (0.01, 2404, "Error downloading input file: remote server returned HTTP 404"),
    (0.01, 7001, "Error encoding the input"),
];
const CANCELED: f64 = 0.02;

/// How often a `POST /assets` itself fails: status, Retry-After, body.
const POST_FAILURES: &[(f64, u16, &str, &str)] = &[
    (0.05, 503, "20", r#"{"message": "Service Unavailable"}"#),
    (0.02, 429, "30", r#"{"message": "Too Many Requests"}"#),
];

/// What LightFlow answered to a `POST /assets`, kept by idempotency key.
#[derive(Debug, Clone, PartialEq)]
enum Posted {
    Created(String),
    Refused { status: u16, retry_after: &'static str, body: &'static str },
}

/// One asset as the simulated service sees it.
struct AssetSim {
    /// Its own stream of draws, so that its story does not depend on how jobs interleave.
    rng: Xoshiro256PlusPlus,
    /// Downloads fail with 2007 until `fix_credentials` repairs them.
    credentials_broken: bool,
    /// A 3003 that was in fact this asset's own earlier publication: `reconcile` finds it done.
    published_already: bool,
}

/// One encode: a LightFlow asset created by a `POST /assets`.
struct Encode {
    ends_at: Instant,
    end: End,
}

#[derive(Default)]
struct SimState {
    assets: HashMap<String, AssetSim>,
    encodes: HashMap<String, Encode>,
    /// Answers by idempotency key: a repeated key gets the first answer and starts nothing new.
    posted: HashMap<String, Posted>,
    posts: u32,
    repeated_keys: Vec<(Duration, String)>,
    in_flight: u32,
    checks: u32,
    reconciles: Vec<(Duration, String, bool)>,
    notices: u32,
    dead_letters: HashMap<String, u32>,
}

struct LightFlow {
    seed: u64,
    epoch: Instant,
    endpoint: Endpoint,
    state: Mutex<SimState>,
}

impl LightFlow {
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn since(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// A date `after` from now as LightFlow writes them (`2026-01-01T00:12:03.250Z`), on the store's clock.
    fn date(&self, after: Duration) -> String {
        let ms = CLOCK_START.after(self.since() + after).0;
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
    }

    fn asset<'s>(&self, state: &'s mut SimState, asset_id: &str) -> &'s mut AssetSim {
        let seed = mix(self.seed, fnv(asset_id));
        state.assets.entry(asset_id.to_owned()).or_insert_with(|| AssetSim {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            credentials_broken: false,
            published_already: false,
        })
    }

    /// How asset `i` first failed, as the host learns it: the asset's `error` callback (the `POST` form), or
    /// the pipeline's own `POST /assets` refused by the API.
    fn first_failure(&self, asset_id: &str) -> Result<Failure, Box<dyn Error>> {
        let first = {
            let mut state = self.state();
            let asset = self.asset(&mut state, asset_id);
            let total: u32 = FIRST_FAILURES.iter().map(|(w, _)| w).sum();
            let mut x = asset.rng.random_range(0..total);
            let mut first = FIRST_FAILURES[0].1;
            for &(weight, f) in FIRST_FAILURES {
                if x < weight {
                    first = f;
                    break;
                }
                x -= weight;
            }
            match first {
                First::Asset(2007, _) => asset.credentials_broken = true,
                First::Asset(3003, _) => asset.published_already = asset.rng.random_bool(0.5),
                _ => {}
            }
            first
        };
        Ok(match first {
            First::Asset(code, message) => {
                let body = json!({
                    "uuid": format!("lf-first-{asset_id}"), "assetName": asset_id, "status": "error",
                    "endDate": self.date(Duration::ZERO), "assetError": { "code": code, "message": message },
                });
                match Callback::from_request(Some(&format!("asset={asset_id}")), Some(&body.to_string()))?.result() {
                    lightflow_remedy::classify::CallbackResult::Failed(failure) => failure,
                    other => return Err(format!("an error callback read as {other:?}").into()),
                }
            }
            First::Api(status, body) => Failure::from_api_response(status, body, Some("20"), SystemTime::now())?,
        })
    }

    /// `POST /assets` (for a resubmission, or a re-publication, which LightFlow has no endpoint of its own for).
    /// The encode starts when the request arrives; the answer comes back after the call's latency.
    async fn post_asset(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        let key = key.to_string();
        let asset_id = job.asset_id().to_owned();
        let (latency, posted) = {
            let mut state = self.state();
            state.in_flight += 1;
            if let Some(posted) = state.posted.get(&key).cloned() {
                // The engine repeats an attempt whose answer it lost: the same key gets the same answer.
                let at = self.since();
                state.repeated_keys.push((at, key.clone()));
                (Duration::from_millis(300), posted)
            } else {
                state.posts += 1;
                let n = state.posts;
                let asset = self.asset(&mut state, &asset_id);
                let latency = Duration::from_millis(asset.rng.random_range(300..3000));
                let mut x = asset.rng.random::<f64>();
                let mut refused = None;
                for &(p, status, retry_after, body) in POST_FAILURES {
                    if x < p {
                        refused = Some(Posted::Refused { status, retry_after, body });
                        break;
                    }
                    x -= p;
                }
                let posted = match refused {
                    Some(refused) => refused,
                    None => {
                        let (end, runs_for) = draw_end(asset);
                        let uuid = format!("lf-{n:04}");
                        let ends_at = Instant::now() + runs_for;
                        state.encodes.insert(uuid.clone(), Encode { ends_at, end });
                        self.endpoint.call_back(self, &asset_id, &key, &uuid, end, runs_for, &mut state);
                        Posted::Created(uuid)
                    }
                };
                state.posted.insert(key, posted.clone());
                (latency, posted)
            }
        };
        let _in_flight = InFlight(self);
        sleep(latency).await;
        match posted {
            Posted::Created(uuid) => {
                job.set_meta("lightflow_uuid", uuid.as_str());
                Ok(Attempt::Submitted { reference: uuid })
            }
            Posted::Refused { status, retry_after, body } => {
                Failure::from_api_response(status, body, Some(retry_after), SystemTime::now())
                    .map(Attempt::Failed)
                    .map_err(|e| HookError::new(format!("unclassifiable LightFlow answer: {e}")))
            }
        }
    }
}

/// How an encode of `asset` ends, and after how long.
fn draw_end(asset: &mut AssetSim) -> (End, Duration) {
    if asset.credentials_broken {
        return (End::Error(2007, "Access denied to the input storage"), Duration::from_secs(60));
    }
    let runs_for = Duration::from_secs(asset.rng.random_range(180..1200));
    let mut x = asset.rng.random::<f64>();
    for &(p, code, message) in ENCODE_ERRORS {
        if x < p {
            if code == 2007 {
                asset.credentials_broken = true;
            }
            return (End::Error(code, message), runs_for);
        }
        x -= p;
    }
    (if x < CANCELED { End::Canceled } else { End::Finished }, runs_for)
}

/// An attempt in flight until dropped: when it answers, or when the engine drops the call.
struct InFlight<'a>(&'a LightFlow);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// FNV-1a of a text, to seed an asset's draws from its id.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Mixes the run's seed into another number (SplitMix64's finalizer).
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(n);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------------------------
// The host: its hooks, and its callback endpoint

/// The hooks: a LightFlow client, cheap to clone, shared by the remediators before and after the crash.
#[derive(Clone)]
struct Host(Arc<LightFlow>);

impl Hooks for Host {
    async fn resubmit(
        &self,
        job: &Job,
        _amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        // A real host applies `amend` (e.g. {"4k": false}) to the request and sends `key` as its idempotency key.
        self.0.post_asset(job, key).await
    }

    async fn republish(
        &self,
        job: &Job,
        _target: &str,
        _new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        self.0.post_asset(job, key).await
    }

    async fn fix_credentials(&self, job: &Job, _scope: CredentialScope) -> Result<CredentialFix, HookError> {
        sleep(Duration::from_secs(2)).await;
        let mut state = self.0.state();
        let asset = self.0.asset(&mut state, job.asset_id());
        // Rotating the bucket's key works three times in four.
        let fixed = !asset.credentials_broken || asset.rng.random_bool(0.75);
        if fixed {
            asset.credentials_broken = false;
        }
        Ok(if fixed { CredentialFix::Fixed } else { CredentialFix::CannotFix })
    }

    async fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        // GET /assets?uuid=..., for the encode the attempt started (attempt 0: the pipeline's own submission).
        sleep(Duration::from_millis(200)).await;
        let mut state = self.0.state();
        let done = if key.attempt == 0 {
            self.0.asset(&mut state, job.asset_id()).published_already
        } else {
            match state.posted.get(&key.to_string()) {
                Some(Posted::Created(uuid)) => {
                    state.encodes.get(uuid).is_some_and(|e| e.end == End::Finished && e.ends_at <= Instant::now())
                }
                _ => false,
            }
        };
        let at = self.0.since();
        state.reconciles.push((at, key.to_string(), done));
        Ok(if done { Reconciled::Done } else { Reconciled::NotDone })
    }

    async fn check(&self, _job: &Job, pending: &Pending<'_>) -> Result<Checked, HookError> {
        // GET /assets?uuid=<reference>: the documented way to read one asset's status.
        sleep(Duration::from_millis(200)).await;
        let mut state = self.0.state();
        state.checks += 1;
        Ok(match state.encodes.get(pending.reference) {
            Some(e) if e.ends_at > Instant::now() => Checked::Running,
            Some(Encode { end: End::Finished, .. }) => Checked::Succeeded,
            Some(Encode { end: End::Error(code, message), .. }) => match Failure::asset(*code, *message) {
                Ok(failure) => Checked::Failed(failure),
                Err(_) => Checked::Unknown,
            },
            // `check` has no answer for a canceled asset: this host leaves it to the policy (a `timeout`).
            Some(Encode { end: End::Canceled, .. }) | None => Checked::Unknown,
        })
    }

    async fn notify(&self, _job: &Job, _notice: &Notice) -> Result<(), HookError> {
        self.0.state().notices += 1;
        Ok(())
    }

    async fn failed(&self, job: &Job, _verdict: &Verdict) -> Result<(), HookError> {
        // A real host writes the verdict to its dead-letter queue here.
        *self.0.state().dead_letters.entry(job.asset_id().to_owned()).or_default() += 1;
        Ok(())
    }
}

/// The host's callback endpoint: the remediator it hands callbacks to, none while the host is down.
#[derive(Clone, Default)]
struct Endpoint(Arc<Mutex<EndpointState>>);

#[derive(Default)]
struct EndpointState {
    host: Option<Remediator<Host>>,
    /// What became of the callbacks, by answer.
    answers: BTreeMap<&'static str, u32>,
}

impl Endpoint {
    fn lock(&self) -> MutexGuard<'_, EndpointState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self, host: Option<Remediator<Host>>) {
        self.lock().host = host;
    }

    /// LightFlow's side: the callbacks of one encode, sent as LightFlow sends them. The host's callback URL
    /// carries its own `asset` parameter and the attempt's key (`attempt`, its `#` percent-encoded): a late
    /// callback of an earlier attempt is then told apart in either form.
    #[allow(clippy::too_many_arguments)]
    fn call_back(
        &self,
        lf: &LightFlow,
        asset_id: &str,
        key: &str,
        uuid: &str,
        end: End,
        runs_for: Duration,
        state: &mut SimState,
    ) {
        let rng = &mut lf.asset(state, asset_id).rng;
        let (lost, twice) = (rng.random_bool(0.05), rng.random_bool(0.1));
        let query = format!("asset={asset_id}&attempt={}", key.replace('#', "%23"));
        // The GET form first: LightFlow appends `status` (and `endDate`) to the URL.
        let running = format!("/lightflow/callback?{query}&status=running");
        self.send_after(Duration::from_secs(30), Some(running), None);
        if lost {
            return;
        }
        let mut body = json!({
            "uuid": uuid, "assetName": asset_id, "inputUrl": format!("https://media.example/{asset_id}.mp4"),
            "username": "pipeline@example.com", "startDate": lf.date(Duration::ZERO), "endDate": lf.date(runs_for),
        });
        body["status"] = json!(match end {
            End::Finished => "finished",
            End::Error(..) => "error",
            End::Canceled => "canceled",
        });
        if let End::Error(code, message) = end {
            body["assetError"] = json!({ "code": code, "message": message });
        }
        let body = body.to_string();
        self.send_after(runs_for, Some(query.clone()), Some(body.clone()));
        if twice {
            self.send_after(runs_for + Duration::from_secs(20), Some(query), Some(body));
        }
    }

    fn send_after(&self, after: Duration, query: Option<String>, body: Option<String>) {
        let endpoint = self.clone();
        tokio::spawn(async move {
            sleep(after).await;
            endpoint.receive(query.as_deref(), body.as_deref()).await;
        });
    }

    /// The host's side: one request to its callback URL.
    async fn receive(&self, query: Option<&str>, body: Option<&str>) {
        let host = self.lock().host.clone();
        let answer = match host {
            None => "lost: the host was down",
            Some(host) => match Callback::from_request(query, body) {
                Err(_) => "unreadable",
                Ok(callback) => match host.report_callback(&callback).await {
                    Ok(None) => "not an end (running)",
                    Ok(Some(answer)) => answer_name(&answer),
                    Err(_) => "store error",
                },
            },
        };
        *self.lock().answers.entry(answer).or_default() += 1;
    }
}

fn answer_name(answer: &ReportAnswer) -> &'static str {
    match answer {
        ReportAnswer::Applied { .. } => "applied",
        ReportAnswer::Early { .. } => "early (kept for its attempt)",
        ReportAnswer::Held => "held (no attempt had its uuid yet)",
        ReportAnswer::Duplicate { .. } => "duplicate",
        ReportAnswer::OlderAttempt { .. } => "older attempt",
        ReportAnswer::Finished { .. } => "job already finished",
        ReportAnswer::Ambiguous { .. } => "ambiguous (check decides)",
        ReportAnswer::Unknown => "unknown",
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The run

/// What a run found, for its account and for `tests/orchestrator.rs`.
#[derive(Debug, Default)]
pub struct Report {
    /// Assets handed to the engine.
    pub assets: usize,
    /// Job rows in the store at the end.
    pub jobs: usize,
    /// Of those, finished.
    pub finished: usize,
    /// Finished jobs by outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Assets whose end the replicas' event streams told once.
    pub told_once: usize,
    /// Assets told twice or more (never, if every job ends exactly once).
    pub told_twice: usize,
    /// Dead letters the `failed` hook received.
    pub dead_letters: u32,
    /// Assets dead-lettered more than once.
    pub dead_lettered_twice: usize,
    /// Attempts in flight when the first remediator was killed.
    pub in_flight_at_crash: u32,
    /// Jobs the second remediator took over from the first one's leases.
    pub takeovers: u64,
    /// Attempts repeated with the same idempotency key (answered from LightFlow's by-key cache).
    pub repeated_keys: usize,
    /// What became of LightFlow's callbacks, by answer.
    pub callbacks: BTreeMap<&'static str, u32>,
    /// `check` calls (for encodes whose end was never called back).
    pub checks: u32,
}

/// A simulated moment, as `[1h 02m 03s]`.
fn stamp(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("[{}h {:02}m {:02}s]", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("[{:02}m {:02}s]", s / 60, s % 60)
    }
}

/// How many times the replicas' event streams told each asset's end.
type Told = Arc<Mutex<HashMap<String, u32>>>;

fn replica(
    name: &str,
    policies: &Arc<LivePolicies>,
    host: &Host,
    store: &Arc<dyn Store>,
    clock: &Arc<TokioClock>,
    told: &Told,
) -> Remediator<Host> {
    // Within one process the engine wakes its claimer itself; polling only backs that up.
    let settings =
        StoreSettings { owner: Some(name.to_owned()), poll_every: Duration::from_secs(30), ..StoreSettings::default() };
    let remediator = Remediator::builder(policies.clone(), host.clone())
        .await_result(AWAIT_RESULT)
        .event_capacity(1 << 14)
        .store_with(store.clone(), clock.clone(), settings)
        .build();
    let mut events = remediator.subscribe();
    let told = told.clone();
    tokio::spawn(async move {
        // Ends when the remediator is gone (its event channel closes).
        while let Ok(event) = events.recv().await {
            if let Event::Finished { asset_id, .. } = event {
                *told.lock().unwrap_or_else(|e| e.into_inner()).entry(asset_id.to_string()).or_default() += 1;
            }
        }
    });
    remediator
}

async fn open(path: &std::path::Path) -> Result<Arc<dyn Store>, Box<dyn Error>> {
    // The store holds tokio's paused clock still while SQLite works; one connection keeps a seed's run the same.
    let options = StoreOptions::default().hold_time(true).pool_size(1);
    Ok(Arc::new(SqliteStore::open(path, &options).await?))
}

/// The whole run: the account goes to `out`, the findings come back.
pub async fn run(options: &Options, out: &mut dyn Write) -> Result<Report, Box<dyn Error>> {
    let wall = std::time::Instant::now();
    let temp = tempfile::tempdir()?;
    let path = options.db.clone().unwrap_or_else(|| temp.path().join("orchestrator.db"));
    let first_store = open(&path).await?;
    let stats = first_store.stats(Timestamp(0)).await?;
    let left: u64 = stats.by_phase.values().chain(stats.by_outcome.values()).sum();
    if left > 0 {
        return Err(format!("{} holds {left} jobs of an earlier run: name a new file", first_store.describe()).into());
    }
    // The host's connection to the file: none while it is down.
    let mut store = Some(first_store);
    let epoch = Instant::now();
    let clock = Arc::new(TokioClock::starting_at(CLOCK_START));
    let endpoint = Endpoint::default();
    let lf = Arc::new(LightFlow { seed: options.seed, epoch, endpoint: endpoint.clone(), state: Mutex::default() });
    let host = Host(lf.clone());
    let policies = Arc::new(LivePolicies::fixed(Policies::defaults()));
    let told: Told = Arc::default();
    let mut report = Report { assets: options.assets, ..Report::default() };

    writeln!(out, "Store: {} ({})", path.display(), if options.db.is_some() { "kept" } else { "a temporary file" })?;
    writeln!(
        out,
        "Simulated LightFlow: {} failed assets from the pipeline's queue over {}, seed {}; each resubmission is a new \
         encode that calls back 3 to 20 minutes later (5% of the ends never do); await_result {}\n",
        options.assets,
        humantime::format_duration(ARRIVALS_OVER),
        options.seed,
        humantime::format_duration(AWAIT_RESULT),
    )?;
    let mut current = store.as_ref().map(|s| replica("replica-1", &policies, &host, s, &clock, &told));
    endpoint.serve(current.clone());
    writeln!(out, "{} replica-1 up", stamp(Duration::ZERO))?;

    // Failures arrive as a Poisson stream.
    let mut draws = Xoshiro256PlusPlus::seed_from_u64(options.seed);
    let mean_gap = ARRIVALS_OVER.as_secs_f64() / options.assets as f64;
    let mut arrivals = Vec::with_capacity(options.assets);
    let mut at = Duration::ZERO;
    for _ in 0..options.assets {
        at += Duration::from_secs_f64(-mean_gap * (1.0 - draws.random::<f64>()).ln());
        arrivals.push(at);
    }
    let (mut next, mut crashed, mut restart_at) = (0, false, None::<Duration>);
    let mut queued_while_down = 0;
    let mut look = LOOK_EVERY;
    let mut crash_rows: Vec<(String, String)> = Vec::new();
    loop {
        let now = epoch.elapsed();
        // New failures, while the host is up; the queue keeps them while it is down.
        while next < arrivals.len() && arrivals[next] <= now {
            let Some(remediator) = &current else {
                queued_while_down = arrivals[next..].iter().filter(|t| **t <= now).count();
                break;
            };
            let asset_id = format!("asset-{next:03}");
            let failure = lf.first_failure(&asset_id)?;
            let job = Job::new(asset_id.as_str()).with_seed(mix(options.seed, next as u64));
            remediator.enqueue(job, failure).await?;
            next += 1;
        }
        // The crash: at the first moment after CRASH_AT that an attempt is under way (or 5 minutes later).
        if let Some(db) = store.as_ref().filter(|_| {
            !crashed && now >= CRASH_AT && (lf.state().in_flight > 0 || now >= CRASH_AT + Duration::from_secs(300))
        }) {
            crashed = true;
            report.in_flight_at_crash = lf.state().in_flight;
            let stats = db.stats(clock_now(&clock)).await?;
            let phases: Vec<String> = stats.by_phase.iter().map(|(p, n)| format!("{n} {p}")).collect();
            let ended: u64 = stats.by_outcome.values().sum();
            let calling = ListFilter { phase: Some(Phase::Calling), ..ListFilter::default() };
            for row in db.list(&calling).await? {
                let calls = db.calls(row.id).await?;
                if let Some(call) = calls.iter().rev().find(|c| c.answered_at.is_none()) {
                    crash_rows.push((row.asset_id.clone(), call.key.clone()));
                }
            }
            if let Some(r) = current.take() {
                r.crash();
            }
            endpoint.serve(None);
            writeln!(
                out,
                "{} replica-1 killed (crash(): no shutdown; its leases are left to expire): {} jobs had ended, {}; \
                 {} attempt(s) under way: {}",
                stamp(now),
                ended,
                phases.join(", "),
                report.in_flight_at_crash,
                crash_rows.iter().map(|(_, key)| key.as_str()).collect::<Vec<_>>().join(", ")
            )?;
            // The process is gone: so is its connection to the file.
            store = None;
            restart_at = Some(now + DOWN_FOR);
        }
        if let Some(at) = restart_at.filter(|at| *at <= now) {
            restart_at = None;
            let reopened = open(&path).await?;
            let callbacks_lost = endpoint.lock().answers.get("lost: the host was down").copied().unwrap_or(0);
            writeln!(
                out,
                "{} replica-2 up on the same file, after {} down: {callbacks_lost} callback(s) sent meanwhile were \
                 lost, {queued_while_down} new failure(s) waited in the pipeline's queue",
                stamp(at),
                humantime::format_duration(DOWN_FOR)
            )?;
            current = Some(replica("replica-2", &policies, &host, &reopened, &clock, &told));
            store = Some(reopened);
            endpoint.serve(current.clone());
        }
        if let Some(db) = store.as_ref().filter(|_| look <= now) {
            look = now + LOOK_EVERY;
            let stats = db.stats(clock_now(&clock)).await?;
            let active: u64 = stats.by_phase.values().sum();
            if (next == arrivals.len() && active == 0) || now > HORIZON {
                writeln!(out, "{} {}", stamp(now), if active == 0 { "every job has ended" } else { "giving up" })?;
                break;
            }
        }
        // While the host is down, nothing happens here until it is up again.
        let mut wake = if store.is_some() { look } else { HORIZON };
        if let Some(at) = arrivals.get(next).filter(|_| current.is_some()) {
            wake = wake.min(*at);
        }
        if !crashed {
            wake = wake.min(CRASH_AT.max(now + Duration::from_millis(50)));
        }
        if let Some(at) = restart_at {
            wake = wake.min(at);
        }
        sleep((epoch + wake).saturating_duration_since(Instant::now())).await;
    }
    let span = epoch.elapsed();
    if let Some(r) = current.take() {
        report.takeovers = r.counters().takeovers;
        r.shutdown(Duration::from_secs(5)).await;
    }
    endpoint.serve(None);

    let store = store.ok_or("the run ended while the host was down")?;
    account(&mut report, out, &*store, &lf, &endpoint, &told, &crash_rows).await?;
    writeln!(
        out,
        "\nWall time: {:.2?} for {} of simulated time",
        wall.elapsed(),
        humantime::format_duration(Duration::from_secs(span.as_secs()))
    )?;
    if let Some(db) = &options.db {
        writeln!(out, "The jobs stay in the file: remedy jobs --store sqlite://{} list", db.display())?;
    }
    Ok(report)
}

fn clock_now(clock: &TokioClock) -> Timestamp {
    lightflow_remedy::store::Clock::now(clock)
}

/// Reads the store back and says what became of every job, and whether each ended exactly once.
async fn account(
    report: &mut Report,
    out: &mut dyn Write,
    store: &dyn Store,
    lf: &LightFlow,
    endpoint: &Endpoint,
    told: &Told,
    crash_rows: &[(String, String)],
) -> Result<(), Box<dyn Error>> {
    let rows = store.list(&ListFilter { limit: Some(usize::MAX), ..ListFilter::default() }).await?;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_asset: HashMap<&str, usize> = HashMap::new();
    for row in &rows {
        *per_asset.entry(row.asset_id.as_str()).or_default() += 1;
        if row.phase != Phase::Finished {
            continue;
        }
        report.finished += 1;
        let kind = row.outcome.clone().unwrap_or_else(|| "?".into());
        *report.outcomes.entry(kind).or_default() += 1;
        if let Ok(StoredJob { outcome: Some(lightflow_remedy::engine::Outcome::Failed { verdict }), .. }) =
            StoredJob::from_row(row)
        {
            *reasons.entry(verdict.reason).or_default() += 1;
        }
    }
    report.jobs = rows.len();
    {
        let told = told.lock().unwrap_or_else(|e| e.into_inner());
        report.told_once = told.values().filter(|n| **n == 1).count();
        report.told_twice = told.values().filter(|n| **n > 1).count();
    }
    // What LightFlow saw, read before anything is awaited (its lock is not held across an await).
    let (crashed, lightflow) = {
        let state = lf.state();
        report.dead_letters = state.dead_letters.values().sum();
        report.dead_lettered_twice = state.dead_letters.values().filter(|n| **n > 1).count();
        report.repeated_keys = state.repeated_keys.len();
        report.checks = state.checks;
        let crashed: Vec<(&str, String)> =
            crash_rows.iter().map(|(asset, key)| (asset.as_str(), taken_over(&state, asset, key))).collect();
        let lightflow = format!(
            "LightFlow: {} POST /assets, {} repeated with an idempotency key it had seen; {} check(s) of encodes \
             that never called back; {} reconciles; {} operator notices",
            state.posts,
            report.repeated_keys,
            report.checks,
            state.reconciles.len(),
            state.notices
        );
        (crashed, lightflow)
    };
    report.callbacks = endpoint.lock().answers.clone();

    let outcomes: Vec<String> = report.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "\nOutcomes, read back from the store: {}", outcomes.join(", "))?;
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (reason, n) in top.iter().take(4) {
        writeln!(out, "  failed {n:>3}  {reason}")?;
    }
    let once = |ok: bool| if ok { "yes" } else { "NO" };
    let failed = report.outcomes.get("failed").copied().unwrap_or(0);
    writeln!(out, "\nEvery job ended exactly once:")?;
    writeln!(
        out,
        "  {} assets, {} jobs in the store, one per asset: {}; {} finished",
        report.assets,
        report.jobs,
        once(per_asset.len() == report.assets && per_asset.values().all(|n| *n == 1)),
        report.finished
    )?;
    writeln!(
        out,
        "  ends told by the replicas' events: {} once, {} more than once: {}",
        report.told_once,
        report.told_twice,
        once(report.told_once == report.finished && report.told_twice == 0)
    )?;
    writeln!(
        out,
        "  dead letters: {} for {failed} failed jobs, {} asset(s) twice: {}",
        report.dead_letters,
        report.dead_lettered_twice,
        once(report.dead_letters as usize == failed && report.dead_lettered_twice == 0)
    )?;

    writeln!(out, "\nThe crash:")?;
    writeln!(out, "  jobs taken over by replica-2 once replica-1's leases expired: {}", report.takeovers)?;
    for (asset, line) in crashed {
        writeln!(out, "{line}")?;
        if let Some(row) = store.job_of(asset).await? {
            for call in store.calls(row.id).await? {
                let answered = match (call.answered_at, call.answer) {
                    (Some(at), Some(answer)) => format!("answered {at}: {answer}"),
                    (Some(at), None) => format!("answered {at}"),
                    (None, _) => "never answered (its replica died first)".to_owned(),
                };
                writeln!(out, "      ledger: {} {} started {}, {answered}", call.hook, call.key, call.started_at)?;
            }
        }
    }

    writeln!(out, "\nLightFlow's callbacks, as the endpoint handed them over:")?;
    for (answer, n) in &report.callbacks {
        writeln!(out, "  {n:>4}  {answer}")?;
    }
    writeln!(out, "{lightflow}")?;
    Ok(())
}

/// What became of the attempt of `key` that was under way at the crash, as LightFlow saw it.
fn taken_over(state: &SimState, asset: &str, key: &str) -> String {
    let reconciled: Vec<String> = state
        .reconciles
        .iter()
        .filter(|(_, k, _)| k == key)
        .map(|(at, _, done)| format!("{} {}", stamp(*at), if *done { "done" } else { "not done" }))
        .collect();
    let repeated: Vec<String> =
        state.repeated_keys.iter().filter(|(_, k)| k == key).map(|(at, _)| stamp(*at)).collect();
    let started = match state.posted.get(key) {
        Some(Posted::Created(uuid)) => format!("encode {uuid}"),
        Some(Posted::Refused { status, .. }) => format!("HTTP {status}"),
        None => "nothing".into(),
    };
    let never = |v: Vec<String>| if v.is_empty() { "never".to_owned() } else { v.join(", ") };
    format!(
        "  {asset}: attempt {key} was under way; reconciled {}; repeated with the same key {}, and LightFlow \
         answered with what it had started for that key: {started}",
        never(reconciled),
        never(repeated)
    )
}
