//! What the web view reads from a store, on every store this build has (memory; SQLite on a temporary file;
//! PostgreSQL when `DATABASE_URL` names a server): lists searched by asset, filtered by category and paged;
//! operators' actions logged and listed; the jobs of the last hours counted for the overview's chart.

#[cfg(feature = "postgres")]
#[path = "support/postgres.rs"]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::Category;
use lightflow_remedy::store::{
    ListFilter, MemoryStore, NewAction, NewJob, Phase, Save, Store, StoreError, Submitted, TallyRow, Timestamp,
};

const T: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const LEASE: Duration = Duration::from_secs(30);

/// A store under test, PostgreSQL's server and schema to drop after, and a SQLite file's folder to keep meanwhile.
type Subject = (Arc<dyn Store>, Option<(String, String)>, Option<tempfile::TempDir>);

/// Every store this build has, each empty.
async fn stores() -> Vec<Subject> {
    let mut out: Vec<Subject> = vec![(Arc::new(MemoryStore::new()), None, None)];
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().unwrap();
        let options = lightflow_remedy::store::StoreOptions::default();
        let store = lightflow_remedy::store::SqliteStore::open(dir.path().join("jobs.db"), &options).await.unwrap();
        out.push((Arc::new(store), None, Some(dir)));
    }
    match std::env::var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        Ok(url) => {
            let schema = pg::unique_schema("views");
            let options = lightflow_remedy::store::StoreOptions::default();
            let store = lightflow_remedy::store::open_url(&pg::in_schema(&url, &schema), &options).await.unwrap();
            out.push((Arc::from(store), Some((url, schema)), None));
        }
        _ => {
            assert!(std::env::var_os("REMEDY_REQUIRE_POSTGRES").is_none(), "REMEDY_REQUIRE_POSTGRES: no PostgreSQL");
            eprintln!(
                "*** store views: the PostgreSQL store was NOT tested (no DATABASE_URL, or no `postgres` feature)"
            );
        }
    }
    out
}

async fn clean_up(schema: Option<(String, String)>) {
    #[cfg(feature = "postgres")]
    if let Some((url, schema)) = schema {
        pg::drop_schema(&url, &schema).await;
    }
    let _ = schema;
}

/// Submits a job of `asset` remediating `code` at `t`, and ends it with `outcome` if one is given.
async fn job(store: &dyn Store, asset: &str, code: &str, t: i64, outcome: Option<&str>) {
    // A job left active wakes long after the test: a claim finds only the one it is for.
    let wake = if outcome.is_some() { T + t } else { T + 100 * HOUR };
    let new = NewJob::new(asset, "{}", 1, code, Timestamp(wake));
    assert!(matches!(store.submit(new, Timestamp(T + t)).await.unwrap(), Submitted::New(_)), "{asset}");
    let Some(outcome) = outcome else { return };
    let claimed = store.claim("r1", Timestamp(T + t), LEASE, 1).await.unwrap();
    let save = Save {
        phase: Phase::Finished,
        wake_at: Timestamp(T + t),
        release: true,
        payload: "{}",
        version: 1,
        last_code: code,
        attempts: 1,
        attempt: 0,
        fence_until: Timestamp(0),
        wake_on_report: true,
        reference: None,
        ledger: &[],
        take_report: false,
        outcome: Some(outcome),
    };
    store.save(&claimed[0].lease, save, Timestamp(T + t)).await.unwrap();
}

#[tokio::test]
async fn lists_are_searched_by_asset_filtered_by_category_and_paged_newest_first() {
    for (store, schema, _dir) in stores().await {
        let name = store.describe();
        let jobs = [
            ("cam-001", "2404", None),
            ("cam-002", "2503", Some("recovered")),
            ("news-100%", "3005", None),
            ("cam_003", "http:503", Some("failed")),
            ("news-101", "2052", None),
            ("cam-004", "2099", None),
            ("cam-005", "timeout", None),
            ("<script>alert(1)</script>", "2001", None),
        ];
        for (i, (asset, code, outcome)) in jobs.iter().enumerate() {
            job(&*store, asset, code, i as i64, *outcome).await;
        }
        let list = |filter: ListFilter| {
            let store = store.clone();
            async move { store.list(&filter).await.unwrap().into_iter().map(|r| r.asset_id).collect::<Vec<_>>() }
        };
        let by_asset = |text: &str| ListFilter { asset: Some(text.to_owned()), ..ListFilter::default() };
        assert_eq!(list(by_asset("cam")).await, ["cam-005", "cam-004", "cam_003", "cam-002", "cam-001"], "{name}");
        // The text is taken as written: no wildcard of LIKE's.
        assert_eq!(list(by_asset("_")).await, ["cam_003"], "{name}");
        assert_eq!(list(by_asset("%")).await, ["news-100%"], "{name}");
        assert_eq!(list(by_asset("CAM")).await, Vec::<String>::new(), "{name}: case counts");
        assert_eq!(list(by_asset("<script>")).await, ["<script>alert(1)</script>"], "{name}");
        let in_category = |c: Category| ListFilter { category: Some(c), ..ListFilter::default() };
        let table = [
            (Category::Storage, vec!["<script>alert(1)</script>", "cam-002", "cam-001"]),
            (Category::Brightcove, vec!["news-100%"]),
            (Category::Protection, vec!["news-101"]),
            (Category::Api, vec!["cam_003"]),
            (Category::Timeout, vec!["cam-005"]),
            (Category::Unknown, vec!["cam-004"]),
            (Category::Encoder, vec![]),
        ];
        for (category, assets) in table {
            assert_eq!(list(in_category(category)).await, assets, "{name}: {category}");
        }
        // Paging: three a page, newest first, and the filters with it.
        let page = |offset: usize| ListFilter { limit: Some(3), offset, ..ListFilter::default() };
        assert_eq!(list(page(0)).await, ["<script>alert(1)</script>", "cam-005", "cam-004"], "{name}");
        assert_eq!(list(page(3)).await, ["news-101", "cam_003", "news-100%"], "{name}");
        assert_eq!(list(page(6)).await, ["cam-002", "cam-001"], "{name}");
        assert_eq!(list(page(9)).await, Vec::<String>::new(), "{name}");
        let waiting_cams = ListFilter {
            phase: Some(Phase::Waiting),
            asset: Some("cam".into()),
            category: Some(Category::Storage),
            ..ListFilter::default()
        };
        assert_eq!(list(waiting_cams).await, ["cam-001"], "{name}");
        let failed = ListFilter { outcome: Some("failed".into()), asset: Some("cam".into()), ..ListFilter::default() };
        assert_eq!(list(failed).await, ["cam_003"], "{name}");
        clean_up(schema).await;
    }
}

