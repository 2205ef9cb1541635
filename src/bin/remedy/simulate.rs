//! `remedy simulate`: run the real engine under virtual time against a simulated LightFlow, and summarize.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lightflow_remedy::FailureKey;
use lightflow_remedy::engine::{BudgetConfig, RetryBudget};
use lightflow_remedy::operate::simulation::{self, Mix, Outage, SimConfig, Summary};

use crate::common::{bad_input, load};

/// Run the real engine under virtual time against a simulated LightFlow, and summarize.
///
/// The same seed and options print the same summary; the wall time goes to standard error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many failed assets to remediate.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    assets: usize,
    /// Seed of every draw of the simulated LightFlow and of the jobs' jitter.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// A directory of *.rhai policies on top of the built-in defaults; may be repeated.
    #[arg(long = "policies", value_name = "DIR")]
    policies: Vec<PathBuf>,
    /// What LightFlow fails assets with, as weights of failure keys, e.g. "2001=30,3001=10,http:503=10".
    /// By default a fleet's usual mix of transient, throttling, credentials, Brightcove, permanent, DRM and
    /// API failures.
    #[arg(long, value_name = "KEY=WEIGHT,...")]
    mix: Option<String>,
    /// The probability that a resubmission or re-publication succeeds [default: 0.6].
    #[arg(long, value_name = "P")]
    recover: Option<f64>,
    /// The probability that fix_credentials repairs them [default: 0.75].
    #[arg(long = "fix", value_name = "P")]
    fix_credentials: Option<f64>,
    /// The probability that reconcile finds an earlier attempt done [default: 0.25].
    #[arg(long = "reconcile", value_name = "P")]
    reconcile_done: Option<f64>,
    /// The fleet's retry budget: `aws` (the AWS SDK standard quota, refilled by the assets that succeed on the
    /// first try meanwhile), `grpc:MAX_TOKENS:TOKEN_RATIO` (e.g. grpc:100:0.1), or `none`.
    #[arg(long, value_name = "BUDGET", default_value = "none")]
    budget: String,
    /// How many hook calls may be in flight at once (the engine's bound).
    #[arg(long, value_name = "N", default_value_t = 64)]
    hook_slots: usize,
    /// No circuit breakers.
    #[arg(long)]
    no_breaker: bool,
    /// Failed assets arrive over this much simulated time, e.g. 10m or 1h; 0s: all at once.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    arrivals: String,
    /// An outage: attempts on the downstream of KEY fail with KEY from START for LENGTH, e.g. 3001@2m+10m.
    #[arg(long, value_name = "KEY@START+LENGTH")]
    outage: Option<String>,
    /// Run on a store rather than in memory: `sqlite://PATH` (a new or empty file), `postgres://...`
    /// (with the `postgres` feature), or `memory:`. Adds what a crash test asks to the summary.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// With a store: how many replicas of the engine share it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    replicas: usize,
    /// With a store: kill a replica (dropped, no shutdown, its leases left behind) about this often, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    crash_every: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Exit codes: 0 the simulation ran; 1 the policies are invalid; 2 bad options; 3 on a store, the crash test
