//! `remedy check`: load and validate the policies.

use std::path::PathBuf;
use std::process::ExitCode;

use lightflow_remedy::Severity;

use crate::common::load;

pub(crate) fn check(dirs: &[PathBuf]) -> ExitCode {
    let policies = match load(dirs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for d in policies.warnings() {
        eprintln!("{d}");
    }
    let warnings = policies.warnings().iter().filter(|d| d.severity == Severity::Warning).count();
    println!("ok: {} sources, {} rules, {warnings} warnings", policies.sources().len(), policies.rules().len());
    ExitCode::SUCCESS
}
