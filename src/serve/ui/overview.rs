//! `GET /`: the overview: jobs by phase and outcome, the jobs of the last hours as a chart and by category and
//! code, the breakers that are open, the retry budget, the policies in force (their files and when they were
//! loaded), and the last actions of operators. It reloads itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::chart::{STATES, buckets, chart};
use super::job::link;
use super::jobs::category_of;
use super::layout::{Frame, Nav, ago, at, notice, query};
use super::request::Seen;
use super::state::View;
use crate::classify::FailureKey;
use crate::classify::catalogue::Downstream;
use crate::engine::BreakerState;
use crate::serve::callbacks::CALLBACK_ROLE;
use crate::store::{Stats, TallyRow, Timestamp};

/// The hours the chart and the tables cover.
pub(crate) const HOURS: i64 = 12;
const HOUR_MS: i64 = 3_600_000;

/// `GET /`.
pub(crate) async fn page(State(view): State<Arc<View>>, seen: Seen) -> Response {
    let Seen { who, base } = seen;
    let now = view.clock.now();
    let this_hour = now.0.div_euclid(HOUR_MS) * HOUR_MS;
    let since = Timestamp(this_hour - (HOURS - 1) * HOUR_MS);
    let (stats, tally, actions) = tokio::join!(
        view.store.stats(now),
        view.store.tally(since, Duration::from_millis(HOUR_MS as u64)),
        view.store.actions(None, 32),
    );
    // LightFlow's callbacks are logged beside the operators' actions, for the jobs' timelines; not listed here.
    let actions = actions.map(|all| all.into_iter().filter(|a| a.role != CALLBACK_ROLE).take(8).collect::<Vec<_>>());
    let csrf = view.access.csrf(&who);
    let refresh = Some(view.refresh.as_secs().max(1));
    let frame =
        Frame { title: "Overview", base: &base, who: Some(&who), csrf: Some(&csrf), nav: Nav::Overview, refresh };
    let body = html! {
        h1 { "Overview" span.muted { " · " (view.store.describe()) " · " (at(now)) } }
        @match &stats {
            Ok(stats) => (tiles(&base, stats)),
            Err(e) => (notice("error", &format!("The store cannot count the jobs now: {e}"))),
        }
        @match &tally {
            Ok(tally) => (last_hours(&base, tally, this_hour)),
            Err(e) => (notice("error", &format!("The jobs of the last hours cannot be counted: {e}"))),
        }
        div.grid {
            div.card { h2 { "Circuit breakers" } (breakers(&view)) }
            div.card { h2 { "Retry budget" } (budget(&view)) }
            div.card { h2 { "Policies in force" } (policies(&base, &view)) }
        }
        div.grid {
            div.card { h2 { "Operators' last actions" }
                @match &actions {
                    Ok(list) if list.is_empty() => p.muted { "None yet." },
                    Ok(list) => table {
                        thead { tr { th { "When" } th { "Who" } th { "What" } th { "Asset" } th { "Answer" } } }
                        tbody { @for a in list { tr { td { (ago(a.at, now)) } td { code { (a.who) } } td { (a.action) } td { (link(&base, &a.asset_id)) } td { (a.answer) } } } }
                    },
                    Err(e) => p.muted { (e.to_string()) },
                }
            }
            div.card { h2 { "This replica since it started" } (counters(&view)) }
        }
    };
    frame.page(body).into_response()
}

fn tiles(base: &str, stats: &Stats) -> Markup {
    let tile = |label: &str, class: &str, n: u64, state: &str| {
        html! { a.tile class=(class) href={ (base) "/jobs?" (query([("state", state)])) } { span.n { (n) } span.l { (label) } } }
    };
    let phase = |p: &str| stats.by_phase.get(p).copied().unwrap_or(0);
    let outcome = |o: &str| stats.by_outcome.get(o).copied().unwrap_or(0);
    html! {
        div.card { h2 { "Jobs" }
            div.tiles {
                (tile("waiting", "running", phase("waiting"), "waiting"))
                (tile("calling", "running", phase("calling"), "calling"))
                (tile("awaiting a result", "running", phase("awaiting"), "awaiting"))
                (tile("recovered", "recovered", outcome("recovered"), "recovered"))
                (tile("failed", "failed", outcome("failed"), "failed"))
                (tile("cancelled", "cancelled", outcome("cancelled"), "cancelled"))
                div.tile { span.n { (stats.due_now) } span.l { "due now" } }
                div.tile { span.n { (stats.held) } span.l { "held by a replica" } }
                div.tile { span.n { (stats.held_reports) } span.l { "reports held" } }
            }
        }
    }
}

