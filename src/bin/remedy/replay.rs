//! `remedy replay`: decide each failure of a JSON-lines log, or show where two policy sets differ on it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::operate::replay::{self, Entry, Replayer};
use serde_json::json;

use crate::common::{bad_input, load};

/// Decide each failure of a JSON-lines log, or show where two policy sets decide differently.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The log: one JSON object per line with `asset_id`, optional `time` and `context`, and the failure
    /// (under `failure`, or on the line itself). `-` for standard input.
    log: PathBuf,
    /// A directory of *.rhai policies on top of the built-in defaults; may be repeated.
    #[arg(long = "policies", value_name = "DIR")]
    policies: Vec<PathBuf>,
    /// Compare with the defaults plus these directories (the proposed change): list only the failures decided
    /// differently, side by side, and a count per code. May be repeated.
    #[arg(long = "against", value_name = "DIR")]
    against: Vec<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Exit codes: 0 done; 1 a policy set is invalid; 2 the log cannot be read, or some of its lines (reported, and
/// passed over) are not failures.
pub(crate) fn run(args: Args) -> ExitCode {
    let text = match read(&args.log) {
        Ok(text) => text,
        Err(e) => return bad_input(format!("replay: {}: {e}", args.log.display())),
    };
    let policies = match load(&args.policies) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut entries = Vec::new();
    let mut bad_lines = 0;
    for parsed in replay::parse(&text) {
        match parsed {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                bad_lines += 1;
                eprintln!("{}:{}: {}", args.log.display(), e.line, e.message);
            }
        }
    }
    if args.against.is_empty() {
        print_decisions(&policies, &entries, args.json);
    } else {
        let proposed = match load(&args.against) {
            Ok(p) => p,
            Err(code) => return code,
        };
        print_differences(&policies, &proposed, &entries, args.json);
    }
    if bad_lines > 0 {
        eprintln!("remedy: replay: {bad_lines} line(s) passed over");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn read(path: &PathBuf) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
}

fn print_decisions(policies: &lightflow_remedy::Policies, entries: &[Entry], as_json: bool) {
    let mut replayer = Replayer::new(policies);
    for entry in entries {
        let r = replayer.decide(entry);
        if as_json {
            println!("{}", json!(r));
        } else {
            println!(
                "{:>5} {:<14} {:<9} #{:<2} {}   ({})",
                r.line,
                r.asset_id,
                r.failure.to_string(),
                r.attempt,
                r.describe(),
                r.rule
            );
        }
    }
    if !as_json {
        println!("{} failures decided", entries.len());
    }
}

fn print_differences(
    current: &lightflow_remedy::Policies,
    proposed: &lightflow_remedy::Policies,
    entries: &[Entry],
    as_json: bool,
) {
    let differences = replay::compare(current, proposed, entries);
    let counts = replay::count_by_code(&differences);
    if as_json {
        for d in &differences {
            println!(
                "{}",
                json!({ "line": d.before.line, "asset_id": d.before.asset_id, "failure": d.before.failure,
                                   "before": d.before, "after": d.after })
            );
        }
        let by_code: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
        println!("{}", json!({ "failures": entries.len(), "differ": differences.len(), "by_code": by_code }));
        return;
    }
    for d in &differences {
        println!(
            "{:>5} {:<14} {:<9} #{:<2}",
            d.before.line,
            d.before.asset_id,
            d.before.failure.to_string(),
            d.before.attempt
        );
        println!("        now:      {}   ({})", d.before.describe(), d.before.rule);
        println!("        proposed: {}   ({})", d.after.describe(), d.after.rule);
    }
    println!("{} of {} failures decided differently", differences.len(), entries.len());
    for (key, n) in counts {
        println!("  {:<9} {n}", key.to_string());
    }
}
