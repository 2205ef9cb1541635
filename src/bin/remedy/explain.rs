//! `remedy explain`: what the engine does at the N-th consecutive failure with a code.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::{Context, Decision, Explanation, Failure, FailureKey};
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
        out.insert("reconcile_first".into(), json!(explanation.reconciles_before(0)));
        // The stage's `await_result`; null: the remediator's own.
        out.insert("await_result_ms".into(), json!(explanation.first().await_result().map(|d| d.as_millis() as u64)));
        out.insert("actions".into(), json!(explanation.actions()));
        out.insert("steps".into(), Value::Array(steps_json(&explanation)));
        println!("{}", Value::Object(out));
        return ExitCode::SUCCESS;
    }
    println!("{key} {} [{}, {}]", failure.name(), failure.category(), failure.downstream());
    if explanation.ended_before(attempt) {
        println!("The job ends at failure {}; there is no failure {attempt}:", explanation.attempt);
    }
    println!("At failure {}:", explanation.attempt);
    let mut n = 0;
    for (i, step) in explanation.steps.iter().enumerate() {
        let reconciles = explanation.reconciles_before(i);
        if reconciles {
            n += 1;
            let wait = step.delay().map_or(String::new(), |d| format!("wait {}, then ", humantime::format_duration(d)));
            println!(
                "  {n}. {wait}reconcile (reconcile_first): if the earlier attempt in fact succeeded, the job ends \
                 recovered"
            );
        }
        n += 1;
        println!("  {n}. {}", describe(step, explanation.stage_of(i), !reconciles));
    }
    ExitCode::SUCCESS
}

/// The steps as JSON, each decision preceded by the `reconcile` its stage's `reconcile_first` runs.
fn steps_json(explanation: &Explanation<'_>) -> Vec<Value> {
    let mut steps = Vec::new();
    for (i, step) in explanation.steps.iter().enumerate() {
        let decision = serde_json::to_value(step).unwrap_or(Value::Null);
        if explanation.reconciles_before(i) {
            let mut reconcile = decision.clone();
            if let Value::Object(map) = &mut reconcile {
                map.insert("action".into(), json!("reconcile"));
                map.insert("delay_ms".into(), Value::Null);
                map.insert("delay_source".into(), Value::Null);
                map.insert("reason".into(), Value::Null);
                map.insert("params".into(), json!({ "before": step.kind() }));
                map.insert("reconcile_first".into(), json!(true));
            }
            steps.push(reconcile);
        }
        steps.push(decision);
    }
    steps
}

/// One decision as a line of text; `stage` is its stage from 1. The delay is shown unless a reconcile line
/// before it already said it.
fn describe(d: &Decision<'_>, stage: Option<usize>, show_delay: bool) -> String {
    let origin = d.rule().origin();
    let mut line = match d.reason() {
        Some(reason) => format!("fail: {reason}"),
        None => d.kind().to_string(),
    };
    if let lightflow_remedy::Action::Notify { channel, message } = d.action() {
        line = format!("notify {channel}: {message}");
    }
    if let Some(delay) = d.delay().filter(|_| show_delay) {
        line.push_str(&format!(" after {}", humantime::format_duration(delay)));
    }
    match stage {
        Some(stage) => line.push_str(&format!(" (stage {stage} of {}, attempt {})", d.stages(), d.attempt())),
        None => line.push_str(" (every stage exhausted)"),
    }
    if let Some(wait) = d.await_result() {
        line.push_str(&format!(
            "\n     if LightFlow takes the attempt (Submitted), its result is awaited up to {}, then `check` is asked \
             (await_result)",
            humantime::format_duration(wait)
        ));
    }
    line.push_str(&format!("\n     rule: {origin}, layer {}", origin.layer));
    if let Some(e) = d.script_error() {
        line.push_str(&format!("\n     passed over a failing decide function: {e}"));
    }
    line
}
