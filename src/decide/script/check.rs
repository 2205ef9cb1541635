//! Load-time checks of a compiled file, before it runs: functions named like the policy API, closures, the
//! arity of `decide`, unknown functions and actions anywhere (inside `decide` too), and unknown option names
//! in literal option maps.

use std::collections::HashSet;
use std::sync::Arc;

use rhai::{AST, ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::engine::engine;
use super::suggest::{did_you_mean, quoted};
use super::{api, limits, options};
use crate::diagnostic::{Diagnostic, Pos};

/// What the checks found.
pub(crate) struct Checked {
    pub(crate) errors: Vec<Diagnostic>,
    /// Whether the file redefines the policy API: running it would not mean what it says.
    pub(crate) shadows_api: bool,
}

/// Errors found in `ast` (compiled from `text`) without running it, at most [`limits::MAX_ERRORS`].
pub(crate) fn check(file: &Arc<str>, text: &str, ast: &AST) -> Checked {
    let mut errors = Vec::new();
    let defined: HashSet<&str> = ast.iter_functions().map(|f| f.name).collect();
    let mut shadows_api = false;
    for name in defined.iter().copied().filter(|n| api::ACTIONS.contains(n) || api::BUILDERS.contains(n)) {
        shadows_api = true;
        errors.push(Diagnostic::error(
            file,
            fn_pos(text, name),
            format!("`fn {name}` would hide the policy API's `{name}`: give the function another name"),
        ));
    }
    for f in ast.iter_functions().filter(|f| f.name == "decide" && f.params.len() != 2) {
        errors.push(Diagnostic::error(
            file,
            fn_pos(text, "decide"),
            format!("`decide` takes two parameters, (failure, ctx); this one takes {}", f.params.len()),
        ));
    }
    ast.walk(&mut |path: &[ASTNode]| {
        if errors.len() >= limits::MAX_ERRORS {
            return false;
        }
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos) | Expr::MethodCall(x, pos))) => {
                check_call(file, x, *pos, &defined, &mut errors)
            }
            Some(ASTNode::Stmt(Stmt::FnCall(x, pos))) => check_call(file, x, *pos, &defined, &mut errors),
            Some(ASTNode::Expr(Expr::DynamicConstant(value, pos))) if value.is_fnptr() => {
                errors.push(Diagnostic::error(
                    file,
                    Pos::from_rhai(*pos),
                    "closures are not available in policy scripts: write a named function instead",
                ));
            }
            _ => {}
        }
        true
    });
    errors.truncate(limits::MAX_ERRORS);
    Checked { errors, shadows_api }
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
    // `curry` calls the parser makes for a closure are reported as the closure.
    if call.is_operator_call() || call.is_qualified() || !is_identifier || name == "curry" {
        return;
    }
    if !engine().knows(name) && !defined.contains(name) {
        let candidates = engine().api_names().chain(defined.iter().copied());
        errors.push(Diagnostic::error(
            file,
            Pos::from_rhai(pos),
            format!("unknown function or action {}{}", quoted(name), did_you_mean(name, candidates)),
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
                format!("unknown option {} for {name}{}", quoted(&key), did_you_mean(&key, known)),
            ));
        }
    }
}

/// Where `fn decide` is written.
pub(crate) fn decide_pos(text: &str) -> Option<Pos> {
    fn_pos(text, "decide")
}

/// Where `fn name(` is first written outside a line comment (the compiled file does not keep it).
fn fn_pos(text: &str, name: &str) -> Option<Pos> {
    text.lines().enumerate().find_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or_default();
        code.match_indices("fn").find_map(|(at, _)| {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return None;
            }
            let rest = &code[at + 2..];
            let after = rest.trim_start();
            if after.len() == rest.len() {
                return None;
            }
            let tail = after.strip_prefix(name)?;
            tail.trim_start().starts_with('(').then(|| Pos { line: i as u32 + 1, column: at as u32 + 1 })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_found_where_written() {
        let text = "// fn decide(a, b) is below\nfn decide_helper(x) { x }\n  private fn decide (f) { () }";
        assert_eq!(decide_pos(text), Some(Pos { line: 3, column: 11 }));
        assert_eq!(fn_pos("on(1, x); fn on(a, b) {}", "on"), Some(Pos { line: 1, column: 11 }));
        assert_eq!(fn_pos("let nfn = 1; fnx on()", "on"), None);
    }
}
