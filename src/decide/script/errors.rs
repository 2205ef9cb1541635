//! Rhai's errors as diagnostics that name file:line:column, in words an operator reads.

use std::sync::Arc;

use rhai::{EvalAltResult, ParseError, Position};

use super::engine::engine;
use super::suggest::did_you_mean;
use super::{api, limits};
use crate::diagnostic::{Diagnostic, Pos};

/// A Rhai runtime error as a diagnostic of `file`.
pub(crate) fn runtime_error(file: &Arc<str>, err: &EvalAltResult) -> Diagnostic {
    let (message, pos) = describe(err, Position::NONE);
    Diagnostic::error(file, Pos::from_rhai(pos), message)
}

/// A Rhai parse error as a diagnostic of `file`.
pub(crate) fn parse_error(file: &Arc<str>, err: &ParseError) -> Diagnostic {
    let message = match err.err_type() {
        rhai::ParseErrorType::Reserved(word) if word.contains("eval") => {
            "`eval` is disabled in policy scripts".to_owned()
        }
        other => other.to_string(),
    };
    Diagnostic::error(file, Pos::from_rhai(err.position()), message)
}

/// A readable message for a runtime error, and the innermost position that has one.
fn describe(err: &EvalAltResult, outer: Position) -> (String, Position) {
    use EvalAltResult as E;
    let pos = if err.position().is_none() { outer } else { err.position() };
    let message = match err {
        E::ErrorInFunctionCall(name, _, inner, _) => {
            let (inner_message, inner_pos) = describe(inner, pos);
            let message = if name.starts_with("get$") || name.starts_with("set$") {
                inner_message
            } else {
                format!("in `{name}`: {inner_message}")
            };
            return (message, inner_pos);
        }
        E::ErrorRuntime(value, _) => value.to_string(),
        E::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split([' ', '(']).next().unwrap_or(signature);
            if engine().knows(name) {
                format!("wrong arguments for `{name}`: no `{signature}`; {}", api::usage(name))
            } else {
                format!("unknown function or action `{name}`{}", did_you_mean(name, engine().api_names()))
            }
        }
        E::ErrorTooManyOperations(_) => format!(
            "the script ran past {} operations: an endless loop? (policy scripts must finish quickly)",
            limits::MAX_OPERATIONS
        ),
        E::ErrorStackOverflow(_) => {
            format!("calls nested deeper than {}: unbounded recursion?", limits::MAX_CALL_LEVELS)
        }
        E::ErrorDataTooLarge(what, _) => format!(
            "{what} is too large (limits: strings {} bytes, arrays {} items, maps {} entries)",
            limits::MAX_STRING_SIZE,
            limits::MAX_ARRAY_SIZE,
            limits::MAX_MAP_SIZE
        ),
        E::ErrorVariableNotFound(name, _) => format!("unknown variable `{name}`"),
        E::ErrorModuleNotFound(name, _) => format!("`import` is not available in policy scripts (`{name}`)"),
        E::ErrorTooManyModules(_) => "`import` is not available in policy scripts".to_owned(),
        E::ErrorTooManyVariables(_) => format!("more than {} variables", limits::MAX_VARIABLES),
        other => {
            // Rhai appends " (line L, position C)"; the diagnostic carries the position already.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_owned(),
                _ => text,
            }
        }
    };
    (message, pos)
}
