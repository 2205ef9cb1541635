//! `GET /jobs/{asset}`: one asset's job: where it stands, the failure it remediates, its history as a timeline,
//! the LightFlow uuids it went through, the dead letter if it has one, what the policies in force do next
//! (the explanation of its next step), and the actions operators took on it.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::explain::steps;
use super::form::Fields;
use super::jobs::{category_of, next_of, state_of};
use super::layout::{Frame, Nav, ago, at, notice, segment};
use super::request::Seen;
use super::state::View;
use super::timeline::{positions, timeline};
use crate::engine::StoredJob;
use crate::store::{ActionRow, JobRow, LineageRow, Phase, StoreError, Timestamp};

/// Records a store may not keep (a store of a host's own): none, rather than an error.
fn or_none<T>(found: Result<Vec<T>, StoreError>) -> Result<Vec<T>, StoreError> {
    match found {
        Err(StoreError::Unsupported { .. }) => Ok(Vec::new()),
        other => other,
    }
}

/// What the last action on this job did, from the fixed words the action's redirect carries.
fn done_notice(fields: &Fields) -> Option<Markup> {
    let what = match fields.get("done")? {
        "cancel" => "Cancel",
        "retry_now" => "Retry now",
        _ => return None,
    };
    let (kind, text) = match fields.get("answer")? {
        "cancelled" => ("ok", "the job is cancelled."),
        "requested" => ("ok", "the replica that holds the job is asked to cancel it."),
        "due_now" => ("ok", "the job is due now."),
        "not_at_rest" => ("error", "a replica holds the job right now: nothing to make due."),
        "no_job" => ("error", "the asset has no active job."),
        _ => ("error", "the store refused the asset id."),
    };
    Some(notice(kind, &format!("{what}: {text}")))
}

/// `GET /jobs/{asset}`.
pub(crate) async fn page(
    State(view): State<Arc<View>>,
    seen: Seen,
    Path(asset): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Seen { who, base } = seen;
    let csrf = view.access.csrf(&who);
    let frame = Frame { title: "Job", base: &base, who: Some(&who), csrf: Some(&csrf), nav: Nav::Jobs, refresh: None };
    let found = async {
        let Some(row) = view.store.job_of(&asset).await? else { return Ok(None) };
        let calls = view.store.calls(row.id).await?;
        let lineage = or_none(view.store.lineage(&asset).await)?;
        let actions = or_none(view.store.actions(Some(&asset), 100).await)?;
        Ok::<_, StoreError>(Some((row, calls, lineage, actions)))
    };
    let (row, calls, lineage, actions) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let body = html! { h1 { "No such job" } p { "The store has no job of asset " code { (asset) } "." } };
            return (StatusCode::NOT_FOUND, frame.page(body)).into_response();
        }
        Err(StoreError::Invalid { reason, .. }) => {
            let body = html! { h1 { "No such job" } (notice("error", &format!("That asset id cannot be: {reason}."))) };
            return (StatusCode::BAD_REQUEST, frame.page(body)).into_response();
        }
        Err(e) => {
            let body = html! { h1 { "Job" } (notice("error", &format!("The store cannot answer now: {e}"))) };
            return (StatusCode::SERVICE_UNAVAILABLE, frame.page(body)).into_response();
        }
    };
    let now = view.clock.now();
    let stored = StoredJob::from_row(&row);
    let fields = Fields::query(raw.as_deref());
    let body = html! {
        h1 { "Job " (row.id) " of " code { (row.asset_id) } " " span class={ "state " (state_of(&row)) } { (state_of(&row)) } }
        @if let Some(done) = done_notice(&fields) { (done) }
        @if who.can_act() && row.phase != Phase::Finished { (buttons(&base, &row, &csrf)) }
        div.grid {
            div.card { h2 { "Where it stands" } (facts(&row, now)) }
            div.card { h2 { "The failure" }
                @match &stored {
                    Ok(job) => (failure(job)),
                    Err(e) => (notice("error", &format!("The job's payload cannot be read by this build: {e}"))),
                }
            }
        }
        div.grid {
            div.card { h2 { "What happens next" } (next(&view, &row, stored.as_ref().ok())) }
            div.card { h2 { "LightFlow uuids" } (uuids(&lineage)) }
        }
        @if let Ok(job) = &stored {
            @if let Some(verdict) = dead_letter(job) {
                div.card { h2 { "Dead letter" } (verdict) }
            }
        }
        div.grid {
            div.card { h2 { "History" } (timeline(&row, &calls, &lineage, &actions)) }
            div.card { h2 { "Decisions by rule" }
                @if let Ok(job) = &stored { (positions(&serde_json::to_value(&job.history).unwrap_or_default())) }
            }
        }
        div.card { h2 { "Actions on this asset" } (action_log(&actions)) }
    };
    frame.page(body).into_response()
}

