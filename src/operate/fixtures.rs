//! Decision tests for policy authors: cases kept beside the scripts (`policies/tests/*.json`), each a failure,
//! optionally a history and a context, and what the policies must decide. `remedy test` runs them.
//!
//! A fixture file is a JSON array of cases (or `{"cases": [...]}`):
//!
//! ```json
//! [
//!   { "name": "a missing input fails with a hint",
//!     "failure": "2404",
//!     "expect": { "action": "fail", "reason": "check the input URL", "rule": { "matcher": "2404" } } },
//!   { "name": "the third 2503 in a row waits about 45 minutes",
//!     "failure": { "code": 2503, "message": "service unavailable" }, "attempt": 3, "seed": 7,
//!     "expect": { "action": "retry", "delay_ms": { "min": 2025000, "max": 3600000 }, "stage": 1 } },
//!   { "name": "trial tenants fail fast", "failure": "2001", "context": { "plan": "trial" },
//!     "expect": { "steps": ["fail"] } }
//! ]
//! ```
//!
//! `failure` is a key (`"2404"`, `"http:429"`, `"timeout"`) or any document `remedy classify` reads. `attempt`
//! is which consecutive failure with that code (as `remedy explain --attempt`); `history`, when given, is the
//! job's history before this failure instead. Every field of `expect` is optional: `action` (the first
//! decision's action), `steps` (every action taken at this failure, with the `reconcile` a stage's
//! `reconcile_first` runs before its attempt: `["reconcile", "retry"]`), `delay_ms` (a number or `{min, max}`),
//! `reason` (text the reason contains), `stage` (from 1), `rule` (`file` suffix, `matcher`, `line`), `params`
//! (a subset of the action's parameters).
//!
//! ```
//! use lightflow_remedy::{Policies, operate::fixtures};
//!
//! let cases = fixtures::parse(r#"[{"failure": "2404", "expect": {"action": "fail"}},
//!                                  {"failure": "2404", "expect": {"action": "retry"}}]"#)?;
//! let results = fixtures::run(&Policies::defaults(), &cases);
//! assert!(results[0].passed());
//! assert_eq!(results[1].mismatches[0].field, "action");
//! # Ok::<(), lightflow_remedy::operate::fixtures::FixtureError>(())
//! ```

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::classify::{Failure, FailureKey};
use crate::decide::{ActionKind, Context, Decision, Explanation, History, Policies};

/// The fixtures of the built-in defaults: every row of the default policy table.
pub const DEFAULTS_FIXTURES: &str = include_str!("../../policies/tests/00-lightflow.json");

/// The name reports give the built-in fixtures.
pub const DEFAULTS_FIXTURES_NAME: &str = "policies/tests/00-lightflow.json";

/// The decisions pinned by the built-in fixtures that `policies` changes: the cases of
/// [`DEFAULTS_FIXTURES`] that fail against it. A deployment's overrides are meant to change some; this says
/// which, for a reviewer.
///
/// ```
/// use lightflow_remedy::{Policies, operate::fixtures};
///
/// assert!(fixtures::changed_defaults(&Policies::defaults()).is_empty());
/// let site = Policies::builder().source("10-site.rhai", r#"on(2404, retry());"#).build()?;
/// let changed = fixtures::changed_defaults(&site);
/// assert_eq!(changed.len(), 1);
/// assert_eq!(changed[0].key.to_string(), "2404");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn changed_defaults(policies: &Policies) -> Vec<CaseResult> {
    // The built-in fixtures are part of the library and tested; they always parse.
    let cases = parse_named(DEFAULTS_FIXTURES_NAME, DEFAULTS_FIXTURES).unwrap_or_default();
    run(policies, &cases).into_iter().filter(|r| !r.passed()).collect()
}

