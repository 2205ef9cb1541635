//! Loading: compile, check, run and lint each source, collecting every diagnostic rather than stopping at the
//! first: a top level that fails at one statement goes on with the next, and every ambiguous pair of rules
//! is named.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{AST, Dynamic, EvalAltResult, Position, Scope, Stmt};

use super::api::{RuleSpec, collecting};
use super::decide_fn::DecideFn;
use super::engine::engine;
use super::errors::{parse_error, runtime_error};
use super::{check, limits, lint, sandbox};
use crate::decide::rules::table::{Conflict, Table};
use crate::decide::rules::{Matcher, Origin, Rule, key_source};
use crate::diagnostic::{Diagnostic, Pos, Severity};

/// One policy source: a name (the file path) and its text, or why it could not be read.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: Arc<str>,
    pub(crate) text: Result<String, String>,
    /// The library's own defaults: bounded like any source, except in time (they are part of the library,
    /// and a slow machine must not make them fail).
    pub(crate) built_in: bool,
}

/// One loaded source.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) table: Table,
    /// Its `otherwise` rule, an index into [`Loaded::rules`].
    pub(crate) otherwise: Option<usize>,
    pub(crate) decide: Option<DecideFn>,
}

/// Every source loaded, in order, with all diagnostics.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) layers: Vec<Layer>,
    pub(crate) rules: Vec<Arc<Rule>>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Loads `sources`, in order; source `i` is layer `i`. Their top levels share `time` of wall time (the
/// built-in defaults aside): a file that starts after it ran out is not run (and says so).
pub(crate) fn load(sources: &[Source], time: Duration) -> Loaded {
    let mut used = Duration::ZERO;
    let mut loaded = Loaded { layers: Vec::new(), rules: Vec::new(), diagnostics: Vec::new() };
    for (layer, source) in sources.iter().enumerate() {
        let left = if source.built_in { Some(Duration::MAX) } else { time.checked_sub(used) };
        let Some(left) = left.filter(|left| !left.is_zero()) else {
            let message = format!(
                "not loaded: the policies' load time limit of {} ms ran out before this file",
                time.as_millis()
            );
            loaded.diagnostics.push(Diagnostic::error(&source.name, None, message));
            continue;
        };
        let started = Instant::now();
        match load_one(layer, source, &mut loaded.rules, left) {
            Ok((layer, warnings)) => {
                loaded.diagnostics.extend(warnings);
                loaded.layers.push(layer);
            }
            Err(errors) => loaded.diagnostics.extend(errors),
        }
        if !source.built_in {
            used += started.elapsed();
        }
    }
    loaded
}

fn load_one(
    layer: usize,
    source: &Source,
    rules: &mut Vec<Arc<Rule>>,
    time: Duration,
) -> Result<(Layer, Vec<Diagnostic>), Vec<Diagnostic>> {
    let file = &source.name;
    let text = source.text.as_ref().map_err(|e| vec![Diagnostic::error(file, None, e.clone())])?;
    // An editor's byte-order mark is not part of the script.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() as u64 > limits::MAX_FILE_SIZE {
        let message =
            format!("the file is {} bytes; policy files are limited to {} bytes", text.len(), limits::MAX_FILE_SIZE);
        return Err(vec![Diagnostic::error(file, None, message)]);
    }
    let engine = &engine().engine;
    let started = Instant::now();
    let compiled =
        sandbox::evaluate(time, || engine.compile(text)).map_err(|panic| vec![Diagnostic::error(file, None, panic)])?;
    let mut ast = compiled.map_err(|e| vec![parse_error(file, &e)])?;
    // What is left of the file's time is its top level's.
    let time = time.saturating_sub(started.elapsed());
    ast.set_source(file.as_ref());
    let checked = check::check(file, text, &ast);
    let mut errors = checked.errors;
    let mut scope = Scope::new();
    let (runs, specs) = if checked.shadows_api {
        (Vec::new(), Vec::new())
    } else {
        let (runs, specs) = collecting(|| sandbox::evaluate(time, || run_top_level(file, text, &ast, &mut scope)));
        (runs.unwrap_or_else(|panic| vec![Diagnostic::error(file, None, panic)]), specs)
    };
    for e in runs {
        // A call the checks already refused fails again when it runs: one report is enough.
        if !errors.iter().any(|known| known.pos.is_some() && known.pos == e.pos) {
            errors.push(e);
        }
    }

    let first = rules.len();
    let source_key = key_source(file);
    rules.extend(specs.into_iter().map(|RuleSpec { matcher, policy, chain, pos }| {
        Arc::new(Rule::shared(policy, chain, Origin { file: file.clone(), layer, pos, matcher }, source_key.clone()))
    }));
    let matchers: Vec<(usize, Matcher)> = (first..rules.len()).map(|i| (i, rules[i].origin().matcher)).collect();
    let (table, conflicts) = Table::for_source(&matchers);
    errors.extend(conflicts.iter().take(limits::MAX_ERRORS).map(|c| ambiguity(file, rules, c)));
    if !errors.is_empty() {
        rules.truncate(first);
        errors.truncate(limits::MAX_ERRORS);
        return Err(errors);
    }
    let otherwise = (first..rules.len()).find(|&i| rules[i].origin().matcher == Matcher::Otherwise);
    let warnings = lint::lint(file, rules, first, &table);
    let decide = ast
        .iter_functions()
        .any(|f| f.name == "decide")
        .then(|| DecideFn::new(file, layer, check::decide_pos(text), &ast, &scope));
    Ok((Layer { table, otherwise, decide }, warnings))
}

