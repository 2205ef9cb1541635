//! What the subcommands share: loading the policies and reporting bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::{LoadError, Policies};

/// Prints a one-line error and returns exit code 2 (bad input).
pub(crate) fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("remedy: {message}");
    ExitCode::from(2)
}

/// Loads the defaults and `dirs`; on errors prints every `file:line:col: message` and returns exit code 1.
pub(crate) fn load(dirs: &[PathBuf]) -> Result<Policies, ExitCode> {
    Policies::load(dirs).map_err(|e: LoadError| {
        for d in e.warnings() {
            eprintln!("{d}");
        }
        for d in e.errors() {
            eprintln!("{d}");
        }
        ExitCode::from(1)
    })
}
