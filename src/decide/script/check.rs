//! Load-time checks of a compiled file, before it runs: unknown functions and actions anywhere (inside
//! `decide` too), unknown option names in literal option maps, and the arity of `decide`.

use std::collections::HashSet;
use std::sync::Arc;

use rhai::{AST, ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::engine::engine;
use super::suggest::did_you_mean;
use super::{api, options};
use crate::diagnostic::{Diagnostic, Pos};

/// At most this many diagnostics of one kind per file; the rest are repeats.
const MAX_REPORTED: usize = 20;

/// Errors found in `ast` (compiled from `text`) without running it.
pub(crate) fn check(file: &Arc<str>, text: &str, ast: &AST) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let defined: HashSet<&str> = ast.iter_functions().map(|f| f.name).collect();
    for f in ast.iter_functions().filter(|f| f.name == "decide" && f.params.len() != 2) {
        errors.push(Diagnostic::error(
            file,
            decide_pos(text),
            format!("`decide` takes two parameters, (failure, ctx); this one takes {}", f.params.len()),
        ));
    }
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos) | Expr::MethodCall(x, pos))) => Some((&**x, *pos)),
            Some(ASTNode::Stmt(Stmt::FnCall(x, pos))) => Some((&**x, *pos)),
            _ => None,
        };
        if let Some((call, pos)) = call
            && errors.len() < MAX_REPORTED
        {
            check_call(file, call, pos, &defined, &mut errors);
        }
        true
    });
    errors
}

fn check_call(
    file: &Arc<str>,
    call: &FnCallExpr,
    pos: Position,
    defined: &HashSet<&str>,
    errors: &mut Vec<Diagnostic>,
) {
    let name = call.name.as_str();
    let is_identifier = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if call.is_operator_call() || call.is_qualified() || !is_identifier {
        return;
    }
    if !engine().knows(name) && !defined.contains(name) {
        let candidates = engine().api_names().chain(defined.iter().copied());
        errors.push(Diagnostic::error(
            file,
            Pos::from_rhai(pos),
            format!("unknown function or action `{name}`{}", did_you_mean(name, candidates)),
        ));
        return;
    }
    // Literal option maps can be checked before anything runs, even inside `decide`.
    let (options_arg, extra): (usize, &[&str]) = match name {
        "retry" => (0, &[]),
        "resubmit" => (1, &[]),
        "republish" => (1, options::REPUBLISH_OPTIONS),
        _ => return,
    };
    if !api::ACTIONS.contains(&name) || defined.contains(name) {
        return;
    }
    // The optimizer may have folded a literal map into a constant; either way its keys are known now.
    let keys: Vec<(String, Position)> = match call.args.get(options_arg) {
        Some(Expr::Map(map, _)) => map.0.iter().map(|(k, _)| (k.name.to_string(), k.pos)).collect(),
        Some(Expr::DynamicConstant(value, pos)) => match value.read_lock::<rhai::Map>() {
            Some(map) => map.keys().map(|k| (k.to_string(), *pos)).collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    for (key, key_pos) in keys {
        if !options::BACKOFF_OPTIONS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            let known = options::BACKOFF_OPTIONS.iter().chain(extra).copied();
            errors.push(Diagnostic::error(
                file,
                Pos::from_rhai(key_pos),
                format!("unknown option `{key}` for {name}{}", did_you_mean(&key, known)),
            ));
        }
    }
}

/// Where `fn decide` is written.
pub(crate) fn decide_pos(text: &str) -> Option<Pos> {
    text.lines().enumerate().find_map(|(i, line)| {
        // A definition starts its line (comments and names like `decide_x` are not it).
        let code = line.trim_start();
        let rest = code.strip_prefix("private ").unwrap_or(code).strip_prefix("fn")?;
        let name = rest.trim_start().strip_prefix("decide")?;
        if !name.trim_start().starts_with('(') || !rest.starts_with(char::is_whitespace) {
            return None;
        }
        Some(Pos { line: i as u32 + 1, column: (line.len() - code.len()) as u32 + 1 })
    })
}