/// failed: a job was lost or ended twice, or two calls of one job ran at once.
pub(crate) fn run(args: Args) -> ExitCode {
    let config = match config(&args) {
        Ok(config) => config,
        Err(message) => return bad_input(format!("simulate: {message}")),
    };
    if let Err(e) = config.validate() {
        return bad_input(format!("simulate: {e}"));
    }
    let policies = match load(&args.policies) {
        Ok(p) => p,
        Err(code) => return code,
    };

    let bar = ProgressBar::with_draw_target(Some(config.assets as u64), ProgressDrawTarget::stderr_with_hz(10));
    if let Ok(style) = ProgressStyle::with_template("{spinner} simulating {wide_bar} {pos}/{len} jobs ended ({eta})") {
        bar.set_style(style);
    }
    let wall = Instant::now();
    let result = match &args.store {
        None => simulation::run(policies, &config, |done, _| bar.set_position(done)),
        Some(url) => simulation::run_on_url(policies, &config, url, |done, _| bar.set_position(done)),
    };
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => return bad_input(format!("simulate: {e}")),
    };
    let wall = wall.elapsed();

    if args.json {
        match serde_json::to_string(&summary) {
            Ok(text) => println!("{text}"),
            Err(e) => return bad_input(format!("simulate: {e}")),
        }
    } else {
        print!("{}", table(&config, &summary));
    }
    eprintln!(
        "remedy: simulate: {} assets, {} of simulated time in {wall:.2?} of wall time",
        summary.assets,
        short(Duration::from_millis(summary.simulated_span_ms))
    );
    if let Some(run) = &summary.store
        && (run.lost > 0 || run.ended_once != run.submitted || run.concurrent_calls > 0)
    {
        eprintln!(
            "remedy: simulate: the crash test FAILED: {} lost, {} of {} ended once, {} concurrent calls for one job",
            run.lost, run.ended_once, run.submitted, run.concurrent_calls
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

fn config(args: &Args) -> Result<SimConfig, String> {
    let defaults = SimConfig::default();
    let mix = match &args.mix {
        Some(text) => text.parse::<Mix>().map_err(|e| format!("--mix: {e}"))?,
        None => defaults.mix.clone(),
    };
    Ok(SimConfig {
        assets: args.assets,
        seed: args.seed,
        mix,
        recover: args.recover.unwrap_or(defaults.recover),
        fix_credentials: args.fix_credentials.unwrap_or(defaults.fix_credentials),
        reconcile_done: args.reconcile_done.unwrap_or(defaults.reconcile_done),
        budget: budget(&args.budget).map_err(|e| format!("--budget: {e}"))?,
        max_concurrent_hook_calls: args.hook_slots,
        breaker: if args.no_breaker { None } else { defaults.breaker },
        arrivals_over: duration(&args.arrivals).map_err(|e| format!("--arrivals: {e}"))?,
        outage: args.outage.as_deref().map(outage).transpose().map_err(|e| format!("--outage: {e}"))?,
        replicas: args.replicas,
        crash_every: args
            .crash_every
            .as_deref()
            .map(duration)
            .transpose()
            .map_err(|e| format!("--crash-every: {e}"))?,
        ..defaults
    })
}

/// `aws`, `grpc:MAX:RATIO` or `none`.
fn budget(text: &str) -> Result<Option<BudgetConfig>, String> {
    let text = text.trim();
    match text {
        "none" => return Ok(None),
        "aws" => return Ok(Some(RetryBudget::aws_standard().config())),
        _ => {}
    }
    let expected = || format!("`{text}` is not a budget (expected aws, grpc:MAX_TOKENS:TOKEN_RATIO or none)");
    let rest = text.strip_prefix("grpc:").ok_or_else(expected)?;
    let (max, ratio) = rest.split_once(':').ok_or_else(expected)?;
    let max_tokens = max.trim().parse::<u32>().map_err(|_| format!("`{max}`: MAX_TOKENS must be a whole number"))?;
    let token_ratio = ratio
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("`{ratio}`: TOKEN_RATIO must be a number of at least 0"))?;
    Ok(Some(BudgetConfig::Grpc { max_tokens, token_ratio }))
}

fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e} (expected e.g. 30s, 10m or 1h)"))
}

/// `KEY@START+LENGTH`, e.g. `3001@2m+10m`; most attempts fail (nine in ten).
fn outage(text: &str) -> Result<Outage, String> {
    let expected = || format!("`{text}` is not an outage (expected KEY@START+LENGTH, e.g. 3001@2m+10m)");
    let (key, window) = text.split_once('@').ok_or_else(expected)?;
    let (start, length) = window.split_once('+').ok_or_else(expected)?;
    let failure: FailureKey = key.trim().parse().map_err(|e| format!("`{key}`: {e}"))?;
    Ok(Outage { failure, start: duration(start)?, length: duration(length)?, fail: 0.9 })
}

fn percent(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { 100.0 * n as f64 / of as f64 }
}

