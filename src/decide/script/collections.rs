//! Arrays and maps as policy scripts use them: length, membership, equality, joining, keys and values, and
//! their text. Written here rather than taken from Rhai's array and map packages, whose equality, membership
//! and formatting call back into the engine once per nesting level (tens of kilobytes of stack per level in a
//! debug build) and clone the value searched for once per item.
//!
//! What is here walks values in Rust, never deeper than a value can nest ([`limits::MAX_DEPTH`]), compares
//! without cloning, and cuts text at the string limit, so each call costs at most linear time in the sizes
//! the sandbox allows.

use std::fmt::Write as _;

use rhai::{Array, Dynamic, Engine, FLOAT, INT, ImmutableString, Map, NativeCallContext};

use super::limits;

pub(super) fn register(engine: &mut Engine) {
    engine.register_iterator::<Array>();
    engine
        .register_fn("len", |a: &mut Array| a.len() as INT)
        .register_get("len", |a: &mut Array| a.len() as INT)
        .register_fn("is_empty", |a: &mut Array| a.is_empty())
        .register_get("is_empty", |a: &mut Array| a.is_empty())
        .register_fn("contains", |ctx: NativeCallContext, a: &mut Array, item: Dynamic| {
            a.iter().any(|x| equal(&ctx, x, &item, 0))
        })
        .register_fn("index_of", |ctx: NativeCallContext, a: &mut Array, item: Dynamic| {
            a.iter().position(|x| equal(&ctx, x, &item, 0)).map_or(-1, |i| i as INT)
        })
        .register_fn("push", |a: &mut Array, item: Dynamic| a.push(item))
        .register_fn("+", |mut a: Array, b: Array| {
            a.extend(b);
            a
        })
        .register_fn("==", |ctx: NativeCallContext, a: &mut Array, b: Array| arrays_equal(&ctx, a, &b, 0))
        .register_fn("!=", |ctx: NativeCallContext, a: &mut Array, b: Array| !arrays_equal(&ctx, a, &b, 0));
    engine
        .register_fn("len", |m: &mut Map| m.len() as INT)
        .register_get("len", |m: &mut Map| m.len() as INT)
        .register_fn("is_empty", |m: &mut Map| m.is_empty())
        .register_get("is_empty", |m: &mut Map| m.is_empty())
        .register_fn("contains", |m: &mut Map, key: ImmutableString| m.contains_key(key.as_str()))
        .register_fn("get", |m: &mut Map, key: ImmutableString| m.get(key.as_str()).cloned().unwrap_or_default())
        .register_fn("keys", |m: &mut Map| m.keys().map(|k| Dynamic::from(k.clone())).collect::<Array>())
        .register_fn("values", |m: &mut Map| m.values().cloned().collect::<Array>())
        .register_fn("+", |mut a: Map, b: Map| {
            a.extend(b);
            a
        })
        .register_fn("==", |ctx: NativeCallContext, a: &mut Map, b: Map| maps_equal(&ctx, a, &b, 0))
        .register_fn("!=", |ctx: NativeCallContext, a: &mut Map, b: Map| !maps_equal(&ctx, a, &b, 0));
    for name in ["print", "to_string", "debug", "to_debug"] {
        engine
            .register_fn(name, |ctx: NativeCallContext, a: &mut Array| {
                let mut out = String::new();
                write_array(Some(&ctx), a, &mut out, 0);
                cut(out)
            })
            .register_fn(name, |ctx: NativeCallContext, m: &mut Map| {
                let mut out = String::new();
                write_map(Some(&ctx), m, &mut out, 0);
                cut(out)
            });
    }
}

fn arrays_equal(ctx: &NativeCallContext, a: &Array, b: &Array, depth: usize) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(ctx, x, y, depth + 1))
}

fn maps_equal(ctx: &NativeCallContext, a: &Map, b: &Map, depth: usize) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, x), (kb, y))| ka == kb && equal(ctx, x, y, depth + 1))
}

/// Whether two values are equal, as `==` says for them; containers are compared item by item, here.
fn equal(ctx: &NativeCallContext, x: &Dynamic, y: &Dynamic, depth: usize) -> bool {
    if depth > limits::MAX_DEPTH {
        // Deeper than any value can be built: not compared (and not equal).
        return false;
    }
    if let (Ok(a), Ok(b)) = (x.as_array_ref(), y.as_array_ref()) {
        return arrays_equal(ctx, &a, &b, depth);
    }
    if let (Ok(a), Ok(b)) = (x.as_map_ref(), y.as_map_ref()) {
        return maps_equal(ctx, &a, &b, depth);
    }
    if x.is_array() || x.is_map() || y.is_array() || y.is_map() {
        return false;
    }
    if let (Ok(a), Ok(b)) = (x.as_int(), y.as_int()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (number(x), number(y)) {
        return a == b;
    }
    if let (Ok(a), Ok(b)) = (x.as_immutable_string_ref(), y.as_immutable_string_ref()) {
        return *a == *b;
    }
    if x.type_id() != y.type_id() {
        return false;
    }
    // The same scalar or host type on both sides: its own `==`, if it has one (it holds no script values).
    let (mut a, mut b) = (x.clone(), y.clone());
    ctx.call_native_fn_raw("==", false, &mut [&mut a, &mut b]).ok().and_then(|r| r.as_bool().ok()).unwrap_or(false)
}

fn number(x: &Dynamic) -> Option<FLOAT> {
    x.as_float().ok().or_else(|| x.as_int().ok().map(|i| i as FLOAT))
}

/// A value as text without an engine at hand (e.g. a value thrown by a script, in an error message), as
/// `print` shows it but with host types shown by their type name; at most the string limit long.
pub(crate) fn plain_text(value: &Dynamic) -> String {
    if let Ok(s) = value.as_immutable_string_ref() {
        return s.to_string();
    }
    let mut out = String::new();
    write_value(None, value, &mut out, 0);
    cut(out)
}

fn cut(mut out: String) -> String {
    if out.len() > limits::MAX_STRING_SIZE {
        let mut end = limits::MAX_STRING_SIZE - '…'.len_utf8();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

fn write_array(ctx: Option<&NativeCallContext>, a: &Array, out: &mut String, depth: usize) {
    out.push('[');
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(ctx, item, out, depth + 1);
    }
    out.push(']');
}

fn write_map(ctx: Option<&NativeCallContext>, m: &Map, out: &mut String, depth: usize) {
    out.push_str("#{");
    for (i, (key, item)) in m.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{:?}: ", key.as_str());
        write_value(ctx, item, out, depth + 1);
    }
    out.push('}');
}

fn write_value(ctx: Option<&NativeCallContext>, value: &Dynamic, out: &mut String, depth: usize) {
    if out.len() > limits::MAX_STRING_SIZE {
        return;
    }
    if depth > limits::MAX_DEPTH {
        out.push('…');
        return;
    }
    if let Ok(a) = value.as_array_ref() {
        return write_array(ctx, &a, out, depth);
    }
    if let Ok(m) = value.as_map_ref() {
        return write_map(ctx, &m, out, depth);
    }
    if value.is_variant() {
        // A host type (a policy, a failure): its own `to_debug`.
        let shown = ctx.and_then(|ctx| {
            let mut v = value.clone();
            ctx.call_native_fn_raw("to_debug", true, &mut [&mut v]).ok().and_then(|r| r.into_string().ok())
        });
        match shown {
            Some(s) => out.push_str(&s),
            None => out.push_str(value.type_name()),
        }
        return;
    }
    // Scalars (and strings, quoted) as Rhai's debug format shows them.
    let _ = write!(out, "{value:?}");
}
