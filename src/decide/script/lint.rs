//! Lint warnings: the set loads, but something in it is probably not what its author meant.

use std::sync::Arc;

use crate::classify::{FailureKey, catalogue};
use crate::decide::action::ActionKind;
use crate::decide::rules::Rule;
use crate::decide::rules::table::Table;
use crate::diagnostic::Diagnostic;

/// Codes that can never succeed by resubmitting the same input unchanged.
pub(crate) const NEVER_RETRYABLE: [u16; 4] = [2003, 2004, 2005, 2066];

/// Warnings about one source: its rules are `rules[first..]`, its table `table`.
pub(crate) fn lint(file: &Arc<str>, rules: &[Arc<Rule>], first: usize, table: &Table) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let mut wins = vec![0_usize; rules.len() - first];
    for rule in table.wins() {
        if let Some(count) = rule.checked_sub(first).and_then(|i| wins.get_mut(i)) {
            *count += 1;
        }
    }
    for (rule, count) in rules[first..].iter().zip(wins) {
        let origin = rule.origin();
        // `otherwise` is the fallback, not a rule of the table (later sources may replace it).
        if count == 0 && origin.matcher != crate::decide::rules::Matcher::Otherwise {
            warnings.push(Diagnostic::warning(
                file,
                origin.pos,
                format!(
                    "`{}` never applies: more specific rules of this file cover every failure it matches",
                    origin.matcher
                ),
            ));
        }
        for stage in rule.policy().stages() {
            let Some(b) = stage.backoff() else { continue };
            if b.min_delay > b.initial {
                let why = if stage.action().kind() == ActionKind::Republish {
                    " (republish waits at least 30 s by default, for Brightcove's reference-id lock; set `min_delay` to \
                     wait less)"
                } else {
                    ""
                };
                warnings.push(Diagnostic::warning(
                    file,
                    stage.pos().or(origin.pos),
                    format!(
                        "`initial` ({}) is shorter than `min_delay` ({}): every wait is at least {}{why}",
                        humantime::format_duration(b.initial),
                        humantime::format_duration(b.min_delay),
                        humantime::format_duration(b.min_delay),
                    ),
                ));
            }
        }
        for stage in rule.policy().stages().iter().filter(|s| s.is_unbounded()) {
            warnings.push(Diagnostic::warning(
                file,
                stage.pos().or(origin.pos),
                "unbounded chain: this stage has unlimited attempts and no `max_elapsed`, so it may never end",
            ));
        }
    }
    for code in NEVER_RETRYABLE {
        let Some(index) = table.get(FailureKey::asset(code)) else { continue };
        let Some(rule) = rules.get(index) else { continue };
        if rule.policy().stages().iter().any(|s| s.action().kind() == ActionKind::Retry) {
            warnings.push(Diagnostic::warning(
                file,
                rule.origin().pos,
                format!(
                    "`{}` retries {code} ({}), which can never succeed by resubmitting the same input",
                    rule.origin().matcher,
                    catalogue::describe(code).name
                ),
            ));
        }
    }
    warnings
}