/// A duration to the second (to the millisecond below 10 s), in humantime's style.
fn short(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn ms(n: u64) -> String {
    short(Duration::from_millis(n))
}

/// `name n, name n, ...`, or `none`.
fn counts<'a>(items: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let parts: Vec<String> = items.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

/// The summary as a readable table.
fn table(config: &SimConfig, s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let budget = match config.budget {
        None => "none".to_owned(),
        Some(BudgetConfig::Aws { capacity, .. }) => format!("AWS standard quota ({capacity} tokens)"),
        Some(BudgetConfig::Grpc { max_tokens, token_ratio }) => {
            format!("gRPC throttling ({max_tokens} tokens, ratio {token_ratio})")
        }
    };
    let outage = match &config.outage {
        None => String::new(),
        Some(o) => format!(", outage {} from {} for {}", o.failure, short(o.start), short(o.length)),
    };
    let _ = writeln!(
        out,
        "Simulated {} failed assets, seed {}, arriving over {}; attempts succeed with p={}; retry budget {budget}; \
         circuit breakers {}{outage}",
        s.assets,
        s.seed,
        short(config.arrivals_over),
        config.recover,
        if config.breaker.is_some() { "on" } else { "off" },
    );
    let _ = writeln!(out, "Mix: {}", config.mix);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  recovered   {:>8}  {:5.1}%   ({} found done by reconcile)",
        s.recovered,
        percent(s.recovered, s.assets),
        s.recovered_by_reconcile
    );
    let _ = writeln!(out, "  failed      {:>8}  {:5.1}%", s.failed, percent(s.failed, s.assets));
    for (kind, n) in &s.failed_by_verdict {
        let _ = writeln!(out, "    {kind:<18}{n:>8}");
    }
    let _ = writeln!(out, "  cancelled   {:>8}  {:5.1}%", s.cancelled, percent(s.cancelled, s.assets));
    if !s.top_reasons.is_empty() {
        let _ = writeln!(out, "\n  top reasons for failing:");
        for r in &s.top_reasons {
            let _ = writeln!(out, "    {:>8}  {:<16}  {}", r.count, r.verdict, r.reason);
        }
    }
    let a = &s.attempts;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  attempts per asset       mean {:.2}, p50 {}, p99 {}, max {} ({} in all)",
        a.mean, a.p50, a.p99, a.max, a.total
    );
    let r = &s.recovery;
    let _ =
        writeln!(out, "  time to recovery         p50 {}, p99 {}, max {}", ms(r.p50_ms), ms(r.p99_ms), ms(r.max_ms));
    let _ = writeln!(out, "  decisions                {}", counts(&s.decisions));
    let _ = writeln!(out, "  hook calls               {}", counts(&s.hook_calls));
    let _ = writeln!(out, "  hook timeouts            {}", s.hook_timeouts);
    let budget_line = match s.budget_left {
        Some(left) => format!("{} refusals, {left:.0} tokens left", s.budget_refusals),
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "  retry budget             {budget_line}");
    let breakers = if config.breaker.is_some() { counts(&s.breaker_openings) } else { "off".to_owned() };
    let _ = writeln!(out, "  breaker openings         {breakers}");
    let _ = writeln!(out, "  simulated span           {}", ms(s.simulated_span_ms));
    if let Some(run) = &s.store {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  store                    {} ({} {}, {} {})",
            run.store,
            run.replicas,
            if run.replicas == 1 { "replica" } else { "replicas" },
            run.crashes,
            if run.crashes == 1 { "crash" } else { "crashes" }
        );
        let _ = writeln!(out, "  submitted                {}", run.submitted);
        let _ = writeln!(out, "  ended once               {}", run.ended_once);
        let _ = writeln!(out, "  lost                     {}", run.lost);
        let _ = writeln!(out, "  takeovers                {}", run.takeovers);
        let _ = writeln!(out, "  repeated calls (same key) {}", run.repeated_calls);
        let _ = writeln!(out, "  concurrent calls, 1 job  {}", run.concurrent_calls);
        let _ = writeln!(out, "  dead letters repeated    {}", run.repeated_dead_letters);
    }
    out
}
