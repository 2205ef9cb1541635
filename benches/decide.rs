//! Decision and load benchmarks, all in one run so that the figures are comparable.
//!
//! Groups:
//!
//! - `table_decision`: [`Policies::decide`] on the built-in defaults alone (no Rhai `decide` function, so
//!   resolution is one dense-table lookup plus the backoff arithmetic), for three representative failures:
//!   asset 2503 (retry, proportional jitter), asset 2404 (fail), API 503 (retry, full jitter). The history has
//!   recorded the failure once; the context is empty.
//! - `hand_written_match`: the baseline: [`baseline`], a plain `match` over the same catalogue codes and ranges
//!   as `policies/00-lightflow.rhai` with the same backoff, jitter and RNG arithmetic, on the same failures. No
//!   allocation, no strings. Before it runs, it is checked against the library on every asset code and API
//!   status, over every attempt of each first stage, for several seeds.
//! - `rhai_decide`: the defaults plus a `10-site.rhai` with a `fn decide(f, ctx)`: (a) `decide` returns a
//!   policy (2006 with `{"asset": {"4k": true}}`), (b) it returns `()` and the table decides (2503 with
//!   `{"plan": "pro"}`). Each context is built once, outside the timed loop (it caches its Rhai conversion).
//! - `load`: compiling, running, checking and linting the defaults plus one realistic override file.
//! - `refuse_hostile`: loading the defaults plus an endless loop, unbounded recursion or an ever-growing string,
//!   until the sandbox refuses it.
//!
//! Targets: table decision ≤ 50 ns median and ≤ 2× the hand-written match; Rhai decide ≤ 2 µs; load ≤ 10 ms;
//! a hostile script refused within a second.
//!
//! Run with `cargo bench --bench decide`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use lightflow_remedy::{ActionKind, Context, Failure, FailureKind, History, Policies};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::SplitMix64;

/// The history seed of every benchmark.
const SEED: u64 = 0x5EED_2024;

/// The failures of `table_decision` and `hand_written_match`: (benchmark id, code, is an API status).
const CASES: [(&str, u16, bool); 3] = [
    ("asset_2503_retry_jitter", 2503, false),
    ("asset_2404_fail", 2404, false),
    ("api_503_retry_full_jitter", 503, true),
];

