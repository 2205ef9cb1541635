//! What can go wrong with a store, named so that an operator knows where to look.

/// A store's error. It is `Clone`: a commit that fails fails every write of its group with the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The lease on the job is no longer this holder's: another owner took the job over, or it ended. The
    /// holder must stop working on it.
    #[error("the lease on job {job} was lost (epoch {epoch}): another replica holds it, or it ended")]
    LeaseLost {
        /// The job.
        job: u64,
        /// The epoch of the lease that was lost.
        epoch: u64,
    },
    /// The database's schema is newer than this build knows: a newer replica migrated it.
    #[error(
        "the store's schema is at version {found}, newer than this build knows ({known}): run a newer \
         lightflow-remedy, or roll the database back"
    )]
    SchemaTooNew {
        /// The newest migration applied to the database.
        found: i64,
        /// The newest this build has.
        known: i64,
    },
    /// A row's payload is of a version newer than this build reads.
    #[error("job {job}'s payload is of version {found}, newer than this build reads ({known})")]
    PayloadTooNew {
        /// The job.
        job: u64,
        /// Its payload's version.
        found: u32,
        /// The newest this build reads.
        known: u32,
    },
    /// A row could not be read back.
    #[error("job {job}'s row is unreadable: {reason}")]
    Corrupt {
        /// The job (0 when unknown).
        job: u64,
        /// What was wrong.
        reason: String,
    },
    /// A store URL that names no store this build has.
    #[error("`{url}` is not a store URL this build knows: {reason}")]
    BadUrl {
        /// The URL, without its password.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A value handed to the store (an asset id, a reference, a report, a key) that it refuses to keep: too
    /// long, empty, or with characters no id has. Nothing was written.
    #[error("{field} refused: {reason}")]
    Invalid {
        /// Which value (`asset id`, `reference`, `report`, `dedupe key`).
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The store's database is gone from under it: its file was deleted or replaced while the store was open.
    /// Nothing more is written to it; open the store again (and see what became of the file).
    #[error("{store}: {reason}; nothing more is written to it")]
    Gone {
        /// Which store.
        store: String,
        /// What happened to it.
        reason: String,
    },
    /// The store was to be opened only if it exists ([`StoreOptions::create`](super::StoreOptions::create) off),
    /// and it does not.
    #[error("{store}: no such store (it is not created when opened for reading)")]
    Missing {
        /// Which store.
        store: String,
    },
    /// The store does not keep this kind of record (a store of the host's own that implements only the jobs).
    #[error("{store} keeps no {what}")]
    Unsupported {
        /// Which store.
        store: String,
        /// What it does not keep.
        what: &'static str,
    },
    /// The database refused or failed (connection lost, disk full, locked for too long, ...).
    #[error("{store}: {message}")]
    Database {
        /// Which store.
        store: String,
        /// The database's error.
        message: String,
    },
}
