//! `remedy`: explain, check and tabulate LightFlow remediation policies, and classify failures.
//!
//! Exit codes: 0 success; 1 the policy set is invalid; 2 bad input (an unreadable code, context or document).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use lightflow_remedy::{Context, Decision, Failure, FailureKey, LoadError, Policies, Severity, catalogue};
use serde_json::{Value, json};

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
}

/// API statuses `table` shows besides the catalogue.
const API_STATUSES: [u16; 11] = [400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504];

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain { code, policies, attempt, ctx, seed, json } => {
            explain(&code, &policies, attempt, ctx, seed, json)
        }
        Command::Check { policies } => check(&policies),
        Command::Table { policies, json } => table(&policies, json),
        Command::Classify { file } => classify(file),
    }
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("remedy: {message}");
    ExitCode::from(2)
}

fn load(dirs: &[PathBuf]) -> Result<Policies, ExitCode> {
    Policies::load(dirs).map_err(|e: LoadError| {
        for d in e.warnings() {
            eprintln!("{d}");
        }
        for d in e.errors() {
            eprintln!("{d}");
        }
        ExitCode::from(1)
    })
}

fn explain(code: &str, dirs: &[PathBuf], attempt: u32, ctx: Option<String>, seed: u64, as_json: bool) -> ExitCode {
    let key: FailureKey = match code.parse() {
        Ok(key) => key,
        Err(e) => return bad_input(format!("explain: {e} (expected e.g. 2404 or http:429)")),
    };
    let ctx = match ctx.as_deref().map(Context::from_json).transpose() {
        Ok(ctx) => ctx.unwrap_or_default(),
        Err(e) => return bad_input(format!("explain: --ctx: {e}")),
    };
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let failure = match Failure::from_key(key, "") {
        Ok(f) => f,
        Err(e) => return bad_input(format!("explain: {e}")),
    };
    let explanation = policies.explain(&failure, attempt, &ctx, seed);
    if as_json {
        let mut out = match serde_json::to_value(explanation.first()) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        out.insert("code".into(), json!(failure.code()));
        out.insert("key".into(), json!(key.to_string()));
        out.insert("kind".into(), json!(failure.kind()));
        out.insert("name".into(), json!(failure.name()));
        out.insert("category".into(), json!(failure.category()));
        out.insert("downstream".into(), json!(failure.downstream()));
        out.insert("failure".into(), json!(explanation.attempt));
        out.insert("asked_failure".into(), json!(attempt));
        out.insert("seed".into(), json!(seed));
        out.insert("steps".into(), json!(explanation.steps));
        println!("{}", Value::Object(out));
        return ExitCode::SUCCESS;
    }
    println!("{key} {} [{}, {}]", failure.name(), failure.category(), failure.downstream());
    if explanation.ended_before(attempt) {
        println!("The job ends at failure {}; there is no failure {attempt}:", explanation.attempt);
    }
    println!("At failure {}:", explanation.attempt);
    for (i, step) in explanation.steps.iter().enumerate() {
        println!("  {}. {}", i + 1, describe(step));
    }
    ExitCode::SUCCESS
}

/// One decision as a line of text.
fn describe(d: &Decision<'_>) -> String {
    let origin = d.rule().origin();
    let mut line = match d.reason() {
        Some(reason) => format!("fail: {reason}"),
        None => d.kind().to_string(),
    };
    if let lightflow_remedy::Action::Notify { channel, message } = d.action() {
        line = format!("notify {channel}: {message}");
    }
    if let Some(delay) = d.delay() {
        line.push_str(&format!(" after {}", humantime::format_duration(delay)));
    }
    match d.stage() {
        Some(stage) => line.push_str(&format!(" (stage {} of {}, attempt {})", stage + 1, d.stages(), d.attempt())),
        None => line.push_str(" (every stage exhausted)"),
    }
    line.push_str(&format!("\n     rule: {origin}, layer {}", origin.layer));
    if let Some(e) = d.script_error() {
        line.push_str(&format!("\n     passed over a failing decide function: {e}"));
    }
    line
}

fn check(dirs: &[PathBuf]) -> ExitCode {
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for d in policies.warnings() {
        eprintln!("{d}");
    }
    let warnings = policies.warnings().iter().filter(|d| d.severity == Severity::Warning).count();
    println!("ok: {} sources, {} rules, {warnings} warnings", policies.sources().len(), policies.rules().len());
    ExitCode::SUCCESS
}

fn table(dirs: &[PathBuf], as_json: bool) -> ExitCode {
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let keys =
        catalogue::codes().into_iter().map(FailureKey::asset).chain(API_STATUSES.into_iter().map(FailureKey::api));
    let mut rows = Vec::new();
    for key in keys {
        let Ok(failure) = Failure::from_key(key, "") else { continue };
        let explanation = policies.explain(&failure, 1, &Context::new(), 0);
        let first = explanation.first();
        let origin = first.rule().origin();
        rows.push(json!({
            "code": key.code,
            "key": key.to_string(),
            "name": failure.name(),
            "category": failure.category(),
            "action": first.kind(),
            "delay_ms": first.delay().map(|d| d.as_millis() as u64),
            "reason": first.reason(),
            "policy": first.rule().policy().to_string(),
            "rule": { "file": origin.file, "line": origin.pos.map(|p| p.line), "matcher": origin.matcher.to_string() },
        }));
    }
    if as_json {
        println!("{}", Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    println!("{:<9} {:<11} {:<16} {:<32} policy", "code", "category", "first action", "rule");
    for row in &rows {
        let rule = &row["rule"];
        let at = format!(
            "{}:{} {}",
            rule["file"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?"),
            rule["line"],
            rule["matcher"].as_str().unwrap_or("?")
        );
        println!(
            "{:<9} {:<11} {:<16} {:<32} {}",
            row["key"].as_str().unwrap_or("?"),
            row["category"].as_str().unwrap_or("?"),
            row["action"].as_str().unwrap_or("?"),
            at,
            row["policy"].as_str().unwrap_or("?"),
        );
    }
    ExitCode::SUCCESS
}

fn classify(file: Option<PathBuf>) -> ExitCode {
    let (name, text) = match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => (path.display().to_string(), text),
            Err(e) => return bad_input(format!("classify: {}: {e}", path.display())),
        },
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return bad_input(format!("classify: standard input: {e}"));
            }
            ("standard input".to_owned(), text)
        }
    };
    match Failure::from_json(&text, SystemTime::now()) {
        Ok(failure) => match serde_json::to_string_pretty(&failure) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(format!("classify: {e}")),
        },
        Err(e) => bad_input(format!("classify: {name}: {e}")),
    }
}
