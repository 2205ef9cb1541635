//! `fn decide(f, ctx)`: calling a file's decide function at decision time.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rhai::{AST, ASTNode, CallFnOptions, Dynamic, Expr, Scope, Stmt};

use super::engine::engine;
use super::errors::runtime_error;
use super::sandbox;
use super::views::HistoryView;
use crate::classify::Failure;
use crate::decide::context::Context;
use crate::decide::history::History;
use crate::decide::policy::Policy;
use crate::decide::rules::{Matcher, Origin, Rule};
use crate::diagnostic::{Diagnostic, Pos};

thread_local! {
    static SCOPE: std::cell::RefCell<Scope<'static>> = std::cell::RefCell::new(Scope::new());
}

/// A file's `decide` function, ready to call.
pub(crate) struct DecideFn {
    file: Arc<str>,
    /// The file's name in rule keys, computed once.
    key_source: Arc<str>,
    layer: usize,
    pos: Option<Pos>,
    /// The file's functions, and for top-level statements only the constants the functions read as
    /// `global::NAME`, with the values the file's one run at load gave them: nothing of the top level runs
    /// again.
    ast: AST,
}

impl fmt::Debug for DecideFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecideFn").field("file", &self.file).field("layer", &self.layer).finish()
    }
}

impl DecideFn {
    /// Prepares the `decide` function of a file compiled into `ast`, whose top level left `scope` behind.
    pub(crate) fn new(file: &Arc<str>, layer: usize, pos: Option<Pos>, ast: &AST, scope: &Scope) -> Self {
        let read = globals_read(ast);
        let constants = ast.statements().iter().filter_map(|s| match s {
            Stmt::Var(x, flags, at) if flags.contains(rhai::ASTFlags::CONSTANT) && read.contains(x.0.name.as_str()) => {
                let value = scope.get(x.0.name.as_str())?.clone();
                let mut var = x.clone();
                var.1 = Expr::DynamicConstant(Box::new(value), *at);
                Some(Stmt::Var(var, *flags, *at))
            }
            _ => None,
        });
        let mut ast = AST::new(constants, ast.shared_lib().clone());
        ast.set_source(file.as_ref());
        DecideFn { file: file.clone(), key_source: crate::decide::rules::key_source(file), layer, pos, ast }
    }

    /// Calls the function within `limit` of wall time: `Ok(None)` when it returns `()`, falling through to
    /// the file's rules.
    pub(crate) fn call(
        &self,
        failure: &Failure,
        history: &History,
        ctx: &Context,
        limit: Duration,
    ) -> Result<Option<Rule>, Diagnostic> {
        // `ctx` is a plain object map (fast property access), a copy so that a script cannot change the host's;
        // its `history` entry is there already, waiting for the job's.
        let mut values = ctx.script_values().as_ref().clone();
        let history = Dynamic::from(HistoryView::of(history));
        match values.get_mut("history") {
            Some(slot) => *slot = history,
            None => drop(values.insert("history".into(), history)),
        }
        let ctx = Dynamic::from_map(values);
        let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
        let result = sandbox::evaluate(limit, || {
            SCOPE.with(|scope| {
                // One scope a thread, emptied after each call (`rewind_scope`): no allocation per decision.
                let mut scope = scope.borrow_mut();
                scope.clear();
                engine().engine.call_fn_with_options::<Dynamic>(
                    options,
                    &mut scope,
                    &self.ast,
                    "decide",
                    (failure.clone(), ctx),
                )
            })
        })
        .map_err(|panic| Diagnostic::error(&self.file, self.pos, panic))?
        .map_err(|e| {
            // Rhai does not place every error inside a function (e.g. running out of operations); the
            // function itself is then the best position there is.
            let mut d = runtime_error(&self.file, &e);
            d.pos = d.pos.or(self.pos);
            d
        })?;
        if result.is_unit() {
            return Ok(None);
        }
        if !result.is::<Policy>() {
            let type_name = engine().engine.map_type_name(result.type_name());
            return Err(Diagnostic::error(
                &self.file,
                self.pos,
                format!("decide returned {type_name}; it must return a policy (e.g. retry(..)) or () to fall through"),
            ));
        }
        let policy = result.cast::<Policy>();
        let pos = policy.stages().first().and_then(|s| s.pos());
        let origin = Origin { file: self.file.clone(), layer: self.layer, pos, matcher: Matcher::Decide };
        Ok(Some(Rule::decided(policy, origin, self.key_source.clone())))
    }

    /// The file it came from.
    pub(crate) fn file(&self) -> &Arc<str> {
        &self.file
    }
}

/// The names the file's functions read as `global::NAME`.
fn globals_read(ast: &AST) -> HashSet<String> {
    let mut names = HashSet::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::Variable(x, ..))) = path.last()
            && !x.2.is_empty()
            && x.2.path.len() == 1
            && x.2.root() == "global"
        {
            names.insert(x.1.to_string());
        }
        true
    });
    names
}
