//! Which jobs a category covers, as a store filters them: a job keeps its failure as text (`2404`, `http:503`,
//! `timeout`), and a category is a few ranges of that text. Every asset code has four digits and every HTTP
//! status three, so within a kind the order of the text is the order of the numbers, and the ranges are
//! derived from the catalogue itself (never written out a second time).

use std::sync::OnceLock;

use crate::classify::FailureKey;
use crate::classify::FailureKind;
use crate::classify::catalogue::{self, Category, MAX_ASSET_CODE, MAX_HTTP_ERROR, MIN_ASSET_CODE, MIN_HTTP_ERROR};

/// The category of a job's failure as a store keeps it; `None` for text that is not a failure key as the engine
/// writes one.
pub(crate) fn category_of(code: &str) -> Option<Category> {
    let key: FailureKey = code.parse().ok()?;
    if key.to_string() != code {
        return None;
    }
    Some(match key.kind {
        FailureKind::Asset => catalogue::describe(key.code).category,
        FailureKind::Api => Category::Api,
        FailureKind::Timeout => Category::Timeout,
    })
}

/// The inclusive ranges of failure text that `category` covers, for `last_code BETWEEN low AND high` (in binary
/// order: PostgreSQL compares with `COLLATE "C"`).
pub(crate) fn code_ranges(category: Category) -> Vec<(String, String)> {
    match category {
        Category::Api => vec![(format!("http:{MIN_HTTP_ERROR}"), format!("http:{MAX_HTTP_ERROR}"))],
        Category::Timeout => vec![("timeout".to_owned(), "timeout".to_owned())],
        asset => asset_runs()
            .iter()
            .filter(|(_, _, c)| *c == asset)
            .map(|(low, high, _)| (low.to_string(), high.to_string()))
            .collect(),
    }
}

/// Every asset code in runs of one category: `(first, last, category)`, in code order.
fn asset_runs() -> &'static [(u16, u16, Category)] {
    static RUNS: OnceLock<Vec<(u16, u16, Category)>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let mut runs: Vec<(u16, u16, Category)> = Vec::new();
        for code in MIN_ASSET_CODE..=MAX_ASSET_CODE {
            let category = catalogue::describe(code).category;
            match runs.last_mut() {
                Some((_, high, c)) if *c == category => *high = code,
                _ => runs.push((code, code, category)),
            }
        }
        runs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_of_a_category_hold_exactly_its_codes() {
        let within = |code: &str, category: Category| {
            code_ranges(category).iter().any(|(low, high)| low.as_str() <= code && code <= high.as_str())
        };
        let mut keys: Vec<String> = (MIN_ASSET_CODE..=MAX_ASSET_CODE).map(|c| c.to_string()).collect();
        keys.extend((MIN_HTTP_ERROR..=MAX_HTTP_ERROR).map(|s| format!("http:{s}")));
        keys.push("timeout".to_owned());
        for key in &keys {
            let category = category_of(key).unwrap_or_else(|| panic!("{key} is a failure key"));
            for c in Category::ALL {
                assert_eq!(within(key, c), c == category, "{key} in {c}?");
            }
        }
        assert_eq!(category_of("2404"), Some(Category::Storage));
        assert_eq!(category_of("2052"), Some(Category::Protection));
        assert_eq!(category_of("2099"), Some(Category::Unknown));
        assert_eq!(category_of(" 2404"), None, "not as the engine writes it");
        assert_eq!(category_of("<script>"), None);
    }
}
