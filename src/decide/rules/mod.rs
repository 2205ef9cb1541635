//! Rules: what a policy source registers, and how a failure finds its policy.
//!
//! A rule pairs a [`Matcher`] with a [`Policy`] and remembers where it was written. Sources are layered: the
//! built-in defaults first, then each policies directory's files by name; later sources override earlier ones.
//! Within one source the most specific matching rule applies (exact code, then the narrowest range, then
//! category, then `otherwise`), after its `decide` function if it has one.

mod matcher;
pub(crate) mod table;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) use matcher::category_of;
pub use matcher::{BadMatcher, Matcher};

use crate::decide::policy::Policy;
use crate::diagnostic::Pos;

/// Where a rule came from: its source, layer, position and matcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The source file (`policies/00-lightflow.rhai` for the built-in defaults).
    pub file: Arc<str>,
    /// The source's layer: 0 for the built-in defaults, then one per file in load order.
    pub layer: usize,
    /// Where the rule (or, for `decide`, the returned policy) was written.
    pub pos: Option<Pos>,
    /// What it matches.
    pub matcher: Matcher,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{}:{} ", self.file, pos.line, pos.column)?,
            None => write!(f, "{} ", self.file)?,
        }
        match self.matcher {
            Matcher::Otherwise | Matcher::Decide => write!(f, "{}", self.matcher),
            m => write!(f, "on({m})"),
        }
    }
}

/// A rule's identity in a job's [`History`](crate::History): attempts are counted per rule.
///
/// Rules of a table are known by source, matcher and what their chain does, so a reload that moves a rule to
/// another line keeps a job's place in it, and one that changes the chain starts it afresh. Policies returned
/// by a `decide` function are known by the line that built them and the shape of their chain (each stage's
/// action and position), so that one whose texts change from call to call keeps its place.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct RuleKey {
    /// The source's file name.
    pub source: Arc<str>,
    /// The matcher.
    pub matcher: Matcher,
    /// For `decide` policies, the line that built the policy; 0 otherwise.
    #[serde(default)]
    pub line: u32,
    /// [`Policy::fingerprint`] of a table rule's chain; the shape of a `decide` policy's chain.
    #[serde(default)]
    pub chain: u64,
}

impl PartialEq for RuleKey {
    fn eq(&self, other: &Self) -> bool {
        // Keys of one loaded set share their source string: compare the pointer before the text.
        self.matcher == other.matcher
            && self.line == other.line
            && self.chain == other.chain
            && (Arc::ptr_eq(&self.source, &other.source) || self.source == other.source)
    }
}

impl std::hash::Hash for RuleKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source.hash(state);
        self.matcher.hash(state);
        self.line.hash(state);
        self.chain.hash(state);
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.source, self.matcher)?;
        if self.line > 0 {
            write!(f, "@{}", self.line)?;
        }
        Ok(())
    }
}

/// A source's name in rule keys: its file name, not its path, so that moving the policies directory between a
/// shutdown and a resume keeps every job's place.
pub(crate) fn key_source(file: &Arc<str>) -> Arc<str> {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    if name.len() == file.len() { file.clone() } else { Arc::from(name) }
}

/// A policy with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    policy: Policy,
    origin: Origin,
    key: RuleKey,
}

impl Rule {
    pub(crate) fn new(policy: Policy, origin: Origin) -> Self {
        let source = key_source(&origin.file);
        let chain = policy.fingerprint();
        Rule::shared(policy, chain, origin, source)
    }

    /// A rule of a table, whose policy's [`Policy::fingerprint`] (`chain`) and key source (see [`key_source`])
    /// the caller computed once: the rules of one `on([..])` share both.
    pub(crate) fn shared(policy: Policy, chain: u64, origin: Origin, source: Arc<str>) -> Self {
        let key = RuleKey { source, matcher: origin.matcher, line: 0, chain };
        Rule { policy, origin, key }
    }

    /// A rule a `decide` function returned. Its key is where the chain was built and the shape of its stages,
    /// not their texts or options: a chain whose messages or delays differ from one call to the next (they
    /// interpolate the history) keeps its place.
    pub(crate) fn decided(policy: Policy, origin: Origin, source: Arc<str>) -> Self {
        let line = origin.pos.map_or(0, |p| p.line);
        let key = RuleKey { source, matcher: origin.matcher, line, chain: policy.shape() };
        Rule { policy, origin, key }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where it came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Its identity in a history.
    pub fn key(&self) -> &RuleKey {
        &self.key
    }
}
