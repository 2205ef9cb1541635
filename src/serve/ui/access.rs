//! Who may see the web view, and who may act: tokens of two roles, the sessions a login opens, and the CSRF
//! tokens of their forms.
//!
//! - A token is a viewer's (read) or an operator's (read and act), as the service's configuration lists them.
//!   Tokens are compared in constant time, every configured token each time, so that the time taken says
//!   nothing of which one nearly matched.
//! - A login sets a session cookie that holds no token: `v1.<issued>.<mac>`, the MAC an HMAC-SHA256 under the
//!   view's key of the time it was issued and the token. It is checked against every token; it lasts
//!   [`UiAccess::session_lifetime`], and a token removed from the configuration ends its sessions.
//! - Each session has its CSRF token, an HMAC of the session under the same key: every form that acts carries
//!   it, and an action without it (or with another session's) is refused.
//! - Who acted is logged as the role and a fingerprint of the token (8 hex digits of its SHA-256), never the
//!   token itself.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sees every page; acts on nothing.
    Viewer,
    /// Sees every page, and cancels jobs or makes them due now.
    Operator,
}

impl Role {
    /// `viewer` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// Who made a request: a role, the fingerprint of their token, and their session (for the CSRF token).
#[derive(Clone, PartialEq, Eq)]
pub struct Who {
    /// Their role.
    pub role: Role,
    /// 8 hex digits of the SHA-256 of their token.
    pub fingerprint: String,
    /// The session's id: its cookie, or (for a bearer token) a MAC of the token.
    session: String,
}

impl fmt::Debug for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Who").field("role", &self.role).field("fingerprint", &self.fingerprint).finish()
    }
}

