//! [`TokenSource`]: where the LightFlow API token comes from (an environment variable or a file), read again on
//! demand, and never shown.
//!
//! LightFlow tokens do not expire, but a user can regenerate one in the portal at any time, after which every
//! system that calls LightFlow needs the new one (LightFlow's authentication guide). So the token is read once,
//! kept, and read again by [`TokenSource::reload`] when a call was refused (`fix_credentials("api")`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The largest token file read: a JWT is a few hundred bytes; anything larger is not a token.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// Where the bearer token is read from, and the token last read.
///
/// Its [`Debug`](fmt::Debug) shows where the token comes from, never the token. Errors name the variable or
/// the file, never what was in it.
///
/// ```
/// use lightflow_remedy::lightflow::TokenSource;
///
/// let source = TokenSource::fixed("eyJhbGciOi.secret.part");
/// assert!(source.check().is_ok());
/// assert!(!format!("{source:?}").contains("secret"));
///
/// // An unset variable is an error that names it, when the token is first needed.
/// let missing = TokenSource::env("LIGHTFLOW_TOKEN_THAT_IS_NOT_SET");
/// let err = missing.check().unwrap_err();
/// assert!(err.to_string().contains("LIGHTFLOW_TOKEN_THAT_IS_NOT_SET"), "{err}");
/// ```
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Origin,
    current: RwLock<Option<Secret>>,
}

/// Where a token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Env(String),
    File(PathBuf),
    Fixed,
}

/// A token, whose text only the client's `Authorization` header sees.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Arc<str>);

impl Secret {
    /// The token's text: for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What [`TokenSource::reload`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// The token read differs from the one kept before (or none was kept): calls use the new one.
    Changed,
    /// The token read is the one kept before.
    Unchanged,
}

/// Why no token could be read. It names the variable or the file, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The environment variable is not set, or not valid Unicode.
    #[error("the LightFlow token variable `{0}` is not set (or not valid UTF-8)")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("the LightFlow token file `{path}` cannot be read: {reason}")]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is larger than a token can be.
    #[error("the LightFlow token file `{path}` has more than {max} bytes: it is not a token")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The most read.
        max: u64,
    },
    /// What was read is empty once surrounding whitespace is taken off.
    #[error("the LightFlow token from {0} is empty")]
    Empty(String),
    /// What was read has characters an HTTP header cannot carry (a control character, or one outside ASCII).
    #[error("the LightFlow token from {0} has characters an HTTP header cannot carry")]
    NotAHeaderValue(String),
}

impl TokenSource {
    /// The token in the environment variable `var` (read when first needed, and again by
    /// [`reload`](TokenSource::reload)).
    pub fn env(var: impl Into<String>) -> Self {
        TokenSource::of(Origin::Env(var.into()), None)
    }

