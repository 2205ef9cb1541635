//! The lease holder's side: claims of due jobs (and of expired leases) in batches, renewals in batches, and
//! fenced saves with their ledger entries and any held report in the same transaction (submits are in
//! [`super::submit`]). Safe from any number of replicas at once: claims skip the rows another transaction has
//! locked, and every write of a holder names its lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::Db;
use super::decode::{get, int, job_columns, job_row};
use super::hints::send_hint;
use super::saves::{Saves, ledger_at_once};
use crate::store::group::{self, Batch, BatchFuture, Failed, OwnedLedger, OwnedSave, Written};
use crate::store::{Claimed, Lease, Renewed, Saved, StoreError, Timestamp};

/// One statement per batch, served by the partial index `jobs_due`: due jobs at rest and expired leases are
/// both `wake_at <= now`. `SKIP LOCKED`: two replicas claiming at once take different rows, and neither waits
/// for the other. In `SET`, `lease_owner` is the value before the update: whether the job still had a holder
/// (whose lease had expired).
pub(super) const CLAIM: &str = concat!(
    "WITH due AS (\
         SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= $3 \
         ORDER BY wake_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE jobs SET taken_over = (jobs.lease_owner IS NOT NULL), epoch = jobs.epoch + 1, lease_owner = $1, \
         wake_at = $2, updated_at = $3 \
     FROM due WHERE jobs.id = due.id \
     RETURNING taken_over, ",
    job_columns!()
);

/// One statement per batch: the leases come as three arrays (ids, epochs, owners), joined on the key. An
/// expired lease (`wake_at <= $5`, now) is not renewed: its job is due for another holder.
pub(super) const RENEW: &str = "UPDATE jobs SET wake_at = $1 \
     FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS held (id, epoch, owner) \
     WHERE jobs.id = held.id AND jobs.epoch = held.epoch AND jobs.lease_owner = held.owner \
     AND jobs.phase <> 'finished' AND jobs.wake_at > $5 \
     RETURNING jobs.id, jobs.epoch, jobs.lease_owner, jobs.cancel_requested";

/// Serializes the saves that name references with the reports for them (see [`REFERENCE_LOCKS`]): the
/// references `$2`, sorted (two batches take their locks in one order).
pub(super) const LOCK_REFERENCES: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(reference)) FROM unnest($2::text[]) AS reference";

/// Serializes a report for a reference with the save that names it (see [`REFERENCE_LOCKS`]).
pub(super) const LOCK_REFERENCE: &str = "SELECT pg_advisory_xact_lock($1, hashtext($2))";

/// The key space of the advisory locks taken per reference (the two-key form, apart from the migrations').
/// A report for a reference no job names yet is held; the save that names it takes it. Without a lock, each
/// could miss the other: the report reads before the save commits its reference, the save reads before the
/// report commits the held row. With it, the later one's next statement sees what the first committed.
pub(super) const REFERENCE_LOCKS: i32 = 0x4c46_5246;

