//! How a host unit-tests its own remediation decisions with `lightflow_remedy::testing`.
//!
//! A deployment overrides the defaults with its own rules; its tests pin what those rules decide and walk a job
//! to its end under paused time, checking each hook call and delay. Run it with
//! `cargo run --example testing_policies --features testing` (the `testing` feature is on by default with the
//! `remedy` command); the same code belongs in the host's `#[test]` functions.

use std::time::Duration;

use lightflow_remedy::engine::{HookName, Outcome};
use lightflow_remedy::testing::{FakeHooks, Scripted, assert_decides, assert_decides_with, policies, run_job};
use lightflow_remedy::{ActionKind, Context, Failure};

/// The deployment's overrides, as they would sit in its policies directory.
const SITE: &str = r#"
// Our CDN origin recovers fast: three quick retries instead of the default profile.
on(2500..=2599, retry(#{ attempts: 3, initial: "20s", multiplier: 2.0 }).then(fail("The CDN origin keeps failing")));

// Trial tenants are not remediated.
fn decide(f, ctx) {
    if ctx.plan == "trial" { return fail("Trial plan: not remediated"); }
}
"#;

fn main() {
    let site = policies(SITE);

    // One line per expectation: the first decision for a failure key.
    assert_decides(&site, "2503", ActionKind::Retry);
    assert_decides(&site, "2404", ActionKind::Fail); // untouched defaults still apply
    assert_decides_with(&site, "2503", &Context::new().with("plan", "trial"), ActionKind::Fail);

    // A whole job under paused time: the origin fails twice more, then the asset goes through.
    let down = Failure::asset(2502, "bad gateway").expect("a catalogue code");
    let hooks = FakeHooks::new().script(
        "asset-7",
        HookName::Resubmit,
        [Scripted::Fail(down.clone()), Scripted::Fail(down.clone()), Scripted::Succeed],
    );
    let run = run_job(site, hooks, "asset-7", down);
    assert!(matches!(run.outcome, Outcome::Recovered { attempts: 3, .. }), "{:?}", run.outcome);
    // 20 s, then 40 s more, then 80 s more: the timeline of the hook calls.
    let secs = Duration::from_secs;
    assert_eq!(run.times_of(HookName::Resubmit), [secs(20), secs(60), secs(140)]);

    println!("the site's remediation rules behave as intended:");
    for call in &run.calls {
        println!("  {:>6?}  {:<9} attempt {:?}", call.at, call.hook.as_str(), call.attempt);
    }
    println!("  outcome: {:?}", run.outcome.kind());
}
