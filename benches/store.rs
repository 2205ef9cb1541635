//! The stores' row transitions on a fleet-sized batch, and the engine doing the same work on them: on SQLite,
//! the limit (a sqlx loop with group commit), a bare sqlx loop, the same rows through `SqliteStore`, and a
//! durable `Remediator` (one, and four sharing the file), each on a fresh temporary file; on PostgreSQL (when
//! `DATABASE_URL` names a server and the build has the `postgres` feature), the limit and a bare sqlx loop with
//! 4 workers, the same rows through 4 `PgStore`s claiming at once (`store/postgres.rs`), and 4 durable
//! `Remediator`s (replicas), each run on a fresh schema.
//!
//! Workload (as in `benches/engine.rs`): 100,000 jobs; each asset has failed once (its job is inserted, due
//! now), its first resubmission fails again, the second recovers: 200,000 attempts. Per attempt, three
//! writes: the claim (one statement claims a batch of up to 256 due jobs, each with a lease and a new epoch),
//! the attempt's start (the job to `calling` with its payload, and its ledger entry, in one transaction), and
//! its result (the ledger entry answered, and the job released to `waiting` due a minute later, or finished
//! `recovered`, in one transaction). Every job write is fenced by its lease, as a holder's must be. Time is a
//! counter of milliseconds: when nothing is due, it jumps to the next due job, as the engine's wait would.
//! On SQLite one task does it all, in order: SQLite takes one writer at a time. On PostgreSQL 4 workers share
//! the work (and the counter of time), as 4 replicas would.
//!
//! - Bare loop: plain sqlx statements on the store's schema, nothing else (no trait, no row decoding).
//! - Store: the same transitions through the `Store` methods (`submit`, `claim`, `save` with the ledger's
//!   `Begin`, `save` with its `End`), with the rows they read back.
//! - Engine (`store/engine.rs`): the real thing, enqueueing the jobs and running them with hooks that fail
//!   each asset's first resubmission and recover on the second, on the wall clock: its policy retries after
//!   1 ms (see there). It makes the same writes, but claims as the engine does (a job is held from its
//!   submission when the replica has room; a job at rest is claimed when it is due, with whatever else is).
//!
//! - Limit: the bare loop with group commit (the inserts of a batch, the starts of a claimed batch, and their
//!   results, each in one transaction), on SQLite and on PostgreSQL (4 workers): what the schema and its
//!   durability allow. On SQLite twice: with sqlx, and with rusqlite on the bench's own thread, its statements
//!   prepared once (`store/limit_rusqlite.rs`: no hand-off to another thread per statement, the lower bound);
//!   on PostgreSQL twice: a statement per row, and a statement per phase of a batch (its rows as arrays). Targets: each engine at least 0.5x the limit's attempts per second, at most 3x its CPU
//!   time per attempt.
//! - Latency (`store/latency.rs`): from a report of a job awaiting its result to the job's next hook call, with
//!   1,000 jobs active, on SQLite (one replica) and on PostgreSQL (4 replicas). Target: p99 under 50 ms.
//!
//! Printed per run: wall time and attempts per second (inserts included), the CPU time of this process per
//! attempt (`getrusage`, user and system, over the run: on PostgreSQL the server's is not in it) and of the whole
//! machine (`/proc/stat`: every process, the PostgreSQL server's included; run it on a quiet machine), and commits
//! per attempt (SQLite: the write transactions the loop or the store committed; PostgreSQL: the server's count
//! of committed transactions in the database, read-only ones included); then each engine over the limit, and
//! over the bare loop. Then criterion times the SQLite limit, store and engine on 2,000 jobs.
//! `cargo bench --bench store --all-features` runs the full size (with `DATABASE_URL` for PostgreSQL:
//! `eval "$(../shared/tools/pg-test-server start)"`); `cargo test --benches` (no `--bench` flag) a small
//! batch; `STORE_BENCH_JOBS=N` sets the size of the printed runs, `STORE_BENCH_ONLY=TEXT` runs only those
//! whose name has `TEXT` (the latency runs are named `… latency`).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use lightflow_remedy::store::{LedgerWrite, NewJob, Phase, Save, SqliteStore, Store, StoreOptions, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