/// The fenced writes of holders, any number of them in one statement (one row of `saves` each, from the
/// arrays `$1` to `$18`), with their ledger entries (`$20` to `$27`, each naming its job) and the reports held
/// for the references they name: refused (no row returned) unless the lease is unexpired until `fence` (a held
/// row's `wake_at` is its lease's expiry), and then none of its ledger entries is written.
///
/// `held` is the reference of a job that goes to await its result: a report held for it is taken (the row's
/// own report goes first unless the holder took it), the held row deleted, the reference named for the job.
/// A release to `awaiting` with a report on the row makes the job due at once (when `wake_on_report`), as does
/// a release of a job asked to cancel meanwhile. `attempt` is the attempt under way, and its start is noted
/// when it changes. A job released due now hints the other replicas (on channel `$19`). A call answered is
/// the latest unanswered one with its key as the ledger was before the statement (the engine answers the
/// last call, then begins the next: other orders are written one statement at a time).
pub(super) const SAVES: &str = concat!(
    "WITH saves AS (\
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], \
             $7::bigint[], $8::text[], $9::bigint[], $10::bool[], $11::text[], $12::text[], $13::bool[], \
             $14::bigint[], $15::text[], $16::bigint[], $17::bigint[], $18::bool[]) \
         AS s (s_id, s_epoch, s_owner, s_payload, s_version, s_last_code, s_attempts, s_reference, s_now, \
             s_take_report, s_held, s_phase, s_release, s_wake_at, s_outcome, s_fence, s_attempt, s_wake_on_report)), \
     held AS (SELECT saves.s_id AS held_id, held_reports.report AS held_report FROM saves \
         JOIN held_reports ON held_reports.reference = saves.s_held), \
     updated AS (\
         UPDATE jobs SET payload = s_payload, version = s_version, last_code = s_last_code, attempts = s_attempts, \
             reference = s_reference, updated_at = s_now, \
             report = CASE WHEN s_take_report THEN held_report ELSE COALESCE(report, held_report) END, \
             phase = s_phase, \
             attempt_at = CASE WHEN attempt = s_attempt THEN attempt_at WHEN s_attempt > 0 THEN s_now ELSE NULL END, \
             attempt = s_attempt, \
             lease_owner = CASE WHEN s_phase = 'finished' OR s_release THEN NULL ELSE lease_owner END, \
             wake_at = CASE \
                 WHEN s_phase = 'finished' OR NOT s_release THEN wake_at \
                 WHEN cancel_requested THEN s_now \
                 WHEN s_phase = 'awaiting' AND s_wake_on_report \
                     AND (CASE WHEN s_take_report THEN held_report ELSE COALESCE(report, held_report) END) IS NOT NULL \
                     THEN s_now \
                 ELSE s_wake_at END, \
             finished_at = CASE WHEN s_phase = 'finished' THEN s_now ELSE finished_at END, \
             outcome = CASE WHEN s_phase = 'finished' THEN COALESCE(s_outcome, 'finished') ELSE outcome END \
         FROM saves LEFT JOIN held ON held.held_id = saves.s_id \
         WHERE jobs.id = s_id AND jobs.epoch = s_epoch AND jobs.lease_owner = s_owner AND jobs.phase <> 'finished' \
             AND jobs.wake_at > s_fence \
         RETURNING jobs.id, jobs.cancel_requested, jobs.report, saves.s_held, \
             CASE WHEN $19::text IS NOT NULL AND jobs.lease_owner IS NULL AND jobs.phase <> 'finished' \
                 AND jobs.wake_at <= s_now THEN ",
    send_hint!("19"),
    " END AS hinted), \
     taken AS (DELETE FROM held_reports WHERE reference IN (SELECT s_held FROM updated)), \
     named AS (INSERT INTO job_references (reference, job_id) \
         SELECT s_held, id FROM updated WHERE s_held IS NOT NULL ON CONFLICT (reference) DO NOTHING), \
     begun AS (INSERT INTO calls (job_id, key, hook, started_at) \
         SELECT b.id, b.key, b.hook, b.at FROM unnest($20::bigint[], $21::text[], $22::text[], $23::bigint[]) \
             WITH ORDINALITY AS b (id, key, hook, at, n) \
         WHERE b.id IN (SELECT id FROM updated) ORDER BY b.n), \
     answered AS (UPDATE calls SET answered_at = e.at, answer = e.answer \
         FROM unnest($24::bigint[], $25::text[], $26::text[], $27::bigint[]) AS e (id, key, answer, at) \
         WHERE e.id IN (SELECT id FROM updated) AND calls.id = (SELECT c.id FROM calls c \
             WHERE c.job_id = e.id AND c.key = e.key AND c.answered_at IS NULL ORDER BY c.id DESC LIMIT 1)) \
     SELECT id, cancel_requested, report, hinted FROM updated"
);

const BEGIN_CALL: &str = "INSERT INTO calls (job_id, key, hook, started_at) VALUES ($1, $2, $3, $4)";

/// Answers the latest unanswered call with this key.
pub(super) const END_CALL: &str = "UPDATE calls SET answered_at = $3, answer = $4 WHERE id = \
     (SELECT id FROM calls WHERE job_id = $1 AND key = $2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)";