/// A site file with a `decide` function, for `rhai_decide`.
const SCRIPT: &str = r#"
fn decide(f, ctx) {
    if f.code == 2006 && ctx.asset["4k"] == true {
        return resubmit(#{ "4k": false });
    }
    if ctx.plan == "trial" {
        return fail("trial accounts are not remediated");
    }
}
"#;

/// A realistic deployment override, for `load`: exact codes, a range, a category, an HTTP status, `otherwise`.
const OVERRIDE: &str = r#"// 10-site.rhai: overrides for the acme deployment.
const QUICK = #{ attempts: 4, initial: "30s", multiplier: 2.0, max_delay: "10m", jitter: "equal" };
// Our input storage sits behind a flaky proxy: more, quicker tries, then tell the storage team.
on([2001, 2002], retry(QUICK)
    .then(notify("storage", "Input downloads keep failing through the proxy"))
    .then(fail("The input could not be downloaded: check the storage proxy")));
// Too narrow for 4K: resubmit without 4K rather than fail.
on(2006, resubmit(#{ "4k": false }).then(fail("The input failed even without 4K")));
// Our CDN origin recovers quickly from 5xx.
on(2500..=2599, retry(#{ attempts: 5, initial: "20s", multiplier: 3.0, max_delay: "15m", jitter: 0.2 })
    .then(fail("The CDN origin kept failing the download (HTTP 5xx)")));
// Brightcove trouble of any kind: one retry, then the video team looks.
on("brightcove", retry(#{ attempts: 1, initial: "2m" })
    .then(notify("video-team", "Brightcove keeps failing an asset")).then(fail("Brightcove kept failing")));
// Our API quota is tight: wait longer when throttled.
on(http(429), retry(#{ attempts: 6, initial: "2s", max_delay: "2m", jitter: "full", max_hint: "10m" })
    .then(fail("The LightFlow API kept throttling the call (HTTP 429)")));
// Anything else: a person looks before the asset is dropped.
otherwise(notify("ops", "Unhandled LightFlow error").then(fail("Unhandled LightFlow error: ops was told")));
"#;

fn failure(code: u16, is_api: bool) -> Failure {
    let f = if is_api { Failure::api(code, "benchmark") } else { Failure::asset(code, "benchmark") };
    f.expect("a valid benchmark failure")
}

/// A history that has recorded `failure` once, as a host's loop does before deciding.
fn history_of(failure: &Failure) -> History {
    let mut history = History::new(SEED);
    history.record_failure(failure);
    history
}

// ---- The hand-written baseline ----

/// How a waiting stage spreads its delay.
#[derive(Clone, Copy)]
enum Spread {
    None,
    Full,
    Proportional(f64),
}

/// The backoff of a waiting stage, in seconds.
struct Profile {
    initial: f64,
    multiplier: f64,
    max_delay: f64,
    min_delay: f64,
    spread: Spread,
}

/// `T`: job-level transient.
const T: Profile =
    Profile { initial: 60.0, multiplier: 4.0, max_delay: 1800.0, min_delay: 0.0, spread: Spread::Proportional(0.25) };
/// `TH`: the remote side is throttling.
const TH: Profile =
    Profile { initial: 300.0, multiplier: 3.0, max_delay: 3600.0, min_delay: 0.0, spread: Spread::Proportional(0.25) };
/// `API`: a LightFlow API call (also `API + #{ reconcile_first: false }`: the delay is the same).
const API: Profile = Profile { initial: 1.0, multiplier: 2.0, max_delay: 60.0, min_delay: 0.0, spread: Spread::Full };
/// `ONCE`: `#{ attempts: 1, initial: "5m" }` with retry's defaults.
const ONCE: Profile =
    Profile { initial: 300.0, multiplier: 2.0, max_delay: 300.0, min_delay: 0.0, spread: Spread::None };
/// `TWICE`: `#{ attempts: 2, initial: "1m", multiplier: 4.0, jitter: 0.25 }`, max_delay 5 min by default.
const TWICE: Profile =
    Profile { initial: 60.0, multiplier: 4.0, max_delay: 300.0, min_delay: 0.0, spread: Spread::Proportional(0.25) };
/// The republication of 3005: `#{ attempts: 3, initial: "30s", min_delay: "30s", multiplier: 2.0 }`.
const REPUBLISH: Profile =
    Profile { initial: 30.0, multiplier: 2.0, max_delay: 300.0, min_delay: 30.0, spread: Spread::None };

/// The first stage of a chain: an action that waits by a profile, or one that acts at once.
enum First {
    Wait(ActionKind, &'static Profile),
    Now(ActionKind),
}

/// The hand-written equivalent of `Policies::defaults().decide(..)` for the first stage of each chain: a `match`
/// over every code and range of `policies/00-lightflow.rhai`, then the same backoff arithmetic.
///
/// `attempt` is the attempt within the first stage, from 1; the jitter stream is the library's for a job whose
/// earlier decisions were the `attempt - 1` attempts of this stage. Retry-After hints are not modelled.
fn baseline(code: u16, is_api: bool, attempt: u32, seed: u64) -> (ActionKind, Option<Duration>) {
    use ActionKind::{Fail, FixCredentials, Notify, Reconcile, Republish, Retry};
    use First::{Now, Wait};
    let first = if is_api {
        match code {
            401 | 403 => Now(FixCredentials),
            404 => Now(Fail),
            408 | 429 | 500..=599 => Wait(Retry, &API),
            400..=499 => Now(Fail),
            _ => Wait(Retry, &ONCE),
        }
    } else {
        match code {
            // General (1xxx).
            1001 | 1003 => Wait(Retry, &ONCE),
            1002 => Now(Notify),
            // Storage.
            2001 | 2002 | 2408 => Wait(Retry, &T),
            2003..=2006 | 2404 | 2066 => Now(Fail),
            2007 | 2401 | 2403 => Now(FixCredentials),
            2429 | 2503 => Wait(Retry, &TH),
            2400..=2499 => Now(Fail),
            2500..=2599 => Wait(Retry, &T),
            2070 => Wait(Retry, &TWICE),
            // Protection.
            2050 | 2053 | 2060 | 2063 => Wait(Retry, &ONCE),
            2051 | 2054 | 2055 | 2061 | 2064 | 2065 => Wait(Retry, &T),
            2052 | 2062 => Now(Notify),
            // Brightcove (3xxx).
            3001 => Wait(Retry, &T),
            3002 => Now(Fail),
            3003 => Now(Reconcile),
            3004 => Wait(Retry, &ONCE),
            3005 => Wait(Republish, &REPUBLISH),
            // Packaging and uploading (4xxx).
            4001..=4003 | 4013 => Wait(Retry, &TWICE),
            4004 => Wait(Retry, &T),
            4005 | 4014 => Wait(Retry, &ONCE),
            // Inference and encoder.
            6001 => Wait(Retry, &TWICE),
            7001 => Wait(Retry, &ONCE),
            // otherwise
            _ => Wait(Retry, &ONCE),
        }
    };
    match first {
        Now(kind) => (kind, None),
        Wait(kind, profile) => (kind, Some(delay(profile, attempt, seed))),
    }
}

/// `initial × multiplier^(attempt−1)` capped at `max_delay`, jittered, clamped, rounded to whole milliseconds.
#[inline]
fn delay(p: &Profile, attempt: u32, seed: u64) -> Duration {
    let n = attempt.max(1) - 1;
    let base = (p.initial * p.multiplier.powi(n.min(64) as i32)).min(p.max_delay);
    let secs = match p.spread {
        Spread::None => base,
        Spread::Full => base * unit(seed, n),
        Spread::Proportional(q) => base * (1.0 - q + 2.0 * q * unit(seed, n)),
    };
    let d = Duration::from_secs_f64(secs.clamp(p.min_delay, p.max_delay));
    Duration::from_millis(d.as_secs() * 1000 + u64::from(d.subsec_nanos() + 500_000) / 1_000_000)
}

/// The uniform number in `[0, 1)` the library draws for a job's `decisions`-th decision.
#[inline]
fn unit(seed: u64, decisions: u32) -> f64 {
    SplitMix64::seed_from_u64(seed ^ u64::from(decisions).wrapping_mul(0x9E37_79B9_7F4A_7C15)).random::<f64>()
}

/// Checks the baseline against the library: every asset code and API status, every attempt of the first stage,
/// several seeds. Panics on the first difference.
fn check_baseline(policies: &Policies) {
    let keys = (1000..=9999).map(|c| (c, false)).chain((400..=599).map(|s| (s, true)));
    for (code, is_api) in keys {
        let f = failure(code, is_api);
        assert_eq!(f.kind() == FailureKind::Api, is_api);
        for seed in [0, 1, SEED, 0xDEAD_BEEF_CAFE_F00D] {
            let mut history = History::new(seed);
            loop {
                history.record_failure(&f);
                let d = policies.decide(&f, &history, &Context::new());
                if d.stage() != Some(1) {
                    break;
                }
                let expected = (d.kind(), d.delay());
                let got = baseline(code, is_api, d.attempt(), seed);
                assert_eq!(got, expected, "baseline differs from the library for {} attempt {}", f.key(), d.attempt());
                history.record(&d);
                history.advance(d.delay().unwrap_or_default());
            }
        }
    }
}

// ---- Groups ----

fn table_decision(c: &mut Criterion) {
    let policies = Policies::defaults();
    assert!(!policies.has_decide());
    let ctx = Context::new();
    let mut group = c.benchmark_group("table_decision");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (id, code, is_api) in CASES {
        let f = failure(code, is_api);
        let history = history_of(&f);
        bench_decide(&mut group, id, &policies, &f, &history, &ctx);
    }
    group.finish();
}

/// Times one decision: the action and its delay, as a host reads them.
fn bench_decide(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    policies: &Policies,
    failure: &Failure,
    history: &History,
    ctx: &Context,
) {
    group.bench_function(id, |b| {
        b.iter(|| {
            let d = policies.decide(black_box(failure), black_box(history), black_box(ctx));
            black_box((d.kind(), d.delay()))
        })
    });
}

fn hand_written_match(c: &mut Criterion) {
    check_baseline(&Policies::defaults());
    let mut group = c.benchmark_group("hand_written_match");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (id, code, is_api) in CASES {
        group.bench_function(id, |b| {
            b.iter(|| black_box(baseline(black_box(code), black_box(is_api), black_box(1), black_box(SEED))))
        });
    }
    group.finish();
}

fn rhai_decide(c: &mut Criterion) {
    let policies = Policies::builder().source("10-site.rhai", SCRIPT).build().expect("the decide script loads");
    assert!(policies.has_decide());
    let cases = [
        ("returns_policy_2006_4k", 2006, r#"{"asset": {"4k": true}}"#, ActionKind::Resubmit),
        ("falls_through_2503_pro", 2503, r#"{"plan": "pro"}"#, ActionKind::Retry),
    ];
    let mut group = c.benchmark_group("rhai_decide");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (id, code, ctx, expected) in cases {
        let f = failure(code, false);
        let history = history_of(&f);
        let ctx = Context::from_json(ctx).expect("a valid context");
        let d = policies.decide(&f, &history, &ctx);
        assert_eq!(d.kind(), expected, "{id}");
        assert!(d.script_error().is_none(), "{id}: {:?}", d.script_error());
        bench_decide(&mut group, id, &policies, &f, &history, &ctx);
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let loaded = Policies::builder().source("10-site.rhai", OVERRIDE).build().expect("the override file loads");
    assert_eq!(loaded.sources().len(), 2);
    let mut group = c.benchmark_group("load");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("defaults_plus_override", |b| {
        b.iter(|| Policies::builder().source("10-site.rhai", black_box(OVERRIDE)).build().map(|p| p.rules().len()))
    });
    group.finish();
}

/// How long a hostile script takes to be refused at load: each must be refused well within a second.
fn refuse_hostile(c: &mut Criterion) {
    let scripts = [
        ("endless_loop", "let x = 0;\nloop { x += 1; }"),
        ("unbounded_recursion", "fn f(n) { f(n + 1) }\nf(0);"),
        ("huge_string", "let s = \"xxxxxxxxxxxxxxxx\";\nloop { s += s; }"),
    ];
    let mut group = c.benchmark_group("refuse_hostile");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (id, script) in scripts {
        assert!(Policies::builder().source("site.rhai", script).build().is_err(), "{id} must be refused");
        group.bench_function(id, |b| {
            b.iter(|| Policies::builder().source("site.rhai", black_box(script)).build().is_err())
        });
    }
    group.finish();
}

criterion_group!(benches, table_decision, hand_written_match, rhai_decide, load, refuse_hostile);
criterion_main!(benches);