fn buttons(base: &str, row: &JobRow, csrf: &str) -> Markup {
    html! {
        form.actions method="post" action={ (base) "/actions" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="asset" value=(row.asset_id);
            input type="hidden" name="return" value="job";
            button.danger type="submit" name="action" value="cancel" { "Cancel this job" }
            button type="submit" name="action" value="retry_now" { "Retry now" }
        }
    }
}

fn facts(row: &JobRow, now: Timestamp) -> Markup {
    html! {
        dl.facts {
            dt { "State" } dd { (state_of(row)) }
            dt { "Code" } dd { code { (row.last_code) } " (" (category_of(&row.last_code)) ")" }
            dt { "Attempts" } dd { (row.attempts) }
            dt { "Next" } dd { (next_of(row, now)) }
            @if let Some(owner) = &row.lease_owner { dt { "Held by" } dd { code { (owner) } " (epoch " (row.epoch) ")" } }
            @if let Some(reference) = &row.reference { dt { "Awaiting" } dd { code { (reference) } } }
            dt { "Submitted" } dd { (at(row.created_at)) " (" (ago(row.created_at, now)) ")" }
            dt { "Updated" } dd { (at(row.updated_at)) }
            @if let Some(t) = row.finished_at { dt { "Ended" } dd { (at(t)) } }
            @if let Some(key) = &row.dedupe_key { dt { "Dedupe key" } dd { code { (key) } } }
        }
    }
}

fn failure(job: &StoredJob) -> Markup {
    let f = &job.failure;
    let context = serde_json::to_string_pretty(job.job.context()).unwrap_or_default();
    let meta = serde_json::to_string_pretty(&job.job.meta_all()).unwrap_or_default();
    html! {
        dl.facts {
            dt { "Code" } dd { code { (f.key().to_string()) } " " (f.name()) }
            dt { "Category" } dd { (f.category().as_str()) " · downstream " (f.downstream().as_str()) }
            dt { "Message" } dd { pre.message { (f.message()) } }
            @for note in f.notes() { dt { "Note" } dd { (note) } }
            dt { "First failed" } dd { (at(job.first_failure_at)) }
            @if let Some(key) = &job.unanswered { dt { "Unanswered call" } dd { code { (key) } } }
        }
        h3 { "Context" } pre { (context) }
        h3 { "Metadata kept by the hooks" } pre { (meta) }
    }
}

fn next(view: &View, row: &JobRow, job: Option<&StoredJob>) -> Markup {
    let Some(job) = job.filter(|_| row.phase != Phase::Finished) else {
        return html! { p.muted { "Nothing: the job has ended." } };
    };
    let policies = view.engine.policies().current();
    let explanation = policies.explain_from(&job.failure, job.history.clone(), job.job.context());
    html! {
        p { "The policies in force, at failure " (explanation.attempt) " of " code { (job.failure.key().to_string()) } ":" }
        (steps(&explanation))
        @if let Some(awaiting) = &job.awaiting {
            p.muted { "Awaiting the result of a submitted attempt: " code { (serde_json::to_string(awaiting).unwrap_or_default()) } }
        }
    }
}

fn uuids(lineage: &[LineageRow]) -> Markup {
    html! {
        @if lineage.is_empty() {
            p.muted { "None recorded (the asset was not created through the service's gateway, or has not been resubmitted)." }
        } @else {
            table {
                thead { tr { th { "uuid" } th { "Attempt" } th { "When" } } }
                tbody { @for l in lineage { tr { td { code { (l.reference) } } td { code { (l.attempt_key) } } td { (at(l.at)) } } } }
            }
        }
    }
}

fn dead_letter(job: &StoredJob) -> Option<Markup> {
    let verdict = job.verdict.as_deref().or(match &job.outcome {
        Some(crate::engine::Outcome::Failed { verdict }) => Some(verdict.as_ref()),
        _ => None,
    })?;
    let delivered = job.verdict.is_none();
    Some(html! {
        dl.facts {
            dt { "Verdict" } dd { (verdict.kind.as_str()) @if !delivered { " (not yet delivered to the failed hook)" } }
            dt { "Reason" } dd { (verdict.reason) }
            dt { "Hint" } dd { (verdict.hint) }
            dt { "Last failure" } dd { code { (verdict.last_failure.key().to_string()) } " " (verdict.last_failure.message()) }
            @if let Some(rule) = &verdict.rule { dt { "Rule" } dd { code { (rule) } } }
            dt { "Attempts" } dd { (verdict.attempts) }
        }
    })
}

fn action_log(actions: &[ActionRow]) -> Markup {
    html! {
        @if actions.is_empty() {
            p.muted { "No operator has acted on this asset." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Job" } th { "Answer" } } }
                tbody {
                    @for a in actions {
                        tr { td { (at(a.at)) } td { code { (a.who) } } td { (a.action) }
                             td { @if let Some(job) = a.job { (job) } } td { (a.answer) } }
                    }
                }
            }
        }
    }
}

/// A link to the page of `asset`'s job.
pub(crate) fn link(base: &str, asset: &str) -> Markup {
    html! { a.mono href={ (base) "/jobs/" (segment(asset)) } { (asset) } }
}
