//! The SQLite limit on rusqlite: the limit loop's row transitions with group commit, on one connection on the
//! bench's own thread, its statements prepared once (cached), each phase of a batch one transaction. No
//! hand-off to another thread at all: the least a durable write of these rows can cost in this process.

use rusqlite::{Connection, params};

use super::{ATTEMPTS, BATCH, LEASE, PAYLOAD, RETRY_DELAY_MS, Run};

/// The loop, on a fresh file with the store's schema and settings (WAL, synchronous NORMAL, foreign keys).
pub fn limit_loop(jobs: usize) -> Run {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = super::runtime().block_on(super::schema(dir.path()));
    let mut db = Connection::open(&path).expect("a connection");
    db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .expect("the store's settings");
    let owner = "bench";
    let mut now: i64 = 0;
    let mut commits = 0u64;
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(BATCH) {
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
                     VALUES (?1, 'waiting', ?2, ?3, 1, '2001', ?2, ?2) \
                     ON CONFLICT (asset_id) WHERE phase <> 'finished' DO NOTHING RETURNING id",
                )
                .expect("prepare");
            for i in chunk {
                let _: i64 =
                    insert.query_row(params![format!("asset-{i}"), now, PAYLOAD], |r| r.get(0)).expect("insert");
            }
        }
        tx.commit().expect("commit");
        commits += 1;
    }
    let mut attempts = 0u64;
    loop {
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        let claimed: Vec<(i64, i64, i64)> = {
            let mut claim = tx
                .prepare_cached(
                    "UPDATE jobs SET taken_over = (lease_owner IS NOT NULL), epoch = epoch + 1, lease_owner = ?1, \
                     wake_at = ?2, updated_at = ?3 \
                     WHERE id IN (SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= ?3 ORDER BY wake_at LIMIT ?4) \
                     RETURNING id, epoch, attempts",
                )
                .expect("prepare");
            let rows = claim
                .query_map(params![owner, now + LEASE.as_millis() as i64, now, BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .expect("claim");
            rows.collect::<Result<_, _>>().expect("claimed rows")
        };
        tx.commit().expect("commit");
        commits += 1;
        if claimed.is_empty() {
            let next: Option<i64> = db
                .query_row("SELECT MIN(wake_at) FROM jobs WHERE phase <> 'finished'", [], |r| r.get(0))
                .expect("next wake");
            match next {
                Some(next) => {
                    now = now.max(next);
                    continue;
                }
                None => break,
            }
        }
        // The attempts' starts in one transaction, then their results in one.
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        {
            let mut start = tx
                .prepare_cached(
                    "UPDATE jobs SET phase = 'calling', payload = ?4, attempts = ?5, updated_at = ?6 \
                     WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3 AND phase <> 'finished'",
                )
                .expect("prepare");
            let mut ledger = tx
                .prepare_cached("INSERT INTO calls (job_id, key, hook, started_at) VALUES (?1, ?2, 'resubmit', ?3)")
                .expect("prepare");
            for &(id, epoch, done) in &claimed {
                let attempt = done + 1;
                let fenced = start.execute(params![id, epoch, owner, PAYLOAD, attempt, now]).expect("start");
                assert_eq!(fenced, 1, "the lease holds");
                ledger.execute(params![id, format!("asset#{id}.{attempt}"), now]).expect("ledger");
                attempts += 1;
            }
        }
        tx.commit().expect("commit");
        commits += 1;
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        {
            let mut answer = tx
                .prepare_cached(
                    "UPDATE calls SET answered_at = ?3, answer = ?4 WHERE id = \
                     (SELECT id FROM calls WHERE job_id = ?1 AND key = ?2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)",
                )
                .expect("prepare");
            let mut result = tx
                .prepare_cached(
                    "UPDATE jobs SET payload = ?4, updated_at = ?5, lease_owner = NULL, \
                     phase = CASE WHEN ?6 THEN 'finished' ELSE 'waiting' END, \
                     wake_at = CASE WHEN ?6 THEN wake_at ELSE ?7 END, \
                     finished_at = CASE WHEN ?6 THEN ?5 END, outcome = CASE WHEN ?6 THEN 'recovered' END \
                     WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3 AND phase <> 'finished'",
                )
                .expect("prepare");
            for &(id, epoch, done) in &claimed {
                let attempt = done + 1;
                let recovered = attempt >= i64::from(ATTEMPTS);
                let said = if recovered { "succeeded" } else { "failed: 2001" };
                answer.execute(params![id, format!("asset#{id}.{attempt}"), now, said]).expect("ledger");
                let fenced = result
                    .execute(params![id, epoch, owner, PAYLOAD, now, recovered, now + RETRY_DELAY_MS])
                    .expect("result");
                assert_eq!(fenced, 1, "the lease holds");
            }
        }
        tx.commit().expect("commit");
        commits += 1;
    }
    let recovered: i64 =
        db.query_row("SELECT COUNT(*) FROM jobs WHERE outcome = 'recovered'", [], |r| r.get(0)).expect("count");
    assert_eq!(recovered as usize, jobs, "every job recovered");
    Run { attempts, commits: Some(commits), untimed: std::time::Duration::ZERO }
}
