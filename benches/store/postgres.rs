//! The same row transitions on PostgreSQL, with 4 workers at once, as 4 replicas would: a bare sqlx loop, the
//! limits (group commit with a statement per row, and with a statement per phase of a batch), and the same rows
//! through `PgStore` with 4 claimers. Each run is on a schema of its own on the server
//! `DATABASE_URL` names, dropped after it.
//!
//! Time is one counter of milliseconds that the workers share: when nothing is due, a worker moves it to the
//! next job at rest that is due (never past a lease: leases here last an hour, retries are a minute apart), as
//! the engine's wait would. A worker ends when no job is active.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use lightflow_remedy::store::{LedgerWrite, NewJob, PgStore, Phase, Save, Store, StoreOptions, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::pg;
use super::{ATTEMPTS, BATCH, PAYLOAD, RETRY_DELAY_MS, Run};

/// Workers (replicas) at once.
pub const WORKERS: usize = 4;
/// Longer than any run's retries: time never jumps past a lease (no takeovers in the measure).
const LEASE: Duration = Duration::from_secs(3600);

/// What a worker does when it claimed nothing.
enum Idle {
    /// Every job has ended.
    Done,
    /// Look again (time moved, or another worker is still at work).
    Again,
}

/// Moves the shared time to `next` if it is a job at rest that is due within a retry delay; else (only held
/// jobs are left, their leases far off) waits for the workers holding them.
async fn idle(clock: &AtomicI64, next: Option<i64>) -> Idle {
    let now = clock.load(Ordering::SeqCst);
    match next {
        None => Idle::Done,
        Some(next) if next <= now + RETRY_DELAY_MS => {
            clock.fetch_max(next, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Idle::Again
        }
        Some(_) => {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Idle::Again
        }
    }
}

/// When the next active job is due (or its lease runs out), read by the loops.
async fn next_wake(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT MIN(wake_at) FROM jobs WHERE phase <> 'finished'")
        .fetch_one(pool)
        .await
        .expect("next wake")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime")
}

/// A fresh schema with the store's tables: its name, and the URL that opens the store on it.
async fn schema(url: &str) -> (String, String) {
    let schema = pg::unique_schema("bench");
    let at = pg::in_schema(url, &schema);
    PgStore::open(&at, &StoreOptions::default().wake_hints(false)).await.expect("a store").close().await;
    (schema, at)
}

/// The transactions the server has committed in the database `url` names (read-only ones included), once
/// the backends of the run have ended and reported them.
async fn commits(url: &str) -> u64 {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await.expect("a connection");
    let commits: i64 =
        sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&pool)
            .await
            .expect("pg_stat_database");
    pool.close().await;
    commits as u64
}

/// How long the backends of a run that ended take to report their counts (they do as they exit).
const SETTLE: Duration = Duration::from_millis(1500);

/// The commits of a run that began at `before`, and the time spent waiting for them to be counted.
async fn commits_since(url: &str, before: u64) -> (Option<u64>, Duration) {
    tokio::time::sleep(SETTLE).await;
    (Some(commits(url).await.saturating_sub(before)), SETTLE)
}

/// How a loop writes.
#[derive(Clone, Copy)]
pub enum Loop {
    /// A transaction per write.
    Bare,
    /// Group commit: a transaction per phase of a batch, a statement per row (the limit).
    Grouped,
    /// Group commit with a statement per phase of a batch, its rows as arrays (`unnest`).
    Batched,
}

