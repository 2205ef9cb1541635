//! The running jobs, one per asset id: for joins, cancellation by id, and shutdown.
//!
//! Each entry keeps its id's hash, so that growing the table and removing a finished job never read the id
//! again: a fleet's ids are a hundred thousand small allocations, and each read of one is a cache miss.

use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::engine::walk::cell::JobCell;

/// A running job.
struct Running {
    hash: u64,
    id: Arc<str>,
    cell: Arc<JobCell>,
}

/// The running jobs by asset id.
#[derive(Default)]
pub(crate) struct Registry {
    hasher: ahash::RandomState,
    jobs: HashTable<Running>,
}

/// What [`Registry::enter`] found.
pub(crate) enum Entered {
    /// The asset had no running job: the cell is now its job's, and `hash` takes it out again.
    New { hash: u64 },
    /// The asset has a running job here already.
    Running,
}

impl Registry {
    /// Registers `cell` as the job of `id`, unless `id` already has one.
    pub(crate) fn enter(&mut self, id: &Arc<str>, cell: &Arc<JobCell>) -> Entered {
        let hash = self.hasher.hash_one(&**id);
        match self.jobs.entry(hash, |r| r.hash == hash && *r.id == **id, |r| r.hash) {
            Entry::Occupied(_) => Entered::Running,
            Entry::Vacant(vacant) => {
                vacant.insert(Running { hash, id: id.clone(), cell: cell.clone() });
                Entered::New { hash }
            }
        }
    }

    /// The running job of `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&Arc<JobCell>> {
        let hash = self.hasher.hash_one(id);
        self.jobs.find(hash, |r| r.hash == hash && *r.id == *id).map(|r| &r.cell)
    }

    /// Takes out the job that [`Registry::enter`] put in with `hash`, if it is still there (compared by cell,
    /// so the id is not read).
    pub(crate) fn leave(&mut self, hash: u64, cell: &Arc<JobCell>) {
        if let Ok(running) = self.jobs.find_entry(hash, |r| Arc::ptr_eq(&r.cell, cell)) {
            running.remove();
        }
    }

    /// The running jobs' cells.
    pub(crate) fn cells(&self) -> impl Iterator<Item = &Arc<JobCell>> {
        self.jobs.iter().map(|r| &r.cell)
    }

    /// How many jobs are running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn one_job_per_id_until_it_leaves() {
        let mut registry = Registry::default();
        let first = Arc::new(JobCell::default());
        let Entered::New { hash } = registry.enter(&id("a"), &first) else { panic!("a new job") };
        match registry.enter(&id("a"), &Arc::default()) {
            Entered::Running => {}
            Entered::New { .. } => panic!("a second job for `a`"),
        }
        assert!(matches!(registry.enter(&id("b"), &Arc::default()), Entered::New { .. }));
        assert_eq!(registry.len(), 2);
        assert!(registry.get("a").is_some_and(|c| Arc::ptr_eq(c, &first)));

        registry.leave(hash, &first);
        assert!(registry.get("a").is_none());
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.cells().count(), 1);
    }

    #[test]
    fn a_finished_job_does_not_take_out_its_successor() {
        let mut registry = Registry::default();
        let old = Arc::new(JobCell::default());
        let Entered::New { hash } = registry.enter(&id("a"), &old) else { panic!("a new job") };
        registry.leave(hash, &old);
        let new = Arc::new(JobCell::default());
        assert!(matches!(registry.enter(&id("a"), &new), Entered::New { .. }));
        // The old job's delivery runs again (as a drop guard would): the new job stays.
        registry.leave(hash, &old);
        assert!(registry.get("a").is_some_and(|c| Arc::ptr_eq(c, &new)));
        registry.leave(hash, &new);
        assert!(registry.is_empty());
    }

    #[test]
    fn many_ids_survive_growth() {
        let mut registry = Registry::default();
        let cells: Vec<_> = (0..5_000).map(|_| Arc::new(JobCell::default())).collect();
        let hashes: Vec<_> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| match registry.enter(&id(&format!("asset-{i}")), c) {
                Entered::New { hash } => hash,
                Entered::Running => panic!("asset-{i} is new"),
            })
            .collect();
        for (i, c) in cells.iter().enumerate() {
            assert!(registry.get(&format!("asset-{i}")).is_some_and(|r| Arc::ptr_eq(r, c)));
        }
        for (i, (hash, c)) in hashes.iter().zip(&cells).enumerate().filter(|(i, _)| i % 2 == 0) {
            registry.leave(*hash, c);
            assert!(registry.get(&format!("asset-{i}")).is_none());
        }
        assert_eq!(registry.len(), 2_500);
    }
}
