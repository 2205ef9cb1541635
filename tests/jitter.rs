//! The jitter formulas, checked by the distribution of their delays ("Exponential Backoff And Jitter"):
//! full `uniform(0, d)`, equal `d/2 + uniform(0, d/2)`, decorrelated `min(cap, uniform(initial, 3 × previous))`,
//! and a proportion `d × uniform(1 − p, 1 + p)`.
//!
//! Two levels: the schedule's arithmetic over evenly spread uniform numbers (exact means), and whole decisions
//! over many job seeds (the seeded RNG as the engine uses it).

use std::time::Duration;

use lightflow_remedy::decide::{Backoff, Jitter, Schedule};
use lightflow_remedy::{Context, Failure, History, Policies};

const SECOND: f64 = 1.0;

fn schedule(jitter: Jitter) -> Schedule {
    Schedule::new(Backoff {
        initial: Duration::from_secs(10),
        multiplier: 2.0,
        max_delay: Duration::from_secs(100),
        jitter,
        ..Backoff::default()
    })
}

/// Delays at `attempt` (previous delay `previous`) for `n` uniform numbers spread evenly over `[0, 1)`.
fn spread(s: &Schedule, attempt: u32, previous: Option<Duration>, n: usize) -> Vec<f64> {
    (0..n).map(|i| s.delay(attempt, previous, None, (i as f64 + 0.5) / n as f64).0.as_secs_f64()).collect()
}

struct Summary {
    min: f64,
    max: f64,
    mean: f64,
}

fn summary(xs: &[f64]) -> Summary {
    Summary {
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mean: xs.iter().sum::<f64>() / xs.len() as f64,
    }
}

/// The share of `xs` within `[low, high]`.
fn share(xs: &[f64], low: f64, high: f64) -> f64 {
    xs.iter().filter(|x| (low..=high).contains(*x)).count() as f64 / xs.len() as f64
}

fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not within {tolerance} of {expected}");
}

#[test]
fn each_formula_has_its_bounds_and_mean() {
    // Attempt 3: base delay 40 s. (jitter, previous, low, high, mean)
    let table = [
        (Jitter::None, None, 40.0, 40.0, 40.0),
        (Jitter::Full, None, 0.0, 40.0, 20.0),
        (Jitter::Equal, None, 20.0, 40.0, 30.0),
        (Jitter::Proportional(0.25), None, 30.0, 50.0, 40.0),
        (Jitter::Proportional(1.0), None, 0.0, 80.0, 40.0),
        // uniform(10, 3 × 20) = uniform(10, 60): below the cap.
        (Jitter::Decorrelated, Some(20), 10.0, 60.0, 35.0),
        // uniform(10, 120) capped at 100: E = (∫10..100 x dx + 100 × 20) / 110 = 63.18 s.
        // Capping the interval first, uniform(10, 100), would give 55 s.
        (Jitter::Decorrelated, Some(40), 10.0, 100.0, (4950.0 + 2000.0) / 110.0),
        // No previous delay: the first draw is uniform(initial, 3 × initial).
        (Jitter::Decorrelated, None, 10.0, 30.0, 20.0),
    ];
    for (jitter, previous, low, high, mean) in table {
        let xs = spread(&schedule(jitter), 3, previous.map(Duration::from_secs), 10_000);
        let s = summary(&xs);
        let what = format!("{jitter} after {previous:?}");
        close(s.min, low, 0.02 * SECOND, &format!("{what}: min"));
        close(s.max, high, 0.02 * SECOND, &format!("{what}: max"));
        close(s.mean, mean, 0.01 * SECOND, &format!("{what}: mean"));
    }
}

#[test]
fn decorrelated_draws_above_the_cap_land_on_it() {
    let xs = spread(&schedule(Jitter::Decorrelated), 2, Some(Duration::from_secs(40)), 11_000);
    // P(uniform(10, 120) ≥ 100) = 20 / 110.
    close(share(&xs, 100.0, 100.0), 20.0 / 110.0, 0.001, "share at the cap");
    // Below the cap the draws are spread evenly: [10, 55] holds 45 / 110 of them.
    close(share(&xs, 10.0, 55.0), 45.0 / 110.0, 0.001, "share of [10, 55]");
}

