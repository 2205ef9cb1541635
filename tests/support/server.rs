//! The PostgreSQL server of the tests that need one: `DATABASE_URL`, or a loud line saying the tests were not
//! run and how to run them. With `REMEDY_REQUIRE_POSTGRES` set (as `.ci/run` sets it), a missing server fails
//! the test instead: in CI these tests must run.

use std::io::Write;

/// `DATABASE_URL`, or `None` after saying (on stderr, past the test harness's capture) that `what` was not
/// tested and how to test it.
pub fn database_url(what: &str, test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Some(url);
    }
    assert!(
        std::env::var_os("REMEDY_REQUIRE_POSTGRES").is_none(),
        "{what}: REMEDY_REQUIRE_POSTGRES is set but DATABASE_URL is not: start a server first"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** {what}: NOT tested: DATABASE_URL is not set. To test it:\n***   eval \
         \"$(../shared/tools/pg-test-server start)\" && cargo test --all-features --test {test}\n"
    );
    None
}
