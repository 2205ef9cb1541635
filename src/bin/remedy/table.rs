//! `remedy table`: the effective first action for every catalogue code, common API statuses and hook timeouts.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::{Context, Failure, FailureKey, classify::catalogue};
use serde_json::{Value, json};

use crate::common::load;

/// API statuses `table` shows besides the catalogue.
const API_STATUSES: [u16; 11] = [400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504];

pub(crate) fn table(dirs: &[PathBuf], as_json: bool) -> ExitCode {
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let keys = catalogue::codes()
        .into_iter()
        .map(FailureKey::asset)
        .chain(API_STATUSES.into_iter().map(FailureKey::api))
        .chain(std::iter::once(FailureKey::timeout()));
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
