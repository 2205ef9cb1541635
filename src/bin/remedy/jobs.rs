//! `remedy jobs --store URL`: the jobs a durable store keeps: list them, show one (its history, its ledger of
//! calls, and the explanation of its next decision), cancel one, make one due now, count them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args as ClapArgs, Subcommand};
use lightflow_remedy::engine::StoredJob;
use lightflow_remedy::store::{
    CallRow, CancelAnswer, Clock, JobRow, ListFilter, Phase, Store, StoreError, StoreOptions, SystemClock, Timestamp,
    open_url,
};
use lightflow_remedy::{Context, Policies};

use crate::common;

/// `remedy jobs` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The store: `sqlite://PATH` (or `postgres://...` with the `postgres` feature).
    #[arg(long, value_name = "URL")]
    store: String,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The jobs, newest first: state, asset, last code, next wake, attempts.
    List {
        /// Only in this state: waiting, calling, awaiting, finished, or an outcome (recovered, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Only remediating this failure (e.g. 2404, http:503).
        #[arg(long)]
        code: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One asset's job: its row, history, ledger of calls, and what the policies decide next.
    Show {
        /// The asset's id.
        asset: String,
        /// A directory of *.rhai policies on top of the built-in defaults, for the next decision; may be repeated.
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
    },
    /// Cancel the asset's active job (at once if it is at rest; a replica holding it is asked to).
    Cancel {
        /// The asset's id.
        asset: String,
    },
    /// Make the asset's active job due now.
    RetryNow {
        /// The asset's id.
        asset: String,
    },
    /// Counts by state and outcome.
    Stats,
    /// The dead letters: jobs that failed for good, newest first, with the verdict the `failed` hook was given.
    DeadLetters {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Runs `remedy jobs`. Exit codes: 0 done; 1 no such job; 2 bad arguments, or the store cannot be opened or
/// read.
pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return common::bad_input(format!("cannot start a runtime: {e}")),
    };
    runtime.block_on(async {
        // A reader: a typo in a SQLite path is an error, not a new, empty store.
        let options = StoreOptions::default().create(false);
        let store: Arc<dyn Store> = match open_url(&args.store, &options).await {
            Ok(store) => Arc::from(store),
            Err(e) => return common::bad_input(e),
        };
        match command(store, &args).await {
            Ok(code) => code,
            Err(e) => common::bad_input(e),
        }
    })
}

