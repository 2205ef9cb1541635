//! `GET /jobs`: the jobs, newest first, fifty a page, filtered by state (a phase or an outcome), code, category
//! and a search of the asset id; an operator selects many and cancels them or makes them due now.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Fields;
use super::layout::{Frame, Nav, ago, at, notice, query, segment};
use super::request::Seen;
use super::state::View;
use crate::classify::FailureKey;
use crate::classify::catalogue::Category;
use crate::store::{JobRow, ListFilter, MAX_ID_BYTES, Phase, Timestamp};

/// Jobs a page.
pub(crate) const PAGE: usize = 50;

/// The states a filter may name: the phases of active jobs, then the outcomes of finished ones.
const STATES: [&str; 7] = ["waiting", "calling", "awaiting", "finished", "recovered", "failed", "cancelled"];

/// The filters of a jobs page, as asked, and what was wrong with them.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    pub(crate) filter: ListFilter,
    /// The values as given, to show them again in the form.
    pub(crate) state: String,
    pub(crate) code: String,
    pub(crate) category: String,
    pub(crate) asset: String,
    pub(crate) problems: Vec<String>,
}

impl Asked {
    /// The filters of a query string; a bad value is said and left out.
    pub(crate) fn parse(fields: &Fields) -> Asked {
        let mut asked =
            Asked { filter: ListFilter { limit: Some(PAGE + 1), ..ListFilter::default() }, ..Asked::default() };
        if let Some(state) = fields.get("state") {
            match state.parse::<Phase>() {
                Ok(phase) => asked.filter.phase = Some(phase),
                Err(_) if STATES.contains(&state) => asked.filter.outcome = Some(state.to_owned()),
                Err(_) => asked.problems.push("That state is not one of the list.".to_owned()),
            }
            if STATES.contains(&state) {
                asked.state = state.to_owned();
            }
        }
        if let Some(code) = fields.get("code") {
            asked.code = code.chars().take(64).collect();
            match code.parse::<FailureKey>() {
                Ok(key) => asked.filter.code = Some(key.to_string()),
                Err(e) => asked.problems.push(format!("Code: {e} (e.g. 2404, http:503, timeout).")),
            }
        }
        if let Some(category) = fields.get("category") {
            match category.parse::<Category>() {
                Ok(c) => {
                    asked.filter.category = Some(c);
                    asked.category = c.as_str().to_owned();
                }
                Err(e) => asked.problems.push(format!("Category: {e}.")),
            }
        }
        if let Some(asset) = fields.get("asset") {
            if asset.len() > MAX_ID_BYTES || asset.chars().any(char::is_control) {
                asked.problems.push("The asset search is too long, or holds control characters.".to_owned());
            } else {
                asked.asset = asset.to_owned();
                asked.filter.asset = Some(asset.to_owned());
            }
        }
        if let Some(offset) = fields.get("offset") {
            match offset.parse::<usize>() {
                Ok(n) => asked.filter.offset = n.min(10_000_000),
                Err(_) => asked.problems.push("The page offset is not a number.".to_owned()),
            }
        }
        asked
    }

    /// The page's query string at another `offset`.
    fn at_offset(&self, offset: usize) -> String {
        let offset = offset.to_string();
        query([
            ("state", self.state.as_str()),
            ("code", self.code.as_str()),
            ("category", self.category.as_str()),
            ("asset", self.asset.as_str()),
            ("offset", if offset == "0" { "" } else { offset.as_str() }),
        ])
    }
}

/// A job's state in one word: its outcome, or its phase.
pub(crate) fn state_of(row: &JobRow) -> &str {
    row.outcome.as_deref().unwrap_or(row.phase.as_str())
}

/// When the job is next due, in words.
pub(crate) fn next_of(row: &JobRow, now: Timestamp) -> String {
    match row.phase {
        Phase::Finished => "–".to_owned(),
        _ if row.lease_owner.is_some() && row.wake_at > now => "held".to_owned(),
        _ if row.wake_at <= now => "now".to_owned(),
        _ => ago(row.wake_at, now),
    }
}

/// The category of a stored failure code, in words.
pub(crate) fn category_of(code: &str) -> String {
    match code.parse::<FailureKey>() {
        Ok(key) => match key.kind {
            crate::classify::FailureKind::Asset => crate::classify::catalogue::describe(key.code).category.to_string(),
            crate::classify::FailureKind::Api => Category::Api.to_string(),
            crate::classify::FailureKind::Timeout => Category::Timeout.to_string(),
        },
        Err(_) => "?".to_owned(),
    }
}

