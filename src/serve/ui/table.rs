//! The effective table of the policies in force, as `remedy table` prints it: the first action for every code
//! of the catalogue, the common API statuses and hook timeouts, then the codes no row names (the rest of the
//! 24xx and 25xx ranges, of the API's 4xx and 5xx, and every other code, where the fallback decides), grouped
//! by the rule and action that decide them. Rows a `decide` function may change are marked.
//!
//! Computing it asks the policies about every four-digit code, so it is made once per policy set and kept
//! until a reload puts another in force.

use std::ops::RangeInclusive;
use std::sync::Arc;

use maud::{Markup, html};

use super::explain::step_text;
use crate::classify::catalogue::{self, REMOTE_4XX, REMOTE_5XX};
use crate::classify::{Failure, FailureKey, FailureKind};
use crate::decide::{Context, Matcher, Policies};

/// API statuses the table shows besides the catalogue.
const API_STATUSES: [u16; 11] = [400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504];

/// The table of `policies`.
pub(crate) fn table(policies: &Arc<Policies>) -> Markup {
    let named: Vec<FailureKey> = catalogue::codes()
        .into_iter()
        .map(FailureKey::asset)
        .chain(API_STATUSES.into_iter().map(FailureKey::api))
        .chain(std::iter::once(FailureKey::timeout()))
        .collect();
    let unnamed = |key: &FailureKey| !named.contains(key);
    let asset = |codes: RangeInclusive<u16>| codes.map(FailureKey::asset).filter(unnamed).collect::<Vec<_>>();
    let api = |codes: RangeInclusive<u16>| codes.map(FailureKey::api).filter(unnamed).collect::<Vec<_>>();
    let others: Vec<FailureKey> = (catalogue::MIN_ASSET_CODE..=catalogue::MAX_ASSET_CODE)
        .filter(|c| !REMOTE_4XX.contains(c) && !REMOTE_5XX.contains(c))
        .map(FailureKey::asset)
        .filter(unnamed)
        .collect();
    let decide_sources = policies.decide_sources();
    let mut rows: Vec<Markup> =
        named.iter().map(|k| row(policies, &k.to_string(), &[*k], !decide_sources.is_empty())).collect();
    for (label, keys) in [
        ("other 24xx", asset(REMOTE_4XX)),
        ("other 25xx", asset(REMOTE_5XX)),
        ("other http 4xx", api(400..=499)),
        ("other http 5xx", api(500..=599)),
        ("otherwise", others),
    ] {
        for group in groups(policies, &keys) {
            let label = if group.len() == 1 { group[0].to_string() } else { label.to_owned() };
            rows.push(row(policies, &label, &group, !decide_sources.is_empty()));
        }
    }
    html! {
        table.policy-table {
            thead { tr { th { "Code" } th { "Category" } th { "First action" } th { "Then" } th { "Rule" } th { "Policy" } } }
            tbody { @for r in rows { (r) } }
        }
        @if !decide_sources.is_empty() {
            p.muted { "* a decide function may change this row's decision (it runs before the row's rule): "
                @for s in &decide_sources { code { (s) } " " } }
        }
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

/// The row of `keys`, decided as the first of them is.
fn row(policies: &Policies, label: &str, keys: &[FailureKey], decide: bool) -> Markup {
    let Some(failure) = keys.first().and_then(|k| Failure::from_key(*k, "").ok()) else { return html! {} };
    let explanation = policies.explain(&failure, 1, &Context::new(), 0);
    let first = explanation.first();
    let origin = first.rule().origin();
    let later: Vec<String> = explanation.actions().iter().skip(1).map(ToString::to_string).collect();
    let fallback = origin.matcher == Matcher::Otherwise;
    html! {
        tr {
            td { code { (label) @if decide { " *" } }
                @if keys.len() > 1 { br; span.muted { (keys.len()) " codes: " (ranges(keys)) } }
                @else { br; span.muted { (failure.name()) } } }
            td { (failure.category().as_str()) }
            td { (step_text(first)) }
            td { (later.join(", ")) }
            td { code { (origin.to_string()) } @if fallback { " " span.muted { "(fallback)" } } }
            td { code { (first.rule().policy().to_string()) } }
        }
    }
}

/// Sorted keys as ranges of codes: `2400, 2402, 2405–2407`, shortened after six.
fn ranges(keys: &[FailureKey]) -> String {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for key in keys {
        match out.last_mut() {
            Some((_, high)) if high.checked_add(1) == Some(key.code) => *high = key.code,
            _ => out.push((key.code, key.code)),
        }
    }
    let prefix = if keys.first().is_some_and(|k| k.kind == FailureKind::Api) { "http:" } else { "" };
    let shown: Vec<String> = out
        .iter()
        .take(6)
        .map(|(low, high)| if low == high { format!("{prefix}{low}") } else { format!("{prefix}{low}–{high}") })
        .collect();
    let more = if out.len() > 6 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}
