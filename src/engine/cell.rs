//! What a job shares with its handles and its remediator: the stop signals it obeys and the outcome it
//! delivers, in one small allocation (a fleet has a hundred thousand of them).

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::outcome::Outcome;

/// The job was cancelled.
pub(crate) const CANCEL: u8 = 1;
/// The engine is shutting down: stop at the next wait.
pub(crate) const SUSPEND: u8 = 2;
/// The shutdown deadline passed: drop the hook call in flight.
pub(crate) const ABORT: u8 = 4;

#[derive(Debug, Default)]
pub(crate) struct JobCell {
    flags: AtomicU8,
    /// The job's task, while it waits for a signal (it is the only one that does).
    job: AtomicWaker,
    outcome: Mutex<Option<Outcome>>,
    /// The handles waiting for the outcome.
    delivered: Notify,
}

impl JobCell {
    /// Raises a stop signal.
    pub(crate) fn raise(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::SeqCst);
        self.job.wake();
    }

    /// Whether `flag` is raised.
    pub(crate) fn is(&self, flag: u8) -> bool {
        self.flags.load(Ordering::SeqCst) & flag != 0
    }

    /// Resolves once one of `mask`'s signals is raised. Only the job's own task waits on this.
    pub(crate) async fn raised(&self, mask: u8) {
        poll_fn(|cx| self.poll_raised(cx, mask)).await
    }

    /// Ready once one of `mask`'s signals is raised; until then, the task of `cx` is woken when one is.
    pub(crate) fn poll_raised(&self, cx: &mut Context<'_>, mask: u8) -> Poll<()> {
        if self.is(mask) {
            return Poll::Ready(());
        }
        self.job.register(cx.waker());
        if self.is(mask) { Poll::Ready(()) } else { Poll::Pending }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outcome>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers `outcome` unless one was delivered already. The job no longer waits for signals: its waker
    /// goes, so that its task is freed as it ends rather than with the last handle.
    pub(crate) fn deliver(&self, outcome: Outcome) {
        drop(self.job.take());
        let mut value = self.lock();
        if value.is_none() {
            *value = Some(outcome);
            drop(value);
            self.delivered.notify_waiters();
        }
    }

    /// The outcome, once there is one.
    pub(crate) async fn outcome(&self) -> Outcome {
        loop {
            if let Some(outcome) = self.lock().clone() {
                return outcome;
            }
            let delivered = self.delivered.notified();
            tokio::pin!(delivered);
            delivered.as_mut().enable();
            if let Some(outcome) = self.lock().clone() {
                return outcome;
            }
            delivered.await;
        }
    }
}
