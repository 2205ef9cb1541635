//! A job runs in a `remediation` span, with its asset id, when a subscriber records info spans; the engine
//! builds no span for one that does not.
#![cfg(feature = "testing")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator};
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records the spans it is shown (name, asset field) and how often each is entered.
#[derive(Default)]
struct Spans {
    /// Whether it records info spans at all.
    info: bool,
    next: AtomicU64,
    seen: Mutex<BTreeMap<u64, (String, String, usize)>>,
}

struct AssetField(String);

impl Visit for AssetField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "asset" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Spans {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !metadata.is_span() || self.info || *metadata.level() > Level::INFO
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut asset = AssetField(String::new());
        span.record(&mut asset);
        self.seen.lock().unwrap().insert(id, (span.metadata().name().to_owned(), asset.0, 0));
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        if let Some(s) = self.seen.lock().unwrap().get_mut(&span.into_u64()) {
            s.2 += 1;
        }
    }

    fn exit(&self, _: &Id) {}
}

struct Host;

impl Hooks for Host {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(Attempt::Succeeded)
    }
}

/// Runs two jobs under `spans` and returns the spans it saw: `(name, asset, times entered)`.
fn run_under(spans: Spans) -> Vec<(String, String, usize)> {
    let spans = Arc::new(spans);
    let _default = tracing::subscriber::set_default(spans.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let remediator = Remediator::builder(Policies::defaults(), Host).build();
        for asset in ["asset-1", "asset-2"] {
            let handle =
                remediator.enqueue(Job::new(asset), Failure::asset(2503, "unavailable").unwrap()).await.unwrap();
            assert!(matches!(handle.await, Outcome::Recovered { attempts: 1, .. }));
        }
    });
    spans.seen.lock().unwrap().values().cloned().collect()
}

#[test]
fn each_job_runs_in_its_span_when_info_spans_are_recorded_and_in_none_otherwise() {
    let recorded = run_under(Spans { info: true, ..Spans::default() });
    // A span for each stretch a job is held (from its claim to its rest or its end), named by its asset.
    let remediation: Vec<_> = recorded.iter().filter(|(name, ..)| name == "remediation").collect();
    for asset in ["asset-1", "asset-2"] {
        let entered: usize = remediation.iter().filter(|s| s.1 == asset).map(|s| s.2).sum();
        assert!(entered >= 2, "the job's task is polled inside its spans at each step: {asset} in {recorded:?}");
    }
    assert!(remediation.iter().all(|s| s.1 == "asset-1" || s.1 == "asset-2"), "{recorded:?}");

    let recorded = run_under(Spans { info: false, ..Spans::default() });
    assert!(recorded.iter().all(|(name, ..)| name != "remediation"), "{recorded:?}");
}
