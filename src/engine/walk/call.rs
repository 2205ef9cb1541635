//! One hook call, guarded: a bounded number at once, a timeout, panics caught, cancellation and the shutdown
//! deadline obeyed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use futures_util::FutureExt;

use super::cell::{ABORT, CANCEL, JobCell, LOST, SUSPEND};
use crate::engine::hooks::{Attempt, Checked, CredentialFix, HookError, Hooks, Reconciled};
use crate::engine::job::Job;
use crate::engine::observe::events::{Event, HookName};
use crate::engine::shared::Inner;

/// Why a hook call gave no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// It took longer than the hook timeout: a failure of its own kind.
    Timeout,
    /// It returned an error.
    Error(HookError),
    /// It panicked.
    Panicked(String),
    /// The job was cancelled meanwhile.
    Cancelled,
    /// The shutdown deadline passed meanwhile: the call was dropped, its answer is unknown.
    Aborted,
    /// The call did not start: the engine is shutting down, and a shutdown starts no new hook call.
    Shutdown,
}

/// How a hook's answer reads in events, and whether the engine can take it.
pub(crate) trait Answer {
    fn describe(&self) -> String;

    /// Why the answer cannot be taken (it would be refused by the store), if it cannot: the call is then a
    /// hook error.
    fn refused(&self) -> Option<HookError> {
        None
    }
}

impl Answer for Attempt {
    fn describe(&self) -> String {
        match self {
            Attempt::Succeeded => "succeeded".to_owned(),
            Attempt::Failed(f) => format!("failed {}", f.key()),
            Attempt::Submitted { reference } => format!("submitted {reference}"),
        }
    }

    fn refused(&self) -> Option<HookError> {
        match self {
            // A reference no store keeps (a NUL, a megabyte) would fail every later write of the job.
            Attempt::Submitted { reference } => crate::store::validate::id("reference", reference)
                .err()
                .map(|e| HookError::new(format!("the hook answered `Submitted` with a {e}"))),
            _ => None,
        }
    }
}

impl Answer for Checked {
    fn describe(&self) -> String {
        match self {
            Checked::Succeeded => "succeeded".to_owned(),
            Checked::Failed(f) => format!("failed {}", f.key()),
            Checked::Running => "running".to_owned(),
            Checked::Canceled => "canceled".to_owned(),
            Checked::Unknown => "unknown".to_owned(),
        }
    }
}

impl Answer for CredentialFix {
    fn describe(&self) -> String {
        match self {
            CredentialFix::Fixed => "fixed".to_owned(),
            CredentialFix::CannotFix => "cannot fix".to_owned(),
        }
    }
}

impl Answer for Reconciled {
    fn describe(&self) -> String {
        match self {
            Reconciled::Done => "done".to_owned(),
            Reconciled::NotDone => "not done".to_owned(),
        }
    }
}

impl Answer for () {
    fn describe(&self) -> String {
        "ok".to_owned()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What a hook's future came to, panics caught.
type Caught<T> = std::thread::Result<Result<T, HookError>>;

fn settled<T: Answer>(caught: Caught<T>) -> Result<T, CallError> {
    match caught {
        Err(panic) => Err(CallError::Panicked(panic_message(panic.as_ref()))),
        Ok(Err(e)) => Err(CallError::Error(e)),
        Ok(Ok(answer)) => match answer.refused() {
            Some(e) => Err(CallError::Error(e)),
            None => Ok(answer),
        },
    }
}

/// Waits for a hook call that did not answer at once: its answer (`Err` after `timeout`), or `None` once one of
/// `stops` is raised.
async fn answer_or_stop<T>(
    timeout: std::time::Duration,
    cell: &JobCell,
    stops: u8,
    fut: std::pin::Pin<&mut impl Future<Output = Caught<T>>>,
) -> Option<Result<Caught<T>, tokio::time::error::Elapsed>> {
    tokio::select! {
        biased;
        r = tokio::time::timeout(timeout, fut) => Some(r),
        _ = cell.raised(stops) => None,
    }
}

/// Calls a hook for `job`: `make` calls the host's method, whose future is then awaited. A method that panics
/// before it returns its future is a hook that panicked, like one whose future panics.
pub(crate) async fn call<H: Hooks, T: Answer, F: Future<Output = Result<T, HookError>>>(
    inner: &Inner<H>,
    job: &Job,
    hook: HookName,
    attempt: Option<u32>,
    cell: &JobCell,
    make: impl FnOnce() -> F,
) -> Result<T, CallError> {
    // A call in flight stops for a cancellation or the shutdown deadline, not for the shutdown itself: calls in
    // flight may finish. The `failed` hook is not cancelled: the verdict it carries stands. A call that has not
    // started does not start once the shutdown has begun, nor while the job waits for a hook slot.
    let stops = if hook == HookName::Failed { ABORT | LOST } else { CANCEL | ABORT | LOST };
    let not_started = || if cell.is(stops & CANCEL) { CallError::Cancelled } else { CallError::Shutdown };
    if cell.is(stops | SUSPEND) {
        return Err(not_started());
    }
    let _permit = match inner.hook_slots.try_acquire() {
        Ok(permit) => permit,
        Err(_) => tokio::select! {
            biased;
            permit = inner.hook_slots.acquire() => permit.map_err(|_| CallError::Shutdown)?,
            _ = cell.raised(stops | SUSPEND) => return Err(not_started()),
        },
    };
    // A slot freed just as the shutdown began: the call still does not start.
    if cell.is(stops | SUSPEND) {
        return Err(not_started());
    }
    let stopped = || if cell.is(ABORT | LOST) { CallError::Aborted } else { CallError::Cancelled };
    inner.counters.hook_call(hook);
    let began = tokio::time::Instant::now();
    inner.emit(|| Event::HookCalled { asset_id: job.id().clone(), hook, attempt });
    let result = match std::panic::catch_unwind(AssertUnwindSafe(make)) {
        Err(panic) => settled(Err(panic)),
        Ok(fut) => {
            // Polled once at first, without the timer and the signals: many hooks answer at once (they enqueue
            // work).
            let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
            match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                Poll::Ready(caught) => settled(caught),
                // Boxed: the timer and the signals would make the future of every call larger, also of the many
                // that answer at once.
                Poll::Pending => match Box::pin(answer_or_stop(inner.hook_timeout, cell, stops, fut)).await {
                    Some(caught) => caught.map_err(|_| CallError::Timeout).and_then(settled),
                    None => Err(stopped()),
                },
            }
        }
    };
    let answer = match &result {
        Ok(_) => "ok",
        Err(CallError::Timeout) => "timeout",
        Err(CallError::Error(_)) => "error",
        Err(CallError::Panicked(_)) => "panic",
        Err(CallError::Cancelled | CallError::Aborted | CallError::Shutdown) => "interrupted",
    };
    inner.counters.hook_answered(hook, answer, began.elapsed().as_secs_f64());
    inner.emit(|| Event::HookAnswered {
        asset_id: job.id().clone(),
        hook,
        answer: match &result {
            Ok(answer) => answer.describe(),
            Err(CallError::Timeout) => "timeout".to_owned(),
            Err(CallError::Error(e)) => format!("error: {e}"),
            Err(CallError::Panicked(m)) => format!("panic: {m}"),
            Err(CallError::Cancelled | CallError::Aborted | CallError::Shutdown) => "interrupted".to_owned(),
        },
    });
    tracing::debug!(asset = job.asset_id(), ?hook, ok = result.is_ok(), "hook answered");
    result
}
