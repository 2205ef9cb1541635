//! `remedy table`: the effective first action for every catalogue code, common API statuses and hook timeouts,
//! then the codes no row names: the rest of the 24xx and 25xx ranges, the rest of the API's 4xx and 5xx, and
//! everything else (where the fallback, `otherwise`, decides). Rows a `decide` function may change are marked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::classify::catalogue::{self, REMOTE_4XX, REMOTE_5XX};
use lightflow_remedy::{Context, Failure, FailureKey, Matcher, Policies};
use serde_json::{Value, json};

use crate::common::load;

/// API statuses `table` shows besides the catalogue.
const API_STATUSES: [u16; 11] = [400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504];

/// How many ranges of codes a text row lists before it says "…".
const SHOWN_RANGES: usize = 6;

/// What a row stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// One code named on its own.
    Code,
    /// The codes of a range that no row names on its own.
    Range,
    /// Codes that reach the fallback, or a rule that takes what the others leave.
    Fallback,
}

impl RowKind {
    fn as_str(self) -> &'static str {
        match self {
            RowKind::Code => "code",
            RowKind::Range => "range",
            RowKind::Fallback => "fallback",
        }
    }
}

pub(crate) fn table(dirs: &[PathBuf], as_json: bool) -> ExitCode {
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let decide = DecideLayers::of(&policies);
    let named: Vec<FailureKey> = catalogue::codes()
        .into_iter()
        .map(FailureKey::asset)
        .chain(API_STATUSES.into_iter().map(FailureKey::api))
        .chain(std::iter::once(FailureKey::timeout()))
        .collect();
    let mut rows: Vec<Value> = Vec::new();
    for &key in &named {
        rows.extend(row(&policies, &decide, &key.to_string(), RowKind::Code, &[key]));
    }
    let unnamed = |key: &FailureKey| !named.contains(key);
    let asset = |codes: std::ops::RangeInclusive<u16>| codes.map(FailureKey::asset).filter(unnamed).collect::<Vec<_>>();
    let api = |codes: std::ops::RangeInclusive<u16>| codes.map(FailureKey::api).filter(unnamed).collect::<Vec<_>>();
    let others: Vec<FailureKey> = (catalogue::MIN_ASSET_CODE..=catalogue::MAX_ASSET_CODE)
        .filter(|c| !REMOTE_4XX.contains(c) && !REMOTE_5XX.contains(c))
        .map(FailureKey::asset)
        .filter(unnamed)
        .collect();
    let ranges = [
        ("other 24xx", asset(REMOTE_4XX), RowKind::Range),
        ("other 25xx", asset(REMOTE_5XX), RowKind::Range),
        ("other http 4xx", api(400..=499), RowKind::Range),
        ("other http 5xx", api(500..=599), RowKind::Range),
        ("otherwise", others, RowKind::Fallback),
    ];
    for (label, keys, kind) in ranges {
        for group in groups(&policies, &keys) {
            // A code decided unlike the rest of its range (2408 has a rule of its own) is a row of its own.
            match group.as_slice() {
                [one] => rows.extend(row(&policies, &decide, &one.to_string(), RowKind::Code, &group)),
                _ => rows.extend(row(&policies, &decide, label, kind, &group)),
            }
        }
    }
    let mut out = std::io::stdout().lock();
    // A reader that stops early (`remedy table | head`) is not an error.
    let _ = if as_json { writeln!(out, "{}", Value::Array(rows)) } else { write_text(&mut out, &rows, &decide) };
    ExitCode::SUCCESS
}

/// The sources with a `decide` function, by layer.
struct DecideLayers(Vec<(usize, String)>);

impl DecideLayers {
    fn of(policies: &Policies) -> Self {
        let sources = policies.sources();
        // A name given twice is taken at its last layer: a mark too many rather than one too few.
        DecideLayers(
            policies
                .decide_sources()
                .into_iter()
                .filter_map(|name| Some((sources.iter().rposition(|s| s.as_ref() == name)?, name.to_owned())))
                .collect(),
        )
    }

    /// The `decide` functions that run before the rule of layer `layer` is reached: those of its source and of
    /// every later one. Any of them may return another policy for the failure.
    fn at_or_above(&self, layer: usize) -> Vec<&str> {
        self.0.iter().filter(|(l, _)| *l >= layer).map(|(_, name)| name.as_str()).collect()
    }
}

