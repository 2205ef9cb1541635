//! Decisions counted by failure key and action, without a lock: every decision of every job bumps one of
//! these, from whichever runtime thread the job runs on.
//!
//! Each key the dense rule table covers (asset codes 1000..=9999, API statuses 400..=599, the timeout) has one
//! atomic per action, in blocks of keys made on first use, so that a remediator that sees a handful of
//! codes holds a handful of blocks. Any other key goes to a locked map.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::counted::{bump, lock};
use crate::classify::FailureKey;
use crate::decide::ActionKind;
use crate::decide::rules::table::{self, Table};

/// Keys per block: neighbouring codes (a category's) usually share one.
const BLOCK: usize = 64;
const ACTIONS: usize = ActionKind::ALL.len();

pub(crate) struct DecisionCounts {
    blocks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    other: Mutex<BTreeMap<(FailureKey, ActionKind), u64>>,
}

impl Default for DecisionCounts {
    fn default() -> Self {
        DecisionCounts {
            blocks: (0..table::LEN.div_ceil(BLOCK)).map(|_| OnceLock::new()).collect(),
            other: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for DecisionCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl DecisionCounts {
    /// Counts one decision of `action` for `key`.
    pub(crate) fn bump(&self, key: FailureKey, action: ActionKind) {
        match Table::slot(key) {
            Some(slot) => {
                let block =
                    self.blocks[slot / BLOCK].get_or_init(|| (0..BLOCK * ACTIONS).map(|_| AtomicU64::new(0)).collect());
                block[(slot % BLOCK) * ACTIONS + action as usize].fetch_add(1, Ordering::Relaxed);
            }
            None => bump(&self.other, (key, action)),
        }
    }

    /// The counts that are not zero.
    pub(crate) fn snapshot(&self) -> BTreeMap<(FailureKey, ActionKind), u64> {
        let mut counts = lock(&self.other);
        for (slot, key) in Table::keys().enumerate() {
            let Some(block) = self.blocks[slot / BLOCK].get() else { continue };
            for action in ActionKind::ALL {
                let n = block[(slot % BLOCK) * ACTIONS + action as usize].load(Ordering::Relaxed);
                if n > 0 {
                    counts.insert((key, action), n);
                }
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::catalogue;

    #[test]
    fn every_key_is_counted_under_its_own_name() {
        let counts = DecisionCounts::default();
        let keys = [
            FailureKey::asset(catalogue::MIN_ASSET_CODE),
            FailureKey::asset(2503),
            FailureKey::asset(catalogue::MAX_ASSET_CODE),
            FailureKey::api(catalogue::MIN_HTTP_ERROR),
            FailureKey::api(catalogue::MAX_HTTP_ERROR),
            FailureKey::timeout(),
            // Outside the table: counted in the locked map.
            FailureKey::asset(42),
            FailureKey::api(302),
        ];
        for (i, key) in keys.into_iter().enumerate() {
            for (j, action) in ActionKind::ALL.into_iter().enumerate() {
                for _ in 0..(i * ACTIONS + j + 1) {
                    counts.bump(key, action);
                }
            }
        }
        let snapshot = counts.snapshot();
        assert_eq!(snapshot.len(), keys.len() * ACTIONS);
        for (i, key) in keys.into_iter().enumerate() {
            for (j, action) in ActionKind::ALL.into_iter().enumerate() {
                assert_eq!(snapshot.get(&(key, action)), Some(&((i * ACTIONS + j + 1) as u64)), "{key} {action}");
            }
        }
    }

    #[test]
    fn only_the_keys_seen_make_blocks() {
        let counts = DecisionCounts::default();
        counts.bump(FailureKey::asset(2001), ActionKind::Retry);
        assert_eq!(counts.blocks.iter().filter(|b| b.get().is_some()).count(), 1);
        assert_eq!(
            counts.snapshot().into_iter().collect::<Vec<_>>(),
            [((FailureKey::asset(2001), ActionKind::Retry), 1)]
        );
    }
}
