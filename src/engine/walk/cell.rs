//! What a job shares with its handles and its remediator: the stop signals it obeys and the outcome it
//! delivers, in one small allocation (a fleet has a hundred thousand of them).

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use smallvec::SmallVec;

use crate::engine::outcome::Outcome;
use crate::engine::report::Reported;

/// The job was cancelled.
pub(crate) const CANCEL: u8 = 1;
/// The engine is shutting down: stop at the next wait.
pub(crate) const SUSPEND: u8 = 2;
/// The shutdown deadline passed: drop the hook call in flight.
pub(crate) const ABORT: u8 = 4;
/// A report of the submitted attempt came.
pub(crate) const REPORT: u8 = 8;
/// The job's lease in its store was lost (another replica took it over), or its replica crashed: stop at once,
/// write nothing more.
pub(crate) const LOST: u8 = 16;

/// Where the job's attempt stands, for reports addressed by asset: none under way.
pub(crate) const IDLE: u8 = 0;
/// Its hook is being called: a report now is early, kept until the hook answers `Submitted`.
pub(crate) const CALLING: u8 = 1;
/// It was submitted: a report now is its result.
pub(crate) const AWAITING: u8 = 2;
/// Its hook is being called and a report came early: the report is in the outcome slot.
const KEPT: u8 = 3;

#[derive(Debug, Default)]
pub(crate) struct JobCell {
    flags: AtomicU8,
    /// Where the job's attempt stands: [`IDLE`], [`CALLING`], [`KEPT`] or [`AWAITING`].
    attempt: AtomicU8,
    /// The job's task, while it waits for a signal (it is the only one that does).
    job: AtomicWaker,
    outcome: Mutex<OutcomeSlot>,
}

#[derive(Debug, Default)]
struct OutcomeSlot {
    outcome: Option<Outcome>,
    /// The handles waiting for the outcome, one slot each (usually one handle).
    waiting: SmallVec<[Option<Waker>; 1]>,
    /// A report of the attempt under way, not yet taken by the job.
    report: Option<Box<Reported>>,
    /// The submitted attempt awaited, for reports addressed by reference.
    awaited: Option<u32>,
}

/// What [`JobCell::offer`] did with a report.
pub(crate) enum Offer {
    /// The job awaited it: it is the job's now.
    Taken,
    /// The attempt is still being submitted: kept for when it is.
    Kept,
    /// The job had a report for this attempt already.
    Duplicate,
    /// The job has no attempt under way (the report is about an earlier one).
    NotAwaited,
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

    /// Where the job's attempt stands now.
    pub(crate) fn set_attempt(&self, phase: u8) {
        self.attempt.store(phase, Ordering::Release);
    }

    /// The job awaits the result of submitted attempt `n`; returns a report that came early, if any.
    pub(crate) fn await_attempt(&self, n: u32) -> Option<Reported> {
        let mut shared = self.lock();
        shared.awaited = Some(n);
        self.attempt.store(AWAITING, Ordering::Release);
        shared.report.take().map(|r| *r)
    }

    /// The job no longer awaits an attempt; an early report for a call that answered at once is dropped.
    pub(crate) fn attempt_settled(&self) {
        // Only a kept report or an awaited attempt leaves something in the slot: a call that answered with no
        // report kept (nearly every call) takes no lock.
        if matches!(self.attempt.swap(IDLE, Ordering::AcqRel), KEPT | AWAITING) {
            let mut shared = self.lock();
            shared.awaited = None;
            shared.report = None;
        }
    }

