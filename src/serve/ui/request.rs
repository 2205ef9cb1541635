//! Who a request is from, and where the view is mounted: the extractors every page and action starts with.
//!
//! A request names its holder by `Authorization: Bearer <token>` or by the session cookie a login set. Without
//! either (or with a token or session that is not one of the view's), the answer is 401 with the sign-in form
//! and nothing else; an action by a viewer is 403.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::access::{SESSION_COOKIE, Who};
use super::layout::{Frame, Nav, home, notice};
use super::state::View;

/// A request from someone the view knows (any role), and where the view is mounted.
pub(crate) struct Seen {
    pub(crate) who: Who,
    pub(crate) base: String,
}

/// Where the view is mounted: the part of the request's path before the view's own (`/ui`), empty at the root.
pub(crate) fn base_of(parts: &Parts) -> String {
    let full = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.path(), |o| o.0.path());
    let own = parts.uri.path();
    let base = match full.strip_suffix(own) {
        Some(base) => base,
        // A nested router's root is asked for by the path it is nested at (`/ui` for its `/`).
        None if own == "/" => full,
        None => "",
    };
    base.trim_end_matches('/').to_owned()
}

/// Who `headers` name: a bearer token, else the session cookie.
pub(crate) fn who_of(view: &View, headers: &HeaderMap) -> Option<Who> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = bearer {
        return view.access.who_by_token(token);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))?;
    view.access.who_by_session(cookie)
}

impl FromRequestParts<Arc<View>> for Seen {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, view: &Arc<View>) -> Result<Self, Self::Rejection> {
        let base = base_of(parts);
        match who_of(view, &parts.headers) {
            Some(who) => Ok(Seen { who, base }),
            None => Err(unauthorized(&base, view.access.has_tokens(), None)),
        }
    }
}

/// 401: the sign-in form, and nothing of the data.
pub(crate) fn unauthorized(base: &str, configured: bool, said: Option<&str>) -> Response {
    let frame = Frame { title: "Sign in", base, who: None, csrf: None, nav: Nav::None, refresh: None };
    let body = html! {
        h1 { "Sign in" }
        @if let Some(said) = said { (notice("error", said)) }
        @if configured {
            p { "This view needs a token: a viewer's to look, an operator's to act." }
            form.login method="post" action={ (base) "/login" } {
                label { "Token " input type="password" name="token" autocomplete="off" required; }
                button type="submit" { "Sign in" }
            }
        } @else {
            (notice("error", "No token is configured for the web view: set REMEDY_UI_VIEWER_TOKENS or \
                REMEDY_UI_OPERATOR_TOKENS (the names the [ui] section gives)."))
        }
    };
    let mut response = (StatusCode::UNAUTHORIZED, frame.page(body)).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"remedy\""));
    response
}

/// 403 with a page that says why.
pub(crate) fn forbidden(base: &str, why: &str) -> Response {
    let frame = Frame { title: "Refused", base, who: None, csrf: None, nav: Nav::None, refresh: None };
    let body = html! { h1 { "Refused" } (notice("error", why)) p { a href=(home(base)) { "Back to the overview" } } };
    (StatusCode::FORBIDDEN, frame.page(body)).into_response()
}
