//! Context: the host's metadata for an asset, as a JSON object.
//!
//! Free-form; the conventional keys are `tenant`, `plan`, and `asset` (the asset's parameters, such as `"4k"`
//! and `reference_id`). A `decide` function sees it as `ctx`: `ctx.plan`, `ctx.asset["4k"]`, with strings cut
//! to the sandbox's 4 KiB and values nested deeper than 16 levels read as `()`.
//!
//! ```
//! use lightflow_remedy::Context;
//! use serde_json::json;
//!
//! let ctx = Context::from_json(r#"{"tenant": "acme", "asset": {"4k": true}}"#)?
//!     .with("plan", "trial");
//! assert_eq!(ctx.get("plan"), Some(&json!("trial")));
//! assert!(Context::from_json("[1, 2]").is_err());
//! # Ok::<(), lightflow_remedy::decide::ContextError>(())
//! ```

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::script::script_value;

/// What was wrong with a context document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The text is not JSON.
    #[error("context: malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The JSON is not an object.
    #[error("context: expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found.
        found: String,
    },
}

/// The host's metadata for one asset.
///
/// Shared, not copied, when cloned: a running job holds one, and a fleet holds a hundred thousand jobs.
#[derive(Default, Clone)]
pub struct Context {
    /// `None` for an empty context, so that the usual job carries no allocation.
    shared: Option<Arc<Values>>,
}

#[derive(Default, Clone)]
struct Values {
    values: Map<String, Value>,
    /// The same values as Rhai sees them, converted on first use by a `decide` function.
    script: OnceLock<Arc<rhai::Map>>,
}

/// What an empty context reads as.
static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// A context from a JSON object's text.
    pub fn from_json(text: &str) -> Result<Self, ContextError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ContextError::MalformedJson {
            line: e.line(),
            column: e.column(),
            message: crate::diagnostic::json_message(&e),
        })?;
        match value {
            Value::Object(values) => Ok(Context::from(values)),
            other => Err(ContextError::NotAnObject { found: other.to_string().chars().take(40).collect() }),
        }
    }

    /// The same context with `key` set to `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let shared = Arc::make_mut(self.shared.get_or_insert_default());
        shared.values.insert(key.into(), value.into());
        shared.script = OnceLock::new();
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().get(key)
    }

    /// All values.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.shared.as_ref().map_or(&EMPTY, |s| &s.values)
    }

    /// The values as a Rhai map, converted once (see [`script_value`] for the bounds), with a `history` entry
    /// for a `decide` call to fill (a host value of that name is shadowed).
    pub(crate) fn script_values(&self) -> Arc<rhai::Map> {
        static EMPTY_SCRIPT: LazyLock<Arc<rhai::Map>> =
            LazyLock::new(|| Arc::new([("history".into(), rhai::Dynamic::UNIT)].into_iter().collect()));
        let Some(shared) = &self.shared else { return EMPTY_SCRIPT.clone() };
        shared
            .script
            .get_or_init(|| {
                let values = shared.values.iter().map(|(k, v)| (k.as_str().into(), script_value(v)));
                Arc::new(values.chain([("history".into(), rhai::Dynamic::UNIT)]).collect())
            })
            .clone()
    }
}

impl From<Map<String, Value>> for Context {
    fn from(values: Map<String, Value>) -> Self {
        let shared = (!values.is_empty()).then(|| Arc::new(Values { values, script: OnceLock::new() }));
        Context { shared }
    }
}

impl PartialEq for Context {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Context").field(self.as_map()).finish()
    }
}

impl Serialize for Context {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Context::from)
    }
}
