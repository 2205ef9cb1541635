//! Assets whose first end never reached the service: LightFlow documents no delivery guarantee for callbacks,
//! so an asset made through the gateway whose callback was lost (the service was down, the network failed) is
//! looked up in LightFlow once it is older than `sweep_after`; an asset in error starts its remediation, as
//! its callback would have (once: the same dedupe key), and one that ended otherwise is settled.

use std::sync::Arc;
use std::time::Duration;

use crate::classify::AssetStatus;
use crate::engine::{Hooks, Job, Remediator};
use crate::lightflow::LightFlowClient;
use crate::store::{Clock, Store};

/// The lineage row the gateway writes for an asset it made: its first uuid.
pub(crate) const CREATED: &str = "#created";

/// The dedupe key of an asset's first failure, whichever way it was learnt.
pub(crate) fn first_failure_key(asset_id: &str) -> String {
    format!("{asset_id}#first")
}

/// Looks up open assets every `every`, those older than `after`, until the remediator is gone.
pub(crate) fn sweep<H: Hooks>(
    remediator: Remediator<H>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    client: LightFlowClient,
    after: Duration,
    every: Duration,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let before = clock.now().before(after);
            let open = match store.open_assets(before, 100).await {
                Ok(open) => open,
                Err(e) => {
                    tracing::warn!(error = %e, "looking for assets whose end is unknown failed");
                    continue;
                }
            };
            for asset in open {
                if let Err(e) = look_up(&remediator, &*store, &client, &asset.asset_id).await {
                    tracing::warn!(asset = %asset.asset_id, error = %e, "an asset's end could not be learnt");
                }
            }
        }
    });
}

/// Learns asset `asset_id`'s first end from LightFlow: an error starts its remediation (once), any end settles it.
pub(crate) async fn look_up<H: Hooks>(
    remediator: &Remediator<H>,
    store: &dyn Store,
    client: &LightFlowClient,
    asset_id: &str,
) -> Result<(), String> {
    let lineage = store.lineage(asset_id).await.map_err(|e| e.to_string())?;
    let Some(created) = lineage.iter().find(|l| l.attempt_key.ends_with(CREATED)) else {
        // Not made through the gateway (a host recorded its parameters): nothing to learn here.
        return store.settle_asset(asset_id).await.map_err(|e| e.to_string());
    };
    let found = client.asset(&created.reference).await.map_err(|e| e.to_string())?;
    let Some(found) = found else {
        tracing::warn!(asset = asset_id, uuid = %created.reference, "LightFlow has no such asset any more");
        return store.settle_asset(asset_id).await.map_err(|e| e.to_string());
    };
    match found.status() {
        Some(Ok(AssetStatus::Error)) => {
            tracing::info!(asset = asset_id, uuid = %created.reference, "an error no callback told of: remediated");
            let failure = found.error_failure();
            remediator
                .enqueue_once(Job::new(asset_id), failure, &first_failure_key(asset_id))
                .await
                .map_err(|e| e.to_string())?;
        }
        Some(Ok(AssetStatus::Finished | AssetStatus::Canceled)) => {}
        _ => return Ok(()),
    }
    store.settle_asset(asset_id).await.map_err(|e| e.to_string())
}
