//! A handle on a running job: a future of its outcome, and a way to cancel it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use super::outcome::Outcome;
use super::walk::cell::JobCell;

/// A running job: await it (it is a future) for the outcome, or cancel it.
pub struct JobHandle {
    asset_id: Arc<str>,
    cell: Arc<JobCell>,
    joined: bool,
    /// Where this handle waits in the job's cell, once it has waited.
    slot: Option<usize>,
    /// The remediator, for a cancellation, while it lives.
    canceller: Weak<dyn Cancel>,
}

/// What a handle cancels its job through: its remediator.
pub(crate) trait Cancel: Send + Sync {
    /// Cancels the active job of `asset_id`, held here or at rest in the store; whether one was found.
    fn cancel_asset(self: Arc<Self>, asset_id: &str) -> bool;
}

impl JobHandle {
    /// A handle on a job in the store, through a cell that is given its outcome.
    pub(crate) fn watching(asset_id: Arc<str>, cell: Arc<JobCell>, joined: bool, canceller: Weak<dyn Cancel>) -> Self {
        JobHandle { asset_id, cell, joined, slot: None, canceller }
    }

    /// The asset.
    pub fn asset_id(&self) -> &str {
        &self.asset_id
    }

    /// Whether this report joined a job that was already running.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Cancels the job (every handle of it sees [`Outcome::Cancelled`]), wherever it is in the remediator's
    /// store: held by its replica, or at rest.
    pub fn cancel(&self) {
        if let Some(remediator) = self.canceller.upgrade() {
            remediator.cancel_asset(&self.asset_id);
        }
    }

    /// The outcome, once the job has one (the same as awaiting the handle).
    pub async fn outcome(self) -> Outcome {
        self.await
    }
}

impl Future for JobHandle {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        this.cell.poll_outcome(cx, &mut this.slot)
    }
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("asset_id", &self.asset_id).field("joined", &self.joined).finish()
    }
}
