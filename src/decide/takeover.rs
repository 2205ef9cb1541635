//! What a later source takes over from earlier ones: for each range or category rule, the exact rules of
//! earlier sources it now decides instead of, and for each `otherwise`, the one it replaces. Reported as
//! warnings (overriding is what later sources are for, but a wide rule can take over more than its author
//! saw).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rules::table::Table;
use super::rules::{Matcher, Rule};
use crate::diagnostic::Diagnostic;

/// How many codes one warning lists before it counts the rest.
const LISTED: usize = 12;

/// The warnings of `tables` (one per source, in order) over `rules`; `otherwise` holds each source's
/// `otherwise` rule.
pub(crate) fn takeovers(tables: &[&Table], otherwise: &[Option<usize>], rules: &[Arc<Rule>]) -> Vec<Diagnostic> {
    let exact =
        |i: usize| rules.get(i).is_some_and(|r| matches!(r.origin().matcher, Matcher::Code(_) | Matcher::Http(_)));
    let last = Table::merge(tables.iter().copied());
    let mut before = Table::empty();
    let mut warnings = Vec::new();
    for table in tables {
        // (the wide rule, the earlier source's layer) -> the exact rules it takes over
        let mut taken: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (key, rule) in table.entries() {
            if exact(rule) || last.get(key) != Some(rule) {
                continue;
            }
            if let Some(earlier) = before.get(key).filter(|&e| exact(e)) {
                taken.entry((rule, rules[earlier].origin().layer)).or_default().push(earlier);
            }
        }
        for ((rule, _), earlier) in taken {
            warnings.push(taken_over(&rules[rule], earlier.iter().map(|&e| &*rules[e])));
        }
        before = Table::merge([&before, *table].into_iter());
    }
    let mut previous: Option<&Rule> = None;
    for rule in otherwise.iter().flatten().filter_map(|&i| rules.get(i)) {
        if let Some(earlier) = previous {
            let at = earlier.origin().pos.map(|p| format!(" (line {})", p.line)).unwrap_or_default();
            warnings.push(Diagnostic::warning(
                &rule.origin().file,
                rule.origin().pos,
                format!("`otherwise` replaces the `otherwise` of {}{at}", earlier.origin().file),
            ));
        }
        previous = Some(rule);
    }
    warnings
}

fn taken_over<'r>(rule: &Rule, earlier: impl ExactSizeIterator<Item = &'r Rule>) -> Diagnostic {
    let count = earlier.len();
    let mut file: Option<Arc<str>> = None;
    let mut listed: Vec<String> = Vec::new();
    for e in earlier {
        file.get_or_insert_with(|| e.origin().file.clone());
        if listed.len() < LISTED {
            listed.push(e.origin().matcher.to_string());
        }
    }
    let more = count.saturating_sub(listed.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    Diagnostic::warning(
        &rule.origin().file,
        rule.origin().pos,
        format!(
            "`{}` takes over the exact rules {}{more} of {}",
            rule.origin().matcher,
            listed.join(", "),
            file.unwrap_or_else(|| Arc::from("an earlier source"))
        ),
    )
}
