//! How [`LightFlowHooks::reconcile`](super::LightFlowHooks) finds out whether an earlier attempt in fact
//! succeeded, with LightFlow's documented list filters only.
//!
//! LightFlow documents no idempotency key, and its create request's `label`, `tags` and `referenceId` fields
//! are not in the documentation we have, so an attempt cannot be tagged in a way the list can find for sure.
//! An attempt is matched, in this order:
//!
//! 1. **By uuid**, when it is known: the uuid the book recorded for the attempt's key (its `POST /assets`
//!    answered), or, for attempt 0 (the host's own submission), the job's asset id, taken as the original
//!    asset's uuid (the gateway names jobs by it). `GET /assets?uuid=...`; `finished` is done.
//! 2. **By input URL and creation time**, when the post's answer was lost: `GET /assets?inputUrlPath=<the
//!    recorded parameters' input.urlPath>&creationDateFrom=<now − lookback>`, leaving out the assets the book
//!    already knows (the asset and its lineage). One asset left is taken as the attempt's, and recorded for its
//!    key (so that the attempt repeated with the same key does not post again, unless it ended in error);
//!    `finished` is done. Several left is ambiguous: not done, with a warning.
//!
//! Anything that cannot be asked (LightFlow failing, nothing recorded to search by) answers not done, with a
//! log line: the policy then goes on, as it would without a reconcile. A matched asset still `queued` or
//! `running` is not done either (a warning says a resubmission may duplicate it).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::asset::Asset;
use super::book::AssetBook;
use super::client::LightFlowClient;
use super::query::ListQuery;
use crate::classify::AssetStatus;
use crate::engine::{AttemptKey, Job, Reconciled};

/// Assets asked for per page when searching by input URL.
const PAGE_SIZE: u64 = 100;
/// Pages read at most: the search is for assets of the last lookback, not the account's history.
const MAX_PAGES: u64 = 5;

/// Whether attempt `key` of `job` in fact succeeded; see the [module](self).
pub(super) async fn reconcile<B: AssetBook>(
    client: &LightFlowClient,
    book: &B,
    lookback: Duration,
    job: &Job,
    key: &AttemptKey<'_>,
) -> Reconciled {
    let asset = job.asset_id();
    let key_text = key.to_string();
    let known = if key.attempt == 0 {
        Some(asset.to_owned())
    } else {
        match book.attempt(asset, &key_text).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(asset, attempt = %key_text, error = %e, "reconcile: not done (the book cannot be read)");
                return Reconciled::NotDone;
            }
        }
    };
    if let Some(uuid) = known {
        match client.asset(&uuid).await {
            Ok(Some(found)) => return judge(&found, &key_text),
            Ok(None) if key.attempt > 0 => {
                tracing::warn!(asset, attempt = %key_text, uuid, "reconcile: not done (LightFlow has no asset of the attempt's uuid)");
                return Reconciled::NotDone;
            }
            // Attempt 0 under an asset id that is not a uuid: search as for a lost answer.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(asset, attempt = %key_text, error = %e, "reconcile: not done (LightFlow could not be asked)");
                return Reconciled::NotDone;
            }
        }
    }
    by_input(client, book, lookback, job, &key_text).await
}

/// What a matched asset's status says of its attempt.
fn judge(asset: &Asset, key_text: &str) -> Reconciled {
    match asset.status() {
        Some(Ok(AssetStatus::Finished)) => Reconciled::Done,
        Some(Ok(AssetStatus::Queued | AssetStatus::Running)) => {
            tracing::warn!(
                attempt = key_text,
                uuid = asset.uuid(),
                "reconcile: not done, but the attempt's asset is still running: a resubmission may duplicate it"
            );
            Reconciled::NotDone
        }
        _ => Reconciled::NotDone,
    }
}

/// Searches the assets made from the recorded input URL in the last `lookback` for the attempt's.
async fn by_input<B: AssetBook>(
    client: &LightFlowClient,
    book: &B,
    lookback: Duration,
    job: &Job,
    key_text: &str,
) -> Reconciled {
    let asset = job.asset_id();
    let (params, lineage) = match (book.parameters(asset).await, book.lineage(asset).await) {
        (Ok(params), Ok(lineage)) => (params, lineage),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(asset, attempt = key_text, error = %e, "reconcile: not done (the book cannot be read)");
            return Reconciled::NotDone;
        }
    };
    let input = params.as_ref().and_then(|p| p.get("input")).and_then(|i| i.get("urlPath")).and_then(Value::as_str);
    let Some(input) = input else {
        tracing::info!(asset, attempt = key_text, "reconcile: not done (no recorded input URL to search by)");
        return Reconciled::NotDone;
    };
    let mut known: HashSet<String> = lineage.into_iter().collect();
    known.insert(asset.to_owned());
    let since = SystemTime::now().checked_sub(lookback).unwrap_or(SystemTime::UNIX_EPOCH);
    let query = ListQuery::new().input_url_path(input).created_from(since).page(0, PAGE_SIZE);
    let mut candidates: Vec<Asset> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for index in 0..MAX_PAGES {
        let page = match client.list_assets(&query.page_index(index)).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(asset, attempt = key_text, error = %e, "reconcile: not done (LightFlow could not be asked)");
                return Reconciled::NotDone;
            }
        };
        let count = page.items.len() as u64;
        let mut new = 0;
        for item in page.items {
            if seen.insert(item.uuid().to_owned()) {
                new += 1;
                // How `inputUrlPath` matches is not documented: only the exact input is the attempt's.
                let same_input = item.document().get("input").and_then(|i| i.get("urlPath")).and_then(Value::as_str);
                if !known.contains(item.uuid()) && same_input.is_none_or(|u| u == input) {
                    candidates.push(item);
                }
            }
        }
        let last = page.pages.is_some_and(|pages| index + 1 >= pages) || count < PAGE_SIZE || new == 0;
        if last {
            break;
        }
    }
    match candidates.as_slice() {
        [] => Reconciled::NotDone,
        [found] => {
            let ended_in_error = matches!(found.status(), Some(Ok(AssetStatus::Error | AssetStatus::Canceled)));
            if !ended_in_error && let Err(e) = book.record_attempt(asset, key_text, found.uuid()).await {
                tracing::warn!(asset, attempt = key_text, error = %e, "reconcile: the match could not be recorded");
            }
            judge(found, key_text)
        }
        several => {
            let uuids: Vec<&str> = several.iter().map(Asset::uuid).collect();
            tracing::warn!(
                asset,
                attempt = key_text,
                matches = ?uuids,
                "reconcile: not done (several assets made from the same input could be the attempt's)"
            );
            Reconciled::NotDone
        }
    }
}
