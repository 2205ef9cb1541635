//! An explanation as a page shows it: each step the policies take, its action, its wait, its stage, and the
//! rule it came from (file, line and matcher), with the policy's text: the job page's "what happens next" and
//! the policies page's explain form alike.

use maud::{Markup, html};

use super::layout::span;
use crate::decide::{Action, Decision, Explanation};

/// One step in words: `retry after 1m 0s`, `fail: the input URL ...`, `notify ops: ...`.
pub(crate) fn step_text(d: &Decision<'_>) -> String {
    let mut line = match (d.action(), d.reason()) {
        (Action::Notify { channel, message }, _) => format!("notify {channel}: {message}"),
        (_, Some(reason)) => format!("fail: {reason}"),
        (_, None) => d.kind().to_string(),
    };
    if let Some(delay) = d.delay() {
        line.push_str(&format!(" after {}", span(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))));
    }
    line
}

/// The steps of `explanation`, in order, each with its rule.
pub(crate) fn steps(explanation: &Explanation<'_>) -> Markup {
    html! {
        ol.steps {
            @for (i, step) in explanation.steps.iter().enumerate() {
                @if explanation.reconciles_before(i) {
                    li { strong { "reconcile" } " first (reconcile_first): if the earlier attempt in fact succeeded, the job ends recovered" }
                }
                li {
                    strong { (step_text(step)) }
                    " "
                    span.muted {
                        @match explanation.stage_of(i) {
                            Some(stage) => { "(stage " (stage) " of " (step.stages()) ", attempt " (step.attempt()) ")" }
                            None => { "(every stage exhausted)" }
                        }
                    }
                    @if let Some(wait) = step.await_result() {
                        br; span.muted { "a submitted attempt's result is awaited up to " (span(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))) ", then check is asked" }
                    }
                    br;
                    span.muted { "rule " } code { (step.rule().origin().to_string()) }
                    " " span.muted { "policy " } code { (step.rule().policy().to_string()) }
                    @if let Some(e) = step.script_error() {
                        br; span.muted { "passed over a failing decide function: " (e.to_string()) }
                    }
                }
            }
        }
    }
}