#[tokio::test]
async fn actions_are_logged_listed_newest_first_and_pruned_with_the_jobs() {
    for (store, schema, _dir) in stores().await {
        let name = store.describe();
        let act = |asset: &'static str, action: &'static str, answer: &'static str| NewAction {
            asset_id: asset,
            job: None,
            action,
            role: "operator",
            who: "op:1a2b3c4d",
            answer,
        };
        store.log_action(act("a1", "cancel", "cancelled"), Timestamp(T)).await.unwrap();
        store.log_action(act("a2", "retry_now", "due_now"), Timestamp(T + 10)).await.unwrap();
        let with_job = NewAction { job: Some(lightflow_remedy::store::JobId(7)), ..act("a1", "retry_now", "no_job") };
        store.log_action(with_job, Timestamp(T + 20)).await.unwrap();
        let of_a1 = store.actions(Some("a1"), 10).await.unwrap();
        let seen: Vec<(&str, &str, Option<u64>)> =
            of_a1.iter().map(|a| (a.action.as_str(), a.answer.as_str(), a.job.map(|j| j.0))).collect();
        assert_eq!(seen, [("retry_now", "no_job", Some(7)), ("cancel", "cancelled", None)], "{name}");
        assert_eq!(
            (of_a1[1].at, of_a1[1].role.as_str(), of_a1[1].who.as_str()),
            (Timestamp(T), "operator", "op:1a2b3c4d")
        );
        assert!(of_a1[0].id > of_a1[1].id, "{name}: ids grow");
        let all = store.actions(None, 2).await.unwrap();
        assert_eq!(all.iter().map(|a| a.asset_id.as_str()).collect::<Vec<_>>(), ["a1", "a2"], "{name}");
        // What no id may hold is refused, as for every other value a store keeps.
        let bad = store.log_action(act("a\u{0}b", "cancel", "x"), Timestamp(T)).await;
        assert!(matches!(bad, Err(StoreError::Invalid { field: "asset id", .. })), "{name}: {bad:?}");
        let bad = store.log_action(NewAction { who: "", ..act("a1", "cancel", "x") }, Timestamp(T)).await;
        assert!(matches!(bad, Err(StoreError::Invalid { field: "who", .. })), "{name}: {bad:?}");
        store.prune(Timestamp(T + 15)).await.unwrap();
        let kept = store.actions(None, 10).await.unwrap();
        assert_eq!(kept.iter().map(|a| a.at).collect::<Vec<_>>(), [Timestamp(T + 20)], "{name}");
        clean_up(schema).await;
    }
}

#[tokio::test]
async fn the_jobs_of_the_last_hours_are_counted_by_hour_code_and_state() {
    for (store, schema, _dir) in stores().await {
        let name = store.describe();
        // The buckets are whole hours since the epoch.
        let hour0 = T.div_euclid(HOUR) * HOUR;
        job(&*store, "old", "2404", -3 * HOUR, Some("failed")).await;
        job(&*store, "a", "2404", 0, Some("failed")).await;
        job(&*store, "b", "2404", 1, Some("recovered")).await;
        job(&*store, "c", "2404", 2, None).await;
        job(&*store, "d", "2503", HOUR, None).await;
        job(&*store, "e", "2503", HOUR + 5, None).await;
        let mut tally = store.tally(Timestamp(T - HOUR), Duration::from_secs(3600)).await.unwrap();
        tally.sort_by(|a, b| (a.bucket, &a.code, &a.state).cmp(&(b.bucket, &b.code, &b.state)));
        let row = |bucket: i64, code: &str, state: &str, jobs: u64| TallyRow {
            bucket: Timestamp(bucket),
            code: code.to_owned(),
            state: state.to_owned(),
            jobs,
        };
        assert!(T - hour0 + 5 < HOUR, "the jobs of T and T + 1 h fall in two hours");
        assert_eq!(
            tally,
            [
                row(hour0, "2404", "failed", 1),
                row(hour0, "2404", "recovered", 1),
                row(hour0, "2404", "running", 1),
                row(hour0 + HOUR, "2503", "running", 2),
            ],
            "{name}"
        );
        clean_up(schema).await;
    }
}
