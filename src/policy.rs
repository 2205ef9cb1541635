//! Policies: chains of stages, each an action with its attempts and backoff options.
//!
//! Scripts build these with `retry(..)`, `resubmit(..)`, `fix_credentials(..)`, `republish(..)`,
//! `reconcile()`, `notify(..)` and `fail(..)`, chained with `.then(..)`. Each stage counts its own attempts; an
//! exhausted stage hands over to the next; a chain that runs out fails.
//!
//! ```
//! use lightflow_remedy::policy::{Action, ActionKind, Backoff, CredentialScope, Policy, Stage};
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
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diagnostic::Pos;
use crate::schedule::Schedule;

/// Which credentials `fix_credentials` asks the host to repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialScope {
    /// The input storage (bucket credentials).
    Storage,
    /// The Brightcove account.
    Brightcove,
    /// The output upload destination.
    Upload,
    /// The DRM key server.
    Drm,
    /// The LightFlow API token.
    Api,
}

crate::names::names!(CredentialScope {
    Storage => "storage",
    Brightcove => "brightcove",
    Upload => "upload",
    Drm => "drm",
    Api => "api",
});

impl FromStr for CredentialScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialScope::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!("unknown credential scope `{s}` (expected one of: storage, brightcove, upload, drm, api)")
        })
    }
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Resubmit the asset unchanged after a backoff delay.
    Retry,
    /// Resubmit with changed parameters; the map goes to the host's `resubmit` hook.
    Resubmit {
        /// The parameters to change, e.g. `{"4k": false}`.
        amend: Arc<Map<String, Value>>,
    },
    /// Ask the host to repair credentials, then resubmit.
    FixCredentials {
        /// Which credentials.
        scope: CredentialScope,
    },
    /// Redo only the publication, not the encoding.
    Republish {
        /// Where to publish, e.g. `brightcove`.
        target: Arc<str>,
        /// Ask the host for a new reference id.
        new_reference_id: bool,
    },
    /// Ask the host whether the earlier attempt in fact succeeded.
    Reconcile,
    /// Tell an operator; not terminal.
    Notify {
        /// Where to send it, e.g. `ops`.
        channel: Arc<str>,
        /// What to say.
        message: Arc<str>,
    },
    /// Give up, with a reason for the host's dead-letter queue.
    Fail {
        /// Why.
        reason: Arc<str>,
    },
}

impl Action {
    /// The action's name, as in JSON and scripts.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Retry => ActionKind::Retry,
            Action::Resubmit { .. } => ActionKind::Resubmit,
            Action::FixCredentials { .. } => ActionKind::FixCredentials,
            Action::Republish { .. } => ActionKind::Republish,
            Action::Reconcile => ActionKind::Reconcile,
            Action::Notify { .. } => ActionKind::Notify,
            Action::Fail { .. } => ActionKind::Fail,
        }
    }

    /// The reason of a `fail`, if this is one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Action::Fail { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The name of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `retry`
    Retry,
    /// `resubmit`
    Resubmit,
    /// `fix_credentials`
    FixCredentials,
    /// `republish`
    Republish,
    /// `reconcile`
    Reconcile,
    /// `notify`
    Notify,
    /// `fail`
    Fail,
}

impl ActionKind {
    /// Whether the host's answer to this action is a new outcome of the asset (a resubmission or a
    /// re-publication), as opposed to a step taken before the next one (`notify`, `reconcile`) or the end.
    pub const fn awaits_outcome(self) -> bool {
        matches!(self, ActionKind::Retry | ActionKind::Resubmit | ActionKind::FixCredentials | ActionKind::Republish)
    }
}

crate::names::names!(ActionKind {
    Retry => "retry",
    Resubmit => "resubmit",
    FixCredentials => "fix_credentials",
    Republish => "republish",
    Reconcile => "reconcile",
    Notify => "notify",
    Fail => "fail",
});

/// How many times a stage acts before it hands over to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// At most this many.
    Limited(NonZeroU32),
    /// No count limit (a `max_elapsed` may still bound the stage).
    Unlimited,
}

impl Attempts {
    /// Exactly `n` attempts; `None` when `n` is 0.
    pub fn limited(n: u32) -> Option<Self> {
        NonZeroU32::new(n).map(Attempts::Limited)
    }

