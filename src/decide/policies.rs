//! The loaded policy set: sources layered, tables merged, and `decide`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::context::Context;
use super::decision::{Decision, RuleRef};
use super::history::History;
use super::policy::{Policy, Stage};
use super::rules::table::Table;
use super::rules::{Matcher, Origin, Rule};
use super::script::loader::Source;
use super::script::{self, DecideFn, limits};
use super::sources::read_directory;
use super::takeover::takeovers;
use super::walk::walk;
use crate::classify::Failure;
use crate::diagnostic::{Diagnostic, Severity};

/// The name of the built-in defaults, as diagnostics and provenance show it.
pub const DEFAULTS_NAME: &str = "policies/00-lightflow.rhai";

/// The text of the built-in defaults, `policies/00-lightflow.rhai`.
pub const DEFAULTS_SOURCE: &str = include_str!("../../policies/00-lightflow.rhai");

/// A policy set that could not be loaded: every error found, and the warnings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// The errors, each naming file:line:column.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings found on the way.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut errors = self.errors().peekable();
        while let Some(e) = errors.next() {
            write!(f, "{e}")?;
            if errors.peek().is_some() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// One step of resolution: a merged table of rules, or a source's `decide` function.
#[derive(Debug)]
enum Step {
    Table(Table),
    Decide(DecideFn),
}

/// A loaded, validated policy set. Cheap to share behind an `Arc`; decisions borrow it.
///
/// ```
/// use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
///
/// let policies = Policies::builder()
///     .source("site.rhai", r#"on(2404, retry(#{ attempts: 1, initial: "10s" }));"#)
///     .build()?;
/// let decision = policies.decide(&Failure::asset(2404, "")?, &History::new(0), &Context::new());
/// assert_eq!(decision.kind(), ActionKind::Retry);
/// assert_eq!(decision.delay(), Some(std::time::Duration::from_secs(10)));
/// assert_eq!(decision.rule().origin().file.as_ref(), "site.rhai");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Policies {
    rules: Vec<Arc<Rule>>,
    steps: Vec<Step>,
    /// The last source's `otherwise`, or the built-in fail when no source has one.
    fallback: Arc<Rule>,
    sources: Vec<Arc<str>>,
    warnings: Vec<Diagnostic>,
    decision_time: Duration,
}

impl Policies {
    /// The built-in defaults alone.
    pub fn defaults() -> Self {
        // The defaults are part of the library and tested; they always load.
        PoliciesBuilder::default().build().expect("the built-in default policies load")
    }

    /// A builder: the built-in defaults, then the directories and inline sources it is given.
    pub fn builder() -> PoliciesBuilder {
        PoliciesBuilder::default()
    }

