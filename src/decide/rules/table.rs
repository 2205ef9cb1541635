//! The dense table: for every possible failure key, the index of the rule that applies.
//!
//! Asset codes 1000..=9999 and API statuses 400..=599 are few enough to index directly, so resolving a
//! failure without a `decide` function is one bounds-checked load.

use std::sync::LazyLock;

use crate::classify::catalogue::{self, Category};
use crate::classify::{FailureKey, FailureKind};
use crate::decide::rules::{Matcher, category_of};

const NONE: u32 = u32::MAX;
/// The most conflicts one source reports; more are repeats of the same mistake.
const MAX_CONFLICTS: usize = 64;
const ASSET_LEN: usize = (catalogue::MAX_ASSET_CODE - catalogue::MIN_ASSET_CODE) as usize + 1;
const API_LEN: usize = (catalogue::MAX_HTTP_ERROR - catalogue::MIN_HTTP_ERROR) as usize + 1;
/// Asset codes first, then API statuses, then the one timeout key.
pub(crate) const LEN: usize = ASSET_LEN + API_LEN + 1;

/// Rule indices by failure key; [`NONE`] where no rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    rules: Box<[u32]>,
}

/// Two rules of one source that are equally specific for the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) first: usize,
    pub(crate) second: usize,
    pub(crate) key: FailureKey,
}

impl Table {
    pub(crate) fn empty() -> Self {
        Table { rules: vec![NONE; LEN].into_boxed_slice() }
    }

    /// Where `key` is kept: its position in [`Table::keys`], or `None` for a key outside the table's range.
    #[inline]
    pub(crate) fn slot(key: FailureKey) -> Option<usize> {
        let (base, len, offset) = match key.kind {
            FailureKind::Asset => (catalogue::MIN_ASSET_CODE, ASSET_LEN, 0),
            FailureKind::Api => (catalogue::MIN_HTTP_ERROR, API_LEN, ASSET_LEN),
            FailureKind::Timeout => return Some(ASSET_LEN + API_LEN),
        };
        let i = key.code.checked_sub(base)? as usize;
        (i < len).then_some(offset + i)
    }

    /// The rule for `key`, if any.
    #[inline]
    pub(crate) fn get(&self, key: FailureKey) -> Option<usize> {
        let rule = *self.rules.get(Table::slot(key)?)?;
        (rule != NONE).then_some(rule as usize)
    }

    fn set(&mut self, slot: usize, rule: usize) {
        if let Some(r) = self.rules.get_mut(slot) {
            *r = u32::try_from(rule).unwrap_or(NONE);
        }
    }

    /// Every key a table can hold.
    pub(crate) fn keys() -> impl Iterator<Item = FailureKey> {
        (catalogue::MIN_ASSET_CODE..=catalogue::MAX_ASSET_CODE)
            .map(FailureKey::asset)
            .chain((catalogue::MIN_HTTP_ERROR..=catalogue::MAX_HTTP_ERROR).map(FailureKey::api))
            .chain(std::iter::once(FailureKey::timeout()))
    }

