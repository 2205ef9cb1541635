//! `POST /actions`: an operator cancels jobs or makes them due now, one or many at once (the jobs page's
//! checkboxes, or one job's buttons). The form must carry the session's CSRF token; a viewer is refused (403).
//! Every action is logged in the store (who: the role and the token's fingerprint; what; when; what came of
//! it), listed on the job's page, and written to the service's log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::Fields;
use super::layout::{query, segment};
use super::request::{Seen, forbidden};
use super::state::View;
use crate::store::{CancelAnswer, NewAction, Store, StoreError, Timestamp};

/// The most jobs one action takes.
pub(crate) const MAX_ASSETS: usize = 500;

/// What an operator may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Cancel,
    RetryNow,
}

impl Act {
    pub(crate) fn parse(text: &str) -> Option<Act> {
        match text {
            "cancel" => Some(Act::Cancel),
            "retry_now" => Some(Act::RetryNow),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Act::Cancel => "cancel",
            Act::RetryNow => "retry_now",
        }
    }
}

/// Does `act` on `asset`'s job, and logs it; the answer's name.
async fn act_on(
    store: &dyn Store,
    act: Act,
    asset: &str,
    who: &str,
    role: &str,
    now: Timestamp,
) -> Result<String, StoreError> {
    let job = store.job_of(asset).await?.filter(|row| row.outcome.is_none()).map(|row| row.id);
    let answer = match act {
        Act::Cancel => match store.cancel(asset, now).await? {
            CancelAnswer::Cancelled { .. } => "cancelled",
            CancelAnswer::Requested { .. } => "requested",
            CancelAnswer::NoJob => "no_job",
        },
        Act::RetryNow => match (store.retry_now(asset, now).await?, job) {
            (true, _) => "due_now",
            (false, Some(_)) => "not_at_rest",
            (false, None) => "no_job",
        },
    };
    tracing::info!(action = act.as_str(), asset, who, answer, "web view action");
    let logged = NewAction { asset_id: asset, job, action: act.as_str(), role, who, answer };
    if let Err(e) = store.log_action(logged, now).await {
        tracing::warn!(error = %e, asset, "a web view action could not be logged in the store");
    }
    Ok(answer.to_owned())
}

/// `POST /actions`.
pub(crate) async fn act(State(view): State<Arc<View>>, seen: Seen, body: Bytes) -> Response {
    let Seen { who, base } = seen;
    if !who.can_act() {
        return forbidden(&base, "A viewer's token cannot act: cancel and retry now need an operator's.");
    }
    let fields = Fields::parse(&body);
    if !view.access.csrf_ok(&who, fields.get("csrf").unwrap_or_default()) {
        return forbidden(&base, "The form's CSRF token is missing or not this session's: reload the page.");
    }
    let Some(act) = fields.get("action").and_then(Act::parse) else {
        return (StatusCode::BAD_REQUEST, "`action` must be cancel or retry_now").into_response();
    };
    let assets = fields.all("asset");
    if assets.len() > MAX_ASSETS {
        return (StatusCode::BAD_REQUEST, format!("at most {MAX_ASSETS} jobs at once")).into_response();
    }
    let now = view.clock.now();
    let (fingerprint, role) = (format!("{}:{}", who.role.as_str(), who.fingerprint), who.role.as_str());
    let mut done = 0;
    let mut last = String::new();
    for asset in &assets {
        match act_on(&*view.store, act, asset, &fingerprint, role, now).await {
            Ok(answer) => {
                done += u32::from(matches!(answer.as_str(), "cancelled" | "requested" | "due_now"));
                last = answer;
            }
            Err(StoreError::Invalid { .. }) => last = "invalid".to_owned(),
            Err(e) => {
                tracing::error!(error = %e, "a web view action failed");
                return (StatusCode::SERVICE_UNAVAILABLE, format!("the store cannot act now: {e}")).into_response();
            }
        }
    }
    let n = done.to_string();
    let of = assets.len().to_string();
    let to = match (fields.get("return"), assets.as_slice()) {
        (Some("job"), [one]) => {
            format!("{base}/jobs/{}?{}", segment(one), query([("done", act.as_str()), ("answer", &last)]))
        }
        _ => {
            // The jobs page as it was (its filters, read again: nothing else is passed on), with what was done.
            let was = Fields::query(fields.get("query"));
            let keep = ["state", "code", "category", "asset", "offset"].map(|k| (k, was.get(k).unwrap_or_default()));
            let done = [("done", act.as_str()), ("n", n.as_str()), ("of", of.as_str())];
            format!("{base}/jobs?{}", query(keep.into_iter().chain(done)))
        }
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
