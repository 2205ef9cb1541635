//! `remedy simulate --store` and `remedy jobs`, as an operator runs them on a SQLite file.
#![cfg(feature = "sqlite")]

use std::process::{Command, Output};

fn remedy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remedy")).args(args).output().expect("remedy runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_crash_test_on_sqlite_then_the_jobs_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let o = remedy(&["simulate", "--assets", "120", "--seed", "9", "--store", &url, "--crash-every", "60s", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let summary: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let store = &summary["store"];
    assert_eq!((store["submitted"].as_u64(), store["lost"].as_u64()), (Some(120), Some(0)), "{store}");
    assert_eq!(store["concurrent_calls"].as_u64(), Some(0), "{store}");
    assert!(store["crashes"].as_u64().unwrap() > 0, "{store}");

    let stats = remedy(&["jobs", "--store", &url, "stats", "--json"]);
    assert_eq!(stats.status.code(), Some(0), "{}", err(&stats));
    let stats: serde_json::Value = serde_json::from_str(&out(&stats)).unwrap();
    let finished: u64 = stats["by_outcome"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(finished, 120);

    let list = remedy(&["jobs", "--store", &url, "list", "--state", "recovered", "--limit", "5"]);
    assert_eq!(list.status.code(), Some(0));
    let text = out(&list);
    assert!(text.starts_with("JOB") && text.contains("recovered") && text.contains("5 job(s)"), "{text}");
    // The columns line up: every row's asset starts where the header's ASSET does.
    let column = text.lines().next().unwrap().find("ASSET").unwrap();
    for line in text.lines().skip(1).filter(|l| l.contains("sim-")) {
        assert_eq!(line.find("sim-"), Some(column), "{text}");
    }

    // The dead letters: every failed job, with the verdict its `failed` hook was given.
    let letters = remedy(&["jobs", "--store", &url, "--json", "dead-letters", "--limit", "1000"]);
    assert_eq!(letters.status.code(), Some(0), "{}", err(&letters));
    let letters: Vec<serde_json::Value> = serde_json::from_str(&out(&letters)).unwrap();
    assert_eq!(letters.len() as u64, stats["by_outcome"]["failed"].as_u64().unwrap_or(0));
    assert!(!letters.is_empty() && letters.iter().all(|l| l["reason"].as_str().is_some_and(|r| !r.is_empty())));

    let show = remedy(&["jobs", "--store", &url, "show", "sim-3", "--json"]);
    assert_eq!(show.status.code(), Some(0), "{}", err(&show));
    let job: serde_json::Value = serde_json::from_str(&out(&show)).unwrap();
    assert_eq!(job["row"]["asset"], "sim-3");
    assert!(job["calls"].as_array().is_some_and(|c| !c.is_empty()), "{job}");

    // What is not there says so, with exit code 1; a bad store URL or state is bad input, 2.
    assert_eq!(remedy(&["jobs", "--store", &url, "show", "nobody"]).status.code(), Some(1));
    assert_eq!(remedy(&["jobs", "--store", &url, "cancel", "sim-3"]).status.code(), Some(1), "it has ended");
    assert_eq!(remedy(&["jobs", "--store", &url, "retry-now", "nobody"]).status.code(), Some(1));
    assert_eq!(remedy(&["jobs", "--store", &url, "list", "--state", "sleeping"]).status.code(), Some(2));
    let bad = remedy(&["jobs", "--store", "ftp://x", "stats"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(err(&bad).contains("ftp://x"), "{}", err(&bad));
}

#[test]
fn a_store_that_is_not_there_is_an_error_and_no_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["stats"][..], &["list"], &["show", "a1"], &["cancel", "a1"], &["retry-now", "a1"]] {
        let path = dir.path().join("typo.db");
        let url = format!("sqlite://{}", path.display());
        let mut args = vec!["jobs", "--store", &url];
        args.extend_from_slice(command);
        let o = remedy(&args);
        assert_eq!(o.status.code(), Some(2), "{command:?}: {}", err(&o));
        assert!(err(&o).contains("no such store"), "{command:?}: {}", err(&o));
        assert!(!path.exists(), "{command:?}: no file is made");
    }
}
