//! A property of the engine: many jobs with random failure sequences, hook errors, timeouts and panics, random
//! cancellations and a shutdown and resume in the middle. Every submitted job ends exactly once, and its
//! outcome is what `decide` says for its history (replayed here by a model of the engine's loop).
#![cfg(feature = "testing")]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use lightflow_remedy::engine::{HookName, Job, Outcome, OutcomeKind, Remediator, VerdictKind};
use lightflow_remedy::testing::{FakeHooks, Scripted};
use lightflow_remedy::{Action, Context, Failure, FailureKey, History, Policies};
use proptest::prelude::*;

const HOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// What a scripted hook panic says.
const SCRIPTED_PANIC: &str = "scripted host panic";

fn failure(key: FailureKey) -> Failure {
    Failure::from_key(key, "").unwrap()
}

fn key_strategy() -> impl Strategy<Value = FailureKey> {
    prop_oneof![
        Just(FailureKey::asset(2001)),
        Just(FailureKey::asset(2007)),
        Just(FailureKey::asset(2404)),
        Just(FailureKey::asset(2429)),
        Just(FailureKey::asset(3003)),
        Just(FailureKey::asset(3005)),
        Just(FailureKey::asset(4001)),
        Just(FailureKey::asset(1001)),
        Just(FailureKey::asset(2052)),
        Just(FailureKey::api(503)),
        Just(FailureKey::api(401)),
        Just(FailureKey::asset(9123)),
    ]
}

fn attempt_answer() -> impl Strategy<Value = Scripted> {
    prop_oneof![
        3 => Just(Scripted::Succeed),
        6 => key_strategy().prop_map(|k| Scripted::Fail(failure(k))),
        1 => Just(Scripted::Error("host error".into())),
        1 => Just(Scripted::Panic(SCRIPTED_PANIC.into())),
        1 => Just(Scripted::Hang),
    ]
}

#[derive(Debug, Clone)]
struct JobPlan {
    first: FailureKey,
    resubmit: Vec<Scripted>,
    republish: Vec<Scripted>,
    fix: Vec<Scripted>,
    reconcile: Vec<Scripted>,
    cancel_at: Option<u64>,
}

fn job_plan() -> impl Strategy<Value = JobPlan> {
    (
        key_strategy(),
        proptest::collection::vec(attempt_answer(), 0..6),
        proptest::collection::vec(attempt_answer(), 0..3),
        proptest::collection::vec(prop_oneof![Just(Scripted::Fixed), Just(Scripted::CannotFix), Just(Scripted::Hang)], 0..3),
        proptest::collection::vec(
            prop_oneof![4 => Just(Scripted::NotDone), 1 => Just(Scripted::Done), 1 => Just(Scripted::Error("x".into()))],
            0..4,
        ),
        proptest::option::weighted(0.15, 0u64..7_200),
    )
        .prop_map(|(first, resubmit, republish, fix, reconcile, cancel_at)| JobPlan {
            first,
            resubmit,
            republish,
            fix,
            reconcile,
            cancel_at,
        })
}

/// What the outcome of a job must be: kind, attempts, and for failures the verdict's kind and reason.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Recovered { attempts: u32, reconciled: bool },
    Failed { kind: VerdictKind, reason: String, attempts: u32 },
}

fn summarize(outcome: &Outcome) -> Option<Expected> {
    match outcome {
        Outcome::Recovered { attempts, reconciled, .. } => {
            Some(Expected::Recovered { attempts: *attempts, reconciled: *reconciled })
        }
        Outcome::Failed { verdict } => match verdict.kind {
            // A hook's own error or panic message is the host's; the model knows only which.
            VerdictKind::HookError | VerdictKind::HookPanicked => {
                Some(Expected::Failed { kind: verdict.kind, reason: String::new(), attempts: verdict.attempts })
            }
            kind => Some(Expected::Failed { kind, reason: verdict.reason.clone(), attempts: verdict.attempts }),
        },
        _ => None,
    }
}