    /// The defaults, then every `*.rhai` file of each directory, by file name.
    ///
    /// ```
    /// use lightflow_remedy::{ActionKind, Context, Failure, History, Policies};
    ///
    /// let dir = std::env::temp_dir().join(format!("remedy-doc-load-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("10-site.rhai"), r#"on(2404, notify("ops", "input missing"));"#)?;
    /// let policies = Policies::load([&dir])?;
    /// let f = Failure::asset(2404, "not found")?;
    /// assert_eq!(policies.decide(&f, &History::new(0), &Context::new()).kind(), ActionKind::Notify);
    /// // A broken file is an error naming the file, line and column.
    /// std::fs::write(dir.join("20-broken.rhai"), "on(2404, retyr());")?;
    /// let err = Policies::load([&dir]).unwrap_err();
    /// assert!(err.to_string().contains("20-broken.rhai:1:"), "{err}");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load<P: AsRef<Path>>(directories: impl IntoIterator<Item = P>) -> Result<Self, LoadError> {
        directories.into_iter().fold(Policies::builder(), |b, d| b.directory(d.as_ref())).build()
    }

    /// Decides what to do about `failure`, given the job's `history` and the host's `ctx`.
    ///
    /// Pure and deterministic: the same inputs and history seed give the same decision. Sources are tried
    /// from the last to the first: each one's `decide` function, then its most specific matching rule (exact
    /// code, narrowest range, category). A failure that no source's rule matches gets the last source's
    /// `otherwise`. When no source has a `decide` function this is one table lookup plus the backoff
    /// arithmetic.
    ///
    /// A `decide` function that fails (an error, too many operations, its time limit, a wrong return type) is
    /// passed over as if it had returned `()`; the decision carries the error ([`Decision::script_error`]) and
    /// it is logged.
    pub fn decide<'p>(&'p self, failure: &Failure, history: &History, ctx: &Context) -> Decision<'p> {
        let key = failure.key();
        // Without `decide` functions there is one merged table: one lookup.
        if let [Step::Table(table)] = self.steps.as_slice() {
            let rule = table.get(key).and_then(|i| self.rules.get(i)).unwrap_or(&self.fallback);
            return walk(RuleRef::Table(rule), failure, history, None);
        }
        let mut script_error = None;
        for step in &self.steps {
            match step {
                Step::Table(table) => {
                    if let Some(rule) = table.get(key).and_then(|i| self.rules.get(i)) {
                        return walk(RuleRef::Table(rule), failure, history, script_error);
                    }
                }
                Step::Decide(decide) => match decide.call(failure, history, ctx, self.decision_time) {
                    Ok(Some(rule)) => {
                        return walk(RuleRef::Owned(Arc::new(rule)), failure, history, script_error);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file = %decide.file(), error = %e, "decide function failed; falling through");
                        script_error.get_or_insert(Box::new(e));
                    }
                },
            }
        }
        walk(RuleRef::Table(&self.fallback), failure, history, script_error)
    }

    /// The warnings found while loading (hidden rules, retries that cannot succeed, unbounded chains).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The sources, in load order (layer order).
    pub fn sources(&self) -> &[Arc<str>] {
        &self.sources
    }

    /// Every rule registered by `on` and `otherwise`, in load order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Whether some source defines `decide` (decisions then run script code).
    pub fn has_decide(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Decide(_)))
    }

    fn from_sources(sources: &[Source], load_time: Duration, decision_time: Duration) -> Result<Self, LoadError> {
        let mut loaded = script::loader::load(sources, load_time);
        if loaded.has_errors() {
            return Err(LoadError { diagnostics: loaded.diagnostics });
        }
        let tables: Vec<&Table> = loaded.layers.iter().map(|l| &l.table).collect();
        let otherwise: Vec<Option<usize>> = loaded.layers.iter().map(|l| l.otherwise).collect();
        let notes = takeovers(&tables, &otherwise, &loaded.rules);
        loaded.diagnostics.extend(notes);
        let fallback = otherwise.iter().rev().flatten().find_map(|&i| loaded.rules.get(i).cloned());
        // Walk the layers from the last: a layer with `decide` closes the tables above it, then its own
        // rules join those below it, so that each source's function runs before its own rules.
        let mut steps = Vec::new();
        let mut pending: Vec<Table> = Vec::new();
        for layer in loaded.layers.into_iter().rev() {
            if let Some(decide) = layer.decide {
                if !pending.is_empty() {
                    steps.push(Step::Table(Table::merge(pending.iter().rev())));
                    pending.clear();
                }
                steps.push(Step::Decide(decide));
            }
            pending.push(layer.table);
        }
        if !pending.is_empty() {
            steps.push(Step::Table(Table::merge(pending.iter().rev())));
        }
        let fallback = fallback.unwrap_or_else(|| {
            Arc::new(Rule::new(
                Policy::new(Stage::fail("no policy rule matches this failure, and no source has `otherwise`")),
                Origin { file: Arc::from("<no rule>"), layer: 0, pos: None, matcher: Matcher::Otherwise },
            ))
        });
        Ok(Policies {
            rules: loaded.rules,
            steps,
            fallback,
            sources: sources.iter().map(|s| s.name.clone()).collect(),
            warnings: loaded.diagnostics,
            decision_time,
        })
    }

    /// The names of the sources that define `decide`, in load order (as [`Policies::sources`] names them).
    ///
    /// ```
    /// use lightflow_remedy::Policies;
    /// let p = Policies::builder().source("10-site.rhai", "fn decide(f, ctx) { }").build()?;
    /// assert_eq!(p.decide_sources(), ["10-site.rhai"]);
    /// assert!(Policies::defaults().decide_sources().is_empty());
    /// # Ok::<(), lightflow_remedy::LoadError>(())
    /// ```
    pub fn decide_sources(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Decide(d) => Some(d.file().as_ref()),
                Step::Table(_) => None,
            })
            .collect();
        // Steps run from the last source to the first.
        names.reverse();
        names
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("sources", &self.sources)
            .field("rules", &self.rules.len())
            .field("has_decide", &self.has_decide())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// Builds a [`Policies`]: the built-in defaults (unless turned off), then directories and inline sources in the
