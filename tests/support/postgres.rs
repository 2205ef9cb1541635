//! A schema of its own on the server `DATABASE_URL` names, for each test (they run at once) or bench run: the
//! store's `schema=` parameter creates it; it is dropped at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

/// A schema name no other test of any process uses: `PREFIX_PID_NANOS_N`.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `url` naming `schema` (the store's own parameter).
pub fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Runs `sql` on a connection of its own to `url` (without the store's parameter), as another program would.
pub async fn raw(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.expect("a connection to DATABASE_URL");
    conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("closed");
}

/// Drops `schema` and everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    raw(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await;
}
