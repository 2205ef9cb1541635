//! `examples/orchestrator.rs`, run as a test so that it cannot rot: on a SQLite file, a remediator killed in
//! the middle and a new one on the same file, callbacks lost while the host is down, and every job ending
//! exactly once.
#![cfg(feature = "sqlite")]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/orchestrator.rs"]
mod orchestrator;

use orchestrator::{Options, Report, run_paused};

fn run(options: &Options) -> (Report, String) {
    let mut out = Vec::new();
    let report = run_paused(options, &mut out).unwrap_or_else(|e| panic!("the example failed: {e}"));
    (report, String::from_utf8(out).unwrap())
}

fn assert_every_job_ended_once(report: &Report, text: &str) {
    assert_eq!((report.jobs, report.finished), (report.assets, report.assets), "{text}");
    assert_eq!((report.told_once, report.told_twice), (report.assets, 0), "{text}");
    let failed = report.outcomes.get("failed").copied().unwrap_or(0);
    assert_eq!((report.dead_letters as usize, report.dead_lettered_twice), (failed, 0), "{text}");
    assert!(!text.contains(": NO"), "{text}");
}

#[test]
fn the_example_survives_its_crash_and_ends_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let (report, text) = run(&Options { db: Some(db.clone()), ..Options::default() });
    assert_eq!(report.assets, 40);
    assert_every_job_ended_once(&report, &text);
    // The crash came while an attempt was under way; the new remediator took it over, reconciled it and
    // repeated it with the same key, and LightFlow answered it from its cache.
    assert!(report.in_flight_at_crash >= 1, "{text}");
    assert!(report.takeovers >= 1, "{text}");
    assert!(report.repeated_keys >= 1, "{text}");
    assert!(text.contains("reconciled [") && text.contains("never answered (its replica died first)"), "{text}");
    // Callbacks did the work: most were applied; those sent while the host was down were lost.
    assert!(report.callbacks.get("applied").copied().unwrap_or(0) >= 20, "{text}");
    assert!(report.callbacks.contains_key("lost: the host was down"), "{text}");
    assert!(report.callbacks.contains_key("not an end (running)"), "{text}");
    for line in ["replica-1 killed", "replica-2 up on the same file", "every job has ended", "remedy jobs --store"] {
        assert!(text.contains(line), "missing {line:?}: {text}");
    }

    // The file keeps the jobs, and a second run on it is refused rather than mixed with them.
    let again = orchestrator::run_paused(&Options { db: Some(db), ..Options::default() }, &mut Vec::new());
    let err = again.expect_err("a file with jobs of an earlier run").to_string();
    assert!(err.contains("holds 40 jobs of an earlier run"), "{err}");
}

#[test]
fn other_seeds_and_a_temporary_file_end_every_job_once_too() {
    for seed in [1, 3] {
        let (report, text) = run(&Options { seed, assets: 25, db: None });
        assert_every_job_ended_once(&report, &text);
        assert!(text.contains("(a temporary file)"), "{text}");
    }
}
