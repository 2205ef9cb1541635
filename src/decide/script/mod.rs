//! The Rhai policy language: one sandboxed engine, built once and shared.
//!
//! Scripts cannot reach files, the network or the clock; `eval` and `import` are disabled; operations, call
//! depth, expression depth and the sizes of strings, arrays and maps are limited, so a hostile script fails
//! fast with an error that names file:line:column. `print` and `debug` go to `tracing`.

mod api;
mod check;
mod decide_fn;
mod engine;
mod errors;
pub(crate) mod limits;
mod lint;
pub(crate) mod loader;
mod options;
mod suggest;
mod views;

pub(crate) use decide_fn::DecideFn;
