//! `remedy explain`: what the engine does at the N-th consecutive failure with a code.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::{Context, Decision, Failure, FailureKey};
use serde_json::{Value, json};

use crate::common::{bad_input, load};

pub(crate) fn explain(
    code: &str,
    dirs: &[PathBuf],
    attempt: u32,
    ctx: Option<String>,
    seed: u64,
    as_json: bool,
) -> ExitCode {
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
