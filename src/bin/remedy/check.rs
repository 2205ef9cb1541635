//! `remedy check`: load and validate the policies, reporting every error and warning found, each with its
//! file:line:column.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::{Diagnostic, Policies, Severity};

pub(crate) fn check(dirs: &[PathBuf]) -> ExitCode {
    match Policies::load(dirs) {
        Ok(policies) => {
            let warnings = count(policies.warnings(), Severity::Warning);
            for d in policies.warnings() {
                eprintln!("{d}");
            }
            println!("ok: {} sources, {} rules, {warnings} warnings", policies.sources().len(), policies.rules().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Every error of every file, after the warnings found on the way.
            for d in e.warnings().chain(e.errors()) {
                eprintln!("{d}");
            }
            ExitCode::from(1)
        }
    }
}

fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics.iter().filter(|d| d.severity == severity).count()
}