/// A fixture file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {message}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// Not JSON, or not the fixture format.
    #[error("{file}:{line}:{column}: {message}")]
    Malformed {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A case whose failure cannot be classified.
    #[error("{file}: case {index} ({name}): {message}")]
    BadCase {
        /// The file.
        file: String,
        /// The case's index, from 1.
        index: usize,
        /// The case's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// One decision test.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// A name for reports (default: the failure and the attempt).
    pub name: String,
    /// Where it came from (`file #index`).
    pub origin: String,
    /// The failure.
    pub failure: Failure,
    /// Which consecutive failure with this code, from 1 (ignored when `history` is given).
    pub attempt: u32,
    /// The job's history before this failure.
    pub history: Option<History>,
    /// The host's context.
    pub context: Context,
    /// The jitter seed (ignored when `history` is given: it has its own).
    pub seed: u64,
    /// What must hold.
    pub expect: Expect,
}

/// What a case expects; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The first step's action.
    pub action: Option<ActionKind>,
    /// Every step's action at this failure.
    pub steps: Option<Vec<ActionKind>>,
    /// The first step's delay; `null` for "no delay".
    #[serde(default, deserialize_with = "delay_expectation")]
    pub delay_ms: Option<DelayBound>,
    /// Text the (first) `fail` reason contains.
    pub reason: Option<String>,
    /// The first step's stage, from 1.
    pub stage: Option<usize>,
    /// Where the first step's rule is.
    pub rule: Option<RuleExpect>,
    /// A subset of the first step's parameters (e.g. `{"scope": "storage"}`).
    pub params: Option<Map<String, Value>>,
}

/// The highest `attempt` a case may ask about (as `remedy explain --attempt`): explaining walks every attempt
/// before it.
const MAX_ATTEMPT: u32 = 10_000;

/// An exact delay or bounds, in milliseconds, or no delay at all.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub enum DelayBound {
    /// No delay (`null`): the step does not wait.
    NoDelay,
    /// Exactly this many milliseconds.
    Exact(u64),
    /// Within these bounds (at least one of them).
    Within {
        /// At least.
        min: Option<u64>,
        /// At most.
        max: Option<u64>,
    },
}

impl TryFrom<Value> for DelayBound {
    type Error = String;

    /// `null` (no delay), a number, or `{"min": .., "max": ..}` with at least one of the two and no other key.
    fn try_from(value: Value) -> Result<Self, String> {
        let ms = |key: &str, v: &Value| {
            v.as_u64().ok_or_else(|| format!("delay_ms bound `{key}` must be whole milliseconds, not {v}"))
        };
        match &value {
            Value::Null => Ok(DelayBound::NoDelay),
            Value::Number(n) => {
                n.as_u64().map(DelayBound::Exact).ok_or_else(|| format!("delay_ms must be whole milliseconds, not {n}"))
            }
            Value::Object(bounds) if !bounds.is_empty() => {
                if let Some(key) = bounds.keys().find(|k| *k != "min" && *k != "max") {
                    return Err(format!("delay_ms bounds are `min` and `max`, not `{key}`"));
                }
                let min = bounds.get("min").map(|v| ms("min", v)).transpose()?;
                let max = bounds.get("max").map(|v| ms("max", v)).transpose()?;
                Ok(DelayBound::Within { min, max })
            }
            Value::Object(_) => Err("delay_ms bounds need `min`, `max` or both".to_owned()),
            other => Err(format!("delay_ms is milliseconds, null or {{\"min\": .., \"max\": ..}}, not {other}")),
        }
    }
}

/// Where a rule is expected to come from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleExpect {
    /// The end of the source's path, e.g. `00-lightflow.rhai`.
    pub file: Option<String>,
    /// The matcher as written: `2404`, `2400..=2499`, `brightcove`, `http(429)`, `otherwise`, `decide`.
    pub matcher: Option<String>,
    /// The line.
    pub line: Option<u32>,
}

/// `delay_ms` present: `null` means "no delay", unlike a missing field (no expectation).
fn delay_expectation<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DelayBound>, D::Error> {
    // `null` is an expectation too (no delay), not an absent one.
    DelayBound::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    #[serde(default)]
    name: Option<String>,
    failure: Value,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    history: Option<History>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    expect: Expect,
}

/// Parses fixture text (named `<inline>` in reports).
pub fn parse(text: &str) -> Result<Vec<Case>, FixtureError> {
    parse_named("<inline>", text)
}

/// Reads and parses a fixture file.
pub fn load_file(path: &Path) -> Result<Vec<Case>, FixtureError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| FixtureError::Unreadable { file: file.clone(), message: e.to_string() })?;
    parse_named(&file, &text)
}