/// `keys` grouped by the rule and action their first decision comes from, in code order.
fn groups(policies: &Policies, keys: &[FailureKey]) -> Vec<Vec<FailureKey>> {
    let mut groups: Vec<(String, Vec<FailureKey>)> = Vec::new();
    for &key in keys {
        let Ok(failure) = Failure::from_key(key, "") else { continue };
        let explanation = policies.explain(&failure, 1, &Context::new(), 0);
        let first = explanation.first();
        let identity = format!("{} {}", first.rule().origin(), first.kind());
        match groups.iter_mut().find(|(id, _)| *id == identity) {
            Some((_, group)) => group.push(key),
            None => groups.push((identity, vec![key])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// The row of `keys` (decided as the first of them is), labelled `label`; `None` for no keys.
fn row(policies: &Policies, decide: &DecideLayers, label: &str, kind: RowKind, keys: &[FailureKey]) -> Option<Value> {
    let key = *keys.first()?;
    let failure = Failure::from_key(key, "").ok()?;
    let explanation = policies.explain(&failure, 1, &Context::new(), 0);
    let first = explanation.first();
    let origin = first.rule().origin();
    // A rule that takes what no other rule matches is the fallback's row, whatever its range.
    let kind = if kind == RowKind::Fallback && origin.matcher != Matcher::Otherwise && origin.pos.is_some() {
        RowKind::Range
    } else {
        kind
    };
    let label = if kind == RowKind::Range && label == "otherwise" { "other codes" } else { label };
    let decide_sources = decide.at_or_above(origin.layer);
    Some(json!({
        "code": key.code,
        "key": label,
        "row": kind.as_str(),
        "codes": if kind == RowKind::Code { Value::Null } else { json!(ranges(keys).join(", ")) },
        "count": keys.len(),
        "name": if kind == RowKind::Code { json!(failure.name()) } else { Value::Null },
        "category": failure.category(),
        "action": first.kind(),
        "actions": explanation.actions(),
        "delay_ms": first.delay().map(|d| d.as_millis() as u64),
        "reason": first.reason(),
        "policy": first.rule().policy().to_string(),
        "rule": { "file": origin.file, "line": origin.pos.map(|p| p.line), "matcher": origin.matcher.to_string() },
        "decide": !decide_sources.is_empty(),
        "decide_sources": decide_sources,
    }))
}

/// Sorted keys as ranges of codes: `2400`, `2402`, `2405–2407`.
fn ranges(keys: &[FailureKey]) -> Vec<String> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for key in keys {
        match out.last_mut() {
            Some((_, high)) if high.checked_add(1) == Some(key.code) => *high = key.code,
            _ => out.push((key.code, key.code)),
        }
    }
    let prefix = if keys.first().is_some_and(|k| k.kind == lightflow_remedy::FailureKind::Api) { "http:" } else { "" };
    out.into_iter()
        .map(|(low, high)| if low == high { format!("{prefix}{low}") } else { format!("{prefix}{low}–{high}") })
        .collect()
}

fn write_text(out: &mut impl Write, rows: &[Value], decide: &DecideLayers) -> std::io::Result<()> {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    writeln!(out, "{:<15} {:<11} {:<16} {:<34} policy", "code", "category", "first action", "rule")?;
    for row in rows {
        let rule = &row["rule"];
        let at = format!(
            "{}:{} {}",
            text(&rule["file"]).rsplit('/').next().unwrap_or("?"),
            rule["line"],
            text(&rule["matcher"])
        );
        let mark = if row["decide"] == true { " *" } else { "" };
        writeln!(
            out,
            "{:<15} {:<11} {:<16} {:<34} {}",
            format!("{}{mark}", text(&row["key"])),
            text(&row["category"]),
            text(&row["action"]),
            at,
            text(&row["policy"]),
        )?;
        if row["row"] != "code" {
            let codes = text(&row["codes"]);
            let listed: Vec<&str> = codes.split(", ").collect();
            let shown = listed.iter().take(SHOWN_RANGES).copied().collect::<Vec<_>>().join(", ");
            let more = if listed.len() > SHOWN_RANGES { ", …" } else { "" };
            writeln!(out, "{:<15} {} codes: {shown}{more}", "", row["count"])?;
        }
    }
    if !decide.0.is_empty() {
        let names: Vec<&str> = decide.0.iter().map(|(_, n)| n.as_str()).collect();
        writeln!(
            out,
            "* a `decide` function may change this row's decision (it runs before the row's rule): {}",
            names.join(", ")
        )?;
    }
    Ok(())
}
