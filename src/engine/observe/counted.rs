//! Counted maps behind a lock, for counters whose keys are too many or too rare for a fixed array.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A copy of a counted map.
pub(crate) fn lock<K: Clone>(map: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    map.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Counts one `key` in a counted map.
pub(crate) fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
}
