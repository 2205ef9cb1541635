//! History: what has happened to one job so far.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use smallvec::SmallVec;

use super::action::CredentialScope;
use super::decision::Decision;
use super::rules::RuleKey;
use crate::classify::{Failure, FailureKey};

/// What has happened to one job: attempts, elapsed time, codes seen, positions in policy chains.
///
/// Bounded whatever happens: at most [`History::MAX_SEEN`] codes and [`History::MAX_POSITIONS`] positions are
/// kept (the oldest make room), and every counter saturates, also in a history read back from JSON.
///
/// A [`Decision`] depends on nothing but the policies, the failure, the history, the context and the history's
/// seed. The engine records each failure and each decision here; a host that runs its own loop does the same:
///
/// ```
/// use lightflow_remedy::{Context, Failure, History, Policies};
/// use std::time::Duration;
///
/// let policies = Policies::defaults();
/// let failure = Failure::asset(2503, "service unavailable")?;
/// let mut history = History::new(7);
/// let mut delays = Vec::new();
/// loop {
///     history.record_failure(&failure);
///     let decision = policies.decide(&failure, &history, &Context::default());
///     if decision.action().reason().is_some() {
///         break; // fail: the chain is over
///     }
///     delays.push(decision.delay().unwrap_or_default());
///     history.record(&decision);
///     history.advance(decision.delay().unwrap_or_default());
/// }
/// assert_eq!(delays.len(), 3); // the throttled profile: three resubmissions, then fail
/// assert!(delays[0] >= Duration::from_secs(3 * 60) && delays[2] >= Duration::from_secs(30 * 60));
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct History {
    seed: u64,
    #[serde(with = "crate::millis")]
    elapsed: Duration,
    attempts: u32,
    decisions: u32,
    // Inline room for the usual case (one or two codes, one rule): no allocation per job.
    #[serde(deserialize_with = "capped_seen")]
    seen: SmallVec<[Seen; 2]>,
    last: Option<FailureKey>,
    streak: u32,
    #[serde(deserialize_with = "capped_positions")]
    positions: SmallVec<[Position; 1]>,
    repaired: Repaired,
}

/// How often one code has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The code.
    pub key: FailureKey,
    /// How many times.
    pub count: u32,
}

/// Where a job stands in one rule's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The rule.
    pub rule: RuleKey,
    /// The current stage's index in the chain, from 0 ([`Decision::stage`] counts the same stage from 1).
    pub stage: u32,
    /// How many times the current stage has acted.
    pub used: u32,
    /// The job's elapsed time when the current stage began.
    #[serde(with = "crate::millis")]
    pub started: Duration,
    /// The current stage's last delay.
    #[serde(with = "crate::millis::opt", default)]
    pub last_delay: Option<Duration>,
}

/// The credential scopes repaired during a job: one bit each, so that a job keeps them inline. Written as a
/// list of scope names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<CredentialScope>", into = "Vec<CredentialScope>")]
struct Repaired(u8);

impl Repaired {
    const fn bit(scope: CredentialScope) -> u8 {
        1 << scope as u8
    }

