//! What a job costs in memory is mostly the size of two futures: its task's, kept by every job in memory (a
//! hundred thousand in a large fleet), and an attempt's, boxed on every attempt. These bounds keep them from
//! growing unnoticed.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::cell::JobCell;
use super::hooks::{Attempt, HookError, Hooks};
use super::job::{AttemptKey, Job};
use super::parts::Parts;
use super::remediator::Remediator;
use super::shared::Delivery;
use super::state::State;
use super::steps::attempt;
use super::walk::run;
use crate::classify::Failure;
use crate::decide::{History, Policies};

struct Host;

impl Hooks for Host {
    async fn resubmit(&self, _: &Job, _: &Map<String, Value>, _: &AttemptKey<'_>) -> Result<Attempt, HookError> {
        Ok(Attempt::Succeeded)
    }
}

/// glibc's per-thread cache takes blocks up to this size; an attempt's future larger than it goes through the
/// allocator's slow path on every attempt.
const ALLOCATOR_THREAD_CACHE: usize = 1032;

#[test]
fn a_job_and_an_attempt_stay_small() {
    let remediator = Remediator::builder(Policies::defaults(), Host).build();
    let failure = Failure::asset(2001, "download failed").unwrap();
    let mut history = History::new(7);
    history.record_failure(&failure);
    let cell = Arc::new(JobCell::default());
    let delivery = Delivery { inner: remediator.inner.clone(), hash: 0, cell, finished: true };
    let mut parts = Parts {
        job: Job::new("asset-1"),
        state: State::new(failure, history),
        started: Instant::now(),
        delivery,
        stored: None,
    };
    let policies = Policies::defaults();
    let decision = policies.decide(&parts.state.failure, &parts.state.history, parts.job.context()).into_owned();
    let attempt = std::mem::size_of_val(&attempt(&mut parts, &decision));
    assert!(attempt <= ALLOCATOR_THREAD_CACHE, "an attempt's future is {attempt} bytes");
    let task = std::mem::size_of_val(&run(parts));
    // 536 bytes: with tokio's header and trailer, a task of 640 bytes (tokio aligns it to 128).
    assert!(task <= 536, "a job's future is {task} bytes");
}
