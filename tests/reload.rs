//! Hot reload: the set is swapped whole while decisions run on other threads; a broken file keeps the last
//! good set in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lightflow_remedy::decide::{LivePolicies, ReloadEvent};
use lightflow_remedy::{Context, Failure, History, Policies};

/// Version `v` of a site file: two rules whose reasons and lines tell the version apart.
fn site(v: usize) -> String {
    // The rules sit on line `v % 2 + 1`, so that a decision taking its reason from one version and its rule
    // from another would show.
    let padding = if v.is_multiple_of(2) { "" } else { "// odd versions start one line lower\n" };
    format!("{padding}on(2404, fail(\"v{v}\"));\non(2001, fail(\"v{v}\"));\n")
}

/// A policies directory holding one site file with `text`, loaded live. The directory lives as long as the
/// returned guard.
fn live_site(text: &str) -> (tempfile::TempDir, std::path::PathBuf, Arc<LivePolicies>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("10-site.rhai");
    std::fs::write(&file, text).unwrap();
    let live = Arc::new(LivePolicies::load(Policies::builder().directory(dir.path())).unwrap());
    (dir, file, live)
}

#[test]
fn decisions_come_from_the_old_set_or_the_new_never_a_mix() {
    let (_dir, file, live) = live_site(&site(0));
    let mut events = live.subscribe();
    let stop = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicUsize::new(0));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (live, stop, decided) = (live.clone(), stop.clone(), decided.clone());
            std::thread::spawn(move || {
                let f = Failure::asset(2404, "").unwrap();
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let d = live.current().decide(&f, &History::new(0), &Context::new()).into_owned();
                    let reason = d.reason().unwrap().to_owned();
                    let v: usize = reason[1..].parse().unwrap();
                    let line = d.rule().origin().pos.unwrap().line as usize;
                    assert_eq!(line, v % 2 + 1, "reason of v{v} with the rule of another version");
                    seen.insert(v);
                    decided.fetch_add(1, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();

    for v in 1..=20 {
        std::fs::write(&file, site(v)).unwrap();
        live.reload().unwrap();
        // A broken version in between is refused, and the last good one stays.
        std::fs::write(&file, "on(2404, fail(\"broken\")\n").unwrap();
        let err = live.reload().unwrap_err();
        assert!(err.to_string().contains("10-site.rhai:"), "{err}");
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for r in readers {
        seen.extend(r.join().expect("no reader failed"));
    }
    assert!(decided.load(Ordering::Relaxed) > 100);
    assert!(seen.len() > 1, "the readers saw the versions change: {seen:?}");
    let f = Failure::asset(2001, "").unwrap();
    assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).reason(), Some("v20"));

    let mut reloaded = 0;
    let mut refused = 0;
    while let Ok(event) = events.try_recv() {
        match event {
            ReloadEvent::Reloaded { .. } => reloaded += 1,
            ReloadEvent::Refused { errors } => {
                refused += 1;
                assert!(errors[0].to_string().starts_with(&format!("{}:", file.display())));
            }
        }
    }
    assert_eq!((reloaded, refused), (20, 20));
}

#[test]
fn a_watched_directory_reloads_by_itself() {
    let (_dir, file, live) = live_site(&site(0));
    let _watcher = live.watch(Duration::from_millis(50)).unwrap();
    let mut events = live.subscribe();
    std::fs::write(&file, site(1)).unwrap();
    // Wait for the watcher's reload (bounded: a file event arrives in milliseconds).
    let mut reloaded = false;
    for _ in 0..200 {
        if let Ok(ReloadEvent::Reloaded { .. }) = events.try_recv() {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(reloaded, "no reload after the file changed");
    let f = Failure::asset(2404, "").unwrap();
    assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).reason(), Some("v1"));
}

/// The engine decides with the live set: jobs already waiting take the new rules at their next decision.
#[cfg(feature = "testing")]
#[test]
fn a_remediator_follows_a_reload() {
    use lightflow_remedy::engine::{HookName, Job, Outcome, Remediator};
    use lightflow_remedy::testing::{FakeHooks, Scripted};

    let (_dir, file, live) = live_site(r#"on(2001, retry(#{ attempts: 5, initial: "1m", multiplier: 1.0 }));"#);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let outcome = runtime.block_on(async {
        let down = Failure::asset(2001, "").unwrap();
        let hooks = FakeHooks::new().script("a", HookName::Resubmit, vec![Scripted::Fail(down.clone()); 5]);
        let remediator = Remediator::builder(live.clone(), hooks).without_circuit_breaker().build();
        let handle = remediator.enqueue(Job::new("a"), down).await.unwrap();
        tokio::time::sleep(Duration::from_secs(90)).await; // one retry done, the second one waiting
        std::fs::write(&file, r#"on(2001, fail("switched off"));"#).unwrap();
        live.reload().unwrap();
        handle.await
    });
    match outcome {
        Outcome::Failed { verdict } => assert_eq!((verdict.reason.as_str(), verdict.attempts), ("switched off", 2)),
        other => panic!("{other:?}"),
    }
}

/// Waits for the reload events of the next `within`.
fn events_within(events: &mut tokio::sync::broadcast::Receiver<ReloadEvent>, within: Duration) -> Vec<ReloadEvent> {
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < within {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    seen
}

#[test]
fn a_file_written_in_two_parts_is_loaded_whole() {
    use std::io::Write;
    let (_dir, file, live) = live_site(&site(0));
    let _watcher = live.watch(Duration::from_millis(5)).unwrap();
    let mut events = live.subscribe();
    // The first part is a valid file on its own: loading it would drop the 2001 rule.
    let mut out = std::fs::File::create(&file).unwrap();
    out.write_all(b"on(2404, fail(\"v2\"));\n").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    out.write_all(b"on(2001, fail(\"v2\"));\n").unwrap();
    drop(out);
    let seen = events_within(&mut events, Duration::from_secs(3));
    let reloads = seen.iter().filter(|e| matches!(e, ReloadEvent::Reloaded { .. })).count();
    assert_eq!(reloads, 1, "one reload, of the whole file: {seen:?}");
    let f = Failure::asset(2001, "").unwrap();
    assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).reason(), Some("v2"));
}

#[test]
fn a_watched_directory_survives_huge_hostile_and_broken_files() {
    let (dir, file, live) = live_site(&site(0));
    let watcher = live.watch(Duration::from_millis(10)).unwrap();
    let mut events = live.subscribe();
    let huge = dir.path().join("20-huge.rhai");
    std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
    let refused = events_within(&mut events, Duration::from_secs(2));
    assert!(
        refused
            .iter()
            .any(|e| matches!(e, ReloadEvent::Refused { errors } if errors[0].to_string().contains("limited to"))),
        "{refused:?}"
    );
    std::fs::remove_file(&huge).unwrap();
    for hostile in ["loop {}", "sleep(1e300);", "exit();", "fn on(a, b) {}", "let a = []; loop { a = [a]; }"] {
        std::fs::write(&file, hostile).unwrap();
        let seen = events_within(&mut events, Duration::from_secs(2));
        assert!(seen.iter().any(|e| matches!(e, ReloadEvent::Refused { .. })), "{hostile}: {seen:?}");
    }
    std::fs::write(&file, site(7)).unwrap();
    let seen = events_within(&mut events, Duration::from_secs(2));
    assert!(seen.iter().any(|e| matches!(e, ReloadEvent::Reloaded { .. })), "{seen:?}");
    assert!(watcher.is_watching());
    let f = Failure::asset(2404, "").unwrap();
    assert_eq!(live.current().decide(&f, &History::new(0), &Context::new()).reason(), Some("v7"));
}
