//! A job's history as one timeline: its submission, each side-effecting call of the ledger (started, then
//! answered, with its idempotency key and answer), each LightFlow uuid that replaced the asset, each action an
//! operator took, and its end; oldest first. The positions the policies keep for it (each rule with its stage
//! and how often it acted) come from the job's payload.

use maud::{Markup, html};
use serde_json::Value;

use super::layout::at;
use crate::serve::callbacks::CALLBACK_ROLE;
use crate::store::{ActionRow, CallRow, JobRow, LineageRow, Timestamp};

/// One moment of the timeline.
struct Moment {
    at: Timestamp,
    /// The class of its dot: `failed`, `recovered`, `action`, or empty.
    kind: &'static str,
    what: Markup,
}

/// The timeline of `row`, from its ledger, its lineage and the actions on its asset.
pub(crate) fn timeline(row: &JobRow, calls: &[CallRow], lineage: &[LineageRow], actions: &[ActionRow]) -> Markup {
    let mut moments = vec![Moment {
        at: row.created_at,
        kind: "failed",
        what: html! { "Submitted: the asset failed with " code { (row.last_code) } " (the failure it remediates now)" },
    }];
    for call in calls {
        moments.push(Moment {
            at: call.started_at,
            kind: "",
            what: html! { "Call " strong { (call.hook) } " started, key " code { (call.key) } },
        });
        match (call.answered_at, &call.answer) {
            (Some(t), Some(answer)) => moments.push(Moment {
                at: t,
                kind: "",
                what: html! { "Call " strong { (call.hook) } " answered: " (answer) " " span.muted { "(key " code { (call.key) } ")" } },
            }),
            _ => moments.push(Moment {
                at: call.started_at,
                kind: "failed",
                what: html! { "Call " strong { (call.hook) } " not answered yet (its holder may have died: it is reconciled before it is repeated)" },
            }),
        }
    }
    for l in lineage {
        moments.push(Moment {
            at: l.at,
            kind: "",
            what: html! { "LightFlow uuid " code { (l.reference) } " (attempt " code { (l.attempt_key) } ")" },
        });
    }
    for a in actions.iter().filter(|a| a.at >= row.created_at && a.role == CALLBACK_ROLE) {
        moments.push(Moment {
            at: a.at,
            kind: "",
            what: html! { "Callback from LightFlow, " strong { (a.who) } ": " (a.answer) },
        });
    }
    for a in actions.iter().filter(|a| a.at >= row.created_at && a.role != CALLBACK_ROLE) {
        moments.push(Moment {
            at: a.at,
            kind: "action",
            what: html! { "Operator action " strong { (a.action) } " by " code { (a.role) ":" (a.who.rsplit(':').next().unwrap_or(&a.who)) } ": " (a.answer) },
        });
    }
    if let Some(t) = row.finished_at {
        let outcome = row.outcome.as_deref().unwrap_or("finished");
        let kind = if outcome == "recovered" { "recovered" } else { "failed" };
        moments.push(Moment { at: t, kind, what: html! { "Ended: " strong { (outcome) } } });
    }
    moments.sort_by_key(|m| m.at);
    html! {
        ol.timeline {
            @for m in &moments {
                li class=(m.kind) { span.when { (at(m.at)) } (m.what) }
            }
        }
    }
}

/// The rules the job went through, from its history's positions: each with its stage and uses.
pub(crate) fn positions(history: &Value) -> Markup {
    let empty = Vec::new();
    let positions = history.get("positions").and_then(Value::as_array).unwrap_or(&empty);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    html! {
        @if positions.is_empty() {
            p.muted { "No decision yet." }
        } @else {
            table {
                thead { tr { th { "Rule (source, matcher)" } th.num { "Stage" } th.num { "Acted" } th { "Last delay" } } }
                tbody {
                    @for p in positions {
                        tr {
                            td { code { (text(&p["rule"]["source"])) } " " code { (text(&p["rule"]["matcher"])) }
                                @if p["rule"]["line"].as_u64().is_some_and(|l| l > 0) { " line " (text(&p["rule"]["line"])) } }
                            td.num { (p["stage"].as_u64().map_or(0, |s| s + 1)) }
                            td.num { (text(&p["used"])) }
                            td { (p["last_delay"].as_u64().map_or_else(String::new, |ms| super::layout::span(i64::try_from(ms).unwrap_or(i64::MAX)))) }
                        }
                    }
                }
            }
        }
    }
}
