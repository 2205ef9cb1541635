//! Sandbox limits, in one place so that the sandbox section of docs/policies.md can quote them.
//!
//! They are sized for the smallest stack a script may run on: a tokio worker's 2 MiB, in a debug build, where
//! Rhai's evaluator takes tens of kilobytes per nested call. Nested calls times expression depth bound the
//! evaluator's own recursion; the array and map sizes (counted over everything a value holds) bound how deep
//! a value can nest, and with it every clone, drop and size check of it.

use std::time::Duration;

/// Operations per run of a file's top level or of one `decide` call.
pub(crate) const MAX_OPERATIONS: u64 = 200_000;
/// Nested function calls (`decide` itself is the first).
pub(crate) const MAX_CALL_LEVELS: usize = 8;
/// Expression nesting at top level and inside functions.
pub(crate) const MAX_EXPR_DEPTH: (usize, usize) = (64, 24);
/// Bytes in one string, and in all the strings one array or map holds.
pub(crate) const MAX_STRING_SIZE: usize = 4 * 1024;
/// Items in one array, counting the items of the arrays it holds.
pub(crate) const MAX_ARRAY_SIZE: usize = 256;
/// Entries in one map, counting the entries of the maps it holds.
pub(crate) const MAX_MAP_SIZE: usize = 128;
/// How deep arrays and maps may nest: each level holds at least one item or entry.
pub(crate) const MAX_NESTING: usize = MAX_ARRAY_SIZE + MAX_MAP_SIZE;
/// How deep a value can nest: a value built whole holds at least one item or entry per level, and a change
/// through an index path adds at most the path (written in the source, so within the expression depth).
pub(crate) const MAX_DEPTH: usize = MAX_NESTING + MAX_EXPR_DEPTH.0;
/// Variables in scope at once, over every call.
pub(crate) const MAX_VARIABLES: usize = 64;
/// Items and entries the variables' values may hold together (a host context counts too).
pub(crate) const MAX_HELD_ITEMS: usize = 4 * 1024;
/// Bytes of strings and map keys the variables' values may hold together.
pub(crate) const MAX_HELD_BYTES: usize = 256 * 1024;
/// The variables' values are measured together every this many variable reads at least (more when they
/// hold much, so that measuring stays cheap).
pub(crate) const MEASURE_EVERY: u32 = 32;
/// Functions defined by one file.
pub(crate) const MAX_FUNCTIONS: usize = 256;
/// Bytes of policy built by one evaluation (stages, their texts, rules): a bound on the memory a script can
/// make the host hold through values Rhai does not see into.
pub(crate) const MAX_BUILT: usize = 4 * 1024 * 1024;
/// What one stage costs against [`MAX_BUILT`] besides its texts.
pub(crate) const STAGE_COST: usize = 256;
/// Lines `print` and `debug` may write per evaluation; the rest is dropped (and that said once).
pub(crate) const MAX_PRINTED_LINES: usize = 16;
/// Bytes they may write per evaluation.
pub(crate) const MAX_PRINTED_BYTES: usize = 4 * 1024;
/// Bytes of one printed line.
pub(crate) const MAX_PRINTED_LINE: usize = 512;
/// The clock is read every this many operations (the first time to start it).
pub(crate) const CLOCK_EVERY: u64 = 16;
/// The clock is read every this many tokens while a file is parsed.
pub(crate) const CLOCK_EVERY_TOKENS: u32 = 256;
/// A run is stopped for time only once it has done this many operations: a short run that a busy host
/// paused past its deadline is let finish, as it would a moment later anyway.
pub(crate) const MIN_TIMED_OPERATIONS: u64 = 128;
/// Wall time of one file's top level, by default.
pub(crate) const LOAD_TIME: Duration = Duration::from_secs(1);
/// Wall time of one `decide` call, by default.
pub(crate) const DECISION_TIME: Duration = Duration::from_millis(10);
/// Bytes in one policy file.
pub(crate) const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// `*.rhai` files in one policies directory.
pub(crate) const MAX_FILES: usize = 256;
/// Directory entries looked at in one policies directory.
pub(crate) const MAX_ENTRIES: usize = 16 * 1024;
/// Errors reported per file; the rest are usually consequences of the first ones.
pub(crate) const MAX_ERRORS: usize = 20;
/// How much of a name or value an error message quotes.
pub(crate) const MAX_QUOTED: usize = 64;
