//! Loading: compile, check, run and lint each source, collecting every diagnostic rather than stopping at the
//! first.

use std::sync::Arc;

use rhai::Scope;

use super::api::{RuleSpec, collecting};
use super::decide_fn::DecideFn;
use super::engine::engine;
use super::errors::{parse_error, runtime_error};
use super::{check, limits, lint};
use crate::decide::rules::table::Table;
use crate::decide::rules::{Matcher, Origin, Rule};
use crate::diagnostic::{Diagnostic, Severity};

/// One policy source: a name (the file path) and its text, or why it could not be read.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: Arc<str>,
    pub(crate) text: Result<String, String>,
}

/// One loaded source.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) table: Table,
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

/// Loads `sources`, in order; source `i` is layer `i`.
pub(crate) fn load(sources: &[Source]) -> Loaded {
    let mut loaded = Loaded { layers: Vec::new(), rules: Vec::new(), diagnostics: Vec::new() };
    for (layer, source) in sources.iter().enumerate() {
        match load_one(layer, source, &mut loaded.rules) {
            Ok((table, decide, warnings)) => {
                loaded.diagnostics.extend(warnings);
                loaded.layers.push(Layer { table, decide });
            }
            Err(errors) => loaded.diagnostics.extend(errors),
        }
    }
    loaded
}

type LoadedSource = (Table, Option<DecideFn>, Vec<Diagnostic>);

fn load_one(layer: usize, source: &Source, rules: &mut Vec<Arc<Rule>>) -> Result<LoadedSource, Vec<Diagnostic>> {
    let file = &source.name;
    let text = source.text.as_ref().map_err(|e| vec![Diagnostic::error(file, None, e.clone())])?;
    if text.len() > limits::MAX_FILE_SIZE {
        return Err(vec![Diagnostic::error(
            file,
            None,
            format!("the file is {} bytes; policy files are limited to {} bytes", text.len(), limits::MAX_FILE_SIZE),
        )]);
    }
    let engine = engine();
    let mut ast = engine.engine.compile(text).map_err(|e| vec![parse_error(file, &e)])?;
    ast.set_source(file.as_ref());
    let errors = check::check(file, text, &ast);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (run, specs) = collecting(|| engine.engine.run_ast_with_scope(&mut Scope::new(), &ast));
    run.map_err(|e| vec![runtime_error(file, &e)])?;
    let decide = ast
        .iter_functions()
        .any(|f| f.name == "decide")
        .then(|| DecideFn::new(file, layer, check::decide_pos(text), &ast));

    let first = rules.len();
    let matchers: Vec<(usize, Matcher)> = specs.iter().enumerate().map(|(i, s)| (first + i, s.matcher)).collect();
    rules.extend(specs.into_iter().map(|RuleSpec { matcher, policy, pos }| {
        Arc::new(Rule::new(policy, Origin { file: file.clone(), layer, pos, matcher }))
    }));
    let table = Table::for_source(&matchers).map_err(|c| {
        let (a, b) = (rules[c.first].origin(), rules[c.second].origin());
        let at = a.pos.map(|p| format!(" (line {})", p.line)).unwrap_or_default();
        vec![Diagnostic::error(
            file,
            b.pos,
            format!(
                "`{}` and `{}`{at} are equally specific and both match {}: which one applies is ambiguous",
                b.matcher, a.matcher, c.key
            ),
        )]
    });
    let table = match table {
        Ok(table) => table,
        Err(errors) => {
            rules.truncate(first);
            return Err(errors);
        }
    };
    let warnings = lint::lint(file, rules, first, &table);
    Ok((table, decide, warnings))
}