/// The engine's loop, replayed with `decide` and the job's scripted answers.
fn model(policies: &Policies, job: &Job, plan: &JobPlan) -> Expected {
    let mut answers: HashMap<HookName, VecDeque<Scripted>> = HashMap::from([
        (HookName::Resubmit, plan.resubmit.iter().cloned().collect()),
        (HookName::Republish, plan.republish.iter().cloned().collect()),
        (HookName::FixCredentials, plan.fix.iter().cloned().collect()),
        (HookName::Reconcile, plan.reconcile.iter().cloned().collect()),
    ]);
    let mut take =
        |hook: HookName, default: Scripted| answers.get_mut(&hook).and_then(VecDeque::pop_front).unwrap_or(default);
    let mut f = failure(plan.first);
    let mut h = History::new(job.seed());
    h.record_failure(&f);
    let ended = |kind, h: &History| Expected::Failed { kind, reason: String::new(), attempts: h.attempts() };
    // `None`: go on with the failure now in `f`.
    let timed_out = |f: &mut Failure, h: &mut History| {
        *f = Failure::timeout(f.downstream(), "");
        h.record_failure(f);
    };
    for _ in 0..10_000 {
        let d = policies.decide(&f, &h, &Context::new());
        match d.action().clone() {
            Action::Fail { reason } => {
                let kind = if d.is_exhausted() { VerdictKind::Exhausted } else { VerdictKind::Policy };
                return Expected::Failed { kind, reason: reason.to_string(), attempts: h.attempts() };
            }
            Action::Notify { .. } => h.record(&d),
            Action::Reconcile => {
                h.record(&d);
                match take(HookName::Reconcile, Scripted::NotDone) {
                    Scripted::Done => return Expected::Recovered { attempts: h.attempts(), reconciled: true },
                    Scripted::NotDone => {}
                    Scripted::Hang => timed_out(&mut f, &mut h),
                    Scripted::Panic(_) => return ended(VerdictKind::HookPanicked, &h),
                    _ => return ended(VerdictKind::HookError, &h),
                }
            }
            action => {
                // The engine records an attempt once its calls have answered; `CannotFix` is no attempt, and
                // neither is the reconcile before it (whatever it answers).
                if d.stage_ref().is_some_and(|s| s.reconcile_first()) {
                    match take(HookName::Reconcile, Scripted::NotDone) {
                        Scripted::Done => return Expected::Recovered { attempts: h.attempts(), reconciled: true },
                        Scripted::NotDone => {}
                        Scripted::Hang => {
                            timed_out(&mut f, &mut h);
                            continue;
                        }
                        Scripted::Panic(_) => return ended(VerdictKind::HookPanicked, &h),
                        _ => return ended(VerdictKind::HookError, &h),
                    }
                }
                let answer = match action {
                    Action::FixCredentials { scope } => match take(HookName::FixCredentials, Scripted::Fixed) {
                        Scripted::Fixed => {
                            h.mark_repaired(scope);
                            take(HookName::Resubmit, Scripted::Succeed)
                        }
                        Scripted::CannotFix => {
                            h.skip_stage(&d);
                            continue;
                        }
                        other => other,
                    },
                    Action::Republish { .. } => take(HookName::Republish, Scripted::Succeed),
                    _ => take(HookName::Resubmit, Scripted::Succeed),
                };
                h.record(&d);
                match answer {
                    Scripted::Succeed => return Expected::Recovered { attempts: h.attempts(), reconciled: false },
                    Scripted::Fail(next) => {
                        h.record_failure(&next);
                        f = next;
                    }
                    Scripted::Hang => timed_out(&mut f, &mut h),
                    Scripted::Panic(_) => return ended(VerdictKind::HookPanicked, &h),
                    _ => return ended(VerdictKind::HookError, &h),
                }
            }
        }
    }
    panic!("the model never ended");
}

fn hooks_for(plans: &[JobPlan]) -> FakeHooks {
    let mut hooks = FakeHooks::new();
    for (i, p) in plans.iter().enumerate() {
        let id = format!("asset-{i}");
        hooks = hooks
            .script(&id, HookName::Resubmit, p.resubmit.clone())
            .script(&id, HookName::Republish, p.republish.clone())
            .script(&id, HookName::FixCredentials, p.fix.clone())
            .script(&id, HookName::Reconcile, p.reconcile.clone());
    }
    hooks
}

fn remediator(policies: Policies, hooks: FakeHooks) -> Remediator<FakeHooks> {
    Remediator::builder(policies, hooks).without_circuit_breaker().hook_timeout(HOOK_TIMEOUT).build()
}

