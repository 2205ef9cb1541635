//! The one Rhai engine every policy set shares, built once: the policy API, only the packages a policy needs,
//! and the sandbox's limits.
//!
//! It starts from Rhai's raw engine, without the core package (`sleep`, `exit`, `parse_json`, reflection),
//! the time package, blobs, bit fields, function pointers or Rhai's own array and map packages (see
//! [`collections`](super::collections)). Scripts get arithmetic, comparisons, maths on numbers, strings,
//! ranges and loops, arrays and maps, and the policy API.

use std::collections::HashSet;
use std::sync::LazyLock;

use rhai::packages::{
    ArithmeticPackage, BasicIteratorPackage, BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage,
    Package,
};
use rhai::{Engine, OptimizationLevel, def_package};

use super::{api, collections, limits, sandbox, strings};

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

def_package! {
    /// The packages a policy needs, in one module (a function is looked up in the engine's own functions,
    /// then here).
    PolicyPackage(lib):
        ArithmeticPackage,
        LogicPackage,
        BasicMathPackage,
        BasicStringPackage,
        MoreStringPackage,
        BasicIteratorPackage
    {
        // Nothing of its own: its functions are those of the packages above.
        let _ = lib;
    }
}

/// Words the evaluator handles itself that policies may use.
const KEYWORDS: [&str; 5] = ["print", "debug", "type_of", "is_def_var", "is_def_fn"];

impl ScriptEngine {
    fn build() -> Self {
        let mut engine = Engine::new_raw();
        engine.register_global_module(PolicyPackage::new().as_shared_module());
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
            // Rhai's optimizer is not bounded by the sandbox (a long `switch` costs it quadratic time), and a
            // policy gains next to nothing from it.
            .set_optimization_level(OptimizationLevel::None)
            .disable_symbol("eval")
            // Function pointers: with closures (refused at load) they could hold values the size limits
            // do not see.
            .disable_symbol("Fn")
            .disable_symbol("curry")
            .disable_symbol("call");
        engine.on_progress(sandbox::progress);
        #[allow(deprecated, reason = "`on_parse_token` is marked volatile, not deprecated")]
        engine.on_parse_token(|token, _, _| match sandbox::token_read() {
            None => token,
            Some(message) => rhai::Token::LexError(Box::new(rhai::LexError::Runtime(message))),
        });
        #[allow(deprecated, reason = "`on_var` is marked volatile, not deprecated")]
        engine.on_var(|_, _, ctx| {
            sandbox::variable_read(ctx.scope())
                .map(|()| None)
                .map_err(|what| rhai::EvalAltResult::ErrorDataTooLarge(what, rhai::Position::NONE).into())
        });
        engine.on_print(sandbox::print);
        engine.on_debug(sandbox::debug);
        // Registered last: a function registered on the engine itself is found before a package's.
        collections::register(&mut engine);
        strings::register(&mut engine);
        api::register(&mut engine);
        let mut known: HashSet<String> =
            engine.collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true).into_iter().collect();
        known.extend(KEYWORDS.map(String::from));
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