/// The `*.json` files of `dir`, sorted by name.
pub fn files_in(dir: &Path) -> Result<Vec<std::path::PathBuf>, FixtureError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| FixtureError::Unreadable { file: dir.display().to_string(), message: e.to_string() })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Parses fixture text named `file` in reports.
pub fn parse_named(file: &str, text: &str) -> Result<Vec<Case>, FixtureError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FixtureError::Malformed {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: crate::diagnostic::json_message(&e),
    })?;
    let raw = match value {
        Value::Array(cases) => cases,
        Value::Object(mut object) => match object.remove("cases") {
            Some(Value::Array(cases)) => cases,
            _ => return Err(malformed(file, "expected an array of cases, or {\"cases\": [...]}")),
        },
        _ => return Err(malformed(file, "expected an array of cases, or {\"cases\": [...]}")),
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, value)| {
            let index = i + 1;
            let bad = |name: Option<&str>, message: String| FixtureError::BadCase {
                file: file.to_owned(),
                index,
                name: name.unwrap_or_default().to_owned(),
                message,
            };
            let name = value.get("name").and_then(Value::as_str).map(str::to_owned);
            let c: RawCase = serde_json::from_value(value).map_err(|e| bad(name.as_deref(), e.to_string()))?;
            let failure = failure_of(&c.failure).map_err(|m| bad(c.name.as_deref(), m))?;
            let attempt = c.attempt.unwrap_or(1).max(1);
            // With a history, `attempt` is not used.
            if attempt > MAX_ATTEMPT && c.history.is_none() {
                return Err(bad(c.name.as_deref(), format!("`attempt` is at most {MAX_ATTEMPT}, not {attempt}")));
            }
            Ok(Case {
                name: c.name.unwrap_or_else(|| format!("{} at failure {attempt}", failure.key())),
                origin: format!("{file} #{index}"),
                failure,
                attempt,
                history: c.history,
                context: c.context.unwrap_or_default(),
                seed: c.seed.unwrap_or(0),
                expect: c.expect,
            })
        })
        .collect()
}

fn malformed(file: &str, message: &str) -> FixtureError {
    FixtureError::Malformed { file: file.to_owned(), line: 1, column: 1, message: message.to_owned() }
}

fn failure_of(value: &Value) -> Result<Failure, String> {
    match value {
        Value::String(key) => {
            let key: FailureKey = key.parse().map_err(|e| format!("failure: {e}"))?;
            Failure::from_key(key, "").map_err(|e| format!("failure: {e}"))
        }
        other => Failure::from_value(other, SystemTime::UNIX_EPOCH).map_err(|e| format!("failure: {e}")),
    }
}

/// One field where a case's expectation and the decision differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which expectation.
    pub field: &'static str,
    /// What was expected, in words.
    pub expected: String,
    /// What the policies decided.
    pub actual: String,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Where it came from.
    pub origin: String,
    /// The key of the case's failure (`2404`, `http:429`, `timeout`).
    pub key: FailureKey,
    /// Every expectation that did not hold; empty when the case passed.
    pub mismatches: Vec<Mismatch>,
}

impl CaseResult {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// The mismatches on one line: `field: expected → actual; ...`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            self.mismatches.iter().map(|m| format!("{}: {} → {}", m.field, m.expected, m.actual)).collect();
        parts.join("; ")
    }
}

impl fmt::Display for CaseResult {
    /// `FAIL origin "name" (key)` and a table of field, expected, actual; or `ok origin "name" (key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            return write!(f, "ok   {} {:?} ({})", self.origin, self.name, self.key);
        }
        writeln!(f, "FAIL {} {:?} ({})", self.origin, self.name, self.key)?;
        let width = self.mismatches.iter().map(|m| m.expected.chars().count()).max().unwrap_or(0).max(8);
        write!(f, "       {:<9} {:<width$}   actual", "field", "expected")?;
        for m in &self.mismatches {
            write!(f, "\n       {:<9} {:<width$}   {}", m.field, m.expected, m.actual)?;
        }
        Ok(())
    }
}