/// Scripted hook panics are expected here: they are not printed. Any other panic is, as usual.
fn quiet_scripted_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<String>().is_none_or(|m| m != SCRIPTED_PANIC) {
                usual(info);
            }
        }));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_job_ends_once_as_decide_says(
        plans in proptest::collection::vec(job_plan(), 1..40),
        shutdown_at in proptest::option::of(0u64..3_600),
    ) {
        quiet_scripted_panics();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let (outcomes, failed_calls, counted, resumed_count) = runtime.block_on(async {
            let hooks = hooks_for(&plans);
            let first = remediator(Policies::defaults(), hooks.clone());
            let mut handles = Vec::new();
            for (i, p) in plans.iter().enumerate() {
                let job = Job::new(format!("asset-{i}"));
                let handle = first.enqueue(job, failure(p.first)).await.unwrap();
                if let Some(at) = p.cancel_at {
                    let r = first.clone();
                    let id = format!("asset-{i}");
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(at)).await;
                        r.cancel(&id);
                    });
                }
                handles.push(handle);
            }
            let mut resumed = HashMap::new();
            let mut counted = 0;
            let mut resumed_count = 0u64;
            if let Some(at) = shutdown_at {
                tokio::time::sleep(Duration::from_secs(at)).await;
                // A deadline longer than any call (calls end by the hook timeout), so no answer is lost.
                let states = first.shutdown(Duration::from_secs(60)).await;
                let second = remediator(Policies::defaults(), hooks.clone());
                for state in states {
                    let id = state.job.asset_id().to_owned();
                    resumed.insert(id, second.resume(state).unwrap());
                    resumed_count += 1;
                }
                let mut outcomes = Vec::new();
                for (i, h) in handles.into_iter().enumerate() {
                    let first_outcome = h.await;
                    let id = format!("asset-{i}");
                    let end = match (first_outcome.kind(), resumed.remove(&id)) {
                        (OutcomeKind::Suspended, Some(again)) => again.await,
                        (OutcomeKind::Suspended, None) => panic!("{id} was suspended but not returned by shutdown"),
                        (_, Some(_)) => panic!("{id} ended and was also suspended"),
                        (_, None) => first_outcome,
                    };
                    outcomes.push(end);
                }
                counted += second.counters().outcomes.values().sum::<u64>();
                counted += first.counters().outcomes.values().sum::<u64>();
                let calls = hooks.calls();
                return (outcomes, calls, counted, resumed_count);
            }
            let mut outcomes = Vec::new();
            for h in handles {
                outcomes.push(h.await);
            }
            counted += first.counters().outcomes.values().sum::<u64>();
            (outcomes, hooks.calls(), counted, resumed_count)
        });
        let _ = std::panic::take_hook();

        // Every job ends once; a suspended one ends once more after its resume.
        prop_assert_eq!(counted, outcomes.len() as u64 + resumed_count, "outcomes counted");
        let policies = Policies::defaults();
        for (i, (plan, outcome)) in plans.iter().zip(&outcomes).enumerate() {
            let id = format!("asset-{i}");
            let job = Job::new(id.clone());
            let expected = model(&policies, &job, plan);
            let failed_hook_calls = failed_calls.iter().filter(|c| c.asset_id == id && c.hook == HookName::Failed).count();
            match summarize(outcome) {
                Some(got) => {
                    prop_assert_eq!(&got, &expected, "{} {:?}", id, plan);
                    let failed = matches!(outcome, Outcome::Failed { .. });
                    prop_assert_eq!(failed_hook_calls, usize::from(failed), "{}: the failed hook once per failure", id);
                }
                None => {
                    prop_assert_eq!(outcome.kind(), OutcomeKind::Cancelled, "{}", id);
                    prop_assert!(plan.cancel_at.is_some(), "{} was cancelled without a cancellation", id);
                    prop_assert_eq!(failed_hook_calls, 0);
                }
            }
        }
    }
}

#[test]
fn the_model_agrees_with_explain_on_simple_chains() {
    // A sanity check of the model itself: a job that keeps failing with 2001 retries three times and fails.
    let plan = JobPlan {
        first: FailureKey::asset(2001),
        resubmit: vec![Scripted::Fail(failure(FailureKey::asset(2001))); 5],
        republish: vec![],
        fix: vec![],
        reconcile: vec![],
        cancel_at: None,
    };
    let expected = model(&Policies::defaults(), &Job::new("a"), &plan);
    let reason = Policies::defaults()
        .explain(&failure(FailureKey::asset(2001)), 4, &Context::new(), 0)
        .first()
        .reason()
        .unwrap()
        .to_owned();
    assert_eq!(expected, Expected::Failed { kind: VerdictKind::Policy, reason, attempts: 3 });
}
