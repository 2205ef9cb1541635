//! The `remedy` command ends quietly when its reader goes away (`remedy table | head -1`).

use std::process::{Command, Stdio};

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("failures.jsonl");
    let line = r#"{"asset": "a1", "code": 2503}"#;
    std::fs::write(&log, format!("{line}\n").repeat(2000)).unwrap();
    let log = log.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["table"],
        &["table", "--json"],
        &["check"],
        &["explain", "2404"],
        &["explain", "2503", "--attempt", "3", "--json"],
        &["replay", log],
    ];
    for args in commands {
        let mut child = Command::new(env!("CARGO_BIN_EXE_remedy"))
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("remedy runs");
        // The reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
