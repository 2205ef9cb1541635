//! The operator's web view: server-rendered pages (maud; no script but a small file for select-all and the
//! overview's refresh) that show how remediation goes and let an operator steer it, as a router a host nests in
//! its own axum server ([`ui_router`]); `remedy serve` nests it at `/ui`.
//!
//! - `router.rs`: the routes and the security headers. `access.rs`: tokens, roles, sessions, CSRF tokens.
//!   `request.rs`: who a request is from, and where the view is mounted. `login.rs`: signing in and out.
//! - The pages: `overview.rs` (with `chart.rs`), `jobs.rs`, `job.rs` (with `timeline.rs`), `policies.rs` (with
//!   `table.rs`; `explain.rs` shows an explanation on both). `actions.rs`: cancel and retry now.
//! - `layout.rs`: the frame of every page; `form.rs`: reading forms and queries; `assets.rs` and `static/`: the
//!   stylesheet and the script; `state.rs`: what the pages read.

mod access;
mod actions;
mod assets;
mod chart;
mod explain;
mod form;
mod job;
mod jobs;
mod layout;
mod login;
mod overview;
mod policies;
mod request;
mod router;
mod state;
mod table;
mod timeline;

pub use access::{AccessError, Role, SESSION_COOKIE, UiAccess, Who, fingerprint};
pub use router::{CONTENT_SECURITY_POLICY, UiOptions, ui_router};