/// The bare loop with [`WORKERS`] workers, written as `how` says.
pub fn bare_loop(url: &str, jobs: usize, how: Loop) -> Run {
    runtime().block_on(async {
        let (schema, _) = schema(url).await;
        let before = commits(url).await;
        let connect: PgConnectOptions = url.parse().expect("DATABASE_URL");
        let connect = connect.options([("search_path", schema.as_str())]);
        // The store's pool settings: no test before acquire, no reaper.
        let pool = PgPoolOptions::new()
            .max_connections(WORKERS as u32 + 1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .expect("a pool");
        let clock = Arc::new(AtomicI64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (pool, clock, attempts) = (pool.clone(), clock.clone(), attempts.clone());
                match how {
                    Loop::Grouped => tokio::spawn(limit_worker(pool, w, jobs, clock, attempts)),
                    Loop::Batched => tokio::spawn(batched_worker(pool, w, jobs, clock, attempts)),
                    Loop::Bare => tokio::spawn(bare_worker(pool, w, jobs, clock, attempts)),
                }
            })
            .collect();
        for worker in workers {
            worker.await.expect("a worker");
        }
        let recovered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE outcome = 'recovered'")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(recovered as usize, jobs, "every job recovered");
        pool.close().await;
        let (commits, untimed) = commits_since(url, before).await;
        pg::drop_schema(url, &schema).await;
        Run { attempts: attempts.load(Ordering::SeqCst), commits, untimed }
    })
}