fn ambiguity(file: &Arc<str>, rules: &[Arc<Rule>], c: &Conflict) -> Diagnostic {
    let (a, b) = (rules[c.first].origin(), rules[c.second].origin());
    let at = a.pos.map(|p| format!(" (line {})", p.line)).unwrap_or_default();
    Diagnostic::error(
        file,
        b.pos,
        format!(
            "`{}` and `{}`{at} are equally specific and both match {}: which one applies is ambiguous",
            b.matcher, a.matcher, c.key
        ),
    )
}

/// Runs the top level of `ast` once. When a statement fails, the run goes on from the next one, so that every
/// independent error is found; it stops at the operation or time limit, and after an error in a statement
/// that a failed definition's name appears in (that error is the first one's consequence).
fn run_top_level(file: &Arc<str>, text: &str, ast: &AST, scope: &mut Scope) -> Vec<Diagnostic> {
    let engine = &engine().engine;
    let statements = ast.statements();
    let mut errors = Vec::new();
    let mut undefined: Vec<&str> = Vec::new();
    let mut result = engine.run_ast_with_scope(scope, ast);
    // Every run after a failure costs the rest of the file again: a bounded number of them.
    for _ in 0..limits::MAX_ERRORS {
        let Err(e) = result else { return errors };
        let failed = failed_statement(statements, e.position());
        let consequence = failed.is_some_and(|i| mentions(text, statements, i, &undefined));
        if !consequence {
            errors.push(runtime_error(file, &e));
        }
        let fatal = matches!(*e, EvalAltResult::ErrorTooManyOperations(_) | EvalAltResult::ErrorTerminated(..));
        let Some(i) = failed.filter(|_| !fatal) else { return errors };
        if let Stmt::Var(x, ..) = &statements[i] {
            // The statements after it were compiled with this variable in scope: keep its place.
            undefined.push(x.0.name.as_str());
            scope.push_dynamic(x.0.name.as_str(), Dynamic::UNIT);
        }
        if i + 1 >= statements.len() {
            return errors;
        }
        let mut rest = AST::new(statements[i + 1..].iter().cloned(), ast.shared_lib().clone());
        rest.set_source(file.as_ref());
        result = engine.run_ast_with_scope(scope, &rest);
    }
    if let Err(e) = result {
        errors.push(runtime_error(file, &e));
    }
    errors
}

/// The top-level statement an error at `pos` happened in: the last one that starts before it.
fn failed_statement(statements: &[Stmt], pos: Position) -> Option<usize> {
    let at = Pos::from_rhai(pos)?;
    statements.iter().rposition(|s| Pos::from_rhai(s.position()).is_some_and(|start| start <= at))
}

/// Whether statement `i`'s text names one of `names` (as a whole word).
fn mentions(text: &str, statements: &[Stmt], i: usize, names: &[&str]) -> bool {
    if names.is_empty() {
        return false;
    }
    let start = statements.get(i).and_then(|s| offset(text, s.position())).unwrap_or(0);
    let end = statements.get(i + 1).and_then(|s| offset(text, s.position())).unwrap_or(text.len());
    let code = text.get(start..end.max(start)).unwrap_or_default();
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| names.contains(&word))
}

/// The byte offset of a position in `text`.
fn offset(text: &str, pos: Position) -> Option<usize> {
    let Pos { line, column } = Pos::from_rhai(pos)?;
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let line_text = &text[start..];
    let column = line_text.char_indices().nth(column as usize - 1).map_or(line_text.len(), |(i, _)| i);
    Some(start + column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Loaded {
        load(&[Source { name: Arc::from("t.rhai"), text: Ok(text.to_owned()), built_in: false }], limits::LOAD_TIME)
    }

    #[test]
    fn every_independent_error_is_reported() {
        let loaded = load_text(
            "on(2404, retry(#{ attempts: 0 }));\non(2001, fail(\"\"));\nconst T = retry(#{ initial: \"soon\" });\n\
             on(2002, retry(T));\non(2003, fail(\"fine\"));\non(2499..=2400, fail(\"x\"));\n",
        );
        let lines: Vec<u32> = loaded.diagnostics.iter().filter_map(|d| d.pos.map(|p| p.line)).collect();
        assert_eq!(lines, [1, 2, 3, 6], "{:#?}", loaded.diagnostics);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_script() {
        let loaded = load_text("\u{feff}on(2404, fail(\"x\"));");
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.rules[0].origin().pos, Some(Pos { line: 1, column: 1 }));
    }

    #[test]
    fn offsets_follow_lines_and_characters() {
        let text = "ab\nçd ef\n";
        assert_eq!(offset(text, Position::new(2, 4)), Some(7));
        assert_eq!(offset(text, Position::new(1, 1)), Some(0));
    }
}