    /// The table of one source: for each key, its most specific rule (`otherwise` is not a rule of the table:
    /// it is the fallback when no table has one). `rules` pairs each rule's global index with its matcher.
    /// Pairs of equally specific rules that both match a key no more specific rule takes are returned.
    ///
    /// Linear in the keys and the rules (plus sorting the ranges), whatever the ranges: exact codes are set
    /// first, then ranges from the narrowest, then categories, each filling only the keys still free.
    pub(crate) fn for_source(rules: &[(usize, Matcher)]) -> (Table, Vec<Conflict>) {
        let mut table = Table::empty();
        let mut free = Free::new();
        let fill = |table: &mut Table, free: &mut Free, lo: usize, hi: usize, index: usize| {
            let mut slot = free.next(lo);
            while slot <= hi {
                table.set(slot, index);
                free.take(slot);
                slot = free.next(slot + 1);
            }
        };
        for &(index, matcher) in rules {
            if let Matcher::Code(_) | Matcher::Http(_) = matcher
                && let Some(slot) = domain(matcher).next().and_then(Table::slot)
            {
                fill(&mut table, &mut free, slot, slot, index);
            }
        }
        // (width, first slot, last slot, rule), narrowest first and, within a width, by first code.
        let mut ranges: Vec<(u32, usize, usize, usize)> = rules
            .iter()
            .filter_map(|&(index, matcher)| {
                let (kind, lo, hi) = match matcher {
                    Matcher::Range(lo, hi) => (FailureKey::asset as fn(u16) -> FailureKey, lo, hi),
                    Matcher::HttpRange(lo, hi) => (FailureKey::api as fn(u16) -> FailureKey, lo, hi),
                    _ => return None,
                };
                let (lo, hi) = (Table::slot(kind(lo))?, Table::slot(kind(hi))?);
                Some((matcher.specificity().1, lo, hi, index))
            })
            .collect();
        ranges.sort_unstable();
        let mut conflicts = Vec::new();
        for group in ranges.chunk_by(|a, b| a.0 == b.0) {
            // Two ranges of one width overlap where the next starts before the previous ends; they conflict
            // if a key of the overlap is still free (no more specific rule takes it).
            for pair in group.windows(2) {
                let ((_, _, a_hi, a), (_, b_lo, b_hi, b)) = (pair[0], pair[1]);
                let at = free.next(b_lo);
                if b_lo <= a_hi && at <= a_hi.min(b_hi) && conflicts.len() < MAX_CONFLICTS {
                    let key = Table::keys().nth(at).unwrap_or_else(FailureKey::timeout);
                    conflicts.push(Conflict { first: a.min(b), second: a.max(b), key });
                }
            }
            for &(_, lo, hi, index) in group {
                fill(&mut table, &mut free, lo, hi, index);
            }
        }
        for &(index, matcher) in rules {
            if let Matcher::Category(_) = matcher {
                for slot in domain(matcher).filter_map(Table::slot) {
                    fill(&mut table, &mut free, slot, slot, index);
                }
            }
        }
        // In the order the later rule of each pair was written.
        conflicts.sort_unstable_by_key(|c| (c.second, c.first));
        (table, conflicts)
    }

    /// Merges source tables, the last one first: for each key, the rule of the latest source that has one.
    pub(crate) fn merge<'t>(tables: impl DoubleEndedIterator<Item = &'t Table>) -> Table {
        let mut merged = Table::empty();
        for table in tables.rev() {
            for (m, t) in merged.rules.iter_mut().zip(table.rules.iter()) {
                if *m == NONE {
                    *m = *t;
                }
            }
        }
        merged
    }

    /// The winning rule of each key that has one (a rule's index once per key it wins).
    pub(crate) fn wins(&self) -> impl Iterator<Item = usize> + '_ {
        self.rules.iter().filter(|&&r| r != NONE).map(|&r| r as usize)
    }

    /// Every key that has a rule, with its rule, in the order of [`Table::keys`].
    pub(crate) fn entries(&self) -> impl Iterator<Item = (FailureKey, usize)> + '_ {
        Table::keys().zip(self.rules.iter()).filter(|(_, r)| **r != NONE).map(|(k, r)| (k, *r as usize))
    }
}

/// The slots no rule has taken yet: each points at the next free one at or after it, so that filling a
/// range skips what is taken in one step (a union-find with path halving).
struct Free {
    next: Vec<u32>,
}

impl Free {
    fn new() -> Self {
        Free { next: (0..=LEN as u32).collect() }
    }

    /// The first free slot at or after `slot` (`LEN` when there is none).
    fn next(&mut self, slot: usize) -> usize {
        let mut i = slot.min(LEN);
        while self.next[i] as usize != i {
            let after = self.next[i] as usize;
            self.next[i] = self.next[after];
            i = after;
        }
        i
    }

    fn take(&mut self, slot: usize) {
        self.next[slot] = slot as u32 + 1;
    }
}

/// The keys a matcher can apply to.
fn domain(matcher: Matcher) -> Box<dyn Iterator<Item = FailureKey>> {
    match matcher {
        Matcher::Code(c) => Box::new(std::iter::once(FailureKey::asset(c))),
        Matcher::Range(lo, hi) => Box::new((lo..=hi).map(FailureKey::asset)),
        Matcher::Http(s) => Box::new(std::iter::once(FailureKey::api(s))),
        Matcher::HttpRange(lo, hi) => Box::new((lo..=hi).map(FailureKey::api)),
        Matcher::Category(Category::Api) => {
            Box::new((catalogue::MIN_HTTP_ERROR..=catalogue::MAX_HTTP_ERROR).map(FailureKey::api))
        }
        Matcher::Category(Category::Timeout) => Box::new(std::iter::once(FailureKey::timeout())),
        Matcher::Category(c) => Box::new(
            (catalogue::MIN_ASSET_CODE..=catalogue::MAX_ASSET_CODE)
                .filter(move |&code| ASSET_CATEGORIES[(code - catalogue::MIN_ASSET_CODE) as usize] == c)
                .map(FailureKey::asset),
        ),
        Matcher::Otherwise | Matcher::Decide => Box::new(std::iter::empty()),
    }
}