async fn command(store: Arc<dyn Store>, args: &Args) -> Result<ExitCode, StoreError> {
    // The store's own clock (PostgreSQL's: the one its replicas write leases on), so that "held", "due" and a
    // cancel's "at rest" are judged as the replicas judge them, whatever this machine's clock says.
    let now = store.own_clock().map_or_else(|| SystemClock.now(), |clock| clock.now());
    match &args.command {
        Command::List { state, code, limit } => {
            let mut filter = ListFilter { code: code.clone(), limit: Some(*limit), ..ListFilter::default() };
            match state.as_deref() {
                None => {}
                Some(s) => match s.parse::<Phase>() {
                    Ok(phase) => filter.phase = Some(phase),
                    Err(_) if matches!(s, "recovered" | "failed" | "cancelled") => filter.outcome = Some(s.to_owned()),
                    Err(e) => return Ok(common::bad_input(format!("--state: {e}, or recovered, failed, cancelled"))),
                },
            }
            let rows = store.list(&filter).await?;
            if args.json {
                let list: Vec<_> = rows.iter().map(|r| row_json(r, now)).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<10} {:<24} {:<10} {:<10} {:<14} {:>8}",
                    "JOB", "ASSET", "STATE", "CODE", "NEXT", "ATTEMPTS"
                );
                for r in &rows {
                    println!(
                        "{:<10} {:<24} {:<10} {:<10} {:<14} {:>8}",
                        r.id,
                        r.asset_id,
                        state_of(r),
                        r.last_code,
                        next_wake(r, now),
                        r.attempts
                    );
                }
                println!("{} job(s)", rows.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { asset, policies } => {
            let Some(row) = store.job_of(asset).await? else { return Ok(no_job(asset)) };
            let calls = store.calls(row.id).await?;
            // The uuids that replaced the asset, where the store keeps assets (a store of a host's own may not).
            let lineage = match store.lineage(asset).await {
                Ok(lineage) => lineage,
                Err(StoreError::Unsupported { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            let stored = StoredJob::from_row(&row);
            let next = match (&stored, row.phase) {
                (Ok(job), phase) if phase != Phase::Finished => next_decision(job, policies),
                _ => None,
            };
            if args.json {
                let out = serde_json::json!({
                    "row": row_json(&row, now),
                    "job": stored.as_ref().ok(),
                    "payload_error": stored.as_ref().err().map(|e| e.to_string()),
                    "calls": calls.iter().map(call_json).collect::<Vec<_>>(),
                    "lineage": lineage,
                    "next": next,
                });
                println!("{out}");
            } else {
                print_job(&row, stored.as_ref(), &calls, next.as_ref(), now);
                if !lineage.is_empty() {
                    println!("  lineage ({}):", lineage.len());
                    for l in &lineage {
                        println!("    {} ({}) at {}", l.reference, l.attempt_key, l.at);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { asset } => {
            let answer = store.cancel(asset, now).await?;
            if args.json {
                println!("{}", serde_json::to_value(answer).unwrap_or_default());
            } else {
                match answer {
                    CancelAnswer::Cancelled { job } => println!("job {job} of {asset} cancelled"),
                    CancelAnswer::Requested { job } => {
                        println!("job {job} of {asset}: its replica is asked to cancel it")
                    }
                    CancelAnswer::NoJob => {}
                }
            }
            Ok(if answer == CancelAnswer::NoJob { no_job(asset) } else { ExitCode::SUCCESS })
        }
        Command::RetryNow { asset } => {
            let done = store.retry_now(asset, now).await?;
            if args.json {
                println!("{}", serde_json::json!({ "asset": asset, "due_now": done }));
            } else if done {
                println!("the job of {asset} is due now");
            }
            if done {
                return Ok(ExitCode::SUCCESS);
            }
            // Say why: no active job at all, or one that a replica holds (it is being worked on now).
            match store.job_of(asset).await? {
                Some(row) if row.phase != Phase::Finished => {
                    let holder = row.lease_owner.as_deref().unwrap_or("a replica");
                    eprintln!(
                        "remedy: the job of asset `{asset}` is not at rest: {holder} holds it ({}); nothing to \
                         make due",
                        row.phase.as_str()
                    );
                    Ok(ExitCode::from(1))
                }
                _ => Ok(no_job(asset)),
            }
        }
        Command::DeadLetters { limit } => {
            let filter =
                ListFilter { outcome: Some("failed".to_owned()), limit: Some(*limit), ..ListFilter::default() };
            let rows = store.list(&filter).await?;
            let letters: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let verdict = match StoredJob::from_row(row) {
                        Ok(StoredJob {
                            outcome: Some(lightflow_remedy::engine::Outcome::Failed { verdict }), ..
                        }) => Some(verdict),
                        _ => None,
                    };
                    serde_json::json!({
                        "job": row.id,
                        "asset": row.asset_id,
                        "code": row.last_code,
                        "attempts": row.attempts,
                        "finished_at": row.finished_at.map(|t| t.to_string()),
                        "kind": verdict.as_ref().map(|v| v.kind.as_str()),
                        "reason": verdict.as_ref().map(|v| v.reason.clone()),
                    })
                })
                .collect();
            if args.json {
                println!("{}", serde_json::Value::Array(letters));
            } else {
                for l in &letters {
                    println!(
                        "{} {} ({}, {} attempt(s), {}): {}",
                        l["job"],
                        l["asset"].as_str().unwrap_or_default(),
                        l["code"].as_str().unwrap_or_default(),
                        l["attempts"],
                        l["kind"].as_str().unwrap_or("?"),
                        l["reason"].as_str().unwrap_or("(payload unreadable)")
                    );
                }
                println!("{} dead letter(s)", letters.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats => {
            let stats = store.stats(now).await?;
            if args.json {
                println!("{}", serde_json::to_value(&stats).unwrap_or_default());
            } else {
                println!("store {}", store.describe());
                for (phase, n) in &stats.by_phase {
                    println!("  {phase:<12} {n:>10}");
                }
                for (outcome, n) in &stats.by_outcome {
                    println!("  {outcome:<12} {n:>10}  (finished, kept for the retention period)");
                }
                println!("  due now      {:>10}", stats.due_now);
                println!("  held         {:>10}", stats.held);
                println!("  held reports {:>10}", stats.held_reports);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn no_job(asset: &str) -> ExitCode {
    eprintln!("remedy: no job of asset `{asset}` in the store");
    ExitCode::from(1)
}

fn state_of(r: &JobRow) -> String {
    r.outcome.clone().unwrap_or_else(|| r.phase.to_string())
}

fn next_wake(r: &JobRow, now: Timestamp) -> String {
    match r.phase {
        Phase::Finished => "-".to_owned(),
        _ if r.lease_owner.is_some() && r.wake_at > now => "held".to_owned(),
        _ if r.wake_at <= now => "now".to_owned(),
        _ => {
            format!("in {}", humantime::format_duration(std::time::Duration::from_secs(r.wake_at.since(now).as_secs())))
        }
    }
}

fn row_json(r: &JobRow, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "job": r.id,
        "asset": r.asset_id,
        "state": state_of(r),
        "phase": r.phase,
        "code": r.last_code,
        "attempts": r.attempts,
        "wake_at": r.wake_at.to_string(),
        "next": next_wake(r, now),
        "lease_owner": r.lease_owner,
        "epoch": r.epoch,
        "reference": r.reference,
        "created_at": r.created_at.to_string(),
        "updated_at": r.updated_at.to_string(),
        "finished_at": r.finished_at.map(|t| t.to_string()),
        "outcome": r.outcome,
        "payload_version": r.version,
    })
}

fn call_json(c: &CallRow) -> serde_json::Value {
    serde_json::json!({
        "key": c.key,
        "hook": c.hook,
        "started_at": c.started_at.to_string(),
        "answered_at": c.answered_at.map(|t| t.to_string()),
        "answer": c.answer,
    })
}

/// What the policies decide next for the job, as `remedy explain` shows a decision.
fn next_decision(job: &StoredJob, dirs: &[PathBuf]) -> Option<serde_json::Value> {
    let policies = match Policies::load(dirs) {
        Ok(p) => p,
        Err(e) => return Some(serde_json::json!({ "error": e.to_string() })),
    };
    let ctx: &Context = job.job.context();
    let decision = policies.decide(&job.failure, &job.history, ctx);
    serde_json::to_value(&decision).ok()
}

fn print_job(
    row: &JobRow,
    job: Result<&StoredJob, &StoreError>,
    calls: &[CallRow],
    next: Option<&serde_json::Value>,
    now: Timestamp,
) {
    println!(
        "job {} of {}: {} (code {}, {} attempt(s))",
        row.id,
        row.asset_id,
        state_of(row),
        row.last_code,
        row.attempts
    );
    println!("  next wake  {}", next_wake(row, now));
    if let Some(owner) = &row.lease_owner {
        println!("  held by    {owner} (epoch {})", row.epoch);
    }
    if let Some(reference) = &row.reference {
        println!("  awaiting   {reference}");
    }
    println!("  submitted  {}", row.created_at);
    match job {
        Ok(job) => {
            println!("  failure    {}", job.failure);
            println!("  history    {}", serde_json::to_string(&job.history).unwrap_or_default());
            if let Some(v) = &job.verdict {
                println!("  dead letter to deliver: {} ({})", v.reason, v.kind.as_str());
            }
            if let Some(outcome) = &job.outcome {
                println!("  outcome    {}", serde_json::to_string(outcome).unwrap_or_default());
            }
        }
        Err(e) => println!("  payload    unreadable: {e}"),
    }
    println!("  calls ({}):", calls.len());
    for c in calls {
        let answer = match (&c.answer, c.answered_at) {
            (Some(a), Some(t)) => format!("{a} at {t}"),
            _ => "no answer (reconciled before it is repeated)".to_owned(),
        };
        println!("    {} {} at {}: {answer}", c.hook, c.key, c.started_at);
    }
    if let Some(next) = next {
        println!("  next decision: {next}");
    }
}