#[path = "store/engine.rs"]
mod engine;
#[path = "store/latency.rs"]
mod latency;
#[path = "store/limit_rusqlite.rs"]
mod limit_rusqlite;
#[cfg(feature = "postgres")]
#[path = "../tests/support/postgres.rs"]
mod pg;
#[cfg(feature = "postgres")]
#[path = "store/postgres.rs"]
mod postgres;

/// Jobs in the printed runs.
const JOBS: usize = 100_000;
/// Jobs when run as a test, and in criterion's samples.
const SMALL: usize = 2_000;
/// Attempts per job: one failure, then a recovery.
const ATTEMPTS: u32 = 2;
/// Jobs claimed per statement.
const BATCH: usize = 256;
const LEASE: Duration = Duration::from_secs(30);
const RETRY_DELAY_MS: i64 = 60_000;
/// About what the engine keeps per job (its failure, history and metadata).
const PAYLOAD: &str = r#"{"v":1,"job":{"asset":"asset-0","meta":{"lightflow_uuid":"5f0c2a4e-8d1b-4c9e-a6f3-2b7d9e1c0a45"}},"failure":{"kind":"asset","code":2001,"message":"download failed: connection reset","category":"transient","downstream":"input_storage"},"history":{"stage":0,"attempts":[1],"codes":{"2001":1},"elapsed_ms":60000,"credentials_repaired":false}}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// A fresh store file in `dir` with the schema in place.
async fn schema(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("jobs.db");
    SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store").close().await;
    path
}

/// What a run did: its attempts, and the transactions it committed (when counted).
pub struct Run {
    pub attempts: u64,
    pub commits: Option<u64>,
    /// Spent at the end counting, not running: left out of the wall time.
    pub untimed: Duration,
}

/// The bare loop, a transaction per write.
fn bare_loop(jobs: usize) -> Run {
    sqlite_loop(jobs, false)
}

/// The limit: the same transitions with group commit (the inserts of a batch in one transaction, the starts of a
/// claimed batch in one, their results in one), as fast as the schema and its durability allow.
fn limit_loop(jobs: usize) -> Run {
    sqlite_loop(jobs, true)
}