    /// Offers a report of attempt `n` (`None`: whichever is under way, for a report by asset).
    pub(crate) fn offer(&self, n: Option<u32>, report: Reported) -> Offer {
        let mut shared = self.lock();
        let phase = self.attempt.load(Ordering::Acquire);
        let offer = match phase {
            AWAITING if n.is_none() || n == shared.awaited => Offer::Taken,
            CALLING if n.is_none() => Offer::Kept,
            KEPT if n.is_none() => return Offer::Duplicate,
            _ => return Offer::NotAwaited,
        };
        if shared.report.is_some() {
            return Offer::Duplicate;
        }
        // Marked before it is kept: the job settles a call without the lock unless it sees the mark. A call that
        // settled meanwhile is no longer under way.
        if let Offer::Kept = offer
            && self.attempt.compare_exchange(CALLING, KEPT, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            return Offer::NotAwaited;
        }
        shared.report = Some(Box::new(report));
        drop(shared);
        if let Offer::Taken = offer {
            self.raise(REPORT);
        }
        offer
    }

    /// Takes the report the job awaited.
    pub(crate) fn take_report(&self) -> Option<Reported> {
        self.flags.fetch_and(!REPORT, Ordering::SeqCst);
        self.lock().report.take().map(|r| *r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutcomeSlot> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers `outcome` unless one was delivered already. The job no longer waits for signals: its waker
    /// goes, so that its task is freed as it ends rather than with the last handle.
    pub(crate) fn deliver(&self, outcome: Outcome) {
        drop(self.job.take());
        let waiting = {
            let mut shared = self.lock();
            if shared.outcome.is_some() {
                return;
            }
            shared.outcome = Some(outcome);
            std::mem::take(&mut shared.waiting)
        };
        waiting.into_iter().flatten().for_each(Waker::wake);
    }

    /// The outcome, once there is one; until then, the task of `cx` is woken when it comes. `slot` is the
    /// handle's place among the waiting ones, so that a handle polled again replaces its waker.
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>, slot: &mut Option<usize>) -> Poll<Outcome> {
        let mut shared = self.lock();
        if let Some(outcome) = &shared.outcome {
            return Poll::Ready(outcome.clone());
        }
        let waker = Some(cx.waker().clone());
        match *slot {
            Some(i) if i < shared.waiting.len() => shared.waiting[i] = waker,
            _ => {
                *slot = Some(shared.waiting.len());
                shared.waiting.push(waker);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// Counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn woken(c: &Arc<Counter>) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn every_waiting_handle_is_woken_once_with_the_outcome() {
        let cell = JobCell::default();
        let (a, b, stale) = (Arc::new(Counter::default()), Arc::new(Counter::default()), Arc::new(Counter::default()));
        let (mut slot_a, mut slot_b) = (None, None);
        let poll = |counter: &Arc<Counter>, slot: &mut Option<usize>| {
            let waker = Waker::from(counter.clone());
            cell.poll_outcome(&mut Context::from_waker(&waker), slot)
        };
        assert!(poll(&stale, &mut slot_a).is_pending());
        // Polled again with another waker, a handle keeps its slot: the stale waker is not woken.
        assert!(poll(&a, &mut slot_a).is_pending());
        assert!(poll(&b, &mut slot_b).is_pending());
        assert_eq!((slot_a, slot_b), (Some(0), Some(1)));

        cell.deliver(Outcome::Cancelled { attempts: 2 });
        cell.deliver(Outcome::Cancelled { attempts: 9 });
        assert_eq!((woken(&a), woken(&b), woken(&stale)), (1, 1, 0));
        assert!(matches!(poll(&a, &mut slot_a), Poll::Ready(Outcome::Cancelled { attempts: 2 })));
        assert!(matches!(poll(&b, &mut slot_b), Poll::Ready(Outcome::Cancelled { attempts: 2 })));
    }

    /// A step of an attempt's life, as the job or a reporter takes it.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Call,
        /// A report by asset (`None`) or for attempt `n`.
        Offer(Option<u32>),
        Await(u32),
        Settle,
    }

    /// What each step gives: the offer's answer, or the early report `await_attempt` returned.
    fn run(steps: &[Step]) -> Vec<&'static str> {
        let cell = JobCell::default();
        steps
            .iter()
            .map(|step| match *step {
                Step::Call => {
                    cell.set_attempt(CALLING);
                    "-"
                }
                Step::Offer(n) => match cell.offer(n, Reported::Succeeded) {
                    Offer::Taken => "taken",
                    Offer::Kept => "kept",
                    Offer::Duplicate => "duplicate",
                    Offer::NotAwaited => "not awaited",
                },
                Step::Await(n) => {
                    if cell.await_attempt(n).is_some() {
                        "early report"
                    } else {
                        "no report"
                    }
                }
                Step::Settle => {
                    cell.attempt_settled();
                    "-"
                }
            })
            .collect()
    }

    #[test]
    fn reports_follow_the_attempt_they_are_for() {
        use Step::*;
        let cases: &[(&[Step], &[&str])] = &[
            // Early by asset: kept, then handed over when the hook answers `Submitted`.
            (&[Call, Offer(None), Await(1)], &["-", "kept", "early report"]),
            (&[Call, Offer(None), Offer(None), Await(1)], &["-", "kept", "duplicate", "early report"]),
            // By reference while the call is under way: the attempt is not known to await anything yet.
            (&[Call, Offer(Some(1)), Await(1)], &["-", "not awaited", "no report"]),
            // The call answered at once: a kept report is dropped, and one after it is for no attempt.
            (&[Call, Offer(None), Settle, Call, Await(2)], &["-", "kept", "-", "-", "no report"]),
            (&[Call, Settle, Offer(None)], &["-", "-", "not awaited"]),
            (&[Offer(None)], &["not awaited"]),
            // Awaited: by asset or for its own attempt, once; an older attempt's report changes nothing.
            (
                &[Call, Await(3), Offer(Some(2)), Offer(Some(3)), Offer(None)],
                &["-", "no report", "not awaited", "taken", "duplicate"],
            ),
            (&[Call, Await(1), Offer(None)], &["-", "no report", "taken"]),
            // Settled after its report: the next attempt starts clean.
            (
                &[Call, Await(1), Offer(None), Settle, Call, Offer(None), Await(2)],
                &["-", "no report", "taken", "-", "-", "kept", "early report"],
            ),
            (&[Call, Await(1), Settle, Offer(Some(1))], &["-", "no report", "-", "not awaited"]),
        ];
        for (steps, expected) in cases {
            assert_eq!(run(steps), *expected, "{steps:?}");
        }
    }

    #[test]
    fn a_report_racing_the_settling_of_its_call_is_kept_only_if_the_call_is_still_under_way() {
        // The job settles without the lock; a reporter offers under it. Whichever order they run in, no report
        // is left in the slot for the next attempt.
        for _ in 0..200 {
            let cell = Arc::new(JobCell::default());
            cell.set_attempt(CALLING);
            let reporter = {
                let cell = cell.clone();
                std::thread::spawn(move || matches!(cell.offer(None, Reported::Succeeded), Offer::Kept))
            };
            cell.attempt_settled();
            let _ = reporter.join().expect("no panic");
            cell.set_attempt(CALLING);
            assert!(cell.await_attempt(2).is_none(), "a report of the settled call reached the next one");
        }
    }

    #[test]
    fn a_raised_signal_wakes_the_job() {
        let cell = JobCell::default();
        let job = Arc::new(Counter::default());
        let waker = Waker::from(job.clone());
        assert!(cell.poll_raised(&mut Context::from_waker(&waker), CANCEL | SUSPEND).is_pending());
        cell.raise(ABORT);
        assert_eq!(woken(&job), 1, "every signal wakes the job, which checks its own mask");
        assert!(cell.poll_raised(&mut Context::from_waker(&waker), CANCEL | SUSPEND).is_pending());
        cell.raise(SUSPEND);
        assert!(cell.poll_raised(&mut Context::from_waker(&waker), CANCEL | SUSPEND).is_ready());
        assert!(cell.is(SUSPEND) && cell.is(ABORT) && !cell.is(CANCEL));
    }
}
