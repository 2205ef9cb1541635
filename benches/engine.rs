//! The engine's throughput and memory on a fleet-sized batch, against a bare retry loop doing the same job.
//!
//! Workload: 100,000 jobs; each asset has failed once with a transient code (2001), its first resubmission
//! fails again, the second succeeds: 200,000 hook calls after 200,000 decisions. Time is paused (a
//! current-thread runtime), so the delays of minutes pass at once and what is measured is the engine's own
//! work. The engine runs with its defaults except the circuit breaker (a fleet where every asset fails at once
//! would open it and change the workload).
//!
//! Baseline: the same work as a bare `backon` retry loop per asset (exponential backoff from 1 minute, ×4, with
//! jitter, on tokio's sleep): no policies, no decisions, no guards.
//!
//! Printed first, once: wall time, attempts per second and peak heap of each side (a counting allocator).
//! Then eleven runs of each, alternating, and the median of their ratios (this machine's speed drifts, and
//! criterion times one side after the other). Then criterion times both. A guard, not a target: the engine at
//! most 3× the bare loop; at most 256 MiB for the run.
//!
//! Run with `cargo bench --bench engine --features testing`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use criterion::Criterion;
use lightflow_remedy::engine::{Attempt, AttemptKey, HookError, Hooks, Job, Outcome, Remediator};
use lightflow_remedy::{Failure, Policies};
use serde_json::{Map, Value};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const JOBS: usize = 100_000;
const TRANSIENT: u16 = 2001;

/// The host: every asset's first resubmission fails again with the transient code, the second succeeds.
struct Flaky {
    failure: Failure,
}

impl Hooks for Flaky {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, key: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(if key.attempt < 2 { Attempt::Failed(self.failure.clone()) } else { Attempt::Succeeded })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime")
}

/// Runs the batch through the engine; returns how many hook calls were made.
fn engine(jobs: usize) -> usize {
    runtime().block_on(async {
        let failure = Failure::asset(TRANSIENT, "download failed").expect("a catalogue code");
        let remediator = Remediator::builder(Policies::defaults(), Flaky { failure: failure.clone() })
            .without_circuit_breaker()
            .build();
        let mut handles = Vec::with_capacity(jobs);
        for i in 0..jobs {
            handles.push(remediator.enqueue(Job::new(format!("asset-{i}")), failure.clone()).await.expect("accepted"));
        }
        let mut attempts = 0;
        for h in handles {
            match h.await {
                Outcome::Recovered { attempts: n, .. } => attempts += n as usize,
                other => panic!("every job recovers in this workload: {other:?}"),
            }
        }
        attempts
    })
}

/// The same batch as bare retry loops; returns how many retries were made.
fn bare_loop(jobs: usize) -> usize {
    runtime().block_on(async {
        let failure = Failure::asset(TRANSIENT, "download failed").expect("a catalogue code");
        let retries = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..jobs)
            .map(|i| {
                let failure = failure.clone();
                let retries = retries.clone();
                let job = Job::new(format!("asset-{i}"));
                tokio::spawn(async move {
                    let calls = AtomicUsize::new(0);
                    // The first call is the failure the engine is handed; two more make the same two attempts.
                    let op = || async {
                        let n = calls.fetch_add(1, Ordering::Relaxed);
                        let _ = &job;
                        if n < 2 { Err(failure.clone()) } else { Ok(()) }
                    };
                    let backoff = ExponentialBuilder::default()
                        .with_min_delay(Duration::from_secs(60))
                        .with_factor(4.0)
                        .with_max_delay(Duration::from_secs(1800))
                        .with_max_times(3)
                        .with_jitter();
                    let result = op.retry(backoff).sleep(tokio::time::sleep).await;
                    retries.fetch_add(calls.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
                    result
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("no panic").expect("every job recovers");
        }
        retries.load(Ordering::Relaxed)
    })
}

/// Runs `f` once and prints its wall time, attempts per second and peak heap above the start.
fn report(name: &str, f: fn(usize) -> usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let start = Instant::now();
    let attempts = f(JOBS);
    let wall = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs;
    println!(
        "{name:<10} {JOBS} jobs, {attempts} attempts in {wall:.2?}: {:.0} attempts/s, peak heap {:.1} MiB, \
         {:.1} allocations a job",
        attempts as f64 / wall.as_secs_f64(),
        peak as f64 / (1024.0 * 1024.0),
        allocs as f64 / JOBS as f64
    );
}

/// Runs the two sides alternately `pairs` times and prints the median of each and of the per-pair ratios. The
/// target is a ratio, and this machine's speed drifts over seconds: alternating lets the drift fall on both.
fn paired(pairs: usize) {
    let time = |f: fn(usize) -> usize| {
        let start = Instant::now();
        f(JOBS);
        start.elapsed().as_secs_f64() * 1e3
    };
    let (mut e, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let (te, tb) = (time(engine), time(bare_loop));
        e.push(te);
        b.push(tb);
        ratio.push(te / tb);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (lo, hi) = (ratio.iter().copied().fold(f64::MAX, f64::min), ratio.iter().copied().fold(0.0, f64::max));
    println!(
        "paired, {pairs} alternating runs: engine {:.1} ms, bare loop {:.1} ms (medians); engine / bare loop {:.2}x \
         (median of pairs; {lo:.2}x to {hi:.2}x)",
        median(&mut e),
        median(&mut b),
        median(&mut ratio)
    );
}

fn main() {
    // Single runs, for attempts per second and peak heap. Not compared: the first run of a process also pays
    // for growing the heap, and the bare loop's run reuses what the engine's grew.
    report("engine", engine);
    report("bare loop", bare_loop);
    paired(11);

    let mut c = Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(20));
    let mut group = c.benchmark_group("fleet_100k");
    group.bench_function("engine", |b| b.iter(|| engine(JOBS)));
    group.bench_function("bare_backon_loop", |b| b.iter(|| bare_loop(JOBS)));
    group.finish();
    c.final_summary();
}
