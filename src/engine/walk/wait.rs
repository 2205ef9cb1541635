//! A held job's short wait between decisions: a sleep that a cancellation, a shutdown or a lost lease cuts
//! short.
//!
//! Written by hand rather than with `select!`: a sleeping job keeps this future, and a fleet keeps a hundred
//! thousand sleeping jobs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::cell::{CANCEL, JobCell, LOST, SUSPEND};

/// Why a wait ended before its time.
pub(crate) enum Stop {
    Cancelled,
    Suspend { left: Duration },
}

pin_project_lite::pin_project! {
    /// Sleeps until a deadline, unless the job is cancelled, the engine shuts down or the lease is lost first
    /// (the walk then stops, and a lost job writes nothing more). When the deadline
    /// and a signal come together, the deadline wins. A zero delay has no sleep: it is over at once, without the
    /// timer or the signals.
    pub(crate) struct Wait<'a> {
        #[pin]
        sleep: Option<Sleep>,
        cell: &'a JobCell,
    }
}

impl<'a> Wait<'a> {
    /// A wait of `delay` from `now` (a delay too long for the clock waits a century).
    pub(crate) fn new(cell: &'a JobCell, now: Instant, delay: Duration) -> Self {
        let sleep = (!delay.is_zero()).then(|| tokio::time::sleep_until(later(now, delay)));
        Wait { sleep, cell }
    }
}

impl Future for Wait<'_> {
    type Output = Result<(), Stop>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(mut sleep) = this.sleep.as_pin_mut() else { return Poll::Ready(Ok(())) };
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        match this.cell.poll_raised(cx, CANCEL | SUSPEND | LOST) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) if this.cell.is(CANCEL) => Poll::Ready(Err(Stop::Cancelled)),
            Poll::Ready(()) => {
                let left = sleep.deadline().saturating_duration_since(Instant::now());
                Poll::Ready(Err(Stop::Suspend { left }))
            }
        }
    }
}

/// `now + d`, or a century from now when that does not fit the clock.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now)
}
