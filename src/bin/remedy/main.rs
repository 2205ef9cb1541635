//! `remedy`: explain, check and tabulate LightFlow remediation policies, classify failures, run the decision
//! tests beside the policies, simulate a fleet, and replay a log of failures.
//!
//! Exit codes: 0 success; 1 the policy set is invalid, or (`test`) a case fails; 2 bad input (an unreadable
//! code, context, document, fixture or log, or bad arguments). Output cut short by its reader (`remedy table |
//! head -1`) ends the command quietly, with 0.

mod check;
mod classify;
mod common;
mod explain;
mod jobs;
mod replay;
#[cfg(feature = "serve")]
mod serve;
mod simulate;
mod table;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Decide what to do when a LightFlow asset or API call fails.
#[derive(Debug, Parser)]
#[command(name = "remedy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// What the engine does at the N-th consecutive failure with a code.
    Explain {
        /// An asset error code (e.g. 2404), an API status (e.g. http:429), or `timeout`.
        code: String,
        /// A directory of *.rhai policies on top of the built-in defaults; may be repeated.
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
        /// Which consecutive failure with this code (from 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        attempt: u32,
        /// The host's context for the asset, as a JSON object.
        #[arg(long, value_name = "JSON")]
        ctx: Option<String>,
        /// Seed of the jitter.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Load and validate the policies: exit 0 when valid (warnings printed), 1 with file:line:col errors.
    Check {
        /// A directory of *.rhai policies on top of the built-in defaults; may be repeated.
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
    },
    /// The effective first action for every catalogue code (and common API statuses).
    Table {
        /// A directory of *.rhai policies on top of the built-in defaults; may be repeated.
        #[arg(long = "policies", value_name = "DIR")]
        policies: Vec<PathBuf>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Classify an asset, assetError or API failure JSON document and print the failure as JSON.
    Classify {
        /// The document; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Run the decision tests (fixtures) of the policies: each case's expected and actual side by side.
    Test(test::Args),
    /// Run the real engine under virtual time against a simulated LightFlow, and summarize.
    Simulate(simulate::Args),
    /// Decide each failure of a JSON-lines log, or show where two policy sets decide differently.
    Replay(replay::Args),
    /// The jobs a durable store keeps: list, show, cancel, retry-now, stats.
    Jobs(jobs::Args),
    /// Run the service: LightFlow's callbacks, the gateway for new assets, health, metrics (`--demo`: against a
    /// simulated LightFlow).
    #[cfg(feature = "serve")]
    Serve(serve::Args),
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli))) {
        Ok(code) => code,
        Err(panic) if is_broken_pipe(panic_text(&*panic)) => ExitCode::SUCCESS,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Whether a panic is the standard library's own when a `print!` finds its reader gone.
fn is_broken_pipe(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe"))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

/// A reader that stops reading (`| head -1`) ends the command without a panic message; every other panic is
/// reported as usual.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(panic_text(info.payload())) {
            report(info);
        }
    }));
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Explain { code, policies, attempt, ctx, seed, json } => {
            explain::explain(&code, &policies, attempt, ctx, seed, json)
        }
        Command::Check { policies } => check::check(&policies),
        Command::Table { policies, json } => table::table(&policies, json),
        Command::Classify { file } => classify::classify(file),
        Command::Test(args) => test::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Jobs(args) => jobs::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
    }
}