/// A worker of the limit: the bare loop's statements, with group commit (the inserts of a batch in one
/// transaction, the starts of a claimed batch in one, their results in one).
async fn limit_worker(pool: PgPool, w: usize, jobs: usize, clock: Arc<AtomicI64>, attempts: Arc<AtomicU64>) {
    let owner = format!("bench-{w}");
    let mine: Vec<usize> = (w..jobs).step_by(WORKERS).collect();
    for chunk in mine.chunks(BATCH) {
        let now = clock.load(Ordering::SeqCst);
        let mut tx = pool.begin().await.expect("begin");
        for i in chunk {
            sqlx::query(
                "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
                 VALUES ($1, 'waiting', $2, $3, 1, '2001', $2, $2) \
                 ON CONFLICT (asset_id) WHERE phase <> 'finished' DO NOTHING RETURNING id",
            )
            .bind(format!("asset-{i}"))
            .bind(now)
            .bind(PAYLOAD)
            .fetch_one(&mut *tx)
            .await
            .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    loop {
        let now = clock.load(Ordering::SeqCst);
        let claimed = claim_batch(&pool, &owner, now).await;
        if claimed.is_empty() {
            match idle(&clock, next_wake(&pool).await).await {
                Idle::Done => return,
                Idle::Again => continue,
            }
        }
        let mut tx = pool.begin().await.expect("begin");
        for &(id, epoch, done) in &claimed {
            let attempt = done + 1;
            let fenced = sqlx::query(START).bind(id).bind(epoch).bind(&owner).bind(PAYLOAD).bind(attempt).bind(now);
            let fenced = fenced.execute(&mut *tx).await.expect("start");
            assert_eq!(fenced.rows_affected(), 1, "the lease holds");
            sqlx::query(BEGIN_CALL)
                .bind(id)
                .bind(format!("asset#{id}.{attempt}"))
                .bind(now)
                .execute(&mut *tx)
                .await
                .expect("ledger");
        }
        tx.commit().await.expect("commit");
        attempts.fetch_add(claimed.len() as u64, Ordering::SeqCst);
        let mut tx = pool.begin().await.expect("begin");
        for &(id, epoch, done) in &claimed {
            let attempt = done + 1;
            let recovered = attempt >= i64::from(ATTEMPTS);
            sqlx::query(END_CALL)
                .bind(id)
                .bind(format!("asset#{id}.{attempt}"))
                .bind(now)
                .bind(if recovered { "succeeded" } else { "failed: 2001" })
                .execute(&mut *tx)
                .await
                .expect("ledger");
            let fenced = sqlx::query(RESULT)
                .bind(id)
                .bind(epoch)
                .bind(&owner)
                .bind(PAYLOAD)
                .bind(now)
                .bind(recovered)
                .bind(now + RETRY_DELAY_MS)
                .execute(&mut *tx)
                .await
                .expect("result");
            assert_eq!(fenced.rows_affected(), 1, "the lease holds");
        }
        tx.commit().await.expect("commit");
    }
}

/// A worker of the batched limit: each phase of a batch one statement per table, its rows as arrays.
async fn batched_worker(pool: PgPool, w: usize, jobs: usize, clock: Arc<AtomicI64>, attempts: Arc<AtomicU64>) {
    let owner = format!("bench-{w}");
    let mine: Vec<usize> = (w..jobs).step_by(WORKERS).collect();
    for chunk in mine.chunks(BATCH) {
        let now = clock.load(Ordering::SeqCst);
        let assets: Vec<String> = chunk.iter().map(|i| format!("asset-{i}")).collect();
        sqlx::query(
            "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
             SELECT a, 'waiting', $2, $3, 1, '2001', $2, $2 FROM unnest($1::text[]) AS a \
             ON CONFLICT (asset_id) WHERE phase <> 'finished' DO NOTHING",
        )
        .bind(&assets)
        .bind(now)
        .bind(PAYLOAD)
        .execute(&pool)
        .await
        .expect("insert");
    }
    loop {
        let now = clock.load(Ordering::SeqCst);
        let claimed = claim_batch(&pool, &owner, now).await;
        if claimed.is_empty() {
            match idle(&clock, next_wake(&pool).await).await {
                Idle::Done => return,
                Idle::Again => continue,
            }
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.0).collect();
        let epochs: Vec<i64> = claimed.iter().map(|c| c.1).collect();
        let tries: Vec<i64> = claimed.iter().map(|c| c.2 + 1).collect();
        let keys: Vec<String> = claimed.iter().map(|&(id, _, done)| format!("asset#{id}.{}", done + 1)).collect();
        let mut tx = pool.begin().await.expect("begin");
        let started = sqlx::query(
            "UPDATE jobs SET phase = 'calling', payload = $4, attempts = s.attempt, updated_at = $5 \
             FROM unnest($1::bigint[], $2::bigint[], $6::bigint[]) AS s(id, epoch, attempt) \
             WHERE jobs.id = s.id AND jobs.epoch = s.epoch AND jobs.lease_owner = $3 AND jobs.phase <> 'finished'",
        )
        .bind(&ids)
        .bind(&epochs)
        .bind(&owner)
        .bind(PAYLOAD)
        .bind(now)
        .bind(&tries)
        .execute(&mut *tx)
        .await
        .expect("start");
        assert_eq!(started.rows_affected() as usize, claimed.len(), "the leases hold");
        sqlx::query(
            "INSERT INTO calls (job_id, key, hook, started_at) \
             SELECT id, key, 'resubmit', $3 FROM unnest($1::bigint[], $2::text[]) AS c(id, key)",
        )
        .bind(&ids)
        .bind(&keys)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("ledger");
        tx.commit().await.expect("commit");
        attempts.fetch_add(claimed.len() as u64, Ordering::SeqCst);
        let recovered: Vec<bool> = tries.iter().map(|&attempt| attempt >= i64::from(ATTEMPTS)).collect();
        let answers: Vec<&str> = recovered.iter().map(|&r| if r { "succeeded" } else { "failed: 2001" }).collect();
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "UPDATE calls SET answered_at = $3, answer = a.answer \
             FROM unnest($1::bigint[], $2::text[], $4::text[]) AS a(id, key, answer) \
             WHERE calls.id = (SELECT c.id FROM calls AS c WHERE c.job_id = a.id AND c.key = a.key \
                 AND c.answered_at IS NULL ORDER BY c.id DESC LIMIT 1)",
        )
        .bind(&ids)
        .bind(&keys)
        .bind(now)
        .bind(&answers)
        .execute(&mut *tx)
        .await
        .expect("ledger");
        let ended = sqlx::query(
            "UPDATE jobs SET payload = $4, updated_at = $5, lease_owner = NULL, \
             phase = CASE WHEN r.done THEN 'finished' ELSE 'waiting' END, \
             wake_at = CASE WHEN r.done THEN jobs.wake_at ELSE $6 END, \
             finished_at = CASE WHEN r.done THEN $5 END, outcome = CASE WHEN r.done THEN 'recovered' END \
             FROM unnest($1::bigint[], $2::bigint[], $7::bool[]) AS r(id, epoch, done) \
             WHERE jobs.id = r.id AND jobs.epoch = r.epoch AND jobs.lease_owner = $3 AND jobs.phase <> 'finished'",
        )
        .bind(&ids)
        .bind(&epochs)
        .bind(&owner)
        .bind(PAYLOAD)
        .bind(now)
        .bind(now + RETRY_DELAY_MS)
        .bind(&recovered)
        .execute(&mut *tx)
        .await
        .expect("result");
        assert_eq!(ended.rows_affected() as usize, claimed.len(), "the leases hold");
        tx.commit().await.expect("commit");
    }
}

/// The statements of the loops: a claim of a batch, an attempt's start and its ledger entry, its answer and
/// its result.
const CLAIM: &str = "WITH due AS (SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= $3 \
         ORDER BY wake_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE jobs SET taken_over = (jobs.lease_owner IS NOT NULL), epoch = jobs.epoch + 1, \
         lease_owner = $1, wake_at = $2, updated_at = $3 \
     FROM due WHERE jobs.id = due.id RETURNING jobs.id, jobs.epoch, jobs.attempts";
const START: &str = "UPDATE jobs SET phase = 'calling', payload = $4, attempts = $5, updated_at = $6 \
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND phase <> 'finished'";
const BEGIN_CALL: &str = "INSERT INTO calls (job_id, key, hook, started_at) VALUES ($1, $2, 'resubmit', $3)";
const END_CALL: &str = "UPDATE calls SET answered_at = $3, answer = $4 WHERE id = \
     (SELECT id FROM calls WHERE job_id = $1 AND key = $2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)";
const RESULT: &str = "UPDATE jobs SET payload = $4, updated_at = $5, lease_owner = NULL, \
     phase = CASE WHEN $6 THEN 'finished' ELSE 'waiting' END, \
     wake_at = CASE WHEN $6 THEN wake_at ELSE $7 END, \
     finished_at = CASE WHEN $6 THEN $5 END, outcome = CASE WHEN $6 THEN 'recovered' END \
     WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND phase <> 'finished'";

async fn claim_batch(pool: &PgPool, owner: &str, now: i64) -> Vec<(i64, i64, i64)> {
    sqlx::query_as(CLAIM)
        .bind(owner)
        .bind(now + LEASE.as_millis() as i64)
        .bind(now)
        .bind(BATCH as i64)
        .fetch_all(pool)
        .await
        .expect("claim")
}

async fn bare_worker(pool: PgPool, w: usize, jobs: usize, clock: Arc<AtomicI64>, attempts: Arc<AtomicU64>) {
    let owner = format!("bench-{w}");
    for i in (w..jobs).step_by(WORKERS) {
        let now = clock.load(Ordering::SeqCst);
        sqlx::query(
            "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
             VALUES ($1, 'waiting', $2, $3, 1, '2001', $2, $2) \
             ON CONFLICT (asset_id) WHERE phase <> 'finished' DO NOTHING RETURNING id",
        )
        .bind(format!("asset-{i}"))
        .bind(now)
        .bind(PAYLOAD)
        .fetch_one(&pool)
        .await
        .expect("insert");
    }
    loop {
        let now = clock.load(Ordering::SeqCst);
        let claimed: Vec<(i64, i64, i64)> = sqlx::query_as(
            "WITH due AS (SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= $3 \
                 ORDER BY wake_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET taken_over = (jobs.lease_owner IS NOT NULL), epoch = jobs.epoch + 1, \
                 lease_owner = $1, wake_at = $2, updated_at = $3 \
             FROM due WHERE jobs.id = due.id RETURNING jobs.id, jobs.epoch, jobs.attempts",
        )
        .bind(&owner)
        .bind(now + LEASE.as_millis() as i64)
        .bind(now)
        .bind(BATCH as i64)
        .fetch_all(&pool)
        .await
        .expect("claim");
        if claimed.is_empty() {
            match idle(&clock, next_wake(&pool).await).await {
                Idle::Done => return,
                Idle::Again => continue,
            }
        }
        for (id, epoch, done) in claimed {
            let attempt = done + 1;
            let key = format!("asset#{id}.{attempt}");
            // The attempt's start: the job to `calling`, its ledger entry.
            let mut tx = pool.begin().await.expect("begin");
            let fenced = sqlx::query(
                "UPDATE jobs SET phase = 'calling', payload = $4, attempts = $5, updated_at = $6 \
                 WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND phase <> 'finished'",
            )
            .bind(id)
            .bind(epoch)
            .bind(&owner)
            .bind(PAYLOAD)
            .bind(attempt)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("start");
            assert_eq!(fenced.rows_affected(), 1, "the lease holds");
            sqlx::query("INSERT INTO calls (job_id, key, hook, started_at) VALUES ($1, $2, 'resubmit', $3)")
                .bind(id)
                .bind(&key)
                .bind(now)
                .execute(&mut *tx)
                .await
                .expect("ledger");
            tx.commit().await.expect("commit");
            attempts.fetch_add(1, Ordering::SeqCst);
            // Its result: the ledger entry answered; the job released until its next attempt, or finished.
            let recovered = attempt >= i64::from(ATTEMPTS);
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query(
                "UPDATE calls SET answered_at = $3, answer = $4 WHERE id = \
                 (SELECT id FROM calls WHERE job_id = $1 AND key = $2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)",
            )
            .bind(id)
            .bind(&key)
            .bind(now)
            .bind(if recovered { "succeeded" } else { "failed: 2001" })
            .execute(&mut *tx)
            .await
            .expect("ledger");
            let fenced = sqlx::query(
                "UPDATE jobs SET payload = $4, updated_at = $5, lease_owner = NULL, \
                 phase = CASE WHEN $6 THEN 'finished' ELSE 'waiting' END, \
                 wake_at = CASE WHEN $6 THEN wake_at ELSE $7 END, \
                 finished_at = CASE WHEN $6 THEN $5 END, outcome = CASE WHEN $6 THEN 'recovered' END \
                 WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND phase <> 'finished'",
            )
            .bind(id)
            .bind(epoch)
            .bind(&owner)
            .bind(PAYLOAD)
            .bind(now)
            .bind(recovered)
            .bind(now + RETRY_DELAY_MS)
            .execute(&mut *tx)
            .await
            .expect("result");
            assert_eq!(fenced.rows_affected(), 1, "the lease holds");
            tx.commit().await.expect("commit");
        }
    }
}

/// The same transitions through [`PgStore`], one store per worker (as replicas have), with `options`;
/// returns the attempts made.
pub fn through_store(url: &str, jobs: usize, options: StoreOptions) -> Run {
    runtime().block_on(async {
        let (schema, at) = schema(url).await;
        let clock = Arc::new(AtomicI64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let store = PgStore::open(&at, &options).await.expect("a store");
            workers.push(tokio::spawn(store_worker(store, w, jobs, clock.clone(), attempts.clone())));
        }
        let mut stores = Vec::new();
        for worker in workers {
            stores.push(worker.await.expect("a worker"));
        }
        let now = Timestamp(clock.load(Ordering::SeqCst));
        let stats = stores[0].stats(now).await.expect("stats");
        assert_eq!(stats.by_outcome.get("recovered").copied(), Some(jobs as u64), "every job recovered");
        for store in &stores {
            store.close().await;
        }
        pg::drop_schema(url, &schema).await;
        Run { attempts: attempts.load(Ordering::SeqCst), commits: None, untimed: Duration::ZERO }
    })
}

async fn store_worker(
    store: PgStore,
    w: usize,
    jobs: usize,
    clock: Arc<AtomicI64>,
    attempts: Arc<AtomicU64>,
) -> PgStore {
    let owner = format!("bench-{w}");
    for i in (w..jobs).step_by(WORKERS) {
        let now = Timestamp(clock.load(Ordering::SeqCst));
        let asset = format!("asset-{i}");
        let new = NewJob::new(&asset, PAYLOAD, 1, "2001", now);
        store.submit(new, now).await.expect("submit");
    }
    loop {
        let now = Timestamp(clock.load(Ordering::SeqCst));
        let claimed = store.claim(&owner, now, LEASE, BATCH).await.expect("claim");
        if claimed.is_empty() {
            let next = store.next_wake().await.expect("next wake");
            match idle(&clock, next.map(|t| t.0)).await {
                Idle::Done => return store,
                Idle::Again => continue,
            }
        }
        for c in claimed {
            let attempt = c.row.attempts + 1;
            let key = format!("{}#{}.{attempt}", c.row.asset_id, c.lease.job);
            let start = Save {
                phase: Phase::Calling,
                wake_at: now,
                release: false,
                payload: PAYLOAD,
                version: 1,
                last_code: "2001",
                attempts: attempt,
                attempt,
                fence_until: now,
                wake_on_report: true,
                reference: None,
                ledger: &[LedgerWrite::Begin { key: &key, hook: "resubmit" }],
                take_report: false,
                outcome: None,
            };
            store.save(&c.lease, start, now).await.expect("start");
            attempts.fetch_add(1, Ordering::SeqCst);
            let recovered = attempt >= ATTEMPTS;
            let answer = if recovered { "succeeded" } else { "failed: 2001" };
            let result = Save {
                phase: if recovered { Phase::Finished } else { Phase::Waiting },
                wake_at: Timestamp(now.0 + RETRY_DELAY_MS),
                release: true,
                ledger: &[LedgerWrite::End { key: &key, answer }],
                outcome: recovered.then_some("recovered"),
                attempt: 0,
                ..start
            };
            store.save(&c.lease, result, now).await.expect("result");
        }
    }
}

/// The engine itself: [`WORKERS`] durable remediators (replicas), each with a `PgStore` of its own on one
/// fresh schema and the database's clock, each enqueueing its share.
pub fn through_engine(url: &str, jobs: usize) -> Run {
    super::engine::multi_thread().block_on(async {
        let (schema, at) = schema(url).await;
        let before = commits(url).await;
        let mut replicas = Vec::new();
        let mut stores = Vec::new();
        for _ in 0..WORKERS {
            let store = Arc::new(PgStore::open(&at, &StoreOptions::default()).await.expect("a store"));
            let clock = store.database_clock();
            stores.push(store.clone());
            replicas.push(super::engine::remediator(store, clock));
        }
        let run = super::engine::run_replicas(&replicas, jobs).await;
        drop(replicas);
        for store in stores {
            store.close().await;
        }
        let (commits, untimed) = commits_since(url, before).await;
        pg::drop_schema(url, &schema).await;
        Run { commits, untimed, ..run }
    })
}

/// The latency from a report to the next hook call ([`super::latency`]) with [`WORKERS`] replicas on a fresh
/// schema: the jobs are enqueued on all of them, the reports come to the first.
pub fn latency(url: &str) -> Vec<Duration> {
    super::engine::multi_thread().block_on(async {
        let (schema, at) = schema(url).await;
        let host = Arc::new(super::latency::Awaiting::default());
        let mut replicas = Vec::new();
        for _ in 0..WORKERS {
            let store = PgStore::open(&at, &StoreOptions::default()).await.expect("a store");
            let clock = store.database_clock();
            replicas.push(super::latency::remediator(Arc::new(store), clock, host.clone()));
        }
        let latencies = super::latency::measure(&replicas, &host).await;
        drop(replicas);
        pg::drop_schema(url, &schema).await;
        latencies
    })
}
