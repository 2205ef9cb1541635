//! Which attempt a report is about, and what it does to the job: the rule every store applies, written once.
//! Each store finds the job the report names (by asset, by reference, or by id) and its row's few columns;
//! [`judge`] says what the report does; the store does it in the same transaction.

use std::str::FromStr;

use super::clock::Timestamp;
use super::error::StoreError;
use super::rows::{JobId, Phase, ReportAnswer, ReportTarget};

/// The columns of a job's row a report is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reported<'a> {
    pub(crate) job: JobId,
    pub(crate) phase: Phase,
    /// Attempts made.
    pub(crate) attempts: u32,
    /// The attempt under way, 0 when none.
    pub(crate) attempt: u32,
    /// When it began.
    pub(crate) attempt_at: Option<Timestamp>,
    /// The reference of the attempt under way.
    pub(crate) reference: Option<&'a str>,
    /// Whether a report is already on the row.
    pub(crate) has_report: bool,
    /// Whether a holder's lease is on the row (a job at rest has none).
    pub(crate) held: bool,
}

/// The columns a database store reads for a report, as its driver gives them: id, phase, attempts, attempt,
/// attempt_at, reference, whether a report is on the row, whether a lease is.
pub(crate) type ReportedColumns = (i64, String, i64, i64, Option<i64>, Option<String>, bool, bool);

impl<'a> Reported<'a> {
    /// The row a database store read; a value this build cannot read is [`StoreError::Corrupt`].
    pub(crate) fn from_columns(columns: &'a ReportedColumns) -> Result<Reported<'a>, StoreError> {
        let (id, phase, attempts, attempt, attempt_at, reference, has_report, held) = columns;
        let job = u64::try_from(*id)
            .map(JobId)
            .map_err(|_| StoreError::Corrupt { job: 0, reason: format!("job id {id}") })?;
        let corrupt = |reason: String| StoreError::Corrupt { job: job.0, reason };
        let count = |v: i64| u32::try_from(v).map_err(|_| corrupt(format!("attempt {v}")));
        Ok(Reported {
            job,
            phase: Phase::from_str(phase).map_err(|e| corrupt(format!("column `phase`: {e}")))?,
            attempts: count(*attempts)?,
            attempt: count(*attempt)?,
            attempt_at: attempt_at.map(Timestamp),
            reference: reference.as_deref(),
            has_report: *has_report,
            held: *held,
        })
    }
}

/// What a store does with a report, beside its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing.
    None,
    /// The report goes on the row; a job at rest becomes due now.
    Apply,
    /// The report goes on the row, for when the attempt's hook answers.
    Keep,
    /// Nothing goes on the row; a job at rest awaiting a result becomes due now, to ask `check`.
    Check,
}

