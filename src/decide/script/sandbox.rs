//! The bounds of one evaluation that Rhai's own limits do not cover: wall time, the memory its values hold
//! together, output printed, and policy built (stages are host values that Rhai's size limits do not see
//! into).
//!
//! Every run of a script (a file's top level at load, one `decide` call) goes through [`evaluate`], which sets
//! the bounds for this thread until it returns. The engine's progress callback reads the clock every few
//! operations and stops the script past its deadline. Rhai checks the size of each value it builds, but a
//! change made through an index or a property (`m[k] = v`, `a[i].push(v)`) is checked for the part changed
//! only, so the variables' values are measured together every few variable reads. The policy API charges
//! what it builds; `print` and `debug` are counted and cut.

use std::borrow::Cow;
use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, INT, Scope};

use super::limits;

/// The bounds of the evaluation running on this thread.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Set when the run first reads the clock (see [`progress`]); `Some(None)` for no deadline.
    deadline: Option<Option<Instant>>,
    limit: Duration,
    lines: usize,
    bytes: usize,
    built: usize,
}

thread_local! {
    static CURRENT: Cell<Option<Bounds>> = const { Cell::new(None) };
    /// Variable reads left before the next measure of what the variables hold; 0 outside an evaluation.
    static READS: Cell<u32> = const { Cell::new(0) };
    /// Tokens parsed on this thread, for the parse's clock.
    static TOKENS: Cell<u32> = const { Cell::new(0) };
}

/// Changes the current evaluation's bounds, if there is one.
fn with_bounds<T>(change: impl FnOnce(&mut Bounds) -> T) -> Option<T> {
    CURRENT.with(|c| {
        let mut bounds = c.get()?;
        let result = change(&mut bounds);
        c.set(Some(bounds));
        Some(result)
    })
}

/// Runs `run` (one evaluation) within `limit` of wall time and the output and build bounds. A panic inside
/// the script engine (a bug of the engine, which no script should be able to reach) ends the evaluation
/// with `Err` and its message, rather than the host's thread.
pub(crate) fn evaluate<T>(limit: Duration, run: impl FnOnce() -> T) -> Result<T, String> {
    struct Restore(Option<Bounds>, u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
            READS.with(|r| r.set(self.1));
        }
    }
    let bounds = Bounds { deadline: None, limit, lines: 0, bytes: 0, built: 0 };
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(bounds))), READS.with(|r| r.replace(limits::MEASURE_EVERY)));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the script engine failed on this script (please report it): {}", cut(&message, 200))
    })
}

/// The engine's progress callback: `Some(token)` stops the script (the token is the time limit in
/// milliseconds, for the error message).
///
/// The clock is read every [`limits::CLOCK_EVERY`] operations, the first time to start it: a run that ends
/// sooner (most `decide` calls) never reads it, and the few operations before are not counted. A run is
/// stopped for time only once it has done [`limits::MIN_TIMED_OPERATIONS`] operations, so that a short run
/// that a busy host merely paused past its deadline is let finish.
#[inline]
pub(crate) fn progress(operations: u64) -> Option<Dynamic> {
    if !operations.is_multiple_of(limits::CLOCK_EVERY) {
        return None;
    }
    with_bounds(|bounds| {
        let now = Instant::now();
        // A limit too long to add to the clock is no limit.
        let deadline = (*bounds.deadline.get_or_insert_with(|| now.checked_add(bounds.limit)))?;
        (operations >= limits::MIN_TIMED_OPERATIONS && now >= deadline).then(|| Dynamic::from(millis(bounds.limit)))
    })
    .flatten()
}

