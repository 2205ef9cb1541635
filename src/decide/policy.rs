//! Policies: chains of stages, each an action with its attempts and backoff options.
//!
//! Scripts build these with `retry(..)`, `resubmit(..)`, `fix_credentials(..)`, `republish(..)`,
//! `reconcile()`, `notify(..)` and `fail(..)`, chained with `.then(..)`. Each stage counts its own attempts; an
//! exhausted stage hands over to the next; a chain that runs out fails.
//!
//! ```
//! use lightflow_remedy::decide::{Action, ActionKind, Backoff, CredentialScope, Policy, Stage};
//! use std::time::Duration;
//!
//! let policy = Policy::new(Stage::fix_credentials(CredentialScope::Storage))
//!     .then(Stage::retry(Backoff { initial: Duration::from_secs(60), ..Backoff::default() }.attempts(1)))
//!     .then(Stage::fail("Storage credentials were repaired but the download still fails"));
//! assert_eq!(policy.stages().len(), 3);
//! assert_eq!(policy.stages()[0].action().kind(), ActionKind::FixCredentials);
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::action::{Action, CredentialScope};
use super::backoff::{Attempts, Backoff, Jitter};
use super::schedule::Schedule;
use crate::diagnostic::Pos;

/// One step of a policy chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    action: Action,
    attempts: Attempts,
    give_up_on_repeat: bool,
    schedule: Option<Schedule>,
    pos: Option<Pos>,
}

impl Stage {
    fn once(action: Action) -> Self {
        Stage {
            action,
            attempts: Attempts::Limited(NonZeroU32::MIN),
            give_up_on_repeat: false,
            schedule: None,
            pos: None,
        }
    }

    fn waiting(action: Action, backoff: Backoff) -> Self {
        Stage {
            action,
            attempts: backoff.attempts,
            give_up_on_repeat: backoff.give_up_on_repeat,
            schedule: Some(Schedule::new(backoff)),
            pos: None,
        }
    }

    /// `retry(opts)`: resubmit unchanged after a backoff delay.
    pub fn retry(backoff: Backoff) -> Self {
        Stage::waiting(Action::Retry, backoff)
    }

    /// `resubmit(amend, opts)`: resubmit with changed parameters.
    pub fn resubmit(amend: Map<String, Value>, backoff: Backoff) -> Self {
        Stage::waiting(Action::Resubmit { amend: Arc::new(amend) }, backoff)
    }

    /// `fix_credentials(scope)`: ask the host to repair credentials, then resubmit.
    pub fn fix_credentials(scope: CredentialScope) -> Self {
        Stage::once(Action::FixCredentials { scope })
    }

    /// `republish(target, opts)`: redo only the publication.
    pub fn republish(target: impl Into<Arc<str>>, new_reference_id: bool, backoff: Backoff) -> Self {
        Stage::waiting(Action::Republish { target: target.into(), new_reference_id }, backoff)
    }

    /// `reconcile()`: ask the host whether the earlier attempt succeeded.
    pub fn reconcile() -> Self {
        Stage::once(Action::Reconcile)
    }

    /// `notify(channel, message)`: tell an operator.
    pub fn notify(channel: impl Into<Arc<str>>, message: impl Into<Arc<str>>) -> Self {
        Stage::once(Action::Notify { channel: channel.into(), message: message.into() })
    }

    /// `fail(reason)`: give up.
    pub fn fail(reason: impl Into<Arc<str>>) -> Self {
        Stage::once(Action::Fail { reason: reason.into() })
    }

    /// The same stage, marked as written at `pos` of its source.
    pub fn at(self, pos: Pos) -> Self {
        self.at_opt(Some(pos))
    }

    pub(crate) fn at_opt(mut self, pos: Option<Pos>) -> Self {
        self.pos = pos;
        self
    }

    /// What the stage does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// How many times it acts.
    pub fn attempts(&self) -> Attempts {
        self.attempts
    }

    /// Whether the stage ends when the same code comes straight back.
    pub fn give_up_on_repeat(&self) -> bool {
        self.give_up_on_repeat
    }

    /// Whether the host is asked to reconcile before each attempt of this stage.
    pub fn reconcile_first(&self) -> bool {
        self.backoff().is_some_and(|b| b.reconcile_first)
    }

    /// How long a submitted attempt of this stage may take to report before the engine asks `check`, if the
    /// stage says (its `await_result` option); `None` for the remediator's own.
    ///
    /// ```
    /// use lightflow_remedy::decide::{Backoff, Stage};
    /// use std::time::Duration;
    ///
    /// let encode = Stage::retry(Backoff { await_result: Some(Duration::from_secs(7200)), ..Backoff::default() });
    /// assert_eq!(encode.await_result(), Some(Duration::from_secs(7200)));
    /// assert_eq!(Stage::retry(Backoff::default()).await_result(), None);
    /// assert_eq!(Stage::reconcile().await_result(), None);
    /// ```
    pub fn await_result(&self) -> Option<Duration> {
        self.backoff().and_then(|b| b.await_result)
    }