/// The bare loop, each write a transaction of its own, or with group commit (`grouped`).
fn sqlite_loop(jobs: usize, grouped: bool) -> Run {
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = schema(dir.path()).await;
        // The store's own settings: WAL, synchronous NORMAL, foreign keys, one write connection.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool: SqlitePool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .expect("a pool");
        let owner = "bench";
        let mut now: i64 = 0;
        let mut commits = 0u64;
        let per_insert = if grouped { BATCH } else { 1 };
        for chunk in (0..jobs).collect::<Vec<_>>().chunks(per_insert) {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            for i in chunk {
                sqlx::query(
                    "INSERT INTO jobs (asset_id, phase, wake_at, payload, version, last_code, created_at, updated_at) \
                     VALUES (?1, 'waiting', ?2, ?3, 1, '2001', ?2, ?2) \
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
            commits += 1;
        }
        let mut attempts = 0u64;
        loop {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            let claimed: Vec<(i64, i64, i64)> = sqlx::query_as(
                "UPDATE jobs SET taken_over = (lease_owner IS NOT NULL), epoch = epoch + 1, lease_owner = ?1, \
                 wake_at = ?2, updated_at = ?3 \
                 WHERE id IN (SELECT id FROM jobs WHERE phase <> 'finished' AND wake_at <= ?3 ORDER BY wake_at LIMIT ?4) \
                 RETURNING id, epoch, attempts",
            )
            .bind(owner)
            .bind(now + LEASE.as_millis() as i64)
            .bind(now)
            .bind(BATCH as i64)
            .fetch_all(&mut *tx)
            .await
            .expect("claim");
            tx.commit().await.expect("commit");
            commits += 1;
            if claimed.is_empty() {
                let next: Option<i64> = sqlx::query_scalar("SELECT MIN(wake_at) FROM jobs WHERE phase <> 'finished'")
                    .fetch_one(&pool)
                    .await
                    .expect("next wake");
                match next {
                    Some(next) => {
                        now = now.max(next);
                        continue;
                    }
                    None => break,
                }
            }
            // The attempts' starts, then their results: each a transaction, or each phase of the batch one.
            let mut group = if grouped { Some(pool.begin_with("BEGIN IMMEDIATE").await.expect("begin")) } else { None };
            for &(id, epoch, done) in &claimed {
                let attempt = done + 1;
                let key = format!("asset#{id}.{attempt}");
                let mut own = if grouped { None } else { Some(pool.begin_with("BEGIN IMMEDIATE").await.expect("begin")) };
                let tx = group.as_mut().or(own.as_mut()).expect("a transaction");
                let fenced = sqlx::query(
                    "UPDATE jobs SET phase = 'calling', payload = ?4, attempts = ?5, updated_at = ?6 \
                     WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3 AND phase <> 'finished'",
                )
                .bind(id)
                .bind(epoch)
                .bind(owner)
                .bind(PAYLOAD)
                .bind(attempt)
                .bind(now)
                .execute(&mut **tx)
                .await
                .expect("start");
                assert_eq!(fenced.rows_affected(), 1, "the lease holds");
                sqlx::query("INSERT INTO calls (job_id, key, hook, started_at) VALUES (?1, ?2, 'resubmit', ?3)")
                    .bind(id)
                    .bind(&key)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .expect("ledger");
                if let Some(own) = own {
                    own.commit().await.expect("commit");
                    commits += 1;
                }
                attempts += 1;
            }
            if let Some(group) = group.take() {
                group.commit().await.expect("commit");
                commits += 1;
            }
            let mut group = if grouped { Some(pool.begin_with("BEGIN IMMEDIATE").await.expect("begin")) } else { None };
            for &(id, epoch, done) in &claimed {
                let attempt = done + 1;
                let key = format!("asset#{id}.{attempt}");
                // Its result: the ledger entry answered; the job released until its next attempt, or finished.
                let recovered = attempt >= i64::from(ATTEMPTS);
                let mut own = if grouped { None } else { Some(pool.begin_with("BEGIN IMMEDIATE").await.expect("begin")) };
                let tx = group.as_mut().or(own.as_mut()).expect("a transaction");
                sqlx::query(
                    "UPDATE calls SET answered_at = ?3, answer = ?4 WHERE id = \
                     (SELECT id FROM calls WHERE job_id = ?1 AND key = ?2 AND answered_at IS NULL ORDER BY id DESC LIMIT 1)",
                )
                .bind(id)
                .bind(&key)
                .bind(now)
                .bind(if recovered { "succeeded" } else { "failed: 2001" })
                .execute(&mut **tx)
                .await
                .expect("ledger");
                let fenced = sqlx::query(
                    "UPDATE jobs SET payload = ?4, updated_at = ?5, lease_owner = NULL, \
                     phase = CASE WHEN ?6 THEN 'finished' ELSE 'waiting' END, \
                     wake_at = CASE WHEN ?6 THEN wake_at ELSE ?7 END, \
                     finished_at = CASE WHEN ?6 THEN ?5 END, outcome = CASE WHEN ?6 THEN 'recovered' END \
                     WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3 AND phase <> 'finished'",
                )
                .bind(id)
                .bind(epoch)
                .bind(owner)
                .bind(PAYLOAD)
                .bind(now)
                .bind(recovered)
                .bind(now + RETRY_DELAY_MS)
                .execute(&mut **tx)
                .await
                .expect("result");
                assert_eq!(fenced.rows_affected(), 1, "the lease holds");
                if let Some(own) = own {
                    own.commit().await.expect("commit");
                    commits += 1;
                }
            }
            if let Some(group) = group.take() {
                group.commit().await.expect("commit");
                commits += 1;
            }
        }
        let recovered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE outcome = 'recovered'")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(recovered as usize, jobs, "every job recovered");
        pool.close().await;
        Run { attempts, commits: Some(commits), untimed: Duration::ZERO }
    })
}