/// The parser's token callback: `Some(message)` stops the parse, once the load has run out of time (checked
/// every [`limits::CLOCK_EVERY_TOKENS`] tokens). Parsing a file of a megabyte is linear but not instant, and
/// some shapes of file (thousands of variables) cost the parser more per token as it goes.
pub(crate) fn token_read() -> Option<String> {
    let due = TOKENS.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % limits::CLOCK_EVERY_TOKENS == 0
    });
    if !due {
        return None;
    }
    let out_of_time = with_bounds(|bounds| {
        let now = Instant::now();
        let deadline = (*bounds.deadline.get_or_insert_with(|| now.checked_add(bounds.limit)))?;
        (now >= deadline).then_some(bounds.limit)
    })
    .flatten()?;
    Some(format!(
        "the file took longer to read than the load time limit of {} ms; policy files are short",
        out_of_time.as_millis()
    ))
}

/// The engine's variable callback: every few reads, whether the variables' values together are within the
/// memory bound.
#[inline]
pub(crate) fn variable_read(scope: &Scope) -> Result<(), String> {
    let due = READS.with(|r| match r.get() {
        0 => false,
        1 => true,
        n => {
            r.set(n - 1);
            false
        }
    });
    if !due {
        return Ok(());
    }
    let mut left = Held { items: limits::MAX_HELD_ITEMS, bytes: limits::MAX_HELD_BYTES };
    let within = scope.iter_raw().all(|(_, _, value)| left.take(value, 0));
    // The next measure comes sooner for little, later for much: measuring costs at most a few item visits per
    // read, and what is held grows by at most one value per read in between.
    let held = limits::MAX_HELD_ITEMS - left.items + (limits::MAX_HELD_BYTES - left.bytes) / 64;
    let next = limits::MEASURE_EVERY.max(u32::try_from(held / 16).unwrap_or(u32::MAX));
    READS.with(|r| r.set(next));
    if within {
        return Ok(());
    }
    Err(format!(
        "the script's values hold more than {} items or {} KiB together",
        limits::MAX_HELD_ITEMS,
        limits::MAX_HELD_BYTES / 1024
    ))
}

/// What the variables may still hold.
struct Held {
    items: usize,
    bytes: usize,
}

impl Held {
    /// Takes `value`'s items and bytes from what is left; `false` once it is over (the walk stops there, so
    /// it never costs more than the bound).
    fn take(&mut self, value: &Dynamic, depth: usize) -> bool {
        if depth > limits::MAX_DEPTH {
            return false;
        }
        if value.is_string() {
            return value.as_immutable_string_ref().map_or(true, |s| self.bytes(s.len()));
        }
        if value.is_array() {
            return value
                .as_array_ref()
                .map_or(true, |items| self.items(items.len()) && items.iter().all(|v| self.take(v, depth + 1)));
        }
        if value.is_map() {
            return value.as_map_ref().map_or(true, |map| {
                self.items(map.len()) && map.iter().all(|(k, v)| self.bytes(k.len()) && self.take(v, depth + 1))
            });
        }
        true
    }

    fn items(&mut self, n: usize) -> bool {
        self.items = self.items.saturating_sub(n);
        self.items > 0
    }

    fn bytes(&mut self, n: usize) -> bool {
        self.bytes = self.bytes.saturating_sub(n);
        self.bytes > 0
    }
}

/// Counts `bytes` of policy built against the evaluation's bound.
pub(crate) fn charge(bytes: usize) -> Result<(), String> {
    let built = with_bounds(|bounds| {
        bounds.built = bounds.built.saturating_add(bytes);
        bounds.built
    });
    if built.is_some_and(|built| built > limits::MAX_BUILT) {
        return Err(format!("the script built more than {} KiB of policy stages in one run", limits::MAX_BUILT / 1024));
    }
    Ok(())
}