impl Db {
    pub(super) async fn claim(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(CLAIM)
            .bind(owner)
            .bind(now.after(lease).0)
            .bind(now.0)
            .bind(int(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let owner: Arc<str> = Arc::from(owner);
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            // A row this build cannot read is left out (and said): failing the batch would hold back every
            // job claimed with it, at every claim, until the row is repaired.
            let read = job_row(row).and_then(|job| Ok((get::<bool>(row, "taken_over", job.id.0)?, job)));
            match read {
                Ok((taken_over, row)) => claimed.push(Claimed {
                    lease: Lease { job: row.id, epoch: row.epoch, owner: owner.clone() },
                    row,
                    taken_over,
                }),
                Err(e) => tracing::error!(store = %self.name, error = %e, "a claimed job's row is unreadable"),
            }
        }
        // `UPDATE … RETURNING` gives rows in no set order; ids are the order of submission.
        claimed.sort_by_key(|c| c.row.id);
        Ok(claimed)
    }

    pub(super) async fn renew(&self, leases: &[Lease], now: Timestamp, lease: Duration) -> Result<Renewed, StoreError> {
        if leases.is_empty() {
            return Ok(Renewed::default());
        }
        let ids: Vec<i64> = leases.iter().map(|l| int(l.job.0)).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| int(l.epoch)).collect();
        let owners: Vec<&str> = leases.iter().map(|l| &*l.owner).collect();
        let rows: Vec<(i64, i64, String, bool)> = sqlx::query_as(RENEW)
            .bind(now.after(lease).0)
            .bind(ids)
            .bind(epochs)
            .bind(owners)
            .bind(now.0)
            .fetch_all(&self.renewals)
            .await
            .map_err(|e| self.err(e))?;
        // Keyed by the whole lease: a batch may name one job under an old lease and under the new one.
        let held: HashMap<(i64, i64, String), bool> =
            rows.into_iter().map(|(id, epoch, owner, cancel)| ((id, epoch, owner), cancel)).collect();
        let mut renewed = Renewed::default();
        for l in leases {
            match held.get(&(int(l.job.0), int(l.epoch), l.owner.to_string())) {
                None => renewed.lost.push(l.job),
                Some(true) => renewed.cancel_requested.push(l.job),
                Some(false) => {}
            }
        }
        Ok(renewed)
    }

    /// The saves `which` (indexes into `saves.all`) on `conn` (in a transaction, or a statement of its own),
    /// in one statement with their ledgers and held reports: each its answer, by its index in the batch (a lost
    /// lease is its own `Err`, and writes nothing).
    async fn saves_in(
        &self,
        conn: &mut sqlx::PgConnection,
        saves: &Saves<'_>,
        which: &[usize],
    ) -> Result<Vec<(usize, Result<Saved, StoreError>)>, StoreError> {
        let mut rows = Rows::default();
        for &k in which {
            let (_, lease, save, now) = saves.all[k];
            rows.push(lease, save, now, ledger_at_once(save));
        }
        let returned: Vec<(i64, bool, Option<String>, Option<bool>)> = rows
            .bind(sqlx::query_as(SAVES), self.hints.as_deref())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        let returned: Vec<(i64, bool, Option<String>)> = returned.into_iter().map(|(id, c, r, _)| (id, c, r)).collect();
        let answers = saves.answers(which, &returned);
        for (&k, (_, answer)) in which.iter().zip(&answers) {
            let (_, lease, save, now) = saves.all[k];
            if answer.is_ok() && !ledger_at_once(save) {
                self.ledger_in_order(&mut *conn, lease, save, now).await?;
            }
        }
        Ok(answers)
    }