    fn contains(self, scope: CredentialScope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    fn insert(&mut self, scope: CredentialScope) {
        self.0 |= Self::bit(scope);
    }

    fn iter(self) -> impl Iterator<Item = CredentialScope> {
        CredentialScope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl From<Vec<CredentialScope>> for Repaired {
    fn from(scopes: Vec<CredentialScope>) -> Self {
        let mut set = Repaired::default();
        scopes.into_iter().for_each(|s| set.insert(s));
        set
    }
}

impl From<Repaired> for Vec<CredentialScope> {
    fn from(set: Repaired) -> Self {
        set.iter().collect()
    }
}

impl History {
    /// The most distinct codes a history counts; a new one makes room by forgetting the one first seen.
    pub const MAX_SEEN: usize = 32;
    /// The most rules a history keeps a position in; a new one makes room by forgetting the one least
    /// recently used.
    pub const MAX_POSITIONS: usize = 32;

    /// An empty history whose decisions draw jitter from `seed`.
    pub fn new(seed: u64) -> Self {
        History { seed, ..History::default() }
    }

    /// The seed of the jitter.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Time since the job's first failure.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Sets the time since the job's first failure (the engine reads it off its clock).
    pub fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Adds to the elapsed time.
    pub fn advance(&mut self, by: Duration) {
        self.elapsed = self.elapsed.saturating_add(by);
    }

    /// How many resubmissions and re-publications have been decided.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many decisions have been recorded.
    pub fn decisions(&self) -> u32 {
        self.decisions
    }

    /// How many times `key` has been seen.
    pub fn seen(&self, key: FailureKey) -> u32 {
        self.seen.iter().find(|s| s.key == key).map_or(0, |s| s.count)
    }

    /// Every code seen, with its count, in order of first sight.
    pub fn seen_all(&self) -> &[Seen] {
        &self.seen
    }

    /// The last failure's key.
    pub fn last(&self) -> Option<FailureKey> {
        self.last
    }

    /// How many times in a row the last code has been seen.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Where the job stands in `rule`'s chain, if it has been there.
    #[inline]
    pub fn position(&self, rule: &RuleKey) -> Option<&Position> {
        self.positions.iter().find(|p| p.rule == *rule)
    }

    /// Whether credentials of `scope` were repaired during this job.
    pub fn repaired(&self, scope: CredentialScope) -> bool {
        self.repaired.contains(scope)
    }

    /// Every scope repaired so far, in the order of [`CredentialScope::ALL`].
    pub fn repaired_all(&self) -> impl Iterator<Item = CredentialScope> + '_ {
        self.repaired.iter()
    }

    /// Records a new failure of the job, before deciding on it.
    pub fn record_failure(&mut self, failure: &Failure) {
        let key = failure.key();
        match self.seen.iter_mut().find(|s| s.key == key) {
            Some(seen) => seen.count = seen.count.saturating_add(1),
            None => {
                if self.seen.len() >= History::MAX_SEEN {
                    self.seen.remove(0);
                }
                self.seen.push(Seen { key, count: 1 });
            }
        }
        self.streak = if self.last == Some(key) { self.streak.saturating_add(1) } else { 1 };
        self.last = Some(key);
    }

    /// Records a decision that is being carried out: its stage used one more attempt.
    pub fn record(&mut self, decision: &Decision<'_>) {
        self.decisions = self.decisions.saturating_add(1);
        if decision.kind().awaits_outcome() {
            self.attempts = self.attempts.saturating_add(1);
        }
        let rule = decision.rule().key();
        let elapsed = self.elapsed;
        if let Some(stage) = decision.stage_index() {
            let position = self.position_mut(rule);
            if position.stage != stage {
                *position = Position { rule: rule.clone(), stage, used: 0, started: elapsed, last_delay: None };
            }
            position.used = position.used.saturating_add(1);
            position.last_delay = decision.delay();
        }
    }

    /// Ends the decision's stage early: the host could not do what it asked (e.g. could not fix credentials).
    /// The next decision for the same rule starts at the following stage.
    pub fn skip_stage(&mut self, decision: &Decision<'_>) {
        let Some(stage) = decision.stage_index() else { return };
        let elapsed = self.elapsed;
        let rule = decision.rule().key();
        let position = self.position_mut(rule);
        *position = Position {
            rule: rule.clone(),
            stage: stage.saturating_add(1),
            used: 0,
            started: elapsed,
            last_delay: None,
        };
    }

    /// Records that the host repaired credentials of `scope`.
    pub fn mark_repaired(&mut self, scope: CredentialScope) {
        self.repaired.insert(scope);
    }

    /// The position in `rule`'s chain, moved to the end (the most recently used).
    fn position_mut(&mut self, rule: &RuleKey) -> &mut Position {
        let index = match self.positions.iter().position(|p| p.rule == *rule) {
            Some(i) => {
                let last = self.positions.len() - 1;
                // Usually it is the last already (a job works through one rule at a time).
                if i < last {
                    self.positions[i..].rotate_left(1);
                }
                last
            }
            None => {
                if self.positions.len() >= History::MAX_POSITIONS {
                    self.positions.remove(0);
                }
                self.positions.push(Position {
                    rule: rule.clone(),
                    stage: 0,
                    used: 0,
                    started: self.elapsed,
                    last_delay: None,
                });
                self.positions.len() - 1
            }
        };
        &mut self.positions[index]
    }
}

fn capped_seen<'de, D: Deserializer<'de>>(d: D) -> Result<SmallVec<[Seen; 2]>, D::Error> {
    capped(d, History::MAX_SEEN)
}

fn capped_positions<'de, D: Deserializer<'de>>(d: D) -> Result<SmallVec<[Position; 1]>, D::Error> {
    capped(d, History::MAX_POSITIONS)
}

/// A list read back keeping only its last `cap` items, so that a stored history cannot grow a job past the
/// bounds a live one keeps.
fn capped<'de, D, A>(d: D, cap: usize) -> Result<SmallVec<A>, D::Error>
where
    D: Deserializer<'de>,
    A: smallvec::Array,
    A::Item: Deserialize<'de>,
{
    struct Capped<A>(usize, std::marker::PhantomData<A>);

    impl<'de, A: smallvec::Array> serde::de::Visitor<'de> for Capped<A>
    where
        A::Item: Deserialize<'de>,
    {
        type Value = SmallVec<A>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list")
        }

        fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
            let mut items = SmallVec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() >= self.0 {
                    items.remove(0);
                }
                items.push(item);
            }
            Ok(items)
        }
    }

    d.deserialize_seq(Capped(cap, std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaks_count_the_same_code_in_a_row() {
        let a = Failure::asset(2001, "").unwrap();
        let b = Failure::asset(2002, "").unwrap();
        let mut h = History::new(0);
        for (f, streak) in [(&a, 1), (&a, 2), (&b, 1), (&a, 1), (&a, 2), (&a, 3)] {
            h.record_failure(f);
            assert_eq!(h.streak(), streak);
        }
        assert_eq!(h.seen(a.key()), 5);
        assert_eq!(h.seen(b.key()), 1);
        assert_eq!(h.seen(FailureKey::asset(2003)), 0);
    }

    #[test]
    fn seen_codes_are_bounded() {
        let mut h = History::new(0);
        for code in 1000..1100 {
            h.record_failure(&Failure::asset(code, "").unwrap());
        }
        assert_eq!(h.seen_all().len(), History::MAX_SEEN);
        assert_eq!(h.seen(FailureKey::asset(1099)), 1);
        assert_eq!(h.seen(FailureKey::asset(1000)), 0, "the first seen made room");
        let seen: Vec<_> =
            (0..100).map(|i| serde_json::json!({"key": format!("{}", 1000 + i), "count": u32::MAX})).collect();
        let stored: History = serde_json::from_value(serde_json::json!({"seen": seen, "streak": u32::MAX})).unwrap();
        assert_eq!(stored.seen_all().len(), History::MAX_SEEN);
        let mut stored = stored;
        stored.record_failure(&Failure::asset(1099, "").unwrap());
        assert_eq!(stored.seen(FailureKey::asset(1099)), u32::MAX, "counts saturate");
    }

    #[test]
    fn history_round_trips_through_json() {
        let mut h = History::new(42);
        h.record_failure(&Failure::api(503, "x").unwrap());
        h.advance(Duration::from_millis(1500));
        h.mark_repaired(CredentialScope::Api);
        h.mark_repaired(CredentialScope::Storage);
        assert_eq!(h.repaired_all().collect::<Vec<_>>(), [CredentialScope::Storage, CredentialScope::Api]);
        assert!(!h.repaired(CredentialScope::Drm));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), h);
        assert!(serde_json::from_str::<History>(r#"{"seed": 1, "bogus": 2}"#).is_err());
    }
}
