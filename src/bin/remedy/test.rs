//! `remedy test`: run the decision tests kept beside the policies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lightflow_remedy::operate::fixtures::{self, Case, FixtureError};

use crate::common::load;

/// Run the decision tests (fixtures) of the policies.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A directory of *.rhai policies on top of the built-in defaults; may be repeated. Its `tests/` folder holds
    /// its fixtures.
    #[arg(long = "policies", value_name = "DIR")]
    policies: Vec<PathBuf>,
    /// Fixture files or folders of `*.json` files. By default: each policies directory's `tests/` folder, or,
    /// without `--policies`, the built-in defaults' fixtures.
    fixtures: Vec<PathBuf>,
    /// Also list the cases that pass.
    #[arg(long)]
    verbose: bool,
}

/// Exit codes: 0 every case passes; 1 a case fails (or the policies are invalid); 2 a fixture cannot be read.
pub(crate) fn run(args: Args) -> ExitCode {
    let policies = match load(&args.policies) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let cases = match collect(&args) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("remedy: test: {e}");
            return ExitCode::from(2);
        }
    };
    if cases.is_empty() {
        eprintln!("remedy: test: no fixtures found (give files, or put *.json in each policies directory's tests/)");
        return ExitCode::from(2);
    }
    let results = fixtures::run(&policies, &cases);
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        if !r.passed() || args.verbose {
            println!("{r}");
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn collect(args: &Args) -> Result<Vec<Case>, FixtureError> {
    let mut cases = Vec::new();
    if !args.fixtures.is_empty() {
        for path in &args.fixtures {
            cases.extend(load_path(path)?);
        }
        return Ok(cases);
    }
    if args.policies.is_empty() {
        return fixtures::parse_named("policies/tests/00-lightflow.json (built in)", fixtures::DEFAULTS_FIXTURES);
    }
    for dir in &args.policies {
        let tests = dir.join("tests");
        if tests.is_dir() {
            cases.extend(load_path(&tests)?);
        }
    }
    Ok(cases)
}

fn load_path(path: &Path) -> Result<Vec<Case>, FixtureError> {
    if path.is_dir() {
        let mut cases = Vec::new();
        for file in fixtures::files_in(path)? {
            cases.extend(fixtures::load_file(&file)?);
        }
        Ok(cases)
    } else {
        fixtures::load_file(path)
    }
}