/// What `print`/`debug` may write of `text`: cut to one line's bound, or nothing once the evaluation has
/// written its share (the first refusal says so).
fn output(text: &str) -> Option<Cow<'_, str>> {
    let allowed = with_bounds(|bounds| {
        if bounds.lines >= limits::MAX_PRINTED_LINES || bounds.bytes >= limits::MAX_PRINTED_BYTES {
            return None;
        }
        bounds.lines += 1;
        bounds.bytes += text.len().min(limits::MAX_PRINTED_LINE);
        let last = bounds.lines == limits::MAX_PRINTED_LINES || bounds.bytes >= limits::MAX_PRINTED_BYTES;
        Some(!last)
    })
    .unwrap_or(Some(true));
    match allowed {
        None => None,
        Some(more) => {
            let line = cut(text, limits::MAX_PRINTED_LINE);
            if !more {
                tracing::warn!(
                    target: "lightflow_remedy::script",
                    "a policy script printed {} lines or {} bytes in one run; the rest of its output is dropped",
                    limits::MAX_PRINTED_LINES,
                    limits::MAX_PRINTED_BYTES
                );
            }
            Some(line)
        }
    }
}

/// `print(..)`: to `tracing` at info level, within the evaluation's output bound.
pub(crate) fn print(text: &str) {
    if let Some(line) = output(text) {
        tracing::info!(target: "lightflow_remedy::script", "{line}");
    }
}

/// `debug(..)`: to `tracing` at debug level, within the evaluation's output bound.
pub(crate) fn debug(text: &str, source: Option<&str>, pos: rhai::Position) {
    if let Some(line) = output(text) {
        tracing::debug!(target: "lightflow_remedy::script", source = source.unwrap_or("?"), %pos, "{line}");
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

fn millis(d: Duration) -> INT {
    INT::try_from(d.as_millis()).unwrap_or(INT::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_stops_a_run_and_ends_with_it() {
        let n = limits::MIN_TIMED_OPERATIONS;
        evaluate(Duration::ZERO, || {
            assert!(progress(limits::CLOCK_EVERY).is_none(), "a run is stopped once it did some work");
            assert!(progress(n).is_some(), "past the deadline");
            assert!(progress(n + 1).is_none(), "the clock is read every few operations");
        })
        .unwrap();
        evaluate(Duration::from_millis(30), || {
            assert!(progress(limits::CLOCK_EVERY).is_none(), "the clock starts");
            std::thread::sleep(Duration::from_millis(40));
            assert!(progress(n).is_some(), "and runs out");
        })
        .unwrap();
        assert!(progress(n).is_none(), "no bound outside an evaluation");
        evaluate(Duration::from_secs(60), || assert!(progress(n).is_none())).unwrap();
        evaluate(Duration::MAX, || assert!(progress(limits::CLOCK_EVERY).is_none() && progress(n).is_none())).unwrap();
        let err = evaluate(Duration::from_secs(60), || panic!("engine bug")).unwrap_err();
        assert!(err.contains("engine bug"), "{err}");
        assert!(progress(n).is_none(), "the bounds end with a panicking run too");
    }

    #[test]
    fn the_variables_are_measured_together() {
        let mut scope = Scope::new();
        let items: rhai::Array = (0..limits::MAX_HELD_ITEMS as INT).map(Dynamic::from_int).collect();
        scope.push("small", 1 as INT).push("big", items);
        evaluate(Duration::from_secs(60), || {
            let results: Vec<_> = (0..limits::MEASURE_EVERY).map(|_| variable_read(&scope)).collect();
            assert!(results[..results.len() - 1].iter().all(Result::is_ok), "measured every few reads");
            assert!(results.last().unwrap().as_ref().unwrap_err().contains("together"));
        })
        .unwrap();
    }

    #[test]
    fn output_and_building_are_bounded_per_run() {
        evaluate(Duration::from_secs(60), || {
            let written = (0..100).filter(|_| output("hello").is_some()).count();
            assert_eq!(written, limits::MAX_PRINTED_LINES);
            assert!(charge(limits::MAX_BUILT).is_ok());
            assert!(charge(1).unwrap_err().contains("KiB"));
        })
        .unwrap();
        evaluate(Duration::from_secs(60), || {
            assert!(output("again").is_some(), "each run has its own share");
            assert!(charge(1).is_ok());
        })
        .unwrap();
        let long = "é".repeat(1000);
        let line = cut(&long, 11);
        assert_eq!(line, format!("{}…", "é".repeat(5)));
    }
}
