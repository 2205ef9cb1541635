//! `fn decide(f, ctx)`: calling a file's decide function at decision time.

use std::fmt;
use std::sync::Arc;

use rhai::{AST, Dynamic, INT, Module, Scope};

use super::engine;
use crate::context::Context;
use crate::diagnostic::{Diagnostic, Pos};
use crate::failure::{Failure, FailureKey};
use crate::history::{History, Seen};
use crate::policy::{CredentialScope, Policy};
use crate::rules::{Matcher, Origin, Rule};

/// The names the entry script passes to `decide`; a script cannot see them.
const FAILURE_VAR: &str = "remedy_failure__";
const CONTEXT_VAR: &str = "remedy_ctx__";

/// A file's `decide` function, ready to call.
pub(crate) struct DecideFn {
    file: Arc<str>,
    layer: usize,
    pos: Option<Pos>,
    /// `decide(failure, ctx)` with the file's functions, which keep the file's constants.
    entry: AST,
}

impl fmt::Debug for DecideFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecideFn").field("file", &self.file).field("layer", &self.layer).finish()
    }
}

impl DecideFn {
    /// Wraps the module a file's top level produced (its functions encapsulate its constants).
    pub(crate) fn new(file: &Arc<str>, layer: usize, pos: Option<Pos>, module: Module) -> Result<Self, Diagnostic> {
        // Variables, not constants: the optimizer would fold constants' placeholder values into the call.
        let mut scope = Scope::new();
        scope.push(FAILURE_VAR, ());
        scope.push(CONTEXT_VAR, ());
        let call = format!("decide({FAILURE_VAR}, {CONTEXT_VAR})");
        let entry = engine()
            .engine
            .compile_with_scope(&scope, call)
            .map_err(|e| super::parse_error(file, &e))?
            .merge(&AST::new_from_module(module));
        Ok(DecideFn { file: file.clone(), layer, pos, entry })
    }

    /// Calls the function: `Ok(None)` when it returns `()`, falling through to the file's rules.
    pub(crate) fn call(&self, failure: &Failure, history: &History, ctx: &Context) -> Result<Option<Rule>, Diagnostic> {
        let mut scope = Scope::new();
        scope.push_constant(FAILURE_VAR, failure.clone());
        scope.push_constant(
            CONTEXT_VAR,
            ScriptContext { values: ctx.script_values(), history: HistoryView::of(history) },
        );
        let result = engine()
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.entry)
            .map_err(|e| super::runtime_error(&self.file, &e))?;
        if result.is_unit() {
            return Ok(None);
        }
        let type_name = engine().engine.map_type_name(result.type_name()).to_owned();
        let policy = result.try_cast::<Policy>().ok_or_else(|| {
            Diagnostic::error(
                &self.file,
                self.pos,
                format!("decide returned {type_name}; it must return a policy (e.g. retry(..)) or () to fall through"),
            )
        })?;
        let pos = policy.stages().first().and_then(|s| s.pos());
        Ok(Some(Rule::new(
            policy,
            Origin { file: self.file.clone(), layer: self.layer, pos, matcher: Matcher::Decide },
        )))
    }

    /// The file it came from.
    pub(crate) fn file(&self) -> &Arc<str> {
        &self.file
    }
}

/// `ctx` in a decide function: the host's context, read by key (`ctx.plan`, `ctx["plan"]`), and `ctx.history`.
#[derive(Debug, Clone)]
pub(crate) struct ScriptContext {
    values: Arc<rhai::Map>,
    history: HistoryView,
}

impl ScriptContext {
    pub(crate) fn get(&self, key: &str) -> Dynamic {
        self.values.get(key).cloned().unwrap_or(Dynamic::UNIT)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub(crate) fn history(&self) -> HistoryView {
        self.history.clone()
    }
}

impl fmt::Display for ScriptContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.values)
    }
}

/// `ctx.history` in a decide function.
#[derive(Debug, Clone)]
pub(crate) struct HistoryView {
    pub(crate) attempts: INT,
    pub(crate) decisions: INT,
    pub(crate) elapsed_ms: INT,
    pub(crate) streak: INT,
    seen: Vec<Seen>,
    repaired: Vec<CredentialScope>,
}

impl HistoryView {
    fn of(h: &History) -> Self {
        HistoryView {
            attempts: h.attempts().into(),
            decisions: h.decisions().into(),
            elapsed_ms: h.elapsed().as_millis().min(INT::MAX as u128) as INT,
            streak: h.streak().into(),
            seen: h.seen_all().to_vec(),
            repaired: h.repaired_all().to_vec(),
        }
    }

    pub(crate) fn seen_code(&self, code: INT) -> INT {
        u16::try_from(code).map_or(0, |c| self.count(FailureKey::asset(c)))
    }

    pub(crate) fn seen_key(&self, key: &str) -> INT {
        key.parse::<FailureKey>().map_or(0, |k| self.count(k))
    }

    fn count(&self, key: FailureKey) -> INT {
        self.seen.iter().find(|s| s.key == key).map_or(0, |s| s.count.into())
    }

    pub(crate) fn repaired(&self, scope: &str) -> bool {
        scope.parse::<CredentialScope>().is_ok_and(|s| self.repaired.contains(&s))
    }
}
