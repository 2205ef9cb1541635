//! Replay: decide each failure of a log as a host recorded it, or compare two policy sets on it. This is how an
//! operator reviews a policy change before rolling it out.
//!
//! The log has one JSON object per line: `asset_id`, an optional `time` (RFC 3339, or milliseconds since the
//! epoch), an optional `context`, and the failure, either under `failure` or on the line itself, in any shape
//! `remedy classify` reads:
//!
//! ```json
//! {"asset_id": "a1", "time": "2026-11-25T02:00:00Z", "failure": {"code": 2503, "message": "unavailable"}}
//! {"asset_id": "a2", "time": 1795572000000, "http_status": 429, "body": {"message": "slow down"}, "retry_after": "30"}
//! {"asset_id": "a1", "time": "2026-11-25T02:03:10Z", "assetError": {"code": 2503, "message": "unavailable"}}
//! ```
//!
//! Failures of one asset build its history, as the engine would have: each decision is taken to have been
//! carried out, and a failure after a `fail` starts a new job.
//!
//! ```
//! use lightflow_remedy::operate::replay::{self, Replayer};
//! use lightflow_remedy::{ActionKind, Policies};
//!
//! let log = r#"{"asset_id": "a1", "failure": {"code": 2503}}
//! {"asset_id": "a1", "failure": {"code": 2503}}"#;
//! let policies = Policies::defaults();
//! let mut replayer = Replayer::new(&policies);
//! let decided: Vec<_> = replay::parse(log).map(|e| replayer.decide(&e.unwrap())).collect();
//! assert_eq!(decided[1].action, ActionKind::Retry);
//! assert_eq!(decided[1].attempt, 2);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::classify::{Failure, FailureKey};
use crate::decide::{ActionKind, Context, History, Policies};
use crate::engine::Job;

/// A log line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadLine {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One failure of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The log line, from 1.
    pub line: usize,
    /// The asset.
    pub asset_id: String,
    /// When it happened, if the log says.
    pub time: Option<SystemTime>,
    /// The host's context.
    pub context: Context,
    /// The failure.
    pub failure: Failure,
}

/// Parses a log: one result per non-blank line.
pub fn parse(log: &str) -> impl Iterator<Item = Result<Entry, BadLine>> + '_ {
    log.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| parse_line(i + 1, l))
}

/// Parses one line of a log.
pub fn parse_line(line: usize, text: &str) -> Result<Entry, BadLine> {
    let bad = |message: String| BadLine { line, message };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad(format!("malformed JSON at column {}: {}", e.column(), crate::diagnostic::json_message(&e)))
    })?;
    let Value::Object(mut object) = value else {
        return Err(bad("expected a JSON object".to_owned()));
    };
    let asset_id = match object.remove("asset_id") {
        Some(Value::String(id)) if !id.is_empty() => id,
        Some(other) => return Err(bad(format!("`asset_id` must be a non-empty string, found {other}"))),
        None => return Err(bad("`asset_id` is missing".to_owned())),
    };
    let time = match object.remove("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            humantime::parse_rfc3339_weak(&s).map_err(|e| bad(format!("`time` {s:?} is not an RFC 3339 time: {e}")))?,
        ),
        Some(Value::Number(n)) => {
            let ms = n.as_u64().ok_or_else(|| bad(format!("`time` {n} is not a whole number of milliseconds")))?;
            Some(
                SystemTime::UNIX_EPOCH
                    .checked_add(Duration::from_millis(ms))
                    .ok_or_else(|| bad(format!("`time` {ms} ms is past what this system's clock can hold")))?,
            )
        }
        Some(other) => return Err(bad(format!("`time` must be a string or a number, found {other}"))),
    };
    let context = match object.remove("context") {
        None | Some(Value::Null) => Context::new(),
        Some(Value::Object(map)) => Context::from(map),
        Some(other) => return Err(bad(format!("`context` must be an object, found {other}"))),
    };
    let document = match object.remove("failure") {
        Some(document) => document,
        None => Value::Object(object),
    };
    let failure = Failure::from_value(&document, time.unwrap_or(SystemTime::UNIX_EPOCH))
        .map_err(|e| bad(format!("failure: {e}")))?;
    Ok(Entry { line, asset_id, time, context, failure })
}

/// What the policies decide for one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed {
    /// The log line.
    pub line: usize,
    /// The asset.
    pub asset_id: String,
    /// The failure.
    pub failure: FailureKey,
    /// Which consecutive failure with this code it is in the asset's job, from 1.
    pub attempt: u32,
    /// The first step.
    pub action: ActionKind,
    /// Every step at this failure.
    pub steps: Vec<ActionKind>,
    /// The first step's delay.
    pub delay_ms: Option<u64>,
    /// The reason, when a step fails the job.
    pub reason: Option<String>,
    /// The first step's rule (`file:line:col on(..)`).
    pub rule: String,
    /// What the decision does, in full: compared between two sets (where rules are written is not).
    #[serde(skip)]
    what: Vec<u64>,
}