    /// The backoff of a waiting stage.
    pub fn backoff(&self) -> Option<&Backoff> {
        self.schedule.as_ref().map(Schedule::options)
    }

    pub(crate) fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }

    /// Where in its source the stage was written, if it came from a script.
    pub fn pos(&self) -> Option<Pos> {
        self.pos
    }

    /// A digest of what the stage does, with its parameters and options but not its position. Stable across
    /// processes and builds.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        (self.action.kind() as u8).hash(&mut h);
        match &self.action {
            Action::Retry | Action::Reconcile => {}
            Action::Resubmit { amend } => {
                for (key, value) in amend.iter() {
                    key.hash(&mut h);
                    hash_json(value, &mut h);
                }
            }
            Action::FixCredentials { scope } => (*scope as u8).hash(&mut h),
            Action::Republish { target, new_reference_id } => (target, new_reference_id).hash(&mut h),
            Action::Notify { channel, message } => (channel, message).hash(&mut h),
            Action::Fail { reason } => reason.hash(&mut h),
        }
        match self.attempts {
            Attempts::Limited(n) => n.get().hash(&mut h),
            Attempts::Unlimited => 0_u32.hash(&mut h),
        }
        self.give_up_on_repeat.hash(&mut h);
        if let Some(b) = self.backoff() {
            let jitter = match b.jitter {
                Jitter::None => 0,
                Jitter::Full => 1,
                Jitter::Equal => 2,
                Jitter::Decorrelated => 3,
                Jitter::Proportional(p) => p.to_bits(),
            };
            (b.initial, b.multiplier.to_bits(), b.max_delay, b.min_delay, b.max_elapsed, jitter).hash(&mut h);
            (b.respect_retry_after, b.max_hint, b.reconcile_first).hash(&mut h);
            // Only when set: the stages written before the option existed keep their digests (and the jobs
            // at them their place in their chains across an upgrade).
            if let Some(wait) = b.await_result {
                wait.hash(&mut h);
            }
        }
        h.finish()
    }

    /// Whether this stage can run without bound: unlimited attempts and no `max_elapsed`.
    pub fn is_unbounded(&self) -> bool {
        self.attempts == Attempts::Unlimited && self.backoff().is_none_or(|b| b.max_elapsed.is_none())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Retry => f.write_str("retry")?,
            Action::Resubmit { amend } => write!(f, "resubmit {}", Value::Object((**amend).clone()))?,
            Action::FixCredentials { scope } => return write!(f, "fix_credentials({scope})"),
            Action::Republish { target, new_reference_id } => {
                write!(f, "republish {target}{}", if *new_reference_id { " with a new reference id" } else { "" })?
            }
            Action::Reconcile => return f.write_str("reconcile"),
            Action::Notify { channel, message } => return write!(f, "notify {channel}: {message:?}"),
            Action::Fail { reason } => return write!(f, "fail: {reason:?}"),
        }
        let Some(b) = self.backoff() else { return Ok(()) };
        let d = humantime::format_duration;
        match b.attempts {
            Attempts::Limited(n) if n.get() == 1 => write!(f, " once after {}", d(b.initial))?,
            attempts => write!(f, " ×{attempts} from {} ×{} up to {}", d(b.initial), b.multiplier, d(b.max_delay))?,
        }
        if b.min_delay > Duration::ZERO {
            write!(f, ", at least {}", d(b.min_delay))?;
        }
        if b.jitter != Jitter::None {
            write!(f, ", jitter {}", b.jitter)?;
        }
        if let Some(max) = b.max_elapsed {
            write!(f, ", within {}", d(max))?;
        }
        if b.reconcile_first {
            f.write_str(", reconciling first")?;
        }
        if let Some(wait) = b.await_result {
            write!(f, ", results awaited up to {}", d(wait))?;
        }
        Ok(())
    }
}

/// A chain of stages. Shared, not copied, when cloned: the rules of one `on([..])` hold the same chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    stages: Arc<[Stage]>,
}

impl Policy {
    /// A policy of one stage.
    pub fn new(first: Stage) -> Self {
        Policy { stages: Arc::new([first]) }
    }

