//! `remedy test`: run the decision tests kept beside the policies, and say which decisions pinned by the
//! built-in fixtures the policies directories change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lightflow_remedy::Policies;
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

/// Exit codes: 0 every case passes; 1 a case fails (or the policies are invalid); 2 a fixture cannot be read,
/// or there is none to run.
///
/// With `--policies`, the decisions the built-in fixtures pin and the directories change are listed as notes
/// first: overriding defaults is what a policies directory is for, so they never fail the run.
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
    let mut out = std::io::stdout().lock();
    // A reader that stops early (`remedy test | head`) is not an error; what was decided still decides the
    // exit code.
    if !args.policies.is_empty() {
        let _ = write_changes(&mut out, &policies);
    }
    if cases.is_empty() {
        if !args.policies.is_empty() && args.fixtures.is_empty() {
            let _ = writeln!(
                out,
                "no fixtures of their own: put *.json decision tests in {}",
                args.policies.iter().map(|d| d.join("tests").display().to_string()).collect::<Vec<_>>().join(", ")
            );
            return ExitCode::SUCCESS;
        }
        eprintln!("remedy: test: no fixtures found (give files, or put *.json in each policies directory's tests/)");
        return ExitCode::from(2);
    }
    let results = fixtures::run(&policies, &cases);
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        if !r.passed() || args.verbose {
            let _ = writeln!(out, "{r}");
        }
    }
    let _ = writeln!(out, "{} passed, {failed} failed", results.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Notes: which decisions pinned by the built-in fixtures `policies` changes, one line each.
fn write_changes(out: &mut impl Write, policies: &Policies) -> std::io::Result<()> {
    let pinned = fixtures::parse(fixtures::DEFAULTS_FIXTURES).map_or(0, |cases| cases.len());
    let changed = fixtures::changed_defaults(policies);
    let source = fixtures::DEFAULTS_FIXTURES_NAME;
    if changed.is_empty() {
        return writeln!(out, "note: the policies change none of the {pinned} decisions {source} pins");
    }
    writeln!(out, "note: the policies change {} of the {pinned} decisions {source} pins:", changed.len())?;
    for r in &changed {
        // The case's number in the file, as a failure names it (`... #27`).
        let number = r.origin.rsplit(' ').next().unwrap_or(&r.origin);
        writeln!(out, "note:   {number} {:?} ({}): {}", r.name, r.key, r.summary())?;
    }
    Ok(())
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
        return fixtures::parse_named(
            &format!("{} (built in)", fixtures::DEFAULTS_FIXTURES_NAME),
            fixtures::DEFAULTS_FIXTURES,
        );
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
