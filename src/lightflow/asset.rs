//! What LightFlow answers about assets: an [`Asset`] and a page of them ([`AssetPage`]), read from JSON with
//! only the fields LightFlow documents taken as known.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::classify::{AssetStatus, ClassifyError, Failure, UnknownStatus};

/// A LightFlow asset, as an answer carried it.
///
/// LightFlow documents an asset's `uuid`, `status` and `assetError`, and the list's page shape
/// (`totalItems`, `pageIndex`, `pageSize`, `pages`, `items`); the schema of an item and the body of a
/// `POST /assets` answer are **not seen** in the documentation we have. So an asset keeps its whole JSON object
/// ([`Asset::document`]) and is read for the documented fields only; the one we must have is `uuid`.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    uuid: String,
    document: Map<String, Value>,
}

impl Asset {
    /// Reads an asset object: it must be a JSON object with a string `uuid`, and a string `status` when it
    /// has one. `Err` says what was wrong.
    ///
    /// ```
    /// use lightflow_remedy::classify::AssetStatus;
    /// use lightflow_remedy::lightflow::Asset;
    /// use serde_json::json;
    ///
    /// let asset = Asset::from_value(json!({"uuid": "0b5c", "status": "error",
    ///     "assetError": {"code": 2404, "message": "remote server returned HTTP 404"}}))?;
    /// assert_eq!((asset.uuid(), asset.status()), ("0b5c", Some(Ok(AssetStatus::Error))));
    /// assert_eq!(asset.failure().unwrap().unwrap().code(), 2404);
    /// assert!(Asset::from_value(json!({"status": "queued"})).is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_value(value: Value) -> Result<Asset, String> {
        let Value::Object(document) = value else {
            return Err(format!("an asset is {}, not an object", kind(&value)));
        };
        let uuid = match document.get("uuid") {
            Some(Value::String(uuid)) if !uuid.trim().is_empty() => uuid.clone(),
            Some(Value::String(_)) => return Err("the asset's `uuid` is empty".to_owned()),
            Some(other) => return Err(format!("the asset's `uuid` is {}, not a string", kind(other))),
            None => return Err(format!("the asset has no `uuid` (its fields: {})", keys(&document))),
        };
        match document.get("status") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => return Err(format!("the asset's `status` is {}, not a string", kind(other))),
        }
        Ok(Asset { uuid, document })
    }

    /// The asset's uuid.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Its `status`: `None` when the answer has none, an error for a word LightFlow does not document.
    pub fn status(&self) -> Option<Result<AssetStatus, UnknownStatus>> {
        match self.document.get("status") {
            Some(Value::String(status)) => Some(status.parse()),
            _ => None,
        }
    }

    /// Its `assetError`, classified, when it has one.
    pub fn failure(&self) -> Option<Result<Failure, ClassifyError>> {
        match self.document.get("assetError") {
            None | Some(Value::Null) => None,
            Some(error) => {
                let mut doc = Map::new();
                doc.insert("assetError".to_owned(), error.clone());
                Some(Failure::from_value(&Value::Object(doc), SystemTime::now()))
            }
        }
    }

    /// What the asset's end means for the attempt it was: its `assetError`, or, when it has none or an
    /// unreadable one, a failure without a code ([`Failure::asset_without_code`]) that says so.
    pub fn error_failure(&self) -> Failure {
        match self.failure() {
            Some(Ok(failure)) => failure,
            Some(Err(e)) => Failure::asset_without_code(format!("asset {} is in error", self.uuid))
                .with_note(format!("its assetError cannot be read: {e}")),
            None => Failure::asset_without_code(format!("asset {} is in error, without an assetError", self.uuid)),
        }
    }

    /// The whole JSON object, with the fields LightFlow does not document.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }
}

/// A page of `GET /assets`: `{"totalItems", "pageIndex", "pageSize", "pages", "items"}`.
///
/// `items` must be there; the counts are kept when they are whole numbers, and are `None` otherwise (the
/// documentation shows them, but nothing here depends on them but paging).
#[derive(Debug, Clone, PartialEq)]
pub struct AssetPage {
    /// `totalItems`: how many assets match, on every page.
    pub total_items: Option<u64>,
    /// `pageIndex`: this page's index.
    pub page_index: Option<u64>,
    /// `pageSize`.
    pub page_size: Option<u64>,
    /// `pages`: how many pages there are.
    pub pages: Option<u64>,
    /// The assets of this page.
    pub items: Vec<Asset>,
}

