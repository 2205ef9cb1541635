//! A store named by a URL, as the command line and configuration files name one: `sqlite://PATH`,
//! `sqlite::memory:`, `postgres://…`.

use super::{Store, StoreError, StoreOptions};

/// Opens the store that `url` names.
///
/// - `sqlite://PATH`: the SQLite store in the file at `PATH`, relative to the working directory
///   (`sqlite://jobs.db`) or absolute (`sqlite:///var/lib/remedy/jobs.db`); created if missing. Needs the
///   `sqlite` feature (on by default).
/// - `sqlite::memory:`: a SQLite database in this process (nothing survives it).
/// - `postgres://…`, `postgresql://…`: the PostgreSQL store, for several replicas.
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
        // The PostgreSQL store, behind its own feature, is opened here.
        "postgres" | "postgresql" => Err(bad("this build has no postgres store")),
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

/// `url` with the password of its user part, if any, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((user_info, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let table = [
            ("postgres://remedy:s3cret@db:5432/jobs", "postgres://remedy:***@db:5432/jobs"),
            ("postgres://remedy:p@ss@db/jobs?sslmode=require", "postgres://remedy:***@db/jobs?sslmode=require"),
            ("postgres://remedy@db/jobs", "postgres://remedy@db/jobs"),
            ("postgres://db/jobs", "postgres://db/jobs"),
            ("postgres://db/jobs?user=a@b", "postgres://db/jobs?user=a@b"),
            ("sqlite:///var/lib/jobs.db", "sqlite:///var/lib/jobs.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("", ""),
        ];
        for (url, shown) in table {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn urls_that_name_no_store_of_this_build_are_refused_clearly() {
        let table = [
            ("postgres://remedy:s3cret@db/jobs", "postgres://remedy:***@db/jobs", "no postgres store"),
            ("postgresql://db/jobs", "postgresql://db/jobs", "no postgres store"),
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
