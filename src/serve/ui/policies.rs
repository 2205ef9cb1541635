//! `GET /policies`: the effective table of the policies in force, and the explain form: what the engine does at
//! the N-th consecutive failure with a code, for a given context (`remedy explain`, in the browser).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::explain::steps;
use super::form::Fields;
use super::layout::{Frame, Nav, notice};
use super::request::Seen;
use super::state::View;
use super::table::table;
use crate::classify::{Failure, FailureKey};
use crate::decide::{Context, Policies};

/// The largest context the form takes, in bytes of JSON.
const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// `GET /policies`.
pub(crate) async fn page(State(view): State<Arc<View>>, seen: Seen, RawQuery(raw): RawQuery) -> Response {
    let Seen { who, base } = seen;
    let fields = Fields::query(raw.as_deref());
    let policies = view.engine.policies().current();
    let csrf = view.access.csrf(&who);
    let frame =
        Frame { title: "Policies", base: &base, who: Some(&who), csrf: Some(&csrf), nav: Nav::Policies, refresh: None };
    let code = fields.get("code").unwrap_or_default();
    let attempt = fields.get("attempt").unwrap_or("1");
    let ctx = fields.get("ctx").unwrap_or_default();
    let explained = (!code.is_empty()).then(|| explain(&policies, code, attempt, ctx));
    let table = cached_table(&view, &policies);
    let body = html! {
        h1 { "Policies" }
        div.card {
            h2 { "Explain" }
            form.filters method="get" action={ (base) "/policies" } {
                label { "Code" input type="text" name="code" value=(code) placeholder="2404, http:503, timeout" required; }
                label { "Failure number" input type="number" name="attempt" value=(attempt) min="1" max="100"; }
                label { "Context (JSON)" input type="text" name="ctx" value=(ctx) placeholder=r#"{"plan": "pro"}"# size="40"; }
                button type="submit" { "Explain" }
            }
            @if let Some(explained) = explained { (explained) }
        }
        div.card {
            h2 { "The effective table" }
            p.muted { "Sources, last wins: " @for s in policies.sources() { code { (s.as_ref()) } " " } }
            (table)
        }
    };
    frame.page(body).into_response()
}

/// The table of `policies`, made once per set.
fn cached_table(view: &View, policies: &Arc<Policies>) -> Markup {
    let mut cache = view.table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((kept, markup)) = &*cache
        && Arc::ptr_eq(kept, policies)
    {
        return markup.clone();
    }
    let markup = table(policies);
    *cache = Some((policies.clone(), markup.clone()));
    markup
}

/// What the policies do at failure `attempt` of `code` with context `ctx`.
fn explain(policies: &Policies, code: &str, attempt: &str, ctx: &str) -> Markup {
    let key: FailureKey = match code.parse() {
        Ok(key) => key,
        Err(e) => return notice("error", &format!("Code: {e} (e.g. 2404, http:429, timeout).")),
    };
    let Ok(attempt) = attempt.parse::<u32>().map(|n| n.clamp(1, 100)) else {
        return notice("error", "The failure number is a whole number from 1.");
    };
    if ctx.len() > MAX_CONTEXT_BYTES {
        return notice("error", &format!("The context is longer than {MAX_CONTEXT_BYTES} bytes."));
    }
    let context = if ctx.is_empty() { Ok(Context::new()) } else { Context::from_json(ctx) };
    let context = match context {
        Ok(c) => c,
        Err(e) => return notice("error", &e.to_string()),
    };
    let failure = match Failure::from_key(key, "") {
        Ok(f) => f,
        Err(e) => return notice("error", &e.to_string()),
    };
    let explanation = policies.explain(&failure, attempt, &context, 0);
    html! {
        p {
            code { (key.to_string()) } " " (failure.name()) " [" (failure.category().as_str()) ", " (failure.downstream().as_str()) "]"
        }
        @if explanation.ended_before(attempt) {
            p.muted { "The job ends at failure " (explanation.attempt) "; there is no failure " (attempt) "." }
        }
        p { "At failure " (explanation.attempt) ":" }
        (steps(&explanation))
    }
}
