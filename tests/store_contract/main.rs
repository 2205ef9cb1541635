//! The store contract: what every store guarantees, one function per behaviour, run against every store this
//! build has (memory; SQLite on a temporary file; PostgreSQL when `DATABASE_URL` names a server and the build
//! has that store). A store that passes here can carry the engine. The behaviours are in `leases.rs`,
//! `reports.rs`, `reads.rs` and `faults.rs` (what hostile input and expiring leases meet); SQLite's own guarantees are in `tests/store_sqlite.rs`.

mod common;
mod faults;
mod guards;
mod leases;
#[cfg(feature = "postgres")]
#[path = "../support/postgres.rs"]
mod pg;
mod reads;
mod reports;

use std::io::Write;
use std::sync::{Arc, Once};

use lightflow_remedy::store::{MemoryStore, Store, StoreError, StoreOptions, open_url};

/// A store under test, empty and of its own.
struct Subject {
    name: String,
    store: Arc<dyn Store>,
    /// Keeps a file store's folder while the test runs.
    _dir: Option<tempfile::TempDir>,
    /// The server and the schema of a PostgreSQL store, dropped when the test has passed.
    schema: Option<(String, String)>,
}

impl Subject {
    /// Drops what the store left on a server.
    async fn clean_up(self) {
        #[cfg(feature = "postgres")]
        if let Some((url, schema)) = &self.schema {
            drop(self.store);
            pg::drop_schema(url, schema).await;
        }
    }
}

/// Every store this build has.
async fn stores() -> Vec<Subject> {
    stores_with(&StoreOptions::default()).await
}

/// Every store this build has, opened with `options`.
async fn stores_with(options: &StoreOptions) -> Vec<Subject> {
    let memory = Arc::new(MemoryStore::with_options(options));
    let mut out = vec![Subject { name: "memory".to_owned(), store: memory, _dir: None, schema: None }];
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = lightflow_remedy::store::SqliteStore::open(dir.path().join("jobs.db"), options)
            .await
            .expect("a SQLite store on a temporary file");
        out.push(Subject { name: store.describe(), store: Arc::new(store), _dir: Some(dir), schema: None });
    }
    if let Some(postgres) = postgres(options).await {
        out.push(postgres);
    }
    out
}

/// The PostgreSQL store, when `DATABASE_URL` names a server and this build has the store, in a schema of its
/// own (the store's `schema=` parameter creates it): the tests run at once, and must not see each other's
/// rows.
async fn postgres(options: &StoreOptions) -> Option<Subject> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        skipped(
            "DATABASE_URL is not set. To test it:\n***   eval \"$(../shared/tools/pg-test-server start)\" && \
             cargo test --all-features --test store_contract",
        );
        return None;
    };
    #[cfg(feature = "postgres")]
    let (opened, schema) = {
        let schema = pg::unique_schema("contract");
        (open_url(&pg::in_schema(&url, &schema), options).await, Some((url, schema)))
    };
    #[cfg(not(feature = "postgres"))]
    let (opened, schema) = (open_url(&url, options).await, None);
    match opened {
        Ok(store) => Some(Subject { name: store.describe(), store: Arc::from(store), _dir: None, schema }),
        Err(StoreError::BadUrl { reason, .. }) => {
            skipped(&reason);
            None
        }
        Err(e) => panic!("DATABASE_URL is set, but its store does not open: {e}"),
    }
}

/// Says once, past the test harness's capture, that PostgreSQL was not tested, and why.
fn skipped(why: &str) {
    // In CI (`.ci/run` sets it) these tests must run.
    assert!(std::env::var_os("REMEDY_REQUIRE_POSTGRES").is_none(), "REMEDY_REQUIRE_POSTGRES is set: {why}");
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "\n*** store contract: the PostgreSQL store was NOT tested: {why}\n");
    });
}

/// Runs a behaviour against every store.
macro_rules! contract {
    ($($(#[$attr:meta])* $module:ident::$name:ident;)*) => {$(
        $(#[$attr])*
        async fn $name() {
            for subject in stores().await {
                $module::$name(&subject).await;
                subject.clean_up().await;
            }
        }
    )*};
}

contract! {
    #[tokio::test]
    faults::reports_are_applied_only_to_the_attempt_they_name;
    #[tokio::test]
    faults::a_fenced_write_needs_a_lease_unexpired_past_its_margin;
    #[tokio::test]
    faults::values_no_id_has_are_refused_and_the_store_goes_on;
    #[tokio::test]
    faults::a_dedupe_key_makes_one_job_for_as_long_as_the_first_is_kept;
    #[tokio::test]
    faults::a_reference_stays_with_the_job_that_named_it_first;
    #[tokio::test]
    faults::a_cancel_asked_while_held_makes_the_released_job_due_at_once;
    #[tokio::test]
    faults::assets_keep_their_parameters_and_lineage;
    #[tokio::test]
    leases::submit_joins_the_active_job_and_a_later_job_gets_a_new_id;
    #[tokio::test]
    leases::submits_made_at_once_answer_as_one_after_the_other;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    leases::two_claimers_never_get_the_same_job;
    #[tokio::test]
    leases::claims_take_the_earliest_due_first_up_to_the_limit;
    #[tokio::test]
    leases::a_job_submitted_and_claimed_at_once_is_held_as_a_claim_leaves_it;
    #[tokio::test]
    leases::an_expired_lease_is_taken_over_and_its_old_holder_is_fenced;
    #[tokio::test]
    leases::the_ledger_keeps_calls_in_order_and_shows_an_unanswered_one_to_the_next_holder;
    #[tokio::test]
    leases::release_puts_a_job_to_rest_and_a_save_without_it_keeps_the_lease;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    leases::saves_at_once_each_get_their_own_answer;
    #[tokio::test]
    reports::every_report_gets_its_answer;
    #[tokio::test]
    reports::a_report_held_for_its_reference_is_picked_up_by_the_save_that_names_it;
    #[tokio::test]
    reports::cancel_ends_a_job_at_rest_and_asks_the_holder_of_a_held_one;
    #[tokio::test]
    reports::retry_now_makes_a_job_at_rest_due;
    #[tokio::test]
    reads::list_filters_by_phase_outcome_and_code_newest_first;
    #[tokio::test]
    reads::stats_count_phases_outcomes_due_held_and_held_reports;
    #[tokio::test]
    reads::ended_reads_the_finished_jobs_among_ids;
    #[tokio::test]
    reads::next_wake_is_the_earliest_active_job;
    #[tokio::test]
    reads::prune_deletes_finished_jobs_and_held_reports_before_a_time;
    #[tokio::test]
    guards::guards_are_written_compare_and_set;
}

/// Reports for references no job names are held within a cap and for a short life, on every store.
#[tokio::test]
async fn held_reports_are_bounded_in_number_and_in_time() {
    let options = StoreOptions::default().max_held_reports(3).held_report_life(std::time::Duration::from_secs(60));
    for subject in stores_with(&options).await {
        faults::held_reports_are_bounded(&subject).await;
        subject.clean_up().await;
    }
}
