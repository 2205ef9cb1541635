//! The hostile-script table through a watched directory: each case is written into a policies directory that
//! `LivePolicies::watch` reloads on its own thread; every one is refused (the last good set stays) or loaded,
//! and the reload thread goes on watching.

mod sandbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightflow_remedy::decide::{LivePolicies, ReloadEvent};
use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};

/// Cases are spread over this many watched directories, each with its own reload thread.
const LANES: usize = 6;

/// Waits for the next reload event, or `None` after a while.
fn next_event(events: &mut tokio::sync::broadcast::Receiver<ReloadEvent>, within: Duration) -> Option<ReloadEvent> {
    let started = Instant::now();
    while started.elapsed() < within {
        match events.try_recv() {
            Ok(event) => return Some(event),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

fn decides(live: &LivePolicies) -> ActionKind {
    let failure = Failure::asset(2001, "").expect("valid");
    live.current().decide(&failure, &History::new(0), &Context::new()).kind()
}

#[test]
fn every_hostile_case_ends_cleanly_through_a_watched_directory() {
    let cases = sandbox::cases();
    let lanes: Vec<Vec<sandbox::Case>> =
        (0..LANES).map(|lane| cases.iter().skip(lane).step_by(LANES).cloned().collect()).collect();
    let threads: Vec<_> = lanes
        .into_iter()
        .map(|cases| {
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().expect("a directory");
                let file = dir.path().join("10-site.rhai");
                let good = "on(2001, notify(\"good\"));";
                std::fs::write(&file, good).expect("written");
                let live = Arc::new(LivePolicies::load(Policies::builder().directory(dir.path())).expect("loads"));
                let watching = live.watch(Duration::from_millis(10)).expect("watching");
                let mut events = live.subscribe();
                let mut failed = Vec::new();
                for (i, case) in cases.iter().enumerate() {
                    // A trailing comment that differs makes every version a change, whatever the case.
                    let text = format!("{}\n// version {i}\n", case.script);
                    std::fs::write(&file, text).expect("written");
                    let event = next_event(&mut events, Duration::from_secs(15));
                    let ok = match (&event, case.expect) {
                        (Some(ReloadEvent::Refused { errors }), sandbox::Expect::Refused(line, words)) => {
                            errors.first().is_some_and(|e| {
                                (line == 0 || e.pos.map(|p| p.line) == Some(line)) && e.to_string().contains(words)
                            })
                        }
                        (Some(ReloadEvent::Refused { .. }), sandbox::Expect::Either) => true,
                        (Some(ReloadEvent::Refused { errors }), sandbox::Expect::InTime) => {
                            sandbox::out_of_load_time(errors.first())
                        }
                        (Some(ReloadEvent::Reloaded { .. }), sandbox::Expect::Refused(..)) => false,
                        (Some(ReloadEvent::Reloaded { .. }), _) => true,
                        (Some(ReloadEvent::Refused { .. }), _) | (None, _) => false,
                    };
                    if !ok {
                        failed.push(format!("{}: {event:?}", case.name));
                    }
                    // Whatever the file did, decisions go on (the defaults or the good set decide 2001).
                    let _ = decides(&live);
                    // Back to the good file: the thread still reloads.
                    std::fs::write(&file, format!("{good}\n// good {i}\n")).expect("written");
                    match next_event(&mut events, Duration::from_secs(15)) {
                        Some(ReloadEvent::Reloaded { .. }) => {}
                        other => failed.push(format!("{}: the good file after it: {other:?}", case.name)),
                    }
                    if decides(&live) != ActionKind::Notify {
                        failed.push(format!("{}: the good set is not in force", case.name));
                    }
                }
                assert!(watching.is_watching());
                failed
            })
        })
        .collect();
    let failed: Vec<String> = threads.into_iter().flat_map(|t| t.join().expect("a lane ended")).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    sandbox::assert_healthy();
}
