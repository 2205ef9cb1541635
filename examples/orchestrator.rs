//! An orchestrator that embeds the remediation engine, against a simulated LightFlow.
//!
//! It shows a host's whole integration:
//!
//! - a [`Hooks`] implementation (`SimLightFlow`) that answers like a LightFlow service failing assets with
//!   catalogue codes at set rates: transient storage errors (2001, 2002, 25xx), Brightcove (3001, 3003, 3005),
//!   storage credentials (2007, which `fix_credentials` repairs three times in four), permanent errors (2404,
//!   2003), a general error (1001), and API 503/429 answers with a `Retry-After`. Some calls went through
//!   although their answer said otherwise, which `reconcile` finds; a few hang past the hook timeout. A
//!   Brightcove outage early in the run trips its circuit breaker. Every answer comes from a seeded RNG per
//!   asset, so a run is reproducible;
//! - a [`Remediator`] with the default policies, an AWS-style retry budget (refilled by the assets that succeed
//!   on the first try) and the default circuit breakers, an event subscriber, a batch of failed assets (a few
//!   reported twice, a few cancelled by their owner), and a summary of outcomes, attempts, time to recovery and
//!   the fleet guards' counters;
//! - a graceful shutdown of a second batch while an attempt is in flight: the suspended jobs go through JSON and
//!   resume on a new remediator, and the repeated attempt is recognised by its idempotency key.
//!
//! Time is tokio's paused clock, so an hour and more of back-off passes in well under a second of wall time.
//!
//! ```text
//! cargo run --example orchestrator
//! cargo run --example orchestrator -- --help
//! cargo run --example orchestrator -- --budget 500     # the AWS standard quota: see who it refuses, and when
//! cargo run --release --example orchestrator -- --assets 20000 --budget 50000 --seed 3
//! ```

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use lightflow_remedy::LivePolicies;
use lightflow_remedy::engine::{
    Attempt, AttemptKey, AwsCosts, BudgetConfig, CredentialFix, Event, HookError, Hooks, Job, JobHandle, Notice,
    Outcome, Reconciled, Remediator, RemediatorBuilder, RetryBudget, SuspendedJob, Verdict,
};
use lightflow_remedy::{ClassifyError, CredentialScope, Downstream, Failure, Policies};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
usage: orchestrator [--assets N] [--seed N] [--budget TOKENS] [--outage MINUTES]

  --assets N        failed assets in the main batch (default 2000)
  --seed N          seed of the simulated LightFlow and of the jobs' jitter (default 7)
  --budget TOKENS   capacity of the AWS-style retry budget (default 5000; the AWS SDK standard is 500)
  --outage MINUTES  length of the Brightcove outage starting 1 minute in (default 5; 0 for none)";

/// The hook timeout (the engine's default): a simulated call slower than this is a `timeout` failure.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Arrivals of the main batch spread over this much simulated time, as failures trickle in from LightFlow.
const ARRIVALS_OVER: Duration = Duration::from_secs(600);

/// The share of assets LightFlow finishes on the first try. The host reports those to the retry budget: with the
/// AWS quota they are what refills it between outages.
const FIRST_TRY_SUCCESS: f64 = 0.9;

// ---------------------------------------------------------------------------------------------------------------
// Command line

struct Options {
    assets: usize,
    seed: u64,
    budget: u32,
    outage: Duration,
}

