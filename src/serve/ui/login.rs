//! Signing in and out: `GET /login?token=..` (a link the demo prints) or the form's `POST /login` open a
//! session (an HttpOnly, SameSite=Strict cookie that holds no token) and go to the overview, so that the token
//! leaves the address bar at once; `POST /logout` (with the session's CSRF token) ends it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::Fields;
use super::layout::home;
use super::request::{base_of, forbidden, unauthorized, who_of};
use super::state::View;

/// A 303 to `to`, with `cookie` set.
fn go(to: &str, cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Opens a session for `token`, or says it is not one of the view's.
fn sign_in(view: &View, base: &str, token: Option<&str>) -> Response {
    let Some(token) = token else { return unauthorized(base, view.access.has_tokens(), None) };
    if view.access.role_of(token).is_none() {
        tracing::warn!("a sign-in to the web view with an unknown token was refused");
        return unauthorized(base, view.access.has_tokens(), Some("That token is not one of this view's."));
    }
    let cookie = view.access.cookie(&view.access.open_session(token), &cookie_path(base));
    go(&home(base), &cookie)
}

/// The path the session cookie is sent for: the view's.
fn cookie_path(base: &str) -> String {
    home(base)
}

/// `GET /login`: with `?token=`, signs in; without, the form.
pub(crate) async fn get(State(view): State<Arc<View>>, parts: Parts, RawQuery(query): RawQuery) -> Response {
    let base = base_of(&parts);
    let fields = Fields::query(query.as_deref());
    sign_in(&view, &base, fields.get("token"))
}

/// `POST /login`: the form's token.
pub(crate) async fn post(State(view): State<Arc<View>>, parts: Parts, body: Bytes) -> Response {
    let base = base_of(&parts);
    sign_in(&view, &base, Fields::parse(&body).get("token"))
}

/// `POST /logout`: ends the session (with its CSRF token).
pub(crate) async fn logout(State(view): State<Arc<View>>, parts: Parts, body: Bytes) -> Response {
    let base = base_of(&parts);
    let Some(who) = who_of(&view, &parts.headers) else {
        return unauthorized(&base, view.access.has_tokens(), None);
    };
    let fields = Fields::parse(&body);
    if !view.access.csrf_ok(&who, fields.get("csrf").unwrap_or_default()) {
        return forbidden(&base, "The form's CSRF token is missing or not this session's: reload the page.");
    }
    go(&format!("{base}/login"), &view.access.end_cookie(&cookie_path(&base)))
}