/// Runs `cases` against `policies`.
pub fn run(policies: &Policies, cases: &[Case]) -> Vec<CaseResult> {
    cases.iter().map(|case| run_case(policies, case)).collect()
}

fn steps_of<'p>(policies: &'p Policies, case: &Case) -> Explanation<'p> {
    match &case.history {
        None => policies.explain(&case.failure, case.attempt, &case.context, case.seed),
        Some(history) => {
            let mut h = history.clone();
            h.record_failure(&case.failure);
            policies.explain_from(&case.failure, h, &case.context)
        }
    }
}

fn run_case(policies: &Policies, case: &Case) -> CaseResult {
    let explanation = steps_of(policies, case);
    let first = explanation.first();
    let e = &case.expect;
    let mut mismatches = Vec::new();
    let mut check = |field: &'static str, ok: bool, expected: String, actual: String| {
        if !ok {
            mismatches.push(Mismatch { field, expected, actual });
        }
    };
    if explanation.ended_before(case.attempt) && case.history.is_none() {
        check(
            "attempt",
            false,
            format!("failure {}", case.attempt),
            format!("the job ended at failure {}", explanation.attempt),
        );
    }
    if let Some(action) = e.action {
        check("action", first.kind() == action, action.to_string(), first.kind().to_string());
    }
    if let Some(steps) = &e.steps {
        let actual = explanation.actions();
        check("steps", &actual == steps, list(steps), list(&actual));
    }
    if let Some(bound) = e.delay_ms {
        let actual = first.delay().map(crate::millis::millis);
        let (ok, expected) = match bound {
            DelayBound::NoDelay => (actual.is_none(), "no delay".to_owned()),
            DelayBound::Exact(ms) => (actual == Some(ms), format!("{ms} ms")),
            DelayBound::Within { min, max } => (
                actual.is_some_and(|a| min.is_none_or(|m| a >= m) && max.is_none_or(|m| a <= m)),
                format!(
                    "{}..={} ms",
                    min.map_or(String::new(), |m| m.to_string()),
                    max.map_or(String::new(), |m| m.to_string())
                ),
            ),
        };
        check("delay_ms", ok, expected, actual.map_or("no delay".to_owned(), |a| format!("{a} ms")));
    }
    if let Some(text) = &e.reason {
        let reason = explanation.steps.iter().find_map(Decision::reason);
        check(
            "reason",
            reason.is_some_and(|r| r.contains(text.as_str())),
            format!("contains {text:?}"),
            reason.map_or("no reason".to_owned(), |r| format!("{r:?}")),
        );
    }
    // An expected value against one that may be missing (shown as `missing`).
    fn against<T: PartialEq + std::fmt::Display>(
        expected: T,
        actual: Option<T>,
        missing: &str,
    ) -> (bool, String, String) {
        let shown = actual.as_ref().map_or(missing.to_owned(), T::to_string);
        (actual.as_ref() == Some(&expected), expected.to_string(), shown)
    }
    if let Some(stage) = e.stage {
        let (ok, expected, actual) = against(stage, explanation.stage_of(0), "exhausted");
        check("stage", ok, expected, actual);
    }
    if let Some(rule) = &e.rule {
        let origin = first.rule().origin();
        if let Some(file) = &rule.file {
            check("rule.file", origin.file.ends_with(file.as_str()), format!("…{file}"), origin.file.to_string());
        }
        if let Some(matcher) = &rule.matcher {
            let actual = origin.matcher.to_string();
            check("rule.matcher", &actual == matcher, matcher.clone(), actual);
        }
        if let Some(line) = rule.line {
            let (ok, expected, actual) = against(line, origin.pos.map(|p| p.line), "-");
            check("rule.line", ok, expected, actual);
        }
    }
    if let Some(expected) = &e.params {
        let actual = serde_json::to_value(first).ok().and_then(|v| v.get("params").cloned()).unwrap_or(Value::Null);
        let ok = expected.iter().all(|(k, v)| actual.get(k) == Some(v));
        check("params", ok, Value::Object(expected.clone()).to_string(), actual.to_string());
    }
    CaseResult { name: case.name.clone(), origin: case.origin.clone(), key: case.failure.key(), mismatches }
}

fn list(kinds: &[ActionKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}
