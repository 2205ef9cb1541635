//! Rhai's errors as diagnostics that name file:line:column, in words an operator reads.

use std::sync::Arc;

use rhai::{EvalAltResult, ParseError, Position};

use super::engine::engine;
use super::suggest::{did_you_mean, quoted};
use super::{api, collections, limits, sandbox};
use crate::diagnostic::{Diagnostic, Pos};

/// The longest message a diagnostic carries; Rhai's own messages may quote whole names or values.
const MAX_MESSAGE: usize = 512;

/// A Rhai runtime error as a diagnostic of `file`.
pub(crate) fn runtime_error(file: &Arc<str>, err: &EvalAltResult) -> Diagnostic {
    let (message, pos) = describe(err, Position::NONE);
    Diagnostic::error(file, Pos::from_rhai(pos), sandbox::cut(&message, MAX_MESSAGE))
}

/// A Rhai parse error as a diagnostic of `file`.
pub(crate) fn parse_error(file: &Arc<str>, err: &ParseError) -> Diagnostic {
    let disabled = match err.err_type() {
        rhai::ParseErrorType::Reserved(word)
        | rhai::ParseErrorType::BadInput(rhai::LexError::ImproperSymbol(word, _)) => Some(word.as_str()),
        _ => None,
    };
    let message = match disabled {
        Some("eval") => "`eval` is disabled in policy scripts".to_owned(),
        Some(word @ ("Fn" | "curry" | "call")) => {
            format!("`{word}` is not available in policy scripts: function pointers and closures are disabled")
        }
        _ => err.err_type().to_string(),
    };
    Diagnostic::error(file, Pos::from_rhai(err.position()), sandbox::cut(&message, MAX_MESSAGE))
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
        E::ErrorRuntime(value, _) => collections::plain_text(value),
        E::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split([' ', '(']).next().unwrap_or(signature);
            if engine().knows(name) {
                let arguments = signature.get(name.len()..).unwrap_or_default();
                format!("wrong arguments for {}: no {}; {}", quoted(name), quoted(arguments.trim()), api::usage(name))
            } else {
                format!("unknown function or action {}{}", quoted(name), did_you_mean(name, engine().api_names()))
            }
        }
        E::ErrorTerminated(limit, _) => format!(
            "the script ran past its time limit of {} ms (policy scripts must finish quickly)",
            limit.as_int().unwrap_or_default()
        ),
        E::ErrorTooManyOperations(_) => format!(
            "the script ran past {} operations: an endless loop? (policy scripts must finish quickly)",
            limits::MAX_OPERATIONS
        ),
        E::ErrorStackOverflow(_) => {
            format!("calls nested deeper than {}: unbounded recursion?", limits::MAX_CALL_LEVELS)
        }
        E::ErrorDataTooLarge(what, _) if what.starts_with("the script") => what.clone(),
        E::ErrorDataTooLarge(what, _) => format!(
            "{what} is too large (limits: strings {} bytes, arrays {} items, maps {} entries)",
            limits::MAX_STRING_SIZE,
            limits::MAX_ARRAY_SIZE,
            limits::MAX_MAP_SIZE
        ),
        E::ErrorVariableNotFound(name, _) => format!("unknown variable {}", quoted(name)),
        E::ErrorModuleNotFound(name, _) => format!("`import` is not available in policy scripts ({})", quoted(name)),
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
