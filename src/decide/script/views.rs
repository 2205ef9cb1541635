//! What scripts see of a failure (`f`), of the host's context (`ctx`) and of the job's history
//! (`ctx.history`).

use rhai::{Dynamic, Engine, INT, ImmutableString};
use serde_json::Value;
use smallvec::SmallVec;

use super::{limits, sandbox};
use crate::classify::{Failure, FailureKey};
use crate::decide::action::CredentialScope;
use crate::decide::history::{History, Seen};

fn opt_int(value: Option<u16>) -> Dynamic {
    value.map_or(Dynamic::UNIT, |v| Dynamic::from(v as INT))
}

pub(super) fn register_views(engine: &mut Engine) {
    engine
        .register_type_with_name::<Failure>("Failure")
        .register_get("code", |f: &mut Failure| f.code() as INT)
        // A long message is cut to the string limit, so that reading it never fails.
        .register_get("message", |f: &mut Failure| {
            sandbox::cut(f.message(), limits::MAX_STRING_SIZE - '…'.len_utf8()).into_owned()
        })
        .register_get("kind", |f: &mut Failure| match f.kind() {
            crate::FailureKind::Asset => "asset",
            crate::FailureKind::Api => "api",
            crate::FailureKind::Timeout => "timeout",
        })
        .register_get("key", |f: &mut Failure| f.key().to_string())
        .register_get("category", |f: &mut Failure| f.category().as_str())
        .register_get("downstream", |f: &mut Failure| f.downstream().as_str())
        .register_get("name", |f: &mut Failure| f.name().into_owned())
        .register_get("http_status", |f: &mut Failure| opt_int(f.http_status()))
        .register_get("retry_after_ms", |f: &mut Failure| {
            f.retry_after().map_or(Dynamic::UNIT, |d| Dynamic::from(d.as_millis().min(INT::MAX as u128) as INT))
        })
        .register_fn("to_string", |f: &mut Failure| f.to_string())
        .register_fn("to_debug", |f: &mut Failure| f.to_string());

    // `ctx` is an object map: reading a key it does not have gives (), and so does indexing into that, so
    // that `ctx.asset["4k"] == true` is simply false for an asset without parameters.
    engine.register_indexer_get(|_: &mut (), _: ImmutableString| Dynamic::UNIT);

    engine
        .register_type_with_name::<HistoryView>("History")
        .register_get("attempts", |h: &mut HistoryView| h.attempts)
        .register_get("decisions", |h: &mut HistoryView| h.decisions)
        .register_get("elapsed_ms", |h: &mut HistoryView| h.elapsed_ms)
        .register_get("streak", |h: &mut HistoryView| h.streak)
        .register_fn("seen", |h: &mut HistoryView, code: INT| h.seen_code(code))
        .register_fn("seen", |h: &mut HistoryView, key: ImmutableString| h.seen_key(&key))
        .register_fn("repaired", |h: &mut HistoryView, scope: ImmutableString| h.repaired(&scope))
        .register_fn("to_string", |h: &mut HistoryView| format!("{h:?}"))
        .register_fn("to_debug", |h: &mut HistoryView| format!("{h:?}"));
}

/// How deep a context value is converted; deeper values read as `()`.
const MAX_CONTEXT_DEPTH: usize = 16;

/// A context value as scripts see it: strings cut to the string limit, nesting cut at
/// [`MAX_CONTEXT_DEPTH`] (the host's JSON may nest deeper than any script value can).
pub(crate) fn script_value(value: &Value) -> Dynamic {
    convert(value, 0)
}

fn convert(value: &Value, depth: usize) -> Dynamic {
    if depth > MAX_CONTEXT_DEPTH {
        return Dynamic::UNIT;
    }
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => n.as_f64().map_or(Dynamic::UNIT, Dynamic::from_float),
        },
        Value::String(s) => Dynamic::from(sandbox::cut(s, limits::MAX_STRING_SIZE - '…'.len_utf8()).into_owned()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(|v| convert(v, depth + 1)).collect()),
        Value::Object(map) => {
            Dynamic::from_map(map.iter().map(|(k, v)| (k.as_str().into(), convert(v, depth + 1))).collect())
        }
    }
}

/// `ctx.history` in a decide function.
#[derive(Debug, Clone)]
pub(crate) struct HistoryView {
    pub(crate) attempts: INT,
    pub(crate) decisions: INT,
    pub(crate) elapsed_ms: INT,
    pub(crate) streak: INT,
    // Inline copies: no allocation for the usual one or two codes.
    seen: SmallVec<[Seen; 2]>,
    repaired: SmallVec<[CredentialScope; 2]>,
}

impl HistoryView {
    pub(super) fn of(h: &History) -> Self {
        HistoryView {
            attempts: h.attempts().into(),
            decisions: h.decisions().into(),
            elapsed_ms: h.elapsed().as_millis().min(INT::MAX as u128) as INT,
            streak: h.streak().into(),
            seen: SmallVec::from_slice(h.seen_all()),
            repaired: h.repaired_all().collect(),
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
