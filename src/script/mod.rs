//! The Rhai policy language: one sandboxed engine, built once and shared.
//!
//! Scripts cannot reach files, the network or the clock; `eval` and `import` are disabled; operations, call
//! depth, expression depth and the sizes of strings, arrays and maps are limited, so a hostile script fails
//! fast with an error that names file:line:column. `print` and `debug` go to `tracing`.

mod api;
mod check;
mod decide_fn;
mod lint;
pub(crate) mod loader;
mod options;

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use rhai::{Engine, EvalAltResult, OptimizationLevel, ParseError, Position};

pub(crate) use decide_fn::DecideFn;

use crate::diagnostic::{Diagnostic, Pos};

/// Sandbox limits. Generous for policy files (the defaults need a few thousand operations), tight for loops.
pub(crate) mod limits {
    /// Operations per run of a file's top level or of one `decide` call.
    pub(crate) const MAX_OPERATIONS: u64 = 200_000;
    /// Nested function calls.
    pub(crate) const MAX_CALL_LEVELS: usize = 32;
    /// Expression nesting at top level and inside functions.
    pub(crate) const MAX_EXPR_DEPTH: (usize, usize) = (64, 32);
    /// Bytes in one string.
    pub(crate) const MAX_STRING_SIZE: usize = 16 * 1024;
    /// Elements in one array.
    pub(crate) const MAX_ARRAY_SIZE: usize = 10_000;
    /// Entries in one map.
    pub(crate) const MAX_MAP_SIZE: usize = 1_000;
    /// Variables in scope.
    pub(crate) const MAX_VARIABLES: usize = 512;
    /// Functions defined by one file.
    pub(crate) const MAX_FUNCTIONS: usize = 256;
    /// Bytes in one policy file.
    pub(crate) const MAX_FILE_SIZE: usize = 1024 * 1024;
}

/// The shared engine, with the names of every function it knows (for the load-time check of calls).
pub(crate) struct ScriptEngine {
    pub(crate) engine: Engine,
    known: HashSet<String>,
}

static ENGINE: LazyLock<ScriptEngine> = LazyLock::new(ScriptEngine::build);

/// The engine every policy set shares.
pub(crate) fn engine() -> &'static ScriptEngine {
    &ENGINE
}

impl ScriptEngine {
    fn build() -> Self {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits::MAX_OPERATIONS)
            .set_max_call_levels(limits::MAX_CALL_LEVELS)
            .set_max_expr_depths(limits::MAX_EXPR_DEPTH.0, limits::MAX_EXPR_DEPTH.1)
            .set_max_string_size(limits::MAX_STRING_SIZE)
            .set_max_array_size(limits::MAX_ARRAY_SIZE)
            .set_max_map_size(limits::MAX_MAP_SIZE)
            .set_max_variables(limits::MAX_VARIABLES)
            .set_max_functions(limits::MAX_FUNCTIONS)
            .set_max_modules(0)
            .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
            .set_strict_variables(true)
            .set_optimization_level(OptimizationLevel::Simple)
            .disable_symbol("eval");
        engine.on_print(|text| tracing::info!(target: "lightflow_remedy::script", "{text}"));
        engine.on_debug(|text, source, pos| {
            tracing::debug!(target: "lightflow_remedy::script", source = source.unwrap_or("?"), %pos, "{text}")
        });
        api::register(&mut engine);
        let mut known: HashSet<String> =
            engine.collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true).into_iter().collect();
        // Keywords the evaluator handles itself.
        known.extend(
            ["print", "debug", "type_of", "Fn", "call", "curry", "is_def_var", "is_def_fn", "is_shared"]
                .map(String::from),
        );
        ScriptEngine { engine, known }
    }

    /// Whether `name` is a function the engine knows (not counting functions a script defines).
    pub(crate) fn knows(&self, name: &str) -> bool {
        self.known.contains(name)
    }

    /// Every action and builder the language has, for suggestions of a misspelt name.
    pub(crate) fn api_names(&self) -> impl Iterator<Item = &str> {
        api::ACTIONS.iter().chain(api::BUILDERS).copied()
    }
}

/// ` (did you mean `x`?)` when one of `candidates` is close to `word`, else nothing.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= 2 && d < c.len())
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

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