/// The delays of the `attempt`-th consecutive failure of one code, for job seeds `0..n`.
fn decided(policies: &Policies, attempt: u32, n: u64) -> Vec<f64> {
    let failure = Failure::asset(2001, "").unwrap();
    (0..n)
        .map(|seed| {
            let e = policies.explain(&failure, attempt, &Context::new(), seed);
            e.first().delay().expect("a retry waits").as_secs_f64()
        })
        .collect()
}

fn policy(jitter: &str) -> Policies {
    let script = format!(
        r#"on(2001, retry(#{{ attempts: 5, initial: "10s", multiplier: 2.0, max_delay: "100s", jitter: {jitter} }}));"#
    );
    Policies::builder().defaults(false).source("jitter.rhai", script).build().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn seeded_decisions_follow_the_formulas() {
    const N: u64 = 20_000;
    // (jitter, attempt, low, high, mean); the base delay at attempt 3 is 40 s. The tolerance on a mean is
    // about six standard errors.
    let table = [
        (r#""full""#, 3, 0.0, 40.0, 20.0, 0.5),
        (r#""equal""#, 3, 20.0, 40.0, 30.0, 0.25),
        ("0.25", 3, 30.0, 50.0, 40.0, 0.25),
        (r#""decorrelated""#, 1, 10.0, 30.0, 20.0, 0.25),
    ];
    for (jitter, attempt, low, high, mean, tolerance) in table {
        let xs = decided(&policy(jitter), attempt, N);
        let s = summary(&xs);
        assert!(s.min >= low && s.max <= high, "{jitter}: [{}, {}] outside [{low}, {high}]", s.min, s.max);
        close(s.mean, mean, tolerance, jitter);
        // Spread over the whole interval, not bunched: each quarter holds about a quarter.
        let q = (high - low) / 4.0;
        for i in 0..4 {
            let part = share(&xs, low + q * i as f64, low + q * (i + 1) as f64);
            close(part, 0.25, 0.02, &format!("{jitter}: quarter {i}"));
        }
    }
}

#[test]
fn seeded_decorrelated_decisions_match_a_reference_walk() {
    // The reference: sleep = min(cap, uniform(base, sleep × 3)), from sleep = base, with its own RNG.
    const N: u64 = 20_000;
    let (base, cap) = (10.0, 100.0);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        // xorshift64*: independent of the library's RNG.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let policies = policy(r#""decorrelated""#);
    for attempt in 1..=4u32 {
        let reference: Vec<f64> = (0..N)
            .map(|_| {
                let mut sleep: f64 = base;
                for _ in 0..attempt {
                    let draw = base + uniform() * (sleep * 3.0 - base);
                    sleep = draw.min(cap);
                }
                sleep
            })
            .collect();
        let ours = decided(&policies, attempt, N);
        let (r, o) = (summary(&reference), summary(&ours));
        assert!(o.min >= base && o.max <= cap, "attempt {attempt}: [{}, {}]", o.min, o.max);
        close(o.mean, r.mean, 1.0, &format!("attempt {attempt}: mean against the reference"));
        close(share(&ours, cap, cap), share(&reference, cap, cap), 0.02, &format!("attempt {attempt}: at the cap"));
    }
}

#[test]
fn the_history_seed_alone_picks_the_draw() {
    let policies = policy(r#""full""#);
    let failure = Failure::asset(2001, "").unwrap();
    let at = |seed| {
        let mut h = History::new(seed);
        h.record_failure(&failure);
        policies.decide(&failure, &h, &Context::new()).delay()
    };
    assert_eq!(at(7), at(7));
    assert!((0..32).map(at).collect::<std::collections::HashSet<_>>().len() > 16, "seeds give different draws");
}