    /// The same chain with `next` appended: it runs when the stages before it are exhausted.
    pub fn then(self, next: impl Into<Policy>) -> Self {
        let next = next.into();
        Policy { stages: self.stages.iter().chain(next.stages.iter()).cloned().collect() }
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// A digest of what the chain does (not where it is written): a job's place in a chain is kept across a
    /// reload only while the chain stays the same. Stable across processes and builds.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        for stage in self.stages.iter() {
            h.write_u64(stage.digest());
        }
        h.finish()
    }

    /// A digest of the chain's shape: each stage's action and where it was written, not its texts or
    /// options. Stable across processes and builds.
    pub(crate) fn shape(&self) -> u64 {
        let mut h = Fnv::new();
        for stage in self.stages.iter() {
            h.write_u8(stage.action.kind() as u8);
            let Pos { line, column } = stage.pos.unwrap_or(Pos { line: 0, column: 0 });
            h.write_u64(u64::from(line) << 32 | u64::from(column));
        }
        h.finish()
    }

    /// The first stage's action: what happens at the first failure.
    pub fn first_action(&self) -> &Action {
        &self.stages[0].action
    }
}

impl From<Stage> for Policy {
    fn from(stage: Stage) -> Self {
        Policy::new(stage)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{stage}")?;
        }
        Ok(())
    }
}

/// FNV-1a: a digest that does not change between processes or builds, unlike the standard hasher's.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    // Numbers are mixed a word at a time: a decision digests the policy a `decide` function returns.
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x100_0000_01b3).rotate_left(29);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn hash_json(value: &Value, h: &mut Fnv) {
    match value {
        Value::Null => 0_u8.hash(h),
        Value::Bool(b) => (1_u8, b).hash(h),
        Value::Number(n) => (2_u8, n.as_f64().map(f64::to_bits), n.as_i64(), n.as_u64()).hash(h),
        Value::String(s) => (3_u8, s).hash(h),
        Value::Array(items) => {
            (4_u8, items.len()).hash(h);
            items.iter().for_each(|v| hash_json(v, h));
        }
        Value::Object(map) => {
            (5_u8, map.len()).hash(h);
            for (k, v) in map {
                k.hash(h);
                hash_json(v, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Backoff;

    #[test]
    fn digests_see_what_a_stage_does_not_where_it_is() {
        let pos = |line| Pos { line, column: 1 };
        let a = Stage::retry(Backoff::default()).at(pos(1));
        assert_eq!(a.digest(), Stage::retry(Backoff::default()).at(pos(9)).digest());
        assert_ne!(a.digest(), Stage::retry(Backoff::default().attempts(4)).digest());
        assert_ne!(Stage::fail("a").digest(), Stage::fail("b").digest());
        let p = Policy::new(Stage::fail("a"));
        assert_eq!(p.fingerprint(), Policy::new(Stage::fail("a").at(pos(3))).fingerprint());
        assert_ne!(p.fingerprint(), Policy::new(Stage::reconcile()).then(Stage::fail("a")).fingerprint());
        let awaiting = |wait| Stage::retry(Backoff { await_result: wait, ..Backoff::default() });
        let hour = Some(Duration::from_secs(3600));
        assert_ne!(awaiting(hour).digest(), awaiting(None).digest());
        assert_ne!(awaiting(hour).digest(), awaiting(Some(Duration::from_secs(7200))).digest());
    }

    /// `Stage::retry(Backoff::default()).digest()`, as builds before `await_result` computed it.
    const PINNED_RETRY_DIGEST: u64 = 11_691_584_983_656_153_889;

    #[test]
    fn a_digest_is_the_same_as_before_await_result_existed() {
        // Pinned: a stage that does not set the option keeps the digest it had, so that jobs in flight keep
        // their place in their chains when a replica is upgraded.
        assert_eq!(Stage::retry(Backoff::default()).digest(), PINNED_RETRY_DIGEST);
    }

    #[test]
    fn shapes_see_where_stages_are_written_not_what_they_say() {
        let pos = |line| Pos { line, column: 1 };
        let chain = |text: &str| Policy::new(Stage::notify("ops", text).at(pos(2))).then(Stage::fail(text).at(pos(3)));
        assert_eq!(chain("after 1 try").shape(), chain("after 2 tries").shape());
        assert_ne!(chain("x").shape(), Policy::new(Stage::notify("ops", "x").at(pos(2))).shape());
        assert_ne!(
            chain("x").shape(),
            Policy::new(Stage::notify("ops", "x").at(pos(9))).then(Stage::fail("x").at(pos(3))).shape()
        );
    }

    #[test]
    fn unbounded_means_no_count_and_no_time_limit() {
        let unbounded = Backoff { attempts: Attempts::Unlimited, ..Backoff::default() };
        assert!(Stage::retry(unbounded.clone()).is_unbounded());
        let timed = Backoff { max_elapsed: Some(Duration::from_secs(60)), ..unbounded };
        assert!(!Stage::retry(timed).is_unbounded());
        assert!(!Stage::retry(Backoff::default()).is_unbounded());
        assert!(!Stage::fail("x").is_unbounded());
    }
}