/// The category of every asset code, computed once.
static ASSET_CATEGORIES: LazyLock<Box<[Category]>> = LazyLock::new(|| {
    (catalogue::MIN_ASSET_CODE..=catalogue::MAX_ASSET_CODE).map(|c| category_of(FailureKey::asset(c))).collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_order_of_the_keys() {
        for (slot, key) in Table::keys().enumerate() {
            assert_eq!(Table::slot(key), Some(slot), "{key}");
        }
        assert_eq!(Table::keys().count(), LEN);
    }

    #[test]
    fn the_most_specific_rule_wins_within_a_source() {
        let rules = [
            (0, Matcher::Otherwise),
            (1, Matcher::Category(Category::Storage)),
            (6, Matcher::Range(1000, 1001)),
            (2, Matcher::Range(2400, 2499)),
            (3, Matcher::Range(2400, 2409)),
            (4, Matcher::Code(2404)),
            (5, Matcher::Http(429)),
        ];
        let (table, conflicts) = Table::for_source(&rules);
        assert!(conflicts.is_empty());
        let cases = [(2404, Some(4)), (2405, Some(3)), (2410, Some(2)), (2001, Some(1)), (1001, Some(6)), (9999, None)];
        for (code, rule) in cases {
            assert_eq!(table.get(FailureKey::asset(code)), rule, "{code}: otherwise is not in the table");
        }
        assert_eq!(table.get(FailureKey::api(429)), Some(5));
        assert_eq!(table.get(FailureKey::api(430)), None);
        assert_eq!(table.get(FailureKey::timeout()), None);
        assert_eq!(table.get(FailureKey::asset(999)), None);
        assert_eq!(table.get(FailureKey::api(200)), None);
    }

    #[test]
    fn overlaps_that_a_more_specific_rule_covers_are_no_conflict() {
        let rules = [(0, Matcher::Range(2400, 2450)), (1, Matcher::Range(2425, 2475)), (2, Matcher::Range(2425, 2450))];
        let (table, conflicts) = Table::for_source(&rules);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(table.get(FailureKey::asset(2430)), Some(2));
        assert_eq!(table.get(FailureKey::asset(2460)), Some(1));
        assert_eq!(table.get(FailureKey::asset(2410)), Some(0));
    }

    #[test]
    fn nested_ranges_load_in_linear_time() {
        let rules: Vec<(usize, Matcher)> = (1..9000).map(|w| (w as usize, Matcher::Range(1000, 1000 + w))).collect();
        let started = std::time::Instant::now();
        let (table, conflicts) = Table::for_source(&rules);
        assert!(conflicts.is_empty());
        assert_eq!(table.get(FailureKey::asset(1001)), Some(1));
        assert_eq!(table.get(FailureKey::asset(9999)), Some(8999));
        assert!(started.elapsed() < std::time::Duration::from_millis(200), "{:?}", started.elapsed());
    }

    #[test]
    fn equally_specific_overlaps_conflict_once_per_pair() {
        let rules = [
            (0, Matcher::Range(2400, 2450)),
            (1, Matcher::Range(2425, 2475)),
            (2, Matcher::Range(3000, 3010)),
            (3, Matcher::Range(3005, 3015)),
        ];
        let (_, conflicts) = Table::for_source(&rules);
        let found: Vec<_> = conflicts.iter().map(|c| (c.first, c.second, c.key)).collect();
        assert_eq!(found, [(0, 1, FailureKey::asset(2425)), (2, 3, FailureKey::asset(3005))]);
    }

    #[test]
    fn later_tables_win_when_merged() {
        let (low, _) = Table::for_source(&[(0, Matcher::Code(2404)), (1, Matcher::Code(2001))]);
        let (high, _) = Table::for_source(&[(2, Matcher::Range(2400, 2499))]);
        let merged = Table::merge([&low, &high].into_iter());
        assert_eq!(merged.get(FailureKey::asset(2404)), Some(2));
        assert_eq!(merged.get(FailureKey::asset(2001)), Some(1));
    }
}
