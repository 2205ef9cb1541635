//! The frame every page shares (the navigation, who is signed in, the stylesheet and the script, both served
//! by the view itself), and the small helpers of its text: times, links, escaping of paths.
//!
//! Everything a page shows goes through maud's `(..)` splices, which escape it: nothing that came from outside
//! (asset ids, messages, callback fields, policy text) is ever written as markup.

use maud::{DOCTYPE, Markup, html};

use super::access::Who;
use crate::store::Timestamp;

/// The pages of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Jobs,
    Policies,
    None,
}

/// A page's frame: its title, where the view is mounted, who looks, and the CSRF token of their forms.
pub(crate) struct Frame<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) who: Option<&'a Who>,
    pub(crate) csrf: Option<&'a str>,
    pub(crate) nav: Nav,
    /// Seconds after which the page reloads itself (the script does it), if it does.
    pub(crate) refresh: Option<u64>,
}

impl Frame<'_> {
    /// The whole page around `body`.
    pub(crate) fn page(&self, body: Markup) -> Markup {
        let base = self.base;
        let link = |nav: Nav, path: &str, label: &str| {
            let href = if path.is_empty() { home(base) } else { format!("{base}{path}") };
            html! { a href=(href) class=[(self.nav == nav).then_some("current")] { (label) } }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · remedy" }
                    link rel="stylesheet" href={ (base) "/static/ui.css" };
                    script src={ (base) "/static/ui.js" } defer {}
                }
                body data-refresh=[self.refresh] {
                    header {
                        span.brand { "remedy" }
                        @if self.who.is_some() {
                            nav {
                                (link(Nav::Overview, "", "Overview"))
                                (link(Nav::Jobs, "/jobs", "Jobs"))
                                (link(Nav::Policies, "/policies", "Policies"))
                            }
                        }
                        @if let (Some(who), Some(csrf)) = (self.who, self.csrf) {
                            form.who method="post" action={ (base) "/logout" } {
                                span.role { (who.role.as_str()) " " code { (who.fingerprint) } }
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
    }
}

/// The overview's path: the view's own (`/ui`: nested routers answer at their path, not below it), `/` at
/// the root.
pub(crate) fn home(base: &str) -> String {
    if base.is_empty() { "/".to_owned() } else { base.to_owned() }
}

/// A time as the pages show it: `2026-01-31 12:00:05 UTC`.
pub(crate) fn at(t: Timestamp) -> String {
    let text = t.to_string();
    // RFC 3339 with milliseconds: shown to the second.
    match text.get(..19) {
        Some(head) => format!("{} UTC", head.replace('T', " ")),
        None => text,
    }
}

/// How long ago (or from now) `t` is: `3m ago`, `in 2h 5m`.
pub(crate) fn ago(t: Timestamp, now: Timestamp) -> String {
    if t <= now { format!("{} ago", span(now.0 - t.0)) } else { format!("in {}", span(t.0 - now.0)) }
}

/// A span of milliseconds, roughly: `45s`, `3m 10s`, `2h 5m`, `3d 4h`.
pub(crate) fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `text` as one segment of a URL path: every byte but the unreserved ones percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pairs` as a query string (`a=1&b=x%20y`), the empty values left out.
pub(crate) fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

/// A notice at the top of a page.
pub(crate) fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={ "notice " (kind) } role="status" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_times_are_written_safely() {
        assert_eq!(segment("a-1_b.c~"), "a-1_b.c~");
        assert_eq!(segment("<script>/x y#?"), "%3Cscript%3E%2Fx%20y%23%3F");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(query([("state", "failed"), ("code", ""), ("asset", "a&b")]), "state=failed&asset=a%26b");
        assert_eq!(at(Timestamp(1_700_000_000_000)), "2023-11-14 22:13:20 UTC");
        assert_eq!(ago(Timestamp(0), Timestamp(190_000)), "3m 10s ago");
        assert_eq!(ago(Timestamp(7_500_000), Timestamp(0)), "in 2h 5m");
    }
}
