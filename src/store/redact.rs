//! A store URL as messages show it: without the password it may carry.

/// `url` with the password of its user part, and a `password` parameter, if any, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (before_query, query) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    // The user part ends at the last `@` before the query: a password may hold a `/` or an `@` unescaped.
    let shown = match before_query.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => before_query.to_owned(),
        },
        None => before_query.to_owned(),
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (mark, body) = pair.split_at(usize::from(pair.starts_with(['?', '#'])));
            match body.split_once('=') {
                Some(("password", _)) => format!("{mark}password=***"),
                _ => pair.to_owned(),
            }
        })
        .collect();
    format!("{scheme}://{shown}{}", query.join("&"))
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
            ("postgres://remedy:pa/ss@db/jobs", "postgres://remedy:***@db/jobs"),
            ("postgres://db/jobs?password=s3cret", "postgres://db/jobs?password=***"),
            (
                "postgres://db/jobs?sslmode=require&password=s3cret&schema=x",
                "postgres://db/jobs?sslmode=require&password=***&schema=x",
            ),
            ("postgres://db/jobs?passwords=1", "postgres://db/jobs?passwords=1"),
            ("sqlite:///var/lib/jobs.db", "sqlite:///var/lib/jobs.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("", ""),
        ];
        for (url, shown) in table {
            assert_eq!(redact(url), shown, "{url}");
        }
    }
}