/// The same transitions through the store.
fn through_store(jobs: usize) -> Run {
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = schema(dir.path()).await;
        let store = SqliteStore::open(&path, &StoreOptions::default()).await.expect("a store");
        let mut now = Timestamp(0);
        for i in 0..jobs {
            let asset = format!("asset-{i}");
            let new = NewJob::new(&asset, PAYLOAD, 1, "2001", now);
            store.submit(new, now).await.expect("submit");
        }
        let mut attempts = 0u64;
        loop {
            let claimed = store.claim("bench", now, LEASE, BATCH).await.expect("claim");
            if claimed.is_empty() {
                match store.next_wake().await.expect("next wake") {
                    Some(next) => {
                        now = now.max(next);
                        continue;
                    }
                    None => break,
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
                attempts += 1;
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
        let stats = store.stats(now).await.expect("stats");
        assert_eq!(stats.by_outcome.get("recovered").copied(), Some(jobs as u64), "every job recovered");
        store.close().await;
        Run { attempts, commits: Some(stats.commits), untimed: Duration::ZERO }
    })
}

/// Whether the run `name` is to be made (`STORE_BENCH_ONLY`).
fn selected(name: &str) -> bool {
    std::env::var("STORE_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

/// The CPU time this process has used (user and system, all threads), from `getrusage`.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct it is given, and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0, "getrusage");
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The CPU time the whole machine has been busy (every process: a PostgreSQL server's too), from the
/// first line of `/proc/stat`; zero where there is none.
fn machine_busy() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return Duration::ZERO };
    let ticks: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    // user, nice, system, idle, iowait, irq, softirq, steal: busy is all but idle and iowait.
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    // SAFETY: `sysconf` reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(busy.saturating_mul(1_000_000_000 / per_second))
}

/// What a run measured.
#[derive(Clone, Copy)]
struct Figures {
    rate: f64,
    cpu_per_attempt: Duration,
    /// The machine's, every process's: on PostgreSQL the server's work is there, not in this process.
    machine_per_attempt: Duration,
}

/// Runs `f` once on `jobs` and prints its wall time, attempts per second, CPU time and commits per attempt;
/// returns them (`None`: not run, see `STORE_BENCH_ONLY`).
fn report(name: &str, jobs: usize, f: impl FnOnce(usize) -> Run) -> Option<Figures> {
    if !selected(name) {
        return None;
    }
    let (start, cpu, machine) = (Instant::now(), cpu_time(), machine_busy());
    let run = f(jobs);
    let (wall, cpu) = (start.elapsed().saturating_sub(run.untimed), cpu_time().saturating_sub(cpu));
    let machine = machine_busy().saturating_sub(machine);
    assert_eq!(run.attempts, jobs as u64 * u64::from(ATTEMPTS));
    let rate = run.attempts as f64 / wall.as_secs_f64();
    let cpu_per_attempt = cpu / u32::try_from(run.attempts).unwrap_or(u32::MAX).max(1);
    let machine_per_attempt = machine / u32::try_from(run.attempts).unwrap_or(u32::MAX).max(1);
    let commits =
        run.commits.map_or(String::new(), |c| format!(", {:.2} commits/attempt", c as f64 / run.attempts as f64));
    println!(
        "{name:<38} {jobs} jobs, {} attempts in {wall:.2?}: {rate:.0} attempts/s, CPU {:.0} µs/attempt \
         (machine {:.0} µs){commits}",
        run.attempts,
        cpu_per_attempt.as_secs_f64() * 1e6,
        machine_per_attempt.as_secs_f64() * 1e6
    );
    Some(Figures { rate, cpu_per_attempt, machine_per_attempt })
}

/// Prints an engine's attempts per second over another run's, and (against the limit) its CPU per attempt.
fn ratio(engine: (&str, Option<Figures>), base: (&str, Option<Figures>)) {
    let ((name, Some(e)), (base, Some(b))) = (engine, base) else { return };
    println!("{name} / {base}: {:.2}x attempts/s (target: at least 0.5x)", e.rate / b.rate);
    if base.contains("limit") {
        let cpu = e.cpu_per_attempt.as_secs_f64() / b.cpu_per_attempt.as_secs_f64();
        println!("{name} / {base}: {cpu:.2}x CPU per attempt (target: at most 3x)");
        let machine = e.machine_per_attempt.as_secs_f64() / b.machine_per_attempt.as_secs_f64();
        println!(
            "{name} / {base}: {machine:.2}x the machine's CPU per attempt, a server's included (target: at most 3x)"
        );
    }
}

/// The PostgreSQL runs, or a line that says why they are skipped.
#[cfg(feature = "postgres")]
fn on_postgres(jobs: usize) {
    use lightflow_remedy::store::StoreOptions;
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("postgres: skipped: DATABASE_URL is not set (eval \"$(../shared/tools/pg-test-server start)\")");
        return;
    };
    use postgres::Loop;
    let workers = postgres::WORKERS;
    let limit = format!("postgres limit (group commit), {workers} workers");
    let limit = (limit.as_str(), report(&limit, jobs, |n| postgres::bare_loop(&url, n, Loop::Grouped)));
    let batched = format!("postgres limit (batched statements), {workers} workers");
    let batched = (batched.as_str(), report(&batched, jobs, |n| postgres::bare_loop(&url, n, Loop::Batched)));
    let engine = format!("postgres engine, {workers} replicas");
    let engine = (engine.as_str(), report(&engine, jobs, |n| postgres::through_engine(&url, n)));
    ratio(engine, limit);
    ratio(engine, batched);
    let bare = format!("postgres bare sqlx, {workers} workers");
    let bare = (bare.as_str(), report(&bare, jobs, |n| postgres::bare_loop(&url, n, Loop::Bare)));
    ratio(engine, bare);
    let hints = StoreOptions::default();
    report(&format!("postgres store, {workers} claimers"), jobs, |n| postgres::through_store(&url, n, hints));
    let quiet = StoreOptions::default().wake_hints(false);
    report(&format!("postgres store, {workers} claimers, no hints"), jobs, |n| postgres::through_store(&url, n, quiet));
    let name = format!("postgres engine, {workers} replicas");
    if selected(&format!("{name} latency")) {
        latency::print(&name, &postgres::latency(&url));
    }
}

#[cfg(not(feature = "postgres"))]
fn on_postgres(_: usize) {
    println!("postgres: skipped: this build has no postgres store (run with --all-features, or --features postgres)");
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let jobs = std::env::var("STORE_BENCH_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(if benching {
        JOBS
    } else {
        SMALL
    });
    // Each engine right after its limit: this machine's speed drifts over minutes.
    let limit = ("sqlite limit (group commit)", report("sqlite limit (group commit)", jobs, limit_loop));
    let rusqlite = "sqlite limit (rusqlite, group commit)";
    let rusqlite = (rusqlite, report(rusqlite, jobs, limit_rusqlite::limit_loop));
    let one = "sqlite engine, 1 replica";
    let engine_one = (one, report(one, jobs, engine::on_sqlite));
    ratio(engine_one, limit);
    ratio(engine_one, rusqlite);
    let bare = ("sqlite bare sqlx", report("sqlite bare sqlx", jobs, bare_loop));
    ratio(engine_one, bare);
    let four = "sqlite engine, 4 replicas";
    ratio((four, report(four, jobs, |n| engine::on_sqlite_replicas(n, 4))), limit);
    report("sqlite store", jobs, through_store);
    if selected("sqlite engine, 1 replica latency") {
        latency::print(one, &latency::on_sqlite());
    }
    on_postgres(jobs);

    let mut c = Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(10));
    let mut group = c.benchmark_group("sqlite_2k");
    group.bench_function("limit_loop", |b| b.iter(|| limit_loop(SMALL)));
    group.bench_function("sqlite_store", |b| b.iter(|| through_store(SMALL)));
    group.bench_function("sqlite_engine", |b| b.iter(|| engine::on_sqlite(SMALL)));
    group.finish();
    c.final_summary();
}