/// What a report addressed by `target` does to the job whose row is `row`.
pub(crate) fn judge(target: ReportTarget<'_>, row: &Reported<'_>) -> (ReportAnswer, Effect) {
    let job = row.job;
    if row.phase == Phase::Finished {
        return (ReportAnswer::Finished { job }, Effect::None);
    }
    let current = match target {
        ReportTarget::Reference(reference) => row.reference == Some(reference),
        ReportTarget::Attempt { attempt, .. } => {
            if attempt == 0 || attempt > row.attempts.max(row.attempt) {
                // No such attempt was ever made: a made-up key.
                return (ReportAnswer::Unknown, Effect::None);
            }
            attempt == row.attempt
        }
        ReportTarget::AssetEndedAt(_, ended) => row.attempt > 0 && row.attempt_at.is_none_or(|began| ended >= began),
        ReportTarget::Asset(_) => {
            if row.attempt == 0 || row.phase == Phase::Waiting {
                return (ReportAnswer::OlderAttempt { job }, Effect::None);
            }
            let effect = if row.phase == Phase::Awaiting && !row.held { Effect::Check } else { Effect::None };
            return (ReportAnswer::Ambiguous { job }, effect);
        }
    };
    match row.phase {
        _ if !current => (ReportAnswer::OlderAttempt { job }, Effect::None),
        Phase::Waiting | Phase::Finished => (ReportAnswer::OlderAttempt { job }, Effect::None),
        _ if row.has_report => (ReportAnswer::Duplicate { job }, Effect::None),
        Phase::Awaiting => (ReportAnswer::Applied { job }, Effect::Apply),
        Phase::Calling => (ReportAnswer::Early { job }, Effect::Keep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(phase: Phase, attempts: u32, attempt: u32, has_report: bool) -> Reported<'static> {
        Reported {
            job: JobId(7),
            phase,
            attempts,
            attempt,
            attempt_at: Some(Timestamp(1_000)),
            reference: Some("uuid-2"),
            has_report,
            held: false,
        }
    }

    #[test]
    fn reports_are_judged_by_the_attempt_they_name() {
        use Effect as E;
        use Phase as P;
        use ReportAnswer as A;
        let job = JobId(7);
        let by_attempt = |n| ReportTarget::Attempt { job, attempt: n };
        let cases: &[(ReportTarget<'_>, Reported<'_>, A, E)] = &[
            (by_attempt(2), row(P::Awaiting, 2, 2, false), A::Applied { job }, E::Apply),
            (by_attempt(2), row(P::Awaiting, 2, 2, true), A::Duplicate { job }, E::None),
            (by_attempt(1), row(P::Awaiting, 2, 2, false), A::OlderAttempt { job }, E::None),
            (by_attempt(3), row(P::Awaiting, 2, 2, false), A::Unknown, E::None),
            (by_attempt(0), row(P::Awaiting, 2, 2, false), A::Unknown, E::None),
            (by_attempt(2), row(P::Calling, 1, 2, false), A::Early { job }, E::Keep),
            (by_attempt(2), row(P::Waiting, 2, 0, false), A::OlderAttempt { job }, E::None),
            (by_attempt(2), row(P::Finished, 2, 0, false), A::Finished { job }, E::None),
            (ReportTarget::Reference("uuid-2"), row(P::Awaiting, 2, 2, false), A::Applied { job }, E::Apply),
            (ReportTarget::Reference("uuid-1"), row(P::Awaiting, 2, 2, false), A::OlderAttempt { job }, E::None),
            (ReportTarget::Reference("uuid-2"), row(P::Waiting, 2, 0, false), A::OlderAttempt { job }, E::None),
            (
                ReportTarget::AssetEndedAt("a", Timestamp(999)),
                row(P::Awaiting, 2, 2, false),
                A::OlderAttempt { job },
                E::None,
            ),
            (
                ReportTarget::AssetEndedAt("a", Timestamp(1_000)),
                row(P::Awaiting, 2, 2, false),
                A::Applied { job },
                E::Apply,
            ),
            (
                ReportTarget::AssetEndedAt("a", Timestamp(5_000)),
                row(P::Waiting, 2, 0, false),
                A::OlderAttempt { job },
                E::None,
            ),
            (ReportTarget::Asset("a"), row(P::Awaiting, 2, 2, false), A::Ambiguous { job }, E::Check),
            (ReportTarget::Asset("a"), row(P::Calling, 1, 2, false), A::Ambiguous { job }, E::None),
            (ReportTarget::Asset("a"), row(P::Waiting, 2, 0, false), A::OlderAttempt { job }, E::None),
            (ReportTarget::Asset("a"), row(P::Finished, 2, 0, false), A::Finished { job }, E::None),
        ];
        for (i, (target, row, answer, effect)) in cases.iter().enumerate() {
            assert_eq!(judge(*target, row), (*answer, *effect), "case {i}: {target:?}");
        }
        let held = Reported { held: true, ..row(P::Awaiting, 2, 2, false) };
        assert_eq!(judge(ReportTarget::Asset("a"), &held), (A::Ambiguous { job }, E::None), "a held job checks itself");
    }
}
