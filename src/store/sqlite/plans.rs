//! The statements that run per job or per batch are served by the indexes (no scan of `jobs`): claims and
//! the next wake by the partial index of active jobs by `wake_at`, the rest by key.

use super::{actions, holder, host, open, read, renew, tally};
use crate::store::StoreOptions;

/// What SQLite's planner does for `sql` on the store's schema.
async fn plan(sql: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = open::open(&dir.path().join("jobs.db"), &StoreOptions::default()).await.expect("a store");
    // On a connection as the writer's: its statements name their parameters, which sqlx does not take.
    let conn = rusqlite::Connection::open(&db.file.0).expect("a connection");
    let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("a plan");
    let nulls = rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count()));
    let rows = explain.query_map(nulls, |row| row.get::<_, String>(3)).expect("a plan");
    rows.collect::<Result<_, _>>().expect("a plan")
}

#[tokio::test]
async fn per_job_statements_use_the_indexes() {
    let table = [
        ("claim", holder::CLAIM, Some("jobs_due")),
        ("next wake", read::NEXT_WAKE, Some("jobs_due")),
        ("renew", renew::RENEW, None),
        ("save", holder::SAVE, None),
        ("end of a call", holder::END_CALL, Some("calls_of_job")),
        ("submit", holder::INSERT, None),
        ("submit held", holder::INSERT_HELD, None),
        ("job of an asset", read::JOB_OF, Some("jobs_of_asset")),
        ("report by asset", host::REPORTED_BY_ASSET, Some("jobs_of_asset")),
        ("report by reference", host::REPORTED_BY_REFERENCE, None),
        ("retry now", host::RETRY_NOW, Some("jobs_one_active_per_asset")),
        ("prune", host::PRUNE_JOBS, Some("jobs_finished")),
    ];
    for (what, sql, index) in table {
        let plan = plan(sql).await;
        assert!(!plan.iter().any(|step| step.starts_with("SCAN jobs")), "{what} scans jobs: {plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN calls")), "{what} scans calls: {plan:?}");
        if let Some(index) = index {
            assert!(plan.iter().any(|step| step.contains(index)), "{what} does not use {index}: {plan:?}");
        }
    }
}

/// The web view's reads over many jobs: a list by state or code walks its index newest first, the chart reads
/// the covering index of submission times (never the payloads), a job's actions their own index.
#[tokio::test]
async fn the_web_views_reads_use_their_indexes() {
    use crate::store::{ListFilter, Phase};
    let by_phase = read::list_sql(&ListFilter { phase: Some(Phase::Waiting), ..ListFilter::default() }).0;
    let by_code = read::list_sql(&ListFilter { code: Some("2404".into()), ..ListFilter::default() }).0;
    let by_outcome = read::list_sql(&ListFilter { outcome: Some("failed".into()), ..ListFilter::default() }).0;
    let table = [
        ("list by phase", by_phase.as_str(), "jobs_by_phase"),
        ("list by code", by_code.as_str(), "jobs_by_code"),
        ("list by outcome", by_outcome.as_str(), "jobs_by_outcome"),
        ("tally", tally::TALLY, "COVERING INDEX jobs_created"),
        ("actions of an asset", actions::OF_ASSET, "actions_of_asset"),
    ];
    for (what, sql, index) in table {
        let plan = plan(sql).await;
        assert!(plan.iter().any(|step| step.contains(index)), "{what} does not use {index}: {plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE FOR ORDER BY")), "{what} sorts: {plan:?}");
    }
}
