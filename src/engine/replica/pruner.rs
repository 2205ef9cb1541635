//! The pruner: deletes finished jobs after the retention period.

use std::sync::Weak;
use std::time::Duration;

use crate::engine::hooks::Hooks;
use crate::engine::shared::Inner;

/// Deletes finished jobs past the retention period, hourly.
pub(crate) async fn pruner<H: Hooks>(weak: Weak<Inner<H>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let d = &inner.durable;
        let before = d.now().before(d.settings.retention);
        if let Err(e) = d.store.prune(before).await {
            tracing::warn!(store = %d.store.describe(), error = %e, "pruning finished jobs failed");
        }
        drop(inner);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
