//! Walking a rule's chain from where the job's [`History`] stands to the [`Decision`]: the first stage that may
//! still act, its attempt and its delay.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::SplitMix64;

use super::decision::{Decision, RuleRef};
use super::history::History;
use crate::classify::Failure;
use crate::diagnostic::Diagnostic;

/// Walks `rule`'s chain from where `history` stands: the first stage that may still act, its attempt and
/// its delay. Pure: the jitter comes from the history's seed and decision count. `script_error` is an error
/// of a `decide` function passed over on the way here.
#[inline(always)]
pub(crate) fn walk<'p>(
    rule: RuleRef<'p>,
    failure: &Failure,
    history: &History,
    script_error: Option<Box<Diagnostic>>,
) -> Decision<'p> {
    let r = rule.get();
    let stages = r.policy().stages();
    let (mut stage, mut used, mut started, mut previous) = match history.position(r.key()) {
        Some(p) => (p.stage as usize, p.used, p.started, p.last_delay),
        None => (0, 0, history.elapsed(), None),
    };
    let repeated = history.streak() >= 2;
    let mut rng = None;
    while let Some(s) = stages.get(stage) {
        let allowed = s.attempts().allows(used) && !(s.give_up_on_repeat() && used > 0 && repeated);
        if allowed {
            let Some(schedule) = s.schedule() else {
                return Decision {
                    rule,
                    stage: Some(stage as u32),
                    attempt: used.saturating_add(1),
                    delay: None,
                    delay_source: None,
                    script_error,
                };
            };
            let unit = rng.get_or_insert_with(|| jitter_rng(history)).random::<f64>();
            let (delay, source) = schedule.delay(used.saturating_add(1), previous, failure.retry_after(), unit);
            let within = match schedule.options().max_elapsed {
                Some(max) => history.elapsed().saturating_sub(started).saturating_add(delay) <= max,
                None => true,
            };
            if within {
                return Decision {
                    rule,
                    stage: Some(stage as u32),
                    attempt: used.saturating_add(1),
                    delay: Some(delay),
                    delay_source: Some(source),
                    script_error,
                };
            }
        }
        stage += 1;
        used = 0;
        started = history.elapsed();
        previous = None;
    }
    Decision { rule, stage: None, attempt: 0, delay: None, delay_source: None, script_error }
}

fn jitter_rng(history: &History) -> SplitMix64 {
    // One stream per decision of the job, so that a seed reproduces every delay of every attempt.
    SplitMix64::seed_from_u64(history.seed() ^ u64::from(history.decisions()).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
