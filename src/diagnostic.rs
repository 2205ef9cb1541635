//! Diagnostics: errors and warnings about policy sources, each naming file:line:column.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A line and column in a source, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Pos {
    /// The position of a Rhai position, if it has one.
    pub(crate) fn from_rhai(pos: rhai::Position) -> Option<Pos> {
        Some(Pos { line: pos.line()? as u32, column: pos.position().unwrap_or(1).max(1) as u32 })
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Whether a diagnostic refuses the policy set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The set is refused.
    Error,
    /// The set loads; something in it is probably not what its author meant.
    Warning,
}

/// One error or warning about a policy source.
///
/// Displays as `file:line:col: message` (errors) or `file:line:col: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The source: a file path, or `policies/00-lightflow.rhai` for the built-in defaults.
    pub file: Arc<str>,
    /// Where in the file; `None` for problems with the file as a whole (e.g. it cannot be read).
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(file: &Arc<str>, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, file: file.clone(), pos, message: message.into() }
    }

    pub(crate) fn warning(file: &Arc<str>, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, file: file.clone(), pos, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{}:{}: ", self.file, pos.line, pos.column)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A JSON error's message without the " at line L column C" that serde_json appends: our errors carry the
/// position in their own fields.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}