/// What the last action did, from the fixed words the action's redirect carries.
fn done_notice(fields: &Fields) -> Option<Markup> {
    let what = match fields.get("done")? {
        "cancel" => "Cancel",
        "retry_now" => "Retry now",
        _ => return None,
    };
    let n: u32 = fields.get("n")?.parse().ok()?;
    let of: u32 = fields.get("of")?.parse().ok()?;
    let kind = if n == of && of > 0 { "ok" } else { "error" };
    Some(notice(kind, &format!("{what}: done for {n} of {of} selected job(s) (see each job's actions).")))
}

/// `GET /jobs`.
pub(crate) async fn page(State(view): State<Arc<View>>, seen: Seen, RawQuery(raw): RawQuery) -> Response {
    let Seen { who, base } = seen;
    let fields = Fields::query(raw.as_deref());
    let asked = Asked::parse(&fields);
    let now = view.clock.now();
    let listed = view.store.list(&asked.filter).await;
    let csrf = view.access.csrf(&who);
    let frame = Frame { title: "Jobs", base: &base, who: Some(&who), csrf: Some(&csrf), nav: Nav::Jobs, refresh: None };
    let body = html! {
        h1 { "Jobs" }
        @if let Some(done) = done_notice(&fields) { (done) }
        @for problem in &asked.problems { (notice("error", problem)) }
        (filters(&base, &asked))
        @match &listed {
            Err(e) => (notice("error", &format!("The store cannot list the jobs now: {e}"))),
            Ok(rows) => (table(&base, &asked, rows, now, who.can_act(), &csrf, raw.as_deref().unwrap_or_default())),
        }
    };
    frame.page(body).into_response()
}

fn filters(base: &str, asked: &Asked) -> Markup {
    html! {
        form.filters method="get" action={ (base) "/jobs" } {
            label { "State"
                select name="state" {
                    option value="" { "any" }
                    @for s in STATES { option value=(s) selected[asked.state == s] { (s) } }
                }
            }
            label { "Code" input type="text" name="code" value=(asked.code) placeholder="2404, http:503" size="10"; }
            label { "Category"
                select name="category" {
                    option value="" { "any" }
                    @for c in Category::ALL { option value=(c.as_str()) selected[asked.category == c.as_str()] { (c.as_str()) } }
                }
            }
            label { "Asset" input type="text" name="asset" value=(asked.asset) placeholder="part of the id"; }
            button type="submit" { "Filter" }
            a href={ (base) "/jobs" } { "Clear" }
        }
    }
}

fn table(base: &str, asked: &Asked, rows: &[JobRow], now: Timestamp, can_act: bool, csrf: &str, raw: &str) -> Markup {
    let more = rows.len() > PAGE;
    let rows = &rows[..rows.len().min(PAGE)];
    let offset = asked.filter.offset;
    html! {
        form method="post" action={ (base) "/actions" } {
            @if can_act {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="query" value=(raw);
                div.actions {
                    button.danger type="submit" name="action" value="cancel" { "Cancel selected" }
                    button type="submit" name="action" value="retry_now" { "Retry selected now" }
                    span.muted { "Active jobs only: a finished job stays as it ended." }
                }
            }
            div.card {
                table.jobs {
                    thead { tr {
                        @if can_act { th { input type="checkbox" data-select-all aria-label="Select every job of the page"; } }
                        th.num { "Job" } th { "Asset" } th { "State" } th { "Code" } th { "Category" }
                        th.num { "Attempts" } th { "Next" } th { "Submitted" } th { "Updated" }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                @if can_act {
                                    td { input type="checkbox" name="asset" value=(row.asset_id) aria-label={ "Select " (row.asset_id) }; }
                                }
                                td.num { (row.id) }
                                td { a.mono href={ (base) "/jobs/" (segment(&row.asset_id)) } { (row.asset_id) } }
                                td { span class={ "state " (state_of(row)) } { (state_of(row)) } }
                                td { code { (row.last_code) } }
                                td { (category_of(&row.last_code)) }
                                td.num { (row.attempts) }
                                td { (next_of(row, now)) }
                                td title=(at(row.created_at)) { (ago(row.created_at, now)) }
                                td title=(at(row.updated_at)) { (ago(row.updated_at, now)) }
                            }
                        }
                        @if rows.is_empty() { tr { td colspan="10" .muted { "No job matches." } } }
                    }
                }
            }
        }
        div.pager {
            @if offset > 0 { a rel="prev" href={ (base) "/jobs?" (asked.at_offset(offset.saturating_sub(PAGE))) } { "← Newer" } }
            span { "Jobs " (offset + usize::from(!rows.is_empty())) "–" (offset + rows.len()) }
            @if more { a rel="next" href={ (base) "/jobs?" (asked.at_offset(offset + PAGE)) } { "Older →" } }
        }
    }
}