impl Replayed {
    /// Whether two replays decided the same: the same steps with the same parameters, delay and reason.
    /// Where the rules are written (file, line) does not count, so moving a rule or a directory changes nothing.
    pub fn same_decision(&self, other: &Replayed) -> bool {
        (&self.steps, self.delay_ms, &self.reason, &self.what)
            == (&other.steps, other.delay_ms, &other.reason, &other.what)
    }

    /// The decision in a few words: `retry after 1m 3s (file:12:1 on(2503))`.
    pub fn describe(&self) -> String {
        let steps: Vec<&str> = self.steps.iter().map(|k| k.as_str()).collect();
        let mut text = steps.join(" → ");
        if let Some(ms) = self.delay_ms {
            text.push_str(&format!(" after {}", humantime::format_duration(Duration::from_millis(ms))));
        }
        if let Some(reason) = &self.reason {
            text.push_str(&format!(": {reason:?}"));
        }
        text
    }
}

struct JobState {
    history: History,
    first: Option<SystemTime>,
    ended: bool,
}

/// Decides a log's failures in order, keeping each asset's history.
pub struct Replayer<'p> {
    policies: &'p Policies,
    jobs: HashMap<String, JobState>,
}

impl<'p> Replayer<'p> {
    /// A replayer deciding with `policies`.
    pub fn new(policies: &'p Policies) -> Self {
        Replayer { policies, jobs: HashMap::new() }
    }

    /// Decides `entry`, given what came before it for the same asset.
    pub fn decide(&mut self, entry: &Entry) -> Replayed {
        let job = self.jobs.entry(entry.asset_id.clone()).or_insert_with(|| new_job(&entry.asset_id, entry.time));
        if job.ended {
            *job = new_job(&entry.asset_id, entry.time);
        }
        // The first timed entry starts the clock, set back by the time the delays carried out before it stood
        // for; without times, those delays stand for the time.
        if job.first.is_none() {
            job.first = entry.time.map(|t| t.checked_sub(job.history.elapsed()).unwrap_or(t));
        }
        if let (Some(first), Some(now)) = (job.first, entry.time) {
            job.history.set_elapsed(now.duration_since(first).unwrap_or_default());
        }
        job.history.record_failure(&entry.failure);
        let explanation = self.policies.explain_from(&entry.failure, job.history.clone(), &entry.context);
        let first = explanation.first();
        let replayed = Replayed {
            line: entry.line,
            asset_id: entry.asset_id.clone(),
            failure: entry.failure.key(),
            attempt: job.history.streak(),
            action: first.kind(),
            steps: explanation.steps.iter().map(|d| d.kind()).collect(),
            delay_ms: first.delay().map(crate::millis::millis),
            reason: explanation.steps.iter().find_map(|d| d.reason()).map(str::to_owned),
            rule: first.rule().origin().to_string(),
            what: explanation.steps.iter().map(|d| d.stage_ref().map_or(0, |s| s.digest())).collect(),
        };
        // The decisions were carried out: the asset's history goes on from there.
        for d in &explanation.steps {
            if d.kind() == ActionKind::Fail {
                job.ended = true;
            } else {
                job.history.record(d);
                if entry.time.is_none() {
                    job.history.advance(d.delay().unwrap_or_default());
                }
                if let crate::decide::Action::FixCredentials { scope } = d.action() {
                    job.history.mark_repaired(*scope);
                }
            }
        }
        replayed
    }
}

fn new_job(asset_id: &str, time: Option<SystemTime>) -> JobState {
    JobState { history: History::new(Job::new(asset_id).seed()), first: time, ended: false }
}

/// Where two policy sets decide one failure differently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// What the current set decides.
    pub before: Replayed,
    /// What the proposed set decides.
    pub after: Replayed,
}

/// The failures of `entries` that `before` and `after` decide differently, each set keeping its own histories.
///
/// ```
/// use lightflow_remedy::{ActionKind, Policies, operate::replay};
///
/// let log = r#"{"asset_id": "a1", "failure": {"code": 2404}}
/// {"asset_id": "a2", "failure": {"code": 2001}}"#;
/// let entries: Vec<_> = replay::parse(log).collect::<Result<_, _>>()?;
/// let proposed = Policies::builder().source("10-site.rhai", r#"on(2404, notify("ops", "input missing"));"#).build()?;
/// let differences = replay::compare(&Policies::defaults(), &proposed, &entries);
/// assert_eq!(differences.len(), 1, "only the 2404 is decided differently");
/// assert_eq!(differences[0].after.action, ActionKind::Notify);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn compare(before: &Policies, after: &Policies, entries: &[Entry]) -> Vec<Difference> {
    let (mut b, mut a) = (Replayer::new(before), Replayer::new(after));
    entries
        .iter()
        .filter_map(|e| {
            let (before, after) = (b.decide(e), a.decide(e));
            (!before.same_decision(&after)).then_some(Difference { before, after })
        })
        .collect()
}

/// How many differences each failure code has, by code.
pub fn count_by_code(differences: &[Difference]) -> BTreeMap<FailureKey, usize> {
    let mut counts = BTreeMap::new();
    for d in differences {
        *counts.entry(d.before.failure).or_insert(0) += 1;
    }
    counts
}