impl AssetPage {
    /// Reads a page. `Err` says what was wrong (a missing `items`, an item without `uuid`).
    ///
    /// ```
    /// use lightflow_remedy::lightflow::AssetPage;
    /// use serde_json::json;
    ///
    /// let page = AssetPage::from_value(json!({"totalItems": 1, "pageIndex": 0, "pageSize": 20, "pages": 1,
    ///                                         "items": [{"uuid": "0b5c", "status": "finished"}]}))?;
    /// assert_eq!((page.items.len(), page.pages), (1, Some(1)));
    /// let err = AssetPage::from_value(json!({"items": [{"status": "finished"}]})).unwrap_err();
    /// assert!(err.starts_with("`items[0]`: the asset has no `uuid`"), "{err}");
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_value(value: Value) -> Result<AssetPage, String> {
        let Value::Object(mut page) = value else {
            return Err(format!("the page is {}, not an object", kind(&value)));
        };
        let count = |name: &str| page.get(name).and_then(Value::as_u64);
        let (total_items, page_index, page_size, pages) =
            (count("totalItems"), count("pageIndex"), count("pageSize"), count("pages"));
        let items = match page.remove("items") {
            Some(Value::Array(items)) => items,
            Some(other) => return Err(format!("`items` is {}, not an array", kind(&other))),
            None => return Err(format!("`items` is missing (the page's fields: {})", keys(&page))),
        };
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Asset::from_value(item).map_err(|e| format!("`items[{i}]`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AssetPage { total_items, page_index, page_size, pages, items })
    }
}

/// The JSON type of a value, in words.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An object's field names, for an error (at most ten).
fn keys(object: &Map<String, Value>) -> String {
    if object.is_empty() {
        return "none".to_owned();
    }
    let mut names: Vec<&str> = object.keys().map(String::as_str).take(10).collect();
    if object.len() > 10 {
        names.push("…");
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn assets_are_read_for_their_documented_fields() {
        type Expected = Result<(), &'static str>;
        let table: &[(Value, Expected)] = &[
            (json!({"uuid": "u"}), Ok(())),
            (json!({"uuid": "u", "status": null, "extra": [1]}), Ok(())),
            (json!({"uuid": ""}), Err("empty")),
            (json!({"uuid": 7}), Err("a number, not a string")),
            (json!({"id": "u"}), Err("no `uuid` (its fields: id)")),
            (json!({"uuid": "u", "status": 3}), Err("`status` is a number")),
            (json!(["u"]), Err("an array, not an object")),
        ];
        for (value, expected) in table {
            match (Asset::from_value(value.clone()), expected) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(words)) => assert!(e.contains(words), "{value}: {e}"),
                (got, _) => panic!("{value}: {got:?}"),
            }
        }
        let odd = Asset::from_value(json!({"uuid": "u", "status": "archived"})).unwrap();
        assert!(matches!(odd.status(), Some(Err(_))));
        let bad_error =
            Asset::from_value(json!({"uuid": "u", "status": "error", "assetError": {"code": "x"}})).unwrap();
        let f = bad_error.error_failure();
        assert_eq!(f.code(), Failure::NO_CODE);
        assert!(f.notes().iter().any(|n| n.contains("cannot be read")), "{:?}", f.notes());
    }

    #[test]
    fn pages_need_items() {
        for (value, words) in [
            (json!({"items": {}}), "`items` is an object"),
            (json!({"totalItems": 0}), "`items` is missing (the page's fields: totalItems)"),
            (json!("x"), "a string, not an object"),
        ] {
            let err = AssetPage::from_value(value).unwrap_err();
            assert!(err.contains(words), "{err}");
        }
        let page = AssetPage::from_value(json!({"items": [], "pages": "2"})).unwrap();
        assert_eq!((page.pages, page.items.len()), (None, 0));
    }
}
