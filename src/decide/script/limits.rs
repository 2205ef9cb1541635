//! Sandbox limits. Generous for policy files (the defaults need a few thousand operations), tight for loops.

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
