//! The statements that run per job or per batch are served by the indexes (no scan of `jobs` or `calls`):
//! claims and the next wake by the partial index of active jobs by `wake_at`, the rest by key. Planned on a
//! schema of its own filled like a store that has run for a while (most jobs finished), so that the planner
//! chooses, rather than being forced. Needs `DATABASE_URL`; says loudly when it is not set.

use sqlx::Row;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;

use super::{holder, host, open, read, submit};
use crate::store::StoreOptions;

/// A fleet: 20,000 jobs, of which 1,000 active (some held), each with two ledger entries and the reference of
/// a submitted attempt.
const FILL: &[&str] = &[
    "INSERT INTO jobs (asset_id, phase, wake_at, lease_owner, payload, version, last_code, created_at, updated_at, \
     finished_at, outcome) \
     SELECT 'asset-' || g, CASE WHEN g % 20 = 0 THEN (ARRAY['waiting', 'calling', 'awaiting'])[1 + g % 3] \
     ELSE 'finished' END, 1000 + g * 10, CASE WHEN g % 60 = 0 THEN 'r1' END, '{}', 1, '2001', g, g, \
     CASE WHEN g % 20 <> 0 THEN g END, CASE WHEN g % 20 <> 0 THEN 'recovered' END \
     FROM generate_series(1, 20000) AS g",
    "INSERT INTO calls (job_id, key, hook, started_at, answered_at, answer) \
     SELECT id, asset_id || '#' || id || '.' || n, 'resubmit', n, n, 'ok' FROM jobs, generate_series(1, 2) AS n",
    "INSERT INTO job_references (reference, job_id) SELECT 'uuid-' || id, id FROM jobs",
    "ANALYZE",
];

/// A channel for the statements that send hints.
const CHANNEL: &str = "lightflow_remedy_due.plans";

/// What PostgreSQL's planner does for `query`.
async fn plan(db: &super::Db, query: Query<'static, Postgres, PgArguments>) -> String {
    let rows = query.fetch_all(&db.pool).await.expect("a plan");
    rows.iter().map(|row| row.get::<String, _>(0)).collect::<Vec<_>>().join("\n")
}

fn explain(sql: &'static str) -> Query<'static, Postgres, PgArguments> {
    let explain: &'static str = Box::leak(format!("EXPLAIN {sql}").into_boxed_str());
    sqlx::query(explain)
}

#[tokio::test]
async fn per_job_statements_use_the_indexes() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("\n*** postgres plans: NOT tested: DATABASE_URL is not set (see tests/store_postgres.rs)\n");
        return;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let schema = format!("plans_{}_{nanos}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let options = StoreOptions::default().wake_hints(false);
    let opened = open::open(&format!("{url}{sep}schema={schema}"), &options).await.expect("a store");
    let db = opened.db;
    for sql in FILL {
        sqlx::query(*sql).execute(&db.pool).await.expect("the fleet");
    }
    let now = 1_000 + 5_000 * 10;
    let table: Vec<(&str, Query<'static, Postgres, PgArguments>, Option<&str>)> = vec![
        ("claim", explain(holder::CLAIM).bind("r2").bind(now + 30_000).bind(now).bind(64_i64), Some("jobs_due")),
        ("next wake", explain(read::NEXT_WAKE), Some("jobs_due")),
        (
            "renew",
            explain(holder::RENEW)
                .bind(now)
                .bind(vec![60_i64, 120])
                .bind(vec![1_i64, 1])
                .bind(vec!["r1", "r1"])
                .bind(now),
            Some("jobs_pkey"),
        ),
        (
            "save",
            explain(holder::SAVES)
                .bind(vec![60_i64, 120])
                .bind(vec![1_i64, 1])
                .bind(vec!["r1", "r1"])
                .bind(vec!["{}", "{}"])
                .bind(vec![1_i64, 1])
                .bind(vec!["2001", "2001"])
                .bind(vec![1_i64, 1])
                .bind(vec![None::<&str>, Some("uuid-120")])
                .bind(vec![now, now])
                .bind(vec![false, false])
                .bind(vec![None::<&str>, Some("uuid-120")])
                .bind(vec!["waiting", "awaiting"])
                .bind(vec![true, true])
                .bind(vec![now + 60_000, now + 60_000])
                .bind(vec![None::<&str>, None])
                .bind(vec![now, now])
                .bind(vec![1_i64, 1])
                .bind(vec![true, true])
                .bind(Some(CHANNEL))
                .bind(vec![60_i64])
                .bind(vec!["asset-60#60.3"])
                .bind(vec!["resubmit"])
                .bind(vec![now])
                .bind(vec![120_i64])
                .bind(vec!["asset-120#120.2"])
                .bind(vec!["ok"])
                .bind(vec![now]),
            Some("jobs_pkey"),
        ),
        (
            "end of a call",
            explain(holder::END_CALL).bind(60_i64).bind("asset-60#60.2").bind(now).bind("ok"),
            Some("calls_of_job"),
        ),
        (
            "submit",
            explain(submit::INSERT)
                .bind("asset-new")
                .bind(now)
                .bind("{}")
                .bind(1_i64)
                .bind("2001")
                .bind(now)
                .bind(Some(CHANNEL))
                .bind(None::<&str>),
            None,
        ),
        (
            "submit held",
            explain(submit::INSERT_HELD)
                .bind("asset-new")
                .bind(now + 30_000)
                .bind("{}")
                .bind(1_i64)
                .bind("2001")
                .bind(now)
                .bind("r2")
                .bind(None::<&str>),
            None,
        ),
        (
            "active job of an asset",
            explain(submit::ACTIVE_OF_ASSET).bind("asset-60"),
            Some("jobs_one_active_per_asset"),
        ),
        ("job of an asset", explain(read::JOB_OF).bind("asset-60"), Some("jobs_of_asset")),
        ("ledger", explain(read::CALLS).bind(60_i64), Some("calls_of_job")),
        ("report by asset", explain(host::REPORTED_BY_ASSET).bind("asset-60"), Some("jobs_of_asset")),
        ("report by reference", explain(host::REPORTED_BY_REFERENCE).bind("uuid-60"), Some("job_references_pkey")),
        (
            "retry now",
            explain(host::RETRY_NOW).bind("asset-60").bind(now).bind(Some(CHANNEL)),
            Some("jobs_one_active_per_asset"),
        ),
        ("prune", explain(host::PRUNE).bind(100_i64), Some("jobs_finished")),
    ];
    let mut wrong = Vec::new();
    for (what, query, index) in table {
        let plan = plan(&db, query).await;
        let scans = ["Seq Scan on jobs", "Seq Scan on calls"].iter().any(|scan| plan.contains(scan));
        if scans || index.is_some_and(|index| !plan.contains(index)) {
            wrong.push(format!("{what} (expected {index:?}):\n{plan}"));
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&db.pool)
        .await
        .expect("the schema dropped");
    assert!(wrong.is_empty(), "statements not served by the indexes:\n\n{}", wrong.join("\n\n"));
}
