//! The one Rhai engine every policy set shares, built once with the policy API and the sandbox's limits.

use std::collections::HashSet;
use std::sync::LazyLock;

use rhai::{Engine, OptimizationLevel};

use super::{api, limits};

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