impl Who {
    /// `operator:1a2b3c4d`, as actions are logged.
    pub fn label(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.fingerprint)
    }

    /// Whether they may act.
    pub fn can_act(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The view's tokens and its session key.
///
/// ```
/// use lightflow_remedy::serve::{Role, UiAccess};
///
/// let access = UiAccess::new(vec!["view-token".into()], vec!["op-token".into()])?;
/// assert_eq!(access.role_of("op-token"), Some(Role::Operator));
/// assert_eq!(access.role_of("view-token"), Some(Role::Viewer));
/// assert_eq!(access.role_of("guess"), None);
/// # Ok::<(), lightflow_remedy::serve::AccessError>(())
/// ```
#[derive(Clone)]
pub struct UiAccess {
    viewers: Vec<String>,
    operators: Vec<String>,
    key: [u8; 32],
    lifetime: Duration,
    secure: bool,
}

impl fmt::Debug for UiAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UiAccess")
            .field("viewers", &self.viewers.len())
            .field("operators", &self.operators.len())
            .field("lifetime", &self.lifetime)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// A session key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The OS gave no random numbers.
    #[error("no random numbers for the session key: {0}")]
    Random(String),
    /// A key given as text is not 32 bytes of base64.
    #[error("the session key is not 32 bytes of base64")]
    BadKey,
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "remedy_ui";

impl UiAccess {
    /// Access for `viewers` and `operators` (empty tokens are dropped; a token in both lists is an operator's),
    /// with a session key made from the OS's random numbers: sessions last until this process ends, or the
    /// lifetime runs out. Replicas behind one load balancer share a key: [`UiAccess::with_key`].
    pub fn new(viewers: Vec<String>, operators: Vec<String>) -> Result<UiAccess, AccessError> {
        use rand::TryRng as _;
        let mut key = [0u8; 32];
        rand::rngs::SysRng.try_fill_bytes(&mut key).map_err(|e| AccessError::Random(e.to_string()))?;
        let clean = |list: Vec<String>| list.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(UiAccess {
            viewers: clean(viewers).collect(),
            operators: clean(operators).collect(),
            key,
            lifetime: Duration::from_secs(12 * 3600),
            secure: false,
        })
    }

    /// The same access with the session key `base64` (32 bytes, standard base64), e.g. one the replicas share.
    pub fn with_key(mut self, base64: &str) -> Result<UiAccess, AccessError> {
        let text = base64.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(text).map_err(|_| AccessError::BadKey)?;
        self.key = bytes.try_into().map_err(|_| AccessError::BadKey)?;
        Ok(self)
    }

    /// How long a login lasts. Default 12 hours.
    pub fn session_lifetime(mut self, lifetime: Duration) -> UiAccess {
        self.lifetime = lifetime.max(Duration::from_secs(60));
        self
    }

    /// Marks the session cookie `Secure` (sent over HTTPS only): for a view reached through HTTPS.
    pub fn secure_cookie(mut self, secure: bool) -> UiAccess {
        self.secure = secure;
        self
    }

    /// Whether any token is configured (without one, every page is refused).
    pub fn has_tokens(&self) -> bool {
        !(self.viewers.is_empty() && self.operators.is_empty())
    }

    /// The role of `token`, if it is one of the configured tokens (compared in constant time, each of them).
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let matches = |list: &[String]| {
            list.iter().fold(false, |hit, t| {
                hit | (t.len() == token.len() && bool::from(t.as_bytes().ct_eq(token.as_bytes())))
            })
        };
        let (operator, viewer) = (matches(&self.operators), matches(&self.viewers));
        if operator {
            Some(Role::Operator)
        } else if viewer {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    /// Who holds `token` (a bearer token, or one given at login), if anyone.
    pub(crate) fn who_by_token(&self, token: &str) -> Option<Who> {
        let role = self.role_of(token)?;
        let session = format!("bearer.{}", URL_SAFE_NO_PAD.encode(self.mac(&["bearer", token])));
        Some(Who { role, fingerprint: fingerprint(token), session })
    }

    /// The cookie value of a session opened now with `token`.
    pub(crate) fn open_session(&self, token: &str) -> String {
        let issued = now_secs();
        format!("v1.{issued}.{}", URL_SAFE_NO_PAD.encode(self.mac(&["session", &issued.to_string(), token])))
    }

    /// Who a session cookie is, if it is one of a configured token's and has not run out.
    pub(crate) fn who_by_session(&self, cookie: &str) -> Option<Who> {
        let rest = cookie.strip_prefix("v1.")?;
        let (issued, mac) = rest.split_once('.')?;
        let issued_at: u64 = issued.parse().ok()?;
        let now = now_secs();
        if issued_at > now.saturating_add(60) || now.saturating_sub(issued_at) > self.lifetime.as_secs() {
            return None;
        }
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        // Every token is tried, so that the time taken says nothing of which one it was.
        let mut found: Option<(Role, &str)> = None;
        for (role, list) in [(Role::Viewer, &self.viewers), (Role::Operator, &self.operators)] {
            for token in list {
                let expected = self.mac(&["session", issued, token]);
                if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
                    found = Some((role, token));
                }
            }
        }
        let (mut role, token) = found?;
        // A token listed for both roles is an operator's, whichever list matched last.
        role = self.role_of(token).unwrap_or(role);
        Some(Who { role, fingerprint: fingerprint(token), session: cookie.to_owned() })
    }

    /// The CSRF token of `who`'s session.
    pub(crate) fn csrf(&self, who: &Who) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&["csrf", &who.session]))
    }

    /// Whether `given` is `who`'s CSRF token (in constant time).
    pub(crate) fn csrf_ok(&self, who: &Who, given: &str) -> bool {
        let expected = self.csrf(who);
        expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    }

    /// The `Set-Cookie` value that opens the session `value` under `path`.
    pub(crate) fn cookie(&self, value: &str, path: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{SESSION_COOKIE}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            self.lifetime.as_secs()
        )
    }

    /// The `Set-Cookie` value that ends the session under `path`.
    pub(crate) fn end_cookie(&self, path: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
    }

    fn mac(&self, parts: &[&str]) -> [u8; 32] {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.key);
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        mac.update(b"lightflow-remedy ui v1");
        for part in parts {
            // Each part's length first: no two lists of parts make the same text.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// 8 hex digits of the SHA-256 of `token`: enough to tell tokens apart in a log, nothing to guess one from.
pub fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_hold_no_token_and_name_their_role() {
        let access = UiAccess::new(vec!["v-token".into(), " ".into()], vec!["o-token".into()]).unwrap();
        let cookie = access.open_session("o-token");
        assert!(!cookie.contains("o-token"));
        let who = access.who_by_session(&cookie).unwrap();
        assert_eq!((who.role, who.fingerprint.len()), (Role::Operator, 8));
        assert_eq!(access.who_by_session(&access.open_session("v-token")).unwrap().role, Role::Viewer);
        // Another key, a changed time, a changed MAC: no session.
        let other = UiAccess::new(vec!["v-token".into()], vec!["o-token".into()]).unwrap();
        assert!(other.who_by_session(&cookie).is_none());
        let (head, mac) = cookie.rsplit_once('.').unwrap();
        let later = head.replace("v1.", "v1.1");
        assert!(access.who_by_session(&format!("{later}.{mac}")).is_none());
        assert!(access.who_by_session(&format!("{head}.{}", mac.replace(&mac[..2], "AA"))).is_none());
        assert!(access.who_by_session("v1.x.y").is_none() && access.who_by_session("").is_none());
        // A session too old is over.
        let old = format!("v1.1000.{}", URL_SAFE_NO_PAD.encode(access.mac(&["session", "1000", "o-token"])));
        assert!(access.who_by_session(&old).is_none());
        // CSRF tokens are per session.
        let again = access.who_by_session(&cookie).unwrap();
        assert!(access.csrf_ok(&again, &access.csrf(&who)));
        let bearer = access.who_by_token("o-token").unwrap();
        assert!(!access.csrf_ok(&bearer, &access.csrf(&who)));
        assert!(!access.csrf_ok(&who, ""));
        assert!(!UiAccess::new(vec![], vec![" ".into()]).unwrap().has_tokens());
    }
}
