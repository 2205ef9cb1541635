//! A handle on a running job: a future of its outcome, and a way to cancel it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::cell::{CANCEL, JobCell};
use super::outcome::Outcome;

/// A running job: await it (it is a future) for the outcome, or cancel it.
pub struct JobHandle {
    asset_id: Arc<str>,
    cell: Arc<JobCell>,
    joined: bool,
    /// Where this handle waits in the job's cell, once it has waited.
    slot: Option<usize>,
}

impl JobHandle {
    /// A handle on a job kept in a durable store, through a cell that is given its outcome.
    pub(super) fn watching(asset_id: Arc<str>, cell: Arc<JobCell>, joined: bool) -> Self {
        JobHandle::new(asset_id, cell, joined)
    }

    pub(super) fn new(asset_id: Arc<str>, cell: Arc<JobCell>, joined: bool) -> Self {
        JobHandle { asset_id, cell, joined, slot: None }
    }

    /// The asset.
    pub fn asset_id(&self) -> &str {
        &self.asset_id
    }

    /// Whether this report joined a job that was already running.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Cancels the job (every handle of it sees [`Outcome::Cancelled`]).
    pub fn cancel(&self) {
        self.cell.raise(CANCEL);
    }

    /// The outcome, once the job has one (the same as awaiting the handle). If the tokio runtime stops before
    /// the job ends, `Cancelled`.
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
