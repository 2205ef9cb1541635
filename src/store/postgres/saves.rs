//! A batch's saves as PostgreSQL writes them: all at once in one statement, with their ledgers when they can
//! be written at once.

use crate::store::group::{OwnedLedger, OwnedSave, Write};
use crate::store::{Lease, Saved, StoreError, Timestamp};

/// Whether the ledger's entries can be written all at once, against the ledger as it was before this save:
/// no call is answered twice, nor answered after it begins in the same save (the engine answers the last
/// call, then begins the next). Otherwise they are written one after the other.
pub(super) fn ledger_at_once(save: &OwnedSave) -> bool {
    let mut seen: Vec<&str> = Vec::with_capacity(save.ledger.len());
    for entry in &save.ledger {
        match entry {
            OwnedLedger::Begin { key, .. } => seen.push(key),
            OwnedLedger::End { key, .. } => {
                if seen.contains(&&**key) {
                    return false;
                }
                seen.push(key);
            }
        }
    }
    true
}

/// A batch's saves: all at once in one statement, but for a job saved twice in one
/// batch (the statement would match its row once; one engine never does it), whose later saves go one at a
/// time after.
pub(super) struct Saves<'a> {
    /// Each save: its index in the batch, its lease, the save, its time.
    pub(super) all: Vec<(usize, &'a Lease, &'a OwnedSave, Timestamp)>,
    /// Indexes into `all`: the first save of each job, then the others.
    pub(super) first: Vec<usize>,
    pub(super) again: Vec<usize>,
}

impl<'a> Saves<'a> {
    pub(super) fn of(writes: &'a [Write]) -> Saves<'a> {
        let mut all: Vec<(usize, &Lease, &OwnedSave, Timestamp)> = Vec::with_capacity(writes.len());
        let (mut first, mut again) = (Vec::with_capacity(writes.len()), Vec::new());
        for (i, write) in writes.iter().enumerate() {
            if let Write::Save { lease, save, now } = write {
                let k = all.len();
                if all.iter().any(|(_, l, _, _)| l.job == lease.job) {
                    again.push(k)
                } else {
                    first.push(k)
                }
                all.push((i, lease, save, *now));
            }
        }
        Saves { all, first, again }
    }

    /// The references named by saves to `awaiting`, sorted, once each (locks are taken in this order).
    pub(super) fn references(&self) -> Vec<&'a str> {
        let mut references: Vec<&str> = self.all.iter().filter_map(|(_, _, save, _)| save.awaiting()).collect();
        references.sort_unstable();
        references.dedup();
        references
    }

    /// The answers of the saves at `which` (indexes into `all`), from the rows the statement returned (job id,
    /// cancel requested, report): a save whose row is missing lost its lease.
    pub(super) fn answers(
        &self,
        which: &[usize],
        returned: &[(i64, bool, Option<String>)],
    ) -> Vec<(usize, Result<Saved, StoreError>)> {
        which
            .iter()
            .map(|&k| {
                let (i, lease, _, _) = self.all[k];
                let found = returned.iter().find(|row| u64::try_from(row.0).ok() == Some(lease.job.0));
                let answer = match found {
                    Some((_, cancel_requested, report)) => {
                        Ok(Saved { cancel_requested: *cancel_requested, report: report.clone() })
                    }
                    None => Err(OwnedSave::lost(lease)),
                };
                (i, answer)
            })
            .collect()
    }
}