/// order given. Later sources override earlier ones.
///
/// ```
/// use lightflow_remedy::Policies;
///
/// let err = Policies::builder()
///     .source("bad.rhai", "on(2499..=2400, fail(\"x\"));")
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().starts_with("bad.rhai:1:1: the range 2499..=2400 is inverted"));
/// ```
#[derive(Debug, Clone)]
pub struct PoliciesBuilder {
    defaults: bool,
    inputs: Vec<Input>,
    load_time: Duration,
    decision_time: Duration,
}

#[derive(Debug, Clone)]
enum Input {
    Directory(PathBuf),
    Inline(Arc<str>, String),
}

impl Default for PoliciesBuilder {
    fn default() -> Self {
        PoliciesBuilder {
            defaults: true,
            inputs: Vec::new(),
            load_time: limits::LOAD_TIME,
            decision_time: limits::DECISION_TIME,
        }
    }
}

impl PoliciesBuilder {
    /// Whether the built-in defaults come first (they do unless turned off).
    pub fn defaults(mut self, yes: bool) -> Self {
        self.defaults = yes;
        self
    }

    /// Adds every `*.rhai` file of `dir` (not its subdirectories), by file name.
    pub fn directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inputs.push(Input::Directory(dir.into()));
        self
    }

    /// Adds a source from text, named `name` in diagnostics and provenance.
    pub fn source(mut self, name: impl Into<Arc<str>>, text: impl Into<String>) -> Self {
        self.inputs.push(Input::Inline(name.into(), text.into()));
        self
    }

    /// The wall time the sources may take at load to be parsed and to run their top levels, together (1 s by
    /// default; the built-in defaults are not counted): the file being loaded when it runs out is refused,
    /// and so are the files after it.
    ///
    /// ```
    /// use lightflow_remedy::Policies;
    /// use std::time::Duration;
    ///
    /// let slow = r#"let s = "x"; s.pad(4000, "x"); loop { s.index_of("y"); }"#;
    /// let err = Policies::builder()
    ///     .load_time_limit(Duration::from_millis(20))
    ///     .source("slow.rhai", slow)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("time limit"), "{err}");
    /// ```
    pub fn load_time_limit(mut self, limit: Duration) -> Self {
        self.load_time = limit;
        self
    }

    /// The wall time one call of a `decide` function may take (10 ms by default); past it the call fails and
    /// the decision falls through to the rules, with the error on it.
    ///
    /// ```
    /// use lightflow_remedy::{Context, Failure, History, Policies};
    /// use std::time::Duration;
    ///
    /// let busy = r#"fn decide(f, ctx) { let s = "x"; s.pad(4000, "x"); loop { s.index_of("y"); } }"#;
    /// let policies =
    ///     Policies::builder().decision_time_limit(Duration::from_millis(1)).source("busy.rhai", busy).build()?;
    /// let d = policies.decide(&Failure::asset(2404, "")?, &History::new(0), &Context::new());
    /// assert!(d.script_error().unwrap().to_string().contains("time limit"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decision_time_limit(mut self, limit: Duration) -> Self {
        self.decision_time = limit;
        self
    }

    /// The directories added, in order.
    pub(crate) fn directories(&self) -> Vec<PathBuf> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                Input::Directory(d) => Some(d.clone()),
                Input::Inline(..) => None,
            })
            .collect()
    }

    /// Reads, checks and loads every source; all errors are reported together.
    pub fn build(self) -> Result<Policies, LoadError> {
        let mut sources = Vec::new();
        if self.defaults {
            sources.push(Source {
                name: Arc::from(DEFAULTS_NAME),
                text: Ok(DEFAULTS_SOURCE.to_owned()),
                built_in: true,
            });
        }
        for input in self.inputs {
            match input {
                Input::Inline(name, text) => sources.push(Source { name, text: Ok(text), built_in: false }),
                Input::Directory(dir) => sources.extend(read_directory(&dir)),
            }
        }
        Policies::from_sources(&sources, self.load_time, self.decision_time)
    }
}