    /// Writes a save's ledger one entry after the other (see [`SAVES`]).
    async fn ledger_in_order(
        &self,
        conn: &mut sqlx::PgConnection,
        lease: &Lease,
        save: &OwnedSave,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = int(lease.job.0);
        for entry in &save.ledger {
            match entry {
                OwnedLedger::Begin { key, hook } => {
                    sqlx::query(BEGIN_CALL).bind(id).bind(&**key).bind(&**hook).bind(now.0).execute(&mut *conn).await
                }
                OwnedLedger::End { key, answer } => {
                    sqlx::query(END_CALL).bind(id).bind(&**key).bind(now.0).bind(&**answer).execute(&mut *conn).await
                }
            }
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

/// The columns of [`SAVES`], one element per save, and its ledger entries.
#[derive(Default)]
struct Rows<'a> {
    id: Vec<i64>,
    epoch: Vec<i64>,
    owner: Vec<&'a str>,
    payload: Vec<&'a str>,
    version: Vec<i64>,
    last_code: Vec<&'a str>,
    attempts: Vec<i64>,
    reference: Vec<Option<&'a str>>,
    now: Vec<i64>,
    take_report: Vec<bool>,
    held: Vec<Option<&'a str>>,
    phase: Vec<&'static str>,
    release: Vec<bool>,
    wake_at: Vec<i64>,
    outcome: Vec<Option<&'a str>>,
    fence: Vec<i64>,
    attempt: Vec<i64>,
    wake_on_report: Vec<bool>,
    begin: (Vec<i64>, Vec<&'a str>, Vec<&'a str>, Vec<i64>),
    end: (Vec<i64>, Vec<&'a str>, Vec<&'a str>, Vec<i64>),
}

impl<'a> Rows<'a> {
    /// Adds a save; its ledger too when `ledger` (else it is written after, in order).
    fn push(&mut self, lease: &'a Lease, save: &'a OwnedSave, now: Timestamp, ledger: bool) {
        let id = int(lease.job.0);
        self.id.push(id);
        self.epoch.push(int(lease.epoch));
        self.owner.push(&lease.owner);
        self.payload.push(&save.payload);
        self.version.push(i64::from(save.version));
        self.last_code.push(&save.last_code);
        self.attempts.push(i64::from(save.attempts));
        self.reference.push(save.reference.as_deref());
        self.now.push(now.0);
        self.take_report.push(save.take_report);
        self.held.push(save.awaiting());
        self.phase.push(save.phase.as_str());
        self.release.push(save.release);
        self.wake_at.push(save.wake_at.0);
        self.outcome.push(save.outcome.as_deref());
        self.fence.push(save.fence_until.max(now).0);
        self.attempt.push(i64::from(save.attempt));
        self.wake_on_report.push(save.wake_on_report);
        if !ledger {
            return;
        }
        for entry in &save.ledger {
            match entry {
                OwnedLedger::Begin { key, hook } => {
                    self.begin.0.push(id);
                    self.begin.1.push(key);
                    self.begin.2.push(hook);
                    self.begin.3.push(now.0);
                }
                OwnedLedger::End { key, answer } => {
                    self.end.0.push(id);
                    self.end.1.push(key);
                    self.end.2.push(answer);
                    self.end.3.push(now.0);
                }
            }
        }
    }

    fn bind<O>(
        self,
        query: sqlx::query::QueryAs<'a, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
        hints: Option<&'a str>,
    ) -> sqlx::query::QueryAs<'a, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(self.id)
            .bind(self.epoch)
            .bind(self.owner)
            .bind(self.payload)
            .bind(self.version)
            .bind(self.last_code)
            .bind(self.attempts)
            .bind(self.reference)
            .bind(self.now)
            .bind(self.take_report)
            .bind(self.held)
            .bind(self.phase)
            .bind(self.release)
            .bind(self.wake_at)
            .bind(self.outcome)
            .bind(self.fence)
            .bind(self.attempt)
            .bind(self.wake_on_report)
            .bind(hints)
            .bind(self.begin.0)
            .bind(self.begin.1)
            .bind(self.begin.2)
            .bind(self.begin.3)
            .bind(self.end.0)
            .bind(self.end.1)
            .bind(self.end.2)
            .bind(self.end.3)
    }
}

impl Batch for Db {
    /// A batch of submits is one statement that commits by itself; saves go in their own transaction.
    const SUBMITS_APART: bool = true;

    fn run<'a>(&'a self, writes: &'a Arc<[group::Write]>) -> BatchFuture<'a> {
        Box::pin(async move {
            let fail = |e| if writes.len() == 1 { Failed::At(0, e) } else { Failed::Each(e) };
            if writes.iter().all(|w| matches!(w, group::Write::Submit { .. })) {
                let all: Vec<usize> = (0..writes.len()).collect();
                let answers = self.submits_in(writes, &all).await.map_err(fail)?;
                let mut results: Vec<Option<Result<Written, StoreError>>> = writes.iter().map(|_| None).collect();
                for (i, answer) in answers {
                    results[i] = Some(answer);
                }
                return Ok(results.into_iter().map(|r| r.expect("every submit has its answer")).collect());
            }
            let saves = Saves::of(writes);
            assert_eq!(saves.all.len(), writes.len(), "PostgreSQL batches submits apart, and claims not at all");
            let references = saves.references();
            let mut results: Vec<Option<Result<Written, StoreError>>> = writes.iter().map(|_| None).collect();
            let mut put = |answers: Vec<(usize, Result<Saved, StoreError>)>| {
                for (i, answer) in answers {
                    results[i] = Some(answer.map(Written::Saved));
                }
            };
            if saves.again.is_empty() && references.is_empty() && saves.all.iter().all(|s| ledger_at_once(s.2)) {
                // One statement is a transaction of its own.
                let mut conn = self.pool.acquire().await.map_err(|e| Failed::All(self.err(e)))?;
                put(self.saves_in(&mut conn, &saves, &saves.first).await.map_err(fail)?);
            } else {
                let mut tx = self.begin().await.map_err(Failed::All)?;
                if !references.is_empty() {
                    sqlx::query(LOCK_REFERENCES)
                        .bind(REFERENCE_LOCKS)
                        .bind(&references)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| Failed::All(self.err(e)))?;
                }
                put(self.saves_in(&mut tx, &saves, &saves.first).await.map_err(fail)?);
                for &k in &saves.again {
                    put(self.saves_in(&mut tx, &saves, &[k]).await.map_err(fail)?);
                }
                self.commit(tx).await.map_err(Failed::All)?;
            }
            Ok(results.into_iter().map(|r| r.expect("every save has its answer")).collect())
        })
    }
}