    /// The token in the file at `path` (e.g. a mounted secret), surrounding whitespace taken off.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        TokenSource::of(Origin::File(path.into()), None)
    }

    /// A token given as it is (tests, or a host that reads its secrets itself). `reload` keeps it.
    pub fn fixed(token: impl Into<String>) -> Self {
        let token: String = token.into();
        TokenSource::of(Origin::Fixed, Some(Secret(Arc::from(token.trim()))))
    }

    fn of(origin: Origin, current: Option<Secret>) -> Self {
        TokenSource { inner: Arc::new(Inner { origin, current: RwLock::new(current) }) }
    }

    /// Where the token comes from, in words (`the variable LIGHTFLOW_TOKEN`), for messages.
    pub fn describe(&self) -> String {
        match &self.inner.origin {
            Origin::Env(var) => format!("the variable {var}"),
            Origin::File(path) => format!("the file {}", path.display()),
            Origin::Fixed => "the token given".to_owned(),
        }
    }

    /// Whether a token can be had: the one kept, or, the first time, one read from its source now. For a
    /// check at start-up, so that a missing token is said before the first call needs it.
    pub fn check(&self) -> Result<(), TokenError> {
        self.token().map(|_| ())
    }

    /// The token: the one kept, or, the first time, read from its source.
    pub(crate) fn token(&self) -> Result<Secret, TokenError> {
        if let Some(secret) = self.inner.current.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(secret);
        }
        self.reload()?;
        self.inner.current.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| self.empty())
    }

    /// Reads the token from its source again and keeps it, saying whether it changed. When it cannot be read,
    /// the token kept before (if any) stays in use and the error says why.
    ///
    /// ```
    /// use lightflow_remedy::lightflow::{Reloaded, TokenSource};
    ///
    /// let dir = std::env::temp_dir().join(format!("lightflow-token-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let file = dir.join("token");
    /// std::fs::write(&file, "first\n")?;
    /// let source = TokenSource::file(&file);
    /// assert_eq!(source.reload()?, Reloaded::Changed);
    /// assert_eq!(source.reload()?, Reloaded::Unchanged);
    /// std::fs::write(&file, "regenerated")?;
    /// assert_eq!(source.reload()?, Reloaded::Changed);
    /// std::fs::remove_dir_all(&dir)?;
    /// assert!(source.reload().is_err()); // and the token kept is still used
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload(&self) -> Result<Reloaded, TokenError> {
        let read = match &self.inner.origin {
            Origin::Env(var) => std::env::var(var).map_err(|_| TokenError::EnvMissing(var.clone()))?,
            Origin::File(path) => read_file(path)?,
            Origin::Fixed => return Ok(Reloaded::Unchanged),
        };
        let token = read.trim();
        if token.is_empty() {
            return Err(self.empty());
        }
        // Visible ASCII and spaces only: what a header value can carry, and what a JWT is made of.
        if !token.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(TokenError::NotAHeaderValue(self.describe()));
        }
        let mut current = self.inner.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|kept| kept.expose() == token) {
            return Ok(Reloaded::Unchanged);
        }
        *current = Some(Secret(Arc::from(token)));
        Ok(Reloaded::Changed)
    }

    fn empty(&self) -> TokenError {
        TokenError::Empty(self.describe())
    }
}

fn read_file(path: &Path) -> Result<String, TokenError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| TokenError::FileUnreadable { path: path.to_owned(), reason: e.to_string() };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut text = String::new();
    file.take(MAX_TOKEN_BYTES + 1).read_to_string(&mut text).map_err(unreadable)?;
    if text.len() as u64 > MAX_TOKEN_BYTES {
        return Err(TokenError::FileTooLarge { path: path.to_owned(), max: MAX_TOKEN_BYTES });
    }
    Ok(text)
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.inner.current.read().map(|c| c.is_some()).unwrap_or(false);
        f.debug_struct("TokenSource")
            .field("from", &self.describe())
            .field("token", &if kept { "<redacted>" } else { "<not read yet>" })
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tokens_are_refused_without_being_shown() {
        let dir = tempfile::tempdir().unwrap();
        type IsExpected = fn(&TokenError) -> bool;
        let table: &[(&[u8], IsExpected)] = &[
            (b"  \n", |e| matches!(e, TokenError::Empty(_))),
            (b"abc\x07def", |e| matches!(e, TokenError::NotAHeaderValue(_))),
            ("tokén".as_bytes(), |e| matches!(e, TokenError::NotAHeaderValue(_))),
            (b"\xff\xfe", |e| matches!(e, TokenError::FileUnreadable { .. })),
        ];
        for (i, (content, expected)) in table.iter().enumerate() {
            let path = dir.path().join(format!("t{i}"));
            std::fs::write(&path, content).unwrap();
            let err = TokenSource::file(&path).token().unwrap_err();
            assert!(expected(&err), "{i}: {err:?}");
            let shown = String::from_utf8_lossy(content);
            assert!(shown.trim().is_empty() || !err.to_string().contains(shown.as_ref()), "{err}");
            assert!(!err.to_string().contains("def") && !err.to_string().contains("tokén"), "{err}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_TOKEN_BYTES as usize + 1]).unwrap();
        assert!(matches!(TokenSource::file(&big).token(), Err(TokenError::FileTooLarge { .. })));
    }

    #[test]
    fn a_failed_reload_keeps_the_token_read_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one").unwrap();
        let source = TokenSource::file(&path);
        assert_eq!(source.token().unwrap().expose(), "one");
        std::fs::remove_file(&path).unwrap();
        assert!(source.reload().is_err());
        assert_eq!(source.token().unwrap().expose(), "one");
        assert_eq!(format!("{:?}", source.token().unwrap()), "Secret(<redacted>)");
    }
}
