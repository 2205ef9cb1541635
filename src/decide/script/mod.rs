//! The Rhai policy language: one sandboxed engine, built once and shared.
//!
//! Scripts get only what a policy needs (no `sleep`, `exit`, `eval`, imports, closures, clock, files,
//! network or environment). Every run, a file's top level at load or one `decide` call, is bounded in
//! operations, wall time, call depth, expression depth, value sizes (and with them value nesting), policy
//! built and output printed, so that it ends in a result or an error that names file:line:column on any
//! thread a host runs it on. `print` and `debug` go to `tracing`.

mod api;
mod check;
mod collections;
mod decide_fn;
mod engine;
mod errors;
pub(crate) mod limits;
mod lint;
pub(crate) mod loader;
mod options;
mod sandbox;
mod strings;
mod suggest;
mod views;

pub(crate) use decide_fn::DecideFn;
pub(crate) use views::script_value;
