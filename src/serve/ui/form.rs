//! What forms and queries send, read leniently: a field that is missing, repeated or not UTF-8 is dealt with
//! by the page that reads it, never a panic nor a bare 400 of the framework's.

/// The fields of a form body or a query string, in order (a field may repeat: `asset=a&asset=b`).
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The fields of `bytes` (`application/x-www-form-urlencoded`).
    pub(crate) fn parse(bytes: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The fields of a query string, if the request had one.
    pub(crate) fn query(raw: Option<&str>) -> Fields {
        raw.map(|q| Fields::parse(q.as_bytes())).unwrap_or_default()
    }

    /// The first value of `name`, trimmed; `None` when missing or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order, the empty ones left out.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_and_decode() {
        let f = Fields::parse(b"asset=a%231&asset=b+c&asset=&csrf=%20x%20&bad=%FF");
        assert_eq!(f.all("asset"), ["a#1", "b c"]);
        assert_eq!(f.get("csrf"), Some("x"));
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.get("bad"), Some("\u{FFFD}"));
        assert!(Fields::query(None).get("x").is_none());
    }
}
