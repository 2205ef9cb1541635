//! The view's stylesheet and script, served by the view itself (the Content-Security-Policy allows nothing
//! inline and nothing from elsewhere). They hold no data: they need no token.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet.
pub(crate) const CSS: &str = include_str!("static/ui.css");
/// The script: select-all checkboxes, and the overview's refresh.
pub(crate) const JS: &str = include_str!("static/ui.js");

/// `text` as `content_type`, cached for an hour.
fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// `GET /static/ui.css`.
pub(crate) async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /static/ui.js`.
pub(crate) async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}
