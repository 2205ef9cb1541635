//! String functions whose result can outgrow the string limit before Rhai checks it: `replace` with a longer
//! substitute could build megabytes from two short strings. These measure the result first.

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext};

use super::limits;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine
        .register_fn("replace", |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, with: &str| {
            replace(&ctx, s, find, with)
        })
        .register_fn("replace", |ctx: NativeCallContext, s: &mut ImmutableString, find: char, with: &str| {
            replace(&ctx, s, find.encode_utf8(&mut [0; 4]), with)
        });
}

fn replace(ctx: &NativeCallContext, s: &mut ImmutableString, find: &str, with: &str) -> Result<()> {
    let grows = with.len().saturating_sub(find.len());
    if grows > 0 {
        let len = s.len().saturating_add(s.matches(find).count().saturating_mul(grows));
        if len > limits::MAX_STRING_SIZE {
            let message = format!(
                "replace would make a string of {len} bytes; strings are limited to {} bytes",
                limits::MAX_STRING_SIZE
            );
            return Err(EvalAltResult::ErrorRuntime(Dynamic::from(message), ctx.call_position()).into());
        }
    }
    *s = s.replace(find, with).into();
    Ok(())
}