    /// Whether a stage that has acted `used` times may act again.
    #[inline]
    pub fn allows(self, used: u32) -> bool {
        match self {
            Attempts::Limited(n) => used < n.get(),
            Attempts::Unlimited => true,
        }
    }
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempts::Limited(n) => write!(f, "{n}"),
            Attempts::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// How the computed delay is spread, so that many assets do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The computed delay, exactly.
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay / 2, delay]`.
    Equal,
    /// Uniform in `[initial, previous delay × 3]`, capped at `max_delay`.
    Decorrelated,
    /// Uniform in `[delay × (1 − p), delay × (1 + p)]`.
    Proportional(f64),
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jitter::None => f.write_str("none"),
            Jitter::Full => f.write_str("full"),
            Jitter::Equal => f.write_str("equal"),
            Jitter::Decorrelated => f.write_str("decorrelated"),
            Jitter::Proportional(p) => write!(f, "{p}"),
        }
    }
}

/// Backoff options of a waiting stage (`retry`, `resubmit`, `republish`).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// How many times the stage acts. Default 3 for `retry`, 1 for `resubmit` and `republish`.
    pub attempts: Attempts,
    /// The first delay. Default 1 s.
    pub initial: Duration,
    /// Each delay is the previous one times this. Default 2.
    pub multiplier: f64,
    /// No computed delay is longer. Default 5 min.
    pub max_delay: Duration,
    /// No delay, hint or jitter included, is shorter. Default 0.
    pub min_delay: Duration,
    /// The stage ends when its next delay would take it past this much time since it began. Default none.
    pub max_elapsed: Option<Duration>,
    /// How delays are spread. Default none.
    pub jitter: Jitter,
    /// Wait as the server's Retry-After says, clamped to `[min_delay, max_hint]`. Default true.
    pub respect_retry_after: bool,
    /// The longest server hint honoured. Default 5 min.
    pub max_hint: Duration,
    /// End the stage when the same code comes back right after this stage acted. Default false.
    pub give_up_on_repeat: bool,
    /// Before each attempt, ask the host whether the earlier one in fact succeeded (`reconcile`), so that a
    /// non-idempotent call such as `POST /assets` is not repeated after an ambiguous failure. Default false.
    pub reconcile_first: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: Attempts::Limited(NonZeroU32::new(3).expect("3 is not zero")),
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(300),
            min_delay: Duration::ZERO,
            max_elapsed: None,
            jitter: Jitter::None,
            respect_retry_after: true,
            max_hint: Duration::from_secs(300),
            give_up_on_repeat: false,
            reconcile_first: false,
        }
    }
}

impl Backoff {
    /// The same options with `n` attempts (at least 1).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Attempts::Limited(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        self
    }

    /// Checks that the options make sense together; the message says what does not.
    pub fn validate(&self) -> Result<(), String> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(format!("multiplier must be a finite number of at least 1.0, found {}", self.multiplier));
        }
        if self.initial > self.max_delay {
            return Err(format!(
                "initial ({}) is longer than max_delay ({})",
                humantime::format_duration(self.initial),
                humantime::format_duration(self.max_delay)
            ));
        }
        if self.min_delay > self.max_delay {
            return Err(format!(
                "min_delay ({}) is longer than max_delay ({})",
                humantime::format_duration(self.min_delay),
                humantime::format_duration(self.max_delay)
            ));
        }
        if self.min_delay > self.max_hint {
            return Err(format!(
                "min_delay ({}) is longer than max_hint ({})",
                humantime::format_duration(self.min_delay),
                humantime::format_duration(self.max_hint)
            ));
        }
        if let Jitter::Proportional(p) = self.jitter
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("a jitter proportion must lie within 0.0..=1.0, found {p}"));
        }
        Ok(())
    }
}

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
        Ok(())
    }
}

/// A chain of stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    stages: Vec<Stage>,
}

impl Policy {
    /// A policy of one stage.
    pub fn new(first: Stage) -> Self {
        Policy { stages: vec![first] }
    }

    /// The same chain with `next` appended: it runs when the stages before it are exhausted.
    pub fn then(mut self, next: impl Into<Policy>) -> Self {
        self.stages.extend(next.into().stages);
        self
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// A digest of what the chain does (not where it is written): a job's place in a chain is kept across a
    /// reload only while the chain stays the same. Stable across processes and builds.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        for stage in &self.stages {
            h.write_u64(stage.digest());
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
    }

    #[test]
    fn validation_names_the_problem() {
        let cases = [
            (Backoff { multiplier: 0.5, ..Backoff::default() }, "multiplier"),
            (Backoff { multiplier: f64::NAN, ..Backoff::default() }, "multiplier"),
            (Backoff { initial: Duration::from_secs(600), ..Backoff::default() }, "initial"),
            (Backoff { min_delay: Duration::from_secs(600), ..Backoff::default() }, "min_delay"),
            (Backoff { jitter: Jitter::Proportional(1.5), ..Backoff::default() }, "jitter"),
        ];
        for (backoff, word) in cases {
            let err = backoff.validate().expect_err(word);
            assert!(err.contains(word), "{err}");
        }
        assert!(Backoff::default().validate().is_ok());
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

    #[test]
    fn awaits_outcome_splits_actions() {
        let waits: Vec<_> = ActionKind::ALL.into_iter().filter(|k| k.awaits_outcome()).collect();
        assert_eq!(waits.len(), 4);
    }
}