fn last_hours(base: &str, tally: &[TallyRow], this_hour: i64) -> Markup {
    let bars = buckets(tally, this_hour, HOUR_MS, HOURS);
    let mut by_category: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut by_code: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for row in tally {
        let i = STATES.iter().position(|s| *s == row.state).unwrap_or(1);
        by_category.entry(category_of(&row.code)).or_default()[i] += row.jobs;
        by_code.entry(&row.code).or_default()[i] += row.jobs;
    }
    let mut codes: Vec<(&str, [u64; 4])> = by_code.into_iter().collect();
    codes.sort_by_key(|(code, c)| (std::cmp::Reverse(c.iter().sum::<u64>()), *code));
    codes.truncate(12);
    let head = html! { th.num { "Jobs" } @for s in STATES { th.num { (s) } } };
    let counts = |c: &[u64; 4]| html! { td.num { (c.iter().sum::<u64>()) } @for n in c { td.num { (n) } } };
    html! {
        div.card.wide {
            h2 { "Jobs submitted in the last " (HOURS) " hours, by how they stand" }
            (chart(&bars))
        }
        div.grid {
            div.card { h2 { "Failures by category" }
                table { thead { tr { th { "Category" } (head) } }
                    tbody { @for (category, c) in &by_category { tr {
                        td { a href={ (base) "/jobs?" (query([("category", category.as_str())])) } { (category) } } (counts(c)) } } }
                }
            }
            div.card { h2 { "Failures by code" }
                table { thead { tr { th { "Code" } th { "Name" } (head) } }
                    tbody { @for (code, c) in &codes { tr {
                        td { a href={ (base) "/jobs?" (query([("code", *code)])) } { code { (code) } } }
                        td { (name_of(code)) } (counts(c)) } } }
                }
            }
        }
    }
}

/// The catalogue's name of a stored code.
fn name_of(code: &str) -> String {
    code.parse::<FailureKey>()
        .ok()
        .and_then(|key| crate::classify::Failure::from_key(key, "").ok())
        .map_or_else(|| "?".to_owned(), |f| f.name().into_owned())
}

fn breakers(view: &View) -> Markup {
    let open: Vec<(Downstream, BreakerState)> = Downstream::ALL
        .into_iter()
        .map(|d| (d, view.engine.breaker(d)))
        .filter(|(_, s)| *s != BreakerState::Closed)
        .collect();
    let transitions = view.engine.counters().breaker_transitions;
    html! {
        @if open.is_empty() {
            p { "Every breaker is closed: calls go through." }
        } @else {
            table { tbody { @for (d, s) in &open { tr { td { (d.as_str()) } td { span class={ "state " (s.as_str()) } { (s.as_str()) } } } } } }
        }
        @if !transitions.is_empty() {
            h3 { "Transitions" }
            table { tbody { @for (what, n) in &transitions { tr { td { (what) } td.num { (n) } } } } }
        }
    }
}

fn budget(view: &View) -> Markup {
    let refusals = view.engine.counters().budget_refusals;
    html! {
        @match view.engine.budget() {
            Some((left, full)) => {
                p { strong { (format!("{left:.1}")) } " of " (format!("{full:.0}")) " tokens left ("
                    (format!("{:.0}", if full > 0.0 { left / full * 100.0 } else { 0.0 })) "%)" }
                meter min="0" max=(full) value=(left) {}
            }
            None => p.muted { "No retry budget is configured: retries are bounded by the policies alone." }
        }
        p { (refusals) " retries refused by the budget since this replica started." }
    }
}

fn policies(base: &str, view: &View) -> Markup {
    let current = view.engine.policies().current();
    let loaded = view.loaded();
    let when = |t: std::time::SystemTime| {
        let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        at(Timestamp(ms))
    };
    html! {
        p { "Loaded " (when(loaded.at)) "; " (current.rules().len()) " rules, " (current.warnings().len()) " warnings." }
        ol { @for source in current.sources() { li { code { (source.as_ref()) } } } }
        @if let Some((t, errors)) = &loaded.refused {
            (notice("error", &format!("A reload was refused at {}: the set above stays in force.", when(*t))))
            ul { @for e in errors { li { code { (e) } } } }
        }
        p { a href={ (base) "/policies" } { "The effective table and the explain form →" } }
    }
}

fn counters(view: &View) -> Markup {
    let c = view.engine.counters();
    let mut decisions: Vec<(&String, &u64)> = c.decisions.iter().collect();
    decisions.sort_by_key(|(k, n)| (std::cmp::Reverse(**n), (*k).clone()));
    decisions.truncate(8);
    html! {
        dl.facts {
            dt { "Outcomes" } dd { @for (k, n) in &c.outcomes { (k.as_str()) " " (n) "  " } }
            dt { "Hook calls" } dd { @for (k, n) in &c.hook_calls { (k.as_str()) " " (n) "  " } }
            dt { "Hook trouble" } dd { (c.hook_timeouts) " timeouts, " (c.hook_errors) " errors, " (c.hook_panics) " panics" }
            dt { "Takeovers" } dd { (c.takeovers) }
        }
        h3 { "Most frequent decisions" }
        table { tbody { @for (k, n) in &decisions { tr { td { code { (k) } } td.num { (n) } } } } }
    }
}