/// `Ok(None)` means: help was asked for.
fn parse_args() -> Result<Option<Options>, String> {
    let mut options = Options { assets: 2000, seed: 7, budget: 5000, outage: Duration::from_secs(300) };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--flag N` and `--flag=N`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: `{v}` is not a whole number"));
        match flag.as_str() {
            "--assets" => options.assets = usize::try_from(number(&value)?).map_err(|e| e.to_string())?,
            "--seed" => options.seed = number(&value)?,
            "--budget" => options.budget = u32::try_from(number(&value)?).map_err(|e| e.to_string())?,
            "--outage" => options.outage = Duration::from_secs(number(&value)?.saturating_mul(60)),
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    Ok(Some(options))
}

// ---------------------------------------------------------------------------------------------------------------
// The simulated LightFlow

/// What the simulated service answers to one call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// The asset is ready.
    Done,
    /// The asset ended in `error` with this `assetError`.
    Asset { code: u16, message: &'static str },
    /// The API call itself failed.
    Api { status: u16, retry_after: &'static str, body: &'static str },
}

const fn asset(code: u16, message: &'static str) -> Answer {
    Answer::Asset { code, message }
}

/// How often a (re)submission fails, and how; the rest of the time it succeeds (70%).
const PROCESSING: &[(f64, Answer)] = &[
    (0.05, asset(2001, "download failed: connection reset by peer")),
    (0.02, asset(2002, "input storage unreachable")),
    (0.03, asset(2503, "remote server returned HTTP 503")),
    (0.01, asset(2500, "remote server returned HTTP 500")),
    (0.01, asset(2502, "remote server returned HTTP 502")),
    (0.03, asset(3001, "Brightcove: connect timeout")),
    (0.01, asset(3003, "Brightcove: reference id already in use")),
    (0.04, asset(3005, "Brightcove: publishing failed")),
    (0.02, asset(2007, "access denied to the input bucket")),
    (0.01, asset(2404, "remote server returned HTTP 404")),
    (0.01, asset(2003, "invalid or corrupt input")),
    (0.01, asset(1001, "unknown error")),
    (0.04, Answer::Api { status: 503, retry_after: "20", body: r#"{"message": "Service Unavailable"}"# }),
    (0.01, Answer::Api { status: 429, retry_after: "30", body: r#"{"message": "Too Many Requests"}"# }),
];

/// How often a re-publication to Brightcove fails; the rest of the time it succeeds (80%).
const PUBLISHING: &[(f64, Answer)] =
    &[(0.15, asset(3005, "Brightcove: publishing failed")), (0.05, asset(3001, "Brightcove: connect timeout"))];

/// One asset as the simulated service sees it.
struct AssetSim {
    /// Its own stream of draws, so that answers do not depend on how jobs interleave.
    rng: Xoshiro256PlusPlus,
    /// Downloads fail with 2007 until `fix_credentials` repairs them.
    credentials_broken: bool,
    /// An earlier call went through although its answer said otherwise (or never came): `reconcile` finds it.
    committed: bool,
}

impl AssetSim {
    fn latency(&mut self, range: Range<u64>) -> Duration {
        // A rare call hangs past the hook timeout, so the engine's `timeout` handling shows too.
        if self.rng.random_bool(0.002) {
            return HOOK_TIMEOUT + Duration::from_secs(15);
        }
        Duration::from_millis(self.rng.random_range(range))
    }

    /// Draws from `table`; with `scale` below 1 the draw lands in the table more often (1/sum: always).
    fn draw(&mut self, table: &[(f64, Answer)], scale: f64) -> Answer {
        let mut x = self.rng.random::<f64>() * scale;
        for &(p, answer) in table {
            if x < p {
                return answer;
            }
            x -= p;
        }
        Answer::Done
    }

    /// The side effects an answer has on the asset.
    fn note(&mut self, answer: Answer) {
        match answer {
            Answer::Asset { code: 2007, .. } => self.credentials_broken = true,
            // Gateways answer 503 after the request reached LightFlow, now and then.
            Answer::Api { status: 503, .. } => self.committed = self.rng.random_bool(0.4),
            // "Reference id in use" is often our own earlier publication.
            Answer::Asset { code: 3003, .. } => self.committed = self.rng.random_bool(0.5),
            _ => {}
        }
    }
}

#[derive(Default)]
struct SimState {
    assets: HashMap<Arc<str>, AssetSim>,
    /// Answers by idempotency key: a repeated key gets the first answer and creates nothing new.
    answered: HashMap<String, Answer>,
    calls: u64,
    /// Attempts in flight.
    in_flight: u64,
    duplicates: u64,
    notices: u64,
    dead_letters: u64,
}

struct LightFlow {
    seed: u64,
    epoch: Instant,
    outage: Range<Duration>,
    state: Mutex<SimState>,
}

/// The hooks: cheap to clone, so that several remediators (before and after a restart) share one service.
#[derive(Clone)]
struct SimLightFlow(Arc<LightFlow>);

impl SimLightFlow {
    fn new(seed: u64, outage: Duration) -> Self {
        let start = Duration::from_secs(60);
        SimLightFlow(Arc::new(LightFlow {
            seed,
            epoch: Instant::now(),
            outage: start..start + outage,
            state: Mutex::new(SimState::default()),
        }))
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // The state stays consistent between statements, so a poisoned lock is still usable.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks an attempt (a resubmission or re-publication) in flight until the returned guard drops: when it
    /// answers, or when the engine drops the call.
    fn attempt(&self) -> InFlight {
        self.state().in_flight += 1;
        InFlight(self.clone())
    }

    fn attempts_in_flight(&self) -> u64 {
        self.state().in_flight
    }

    fn brightcove_down(&self) -> bool {
        self.0.outage.contains(&self.0.epoch.elapsed())
    }

    /// Runs `f` on the asset's simulated state, creating it on first sight.
    fn with_asset<R>(&self, job: &Job, f: impl FnOnce(&mut AssetSim) -> R) -> R {
        let mut state = self.state();
        state.calls += 1;
        let seed = self.0.seed;
        let asset = state.assets.entry(job.asset_id().into()).or_insert_with(|| AssetSim {
            rng: Xoshiro256PlusPlus::seed_from_u64(mix(seed, job.seed())),
            credentials_broken: false,
            committed: false,
        });
        f(asset)
    }

    /// How the asset first failed, as the orchestrator learns it: an asset document, or a failed API call.
    fn initial_failure(&self, job: &Job) -> Result<Failure, ClassifyError> {
        let total: f64 = PROCESSING.iter().map(|(p, _)| p).sum();
        let answer = self.with_asset(job, |a| {
            let answer = a.draw(PROCESSING, total);
            a.note(answer);
            answer
        });
        match answer {
            Answer::Asset { code, message } => {
                let document = json!({
                    "id": job.asset_id(),
                    "status": "error",
                    "assetError": { "code": code, "message": message },
                });
                Failure::from_value(&document, SystemTime::now())
            }
            // The draw covered the whole table, so `Done` cannot come; classify it as an unknown code anyway.
            Answer::Done => Failure::asset(1001, "unknown error"),
            Answer::Api { status, retry_after, body } => {
                Failure::from_api_response(status, body, Some(retry_after), SystemTime::now())
            }
        }
    }

    /// One (re)submission or re-publication: the answer is fixed when the call arrives, before its latency.
    fn process(&self, job: &Job, key: &AttemptKey<'_>, publish_only: bool) -> (Duration, Answer) {
        let key = key.to_string();
        let cached = self.state().answered.get(&key).copied();
        if let Some(answer) = cached {
            // The engine repeats an attempt whose answer was lost (shutdown, resume): drop the duplicate.
            let mut state = self.state();
            state.calls += 1;
            state.duplicates += 1;
            return (Duration::from_millis(50), answer);
        }
        let down = self.brightcove_down();
        let (latency, answer) = self.with_asset(job, |a| {
            let latency = a.latency(if publish_only { 200..1500 } else { 50..800 });
            let answer = if a.committed {
                // An earlier call went through after all: LightFlow reports the asset done.
                a.committed = false;
                Answer::Done
            } else if a.credentials_broken && !publish_only {
                asset(2007, "access denied to the input bucket")
            } else if down && a.rng.random_bool(0.9) {
                asset(3001, "Brightcove: connection refused")
            } else if publish_only {
                a.draw(PUBLISHING, 1.0)
            } else {
                a.draw(PROCESSING, 1.0)
            };
            a.note(answer);
            if latency > HOOK_TIMEOUT && answer == Answer::Done {
                // The engine gives up on the call, but the asset is done: `reconcile` will say so.
                a.committed = true;
            }
            (latency, answer)
        });
        self.state().answered.insert(key, answer);
        (latency, answer)
    }
}

struct InFlight(SimLightFlow);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// Mixes the run's seed into an asset's (SplitMix64's finalizer), so `--seed` changes every asset's story.
fn mix(seed: u64, asset_seed: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(asset_seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Classifies the simulated answer as the engine wants it.
fn attempt_of(answer: Answer) -> Result<Attempt, HookError> {
    let failure = match answer {
        Answer::Done => return Ok(Attempt::Succeeded),
        Answer::Asset { code, message } => Failure::asset(code, message),
        Answer::Api { status, retry_after, body } => {
            Failure::from_api_response(status, body, Some(retry_after), SystemTime::now())
        }
    };
    // An answer that does not classify is the host's bug: end that job, not the process.
    failure.map(Attempt::Failed).map_err(|e| HookError::new(format!("unclassifiable LightFlow answer: {e}")))
}

impl Hooks for SimLightFlow {
    async fn resubmit(
        &self,
        job: &Job,
        _amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        // The default policies resubmit unchanged; a real host applies `amend` (e.g. {"4k": false}) to the request
        // and sends `key` as the idempotency key.
        let _in_flight = self.attempt();
        let (latency, answer) = self.process(job, key, false);
        sleep(latency).await;
        attempt_of(answer)
    }

    async fn republish(
        &self,
        job: &Job,
        _target: &str,
        _new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let _in_flight = self.attempt();
        let (latency, answer) = self.process(job, key, true);
        sleep(latency).await;
        attempt_of(answer)
    }

    async fn fix_credentials(&self, job: &Job, scope: CredentialScope) -> Result<CredentialFix, HookError> {
        let (latency, fixed) = self.with_asset(job, |a| {
            // Rotating a key works three times in four; other scopes are never broken in this simulation.
            let fixed = !a.credentials_broken || scope != CredentialScope::Storage || a.rng.random_bool(0.75);
            if fixed {
                a.credentials_broken = false;
            }
            (a.latency(1000..3000), fixed)
        });
        sleep(latency).await;
        Ok(if fixed { CredentialFix::Fixed } else { CredentialFix::CannotFix })
    }

    async fn reconcile(&self, job: &Job, _: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        // Only looks: the next (re)submission is the one that finds the asset done and reports it.
        let (latency, done) = self.with_asset(job, |a| (a.latency(100..300), a.committed));
        sleep(latency).await;
        Ok(if done { Reconciled::Done } else { Reconciled::NotDone })
    }

    async fn notify(&self, _job: &Job, _notice: &Notice) -> Result<(), HookError> {
        self.state().notices += 1;
        Ok(())
    }

    async fn failed(&self, _job: &Job, _verdict: &Verdict) -> Result<(), HookError> {
        // A real host writes the verdict to its dead-letter queue here.
        self.state().dead_letters += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Events

#[derive(Default)]
struct EventCounts {
    decided: u64,
    hooks: BTreeMap<&'static str, u64>,
    breaker_waits: u64,
    budget_refused: u64,
    /// When the first and the last refusal came, in simulated time.
    refused_during: Option<Range<Duration>>,
    joined: u64,
    breaker_changes: Vec<String>,
    missed: u64,
}

/// Counts events until `stop`, after the ones already sent; times are since `epoch`.
fn count_events(
    mut rx: broadcast::Receiver<Event>,
    epoch: Instant,
    stop: CancellationToken,
) -> JoinHandle<EventCounts> {
    tokio::spawn(async move {
        let mut counts = EventCounts::default();
        loop {
            tokio::select! {
                // Events first: every event of a job is sent before its outcome, so none is lost at `stop`.
                biased;
                received = rx.recv() => match received {
                    Ok(Event::Decided { .. }) => counts.decided += 1,
                    Ok(Event::HookCalled { hook, .. }) => *counts.hooks.entry(hook.as_str()).or_default() += 1,
                    Ok(Event::BreakerWait { .. }) => counts.breaker_waits += 1,
                    Ok(Event::BudgetRefused { .. }) => {
                        counts.budget_refused += 1;
                        let at = epoch.elapsed();
                        counts.refused_during = Some(counts.refused_during.map_or(at..at, |r| r.start..at));
                    }
                    Ok(Event::Joined { .. }) => counts.joined += 1,
                    Ok(Event::BreakerChanged { downstream, from, to }) => {
                        let at = short(epoch.elapsed());
                        counts.breaker_changes.push(format!("{downstream} {from:?}->{to:?} at {at}"));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => counts.missed += n,
                    Err(RecvError::Closed) => break,
                },
                () = stop.cancelled() => break,
            }
        }
        counts
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Outcomes

#[derive(Default)]
struct Tally {
    recovered: usize,
    reconciled: usize,
    failed: BTreeMap<&'static str, usize>,
    reasons: HashMap<String, usize>,
    cancelled: usize,
    suspended: usize,
    attempts: Vec<u32>,
    to_recovery: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        let attempts = match outcome {
            Outcome::Recovered { attempts, elapsed, reconciled, .. } => {
                self.recovered += 1;
                self.reconciled += usize::from(*reconciled);
                self.to_recovery.push(*elapsed);
                *attempts
            }
            Outcome::Failed { verdict } => {
                *self.failed.entry(verdict.kind.as_str()).or_default() += 1;
                *self.reasons.entry(verdict.reason.clone()).or_default() += 1;
                verdict.attempts
            }
            Outcome::Cancelled { attempts } => {
                self.cancelled += 1;
                *attempts
            }
            Outcome::Suspended { state } => {
                self.suspended += 1;
                state.history.attempts()
            }
        };
        self.attempts.push(attempts);
    }

    fn total(&self) -> usize {
        self.attempts.len()
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { 100.0 * n as f64 / of as f64 }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration to the second (to the millisecond below 10 s), in humantime's style.
fn short(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Recovered { attempts, elapsed, reconciled, .. } => {
            let how = if *reconciled { ", found done by reconcile" } else { "" };
            format!("recovered after {attempts} attempt(s), {} since its first failure{how}", short(*elapsed))
        }
        Outcome::Failed { verdict } => format!("failed ({}): {}", verdict.kind.as_str(), verdict.reason),
        Outcome::Cancelled { attempts } => format!("cancelled after {attempts} attempt(s)"),
        Outcome::Suspended { .. } => "suspended".to_owned(),
    }
}

/// A remediator's builder as this host configures it, before any extras.
fn builder(options: &Options, sim: &SimLightFlow, policies: &Arc<LivePolicies>) -> RemediatorBuilder<SimLightFlow> {
    // The AWS SDK standard quota's costs. Its 500 tokens (`--budget 500`, i.e. `RetryBudget::aws_standard()`)
    // cannot pay for the jobs that wait out the Brightcove outage, so the demo's default is larger.
    let budget = RetryBudget::new(BudgetConfig::Aws {
        capacity: options.budget.max(1),
        costs: AwsCosts::STANDARD,
        no_retry_increment: 1,
    })
    .expect("a capacity of at least 1 and the standard costs");
    Remediator::builder(policies.clone(), sim.clone()).hook_timeout(HOOK_TIMEOUT).retry_budget(budget)
}

// ---------------------------------------------------------------------------------------------------------------
// Main

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(message) => {
            eprintln!("orchestrator: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let wall = std::time::Instant::now();
    let sim = SimLightFlow::new(options.seed, options.outage);
    // One policy set, shared by the three remediators below.
    let policies = Arc::new(LivePolicies::fixed(Policies::defaults()));

    println!(
        "Simulated LightFlow: {} failed assets arriving over {}, seed {}, Brightcove outage {}, retry budget {} tokens",
        options.assets,
        short(ARRIVALS_OVER),
        options.seed,
        if options.outage.is_zero() {
            "none".to_owned()
        } else {
            format!("{}..{}", short(sim.0.outage.start), short(sim.0.outage.end))
        },
        options.budget,
    );

    main_batch(&options, &sim, &policies).await?;
    shutdown_and_resume(&options, &sim, &policies).await?;

    let state = sim.state();
    println!(
        "\nSimulated LightFlow: {} calls, {} duplicate attempts dropped by idempotency key, {} operator notices, \
         {} dead letters",
        state.calls, state.duplicates, state.notices, state.dead_letters
    );
    println!("Wall time: {:.2?} for {} of simulated time", wall.elapsed(), short(sim.0.epoch.elapsed()));
    Ok(())
}

async fn main_batch(options: &Options, sim: &SimLightFlow, policies: &Arc<LivePolicies>) -> Result<(), Box<dyn Error>> {
    let remediator = builder(options, sim, policies)
        // Room for bursts: the counting task runs between jobs' steps, not during them.
        .event_capacity(1 << 16)
        .build();
    let stop = CancellationToken::new();
    let events = count_events(remediator.subscribe(), sim.0.epoch, stop.clone());

    // The owner deletes a few assets while they are being remediated: cancel their jobs.
    let owner = {
        let remediator = remediator.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(240)).await;
            (0..100).map(asset_id).filter(|id| remediator.cancel(id)).take(3).count()
        })
    };

    let mean_gap = ARRIVALS_OVER.as_secs_f64() / options.assets.max(1) as f64;
    // Meanwhile LightFlow finishes most assets on the first try, and keeps doing so after this batch has arrived.
    // They need no remediation, but the host reports them to the retry budget: with the AWS quota they are what
    // refills it.
    let healthy = {
        let remediator = remediator.clone();
        let stop = stop.clone();
        let per_second = FIRST_TRY_SUCCESS / (1.0 - FIRST_TRY_SUCCESS) / mean_gap;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(options.seed, 1));
        tokio::spawn(async move {
            let mut reported = 0_u64;
            while tokio::time::timeout(Duration::from_secs(1), stop.cancelled()).await.is_err() {
                let n = per_second.floor() as u64 + u64::from(rng.random_bool(per_second.fract()));
                if let Some(budget) = remediator.budget() {
                    (0..n).for_each(|_| budget.succeeded(None));
                }
                reported += n;
            }
            reported
        })
    };

    let mut arrivals = Xoshiro256PlusPlus::seed_from_u64(options.seed);
    let mut handles: Vec<JobHandle> = Vec::with_capacity(options.assets);
    let mut joined = 0;
    for i in 0..options.assets {
        // Exponential gaps: failures arrive as a Poisson stream.
        let gap = -mean_gap * (1.0 - arrivals.random::<f64>()).ln();
        sleep(Duration::from_secs_f64(gap)).await;
        let job = job(options.seed, asset_id(i));
        let failure = sim.initial_failure(&job)?;
        handles.push(remediator.submit(job.clone(), failure.clone())?);
        if i % 250 == 0 {
            // LightFlow's notification arrives twice: the second report joins the running job.
            joined += usize::from(remediator.submit(job, failure)?.is_joined());
        }
    }

    let mut tally = Tally::default();
    for handle in handles {
        tally.add(&handle.await);
    }
    let cancelled_by_owner = owner.await?;
    stop.cancel();
    let events = events.await?;
    let first_try = healthy.await?;
    let counters = remediator.counters();

    let n = tally.total();
    println!(
        "\nMain batch: {n} failed assets, {joined} of them reported twice (joined the running job); meanwhile \
         {first_try} assets succeeded on the first try (reported to the retry budget)"
    );
    println!(
        "  recovered  {:>6}  {:5.1}%   ({} found done by reconcile)",
        tally.recovered,
        percent(tally.recovered, n),
        tally.reconciled
    );
    let failed: usize = tally.failed.values().sum();
    println!("  failed     {failed:>6}  {:5.1}%", percent(failed, n));
    for (kind, count) in &tally.failed {
        println!("    {kind:<18} {count:>5}");
    }
    let mut reasons: Vec<_> = tally.reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("    top reasons:");
    for (reason, count) in reasons.iter().take(5) {
        println!("      {count:>5}  {reason}");
    }
    println!(
        "  cancelled  {:>6}  {:5.1}%   ({cancelled_by_owner} by their owner)",
        tally.cancelled,
        percent(tally.cancelled, n)
    );
    if tally.suspended > 0 {
        println!("  suspended  {:>6}", tally.suspended);
    }

    let total_attempts: u64 = tally.attempts.iter().map(|&a| u64::from(a)).sum();
    let max_attempts = tally.attempts.iter().max().copied().unwrap_or(0);
    println!(
        "  attempts per asset: mean {:.2}, max {max_attempts}",
        if n == 0 { 0.0 } else { total_attempts as f64 / n as f64 }
    );
    tally.to_recovery.sort();
    println!(
        "  simulated time to recovery: p50 {}, p99 {}, max {}",
        short(percentile(&tally.to_recovery, 50.0)),
        short(percentile(&tally.to_recovery, 99.0)),
        short(tally.to_recovery.last().copied().unwrap_or_default()),
    );

    let mut decisions: Vec<_> = counters.decisions.iter().collect();
    decisions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = decisions.iter().take(6).map(|(k, n)| format!("{k} {n}")).collect();
    println!("  decisions: {} in all; most: {}", events.decided, top.join(", "));
    let hooks: Vec<String> = events.hooks.iter().map(|(h, n)| format!("{h} {n}")).collect();
    println!("  hook calls: {}", hooks.join(", "));
    println!(
        "  hook timeouts {}, hook errors {}, hook panics {}",
        counters.hook_timeouts, counters.hook_errors, counters.hook_panics
    );
    let left = remediator.budget().map_or(0.0, RetryBudget::available);
    let when = match &events.refused_during {
        Some(r) => format!(" (between {} and {})", short(r.start), short(r.end)),
        None => String::new(),
    };
    println!(
        "  retry budget: {} refusals{when}, {left:.0} of {} tokens left",
        counters.budget_refusals, options.budget
    );
    let transitions: Vec<String> = counters.breaker_transitions.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  breaker transitions: {}; {} breaker-wait events",
        if transitions.is_empty() { "none".to_owned() } else { transitions.join(", ") },
        events.breaker_waits
    );
    if let Some(first) = events.breaker_changes.first() {
        println!(
            "    first {first}, last {}, Brightcove now {:?}",
            events.breaker_changes.last().unwrap_or(first),
            remediator.breaker_state(Downstream::Brightcove)
        );
    }
    println!("  events: {} joined, {} missed by the subscriber", events.joined, events.missed);
    Ok(())
}

fn asset_id(i: usize) -> String {
    format!("asset-{i:05}")
}

/// A job whose jitter depends on `--seed` too, not only on the asset id.
fn job(seed: u64, asset_id: String) -> Job {
    let job = Job::new(asset_id);
    let seed = mix(seed, job.seed());
    job.with_seed(seed)
}

/// A second batch, stopped by a graceful shutdown after a while; its suspended jobs travel as JSON (as they
/// would to disk across a restart) and resume on a new remediator.
async fn shutdown_and_resume(
    options: &Options,
    sim: &SimLightFlow,
    policies: &Arc<LivePolicies>,
) -> Result<(), Box<dyn Error>> {
    const BATCH: usize = 12;
    let began = Instant::now();
    let before = builder(options, sim, policies).build();
    let mut handles = Vec::with_capacity(BATCH);
    for i in 0..BATCH {
        let job = job(options.seed, format!("late-{i:02}"));
        let failure = sim.initial_failure(&job)?;
        handles.push(before.submit(job, failure)?);
        sleep(Duration::from_secs(2)).await;
    }
    // Shut down a while in, at a moment when an attempt is in flight, so that the shutdown deadline matters.
    while began.elapsed() < Duration::from_secs(40)
        || (sim.attempts_in_flight() == 0 && began.elapsed() < Duration::from_secs(600))
    {
        sleep(Duration::from_millis(50)).await;
    }
    let in_flight = sim.attempts_in_flight();
    let duplicates_before = sim.state().duplicates;

    // Hook calls in flight get 100 ms to finish; the answers of slower ones are lost and resume repeats them.
    let suspended = before.shutdown(Duration::from_millis(100)).await;
    let mut tally = Tally::default();
    for handle in handles {
        tally.add(&handle.await);
    }
    let json = serde_json::to_string(&suspended)?;
    println!(
        "\nShutdown {} into a second batch of {BATCH}, {in_flight} attempt(s) in flight: {} recovered, {} failed, \
         {} suspended ({} bytes of JSON)",
        short(began.elapsed()),
        tally.recovered,
        tally.failed.values().sum::<usize>(),
        tally.suspended,
        json.len()
    );
    if let Some(first) = suspended.first() {
        println!("  e.g. {}", serde_json::to_string(first)?);
    }

    // ... the process restarts ...
    let restored: Vec<SuspendedJob> = serde_json::from_str(&json)?;
    let after = builder(options, sim, policies).build();
    let mut resumed = Vec::with_capacity(restored.len());
    for state in restored {
        let line = format!(
            "{} on {} (waiting {} more)",
            state.job.asset_id(),
            state.failure.key(),
            short(state.remaining_delay.unwrap_or_default())
        );
        resumed.push((line, after.resume(state)?));
    }
    println!("Resumed on a new remediator:");
    for (line, handle) in resumed {
        println!("  {line:<38} -> {}", outcome_line(&handle.await));
    }
    println!(
        "  attempts repeated after the shutdown and dropped by idempotency key: {}",
        sim.state().duplicates - duplicates_before
    );
    Ok(())
}
