//! A store named by a URL, as the command line and configuration files name one: `sqlite://PATH`,
//! `sqlite::memory:`, `postgres://…`.

use super::redact::redact;
use super::{Store, StoreError, StoreOptions};

/// Opens the store that `url` names.
///
/// - `sqlite://PATH`: the SQLite store in the file at `PATH`, relative to the working directory
///   (`sqlite://jobs.db`) or absolute (`sqlite:///var/lib/remedy/jobs.db`); created if missing. Needs the
///   `sqlite` feature (on by default).
/// - `sqlite::memory:`: a SQLite database in this process (nothing survives it).
/// - `postgres://…`, `postgresql://…`: the PostgreSQL store, for several replicas, with sqlx's parameters and
///   `schema=NAME` (see [`PgStore::open`](super::PgStore::open)). Needs the `postgres` feature.
///
/// Errors never show a password that the URL carries.
///
/// ```
/// use lightflow_remedy::store::{open_url, StoreError, StoreOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = open_url("sqlite::memory:", &StoreOptions::default()).await?;
/// assert_eq!(store.describe(), "sqlite::memory:");
///
/// let Err(StoreError::BadUrl { url, .. }) = open_url("mysql://me:secret@db/jobs", &StoreOptions::default()).await
/// else { unreachable!() };
/// assert_eq!(url, "mysql://me:***@db/jobs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn open_url(url: &str, options: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    let bad = |reason: &str| StoreError::BadUrl { url: redact(url), reason: reason.to_owned() };
    match scheme {
        "sqlite" => sqlite(url, options).await,
        "postgres" | "postgresql" => postgres(url, options).await,
        "" => Err(bad("it has no scheme: write sqlite://PATH, sqlite::memory: or postgres://...")),
        _ => Err(bad("the stores are sqlite://PATH, sqlite::memory: and postgres://...")),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(url: &str, options: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    let store = super::SqliteStore::open(url, options).await?;
    Ok(Box::new(store))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(url: &str, _: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    Err(StoreError::BadUrl {
        url: redact(url),
        reason: "this build has no sqlite store (it is the `sqlite` feature, on by default)".to_owned(),
    })
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, options: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    let store = super::PgStore::open(url, options).await?;
    Ok(Box::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(url: &str, _: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    Err(StoreError::BadUrl {
        url: redact(url),
        reason: "this build has no postgres store (it is the `postgres` feature)".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_that_name_no_store_of_this_build_are_refused_clearly() {
        // With the store, a schema that is not a plain name is refused before any connection is tried.
        let postgres = if cfg!(feature = "postgres") { "not a plain name" } else { "no postgres store" };
        let table = [
            ("postgres://remedy:s3cret@db/jobs?schema=A", "postgres://remedy:***@db/jobs?schema=A", postgres),
            ("postgresql://db/jobs?schema=A", "postgresql://db/jobs?schema=A", postgres),
            ("mysql://db/jobs", "mysql://db/jobs", "the stores are"),
            ("jobs.db", "jobs.db", "no scheme"),
            ("sqlite://", "sqlite://", if cfg!(feature = "sqlite") { "names no file" } else { "no sqlite store" }),
        ];
        for (url, shown, says) in table {
            match open_url(url, &StoreOptions::default()).await {
                Err(StoreError::BadUrl { url: u, reason }) => {
                    assert_eq!(u, shown, "{url}");
                    assert!(reason.contains(says), "{url}: {reason}");
                }
                Err(other) => panic!("{url}: {other}"),
                Ok(store) => panic!("{url} opened {}", store.describe()),
            }
        }
    }
}
