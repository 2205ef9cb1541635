//! Assets a store keeps beside the jobs: the parameters an asset was created with (so that a failure of it can
//! be resubmitted), and its lineage (the references, e.g. LightFlow uuids, of the attempts that replaced it).

use serde::Serialize;

use super::clock::Timestamp;

/// An asset as it was created, by its id (e.g. the LightFlow uuid of the original asset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetRecord {
    /// The asset's id: the id of its jobs.
    pub asset_id: String,
    /// Another name it is found by (e.g. the id a gateway put in the asset's callback URL before the asset had
    /// an id of its own).
    pub alias: Option<String>,
    /// The parameters it was created with (JSON).
    pub parameters: String,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// One attempt that replaced an asset: its reference and its attempt key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineageRow {
    /// The reference the attempt answered with (a LightFlow uuid).
    pub reference: String,
    /// The attempt's key (`asset#job.attempt`).
    pub attempt_key: String,
    /// When it was recorded.
    pub at: Timestamp,
}

/// The largest parameters kept, in bytes of JSON.
pub const MAX_PARAMETERS_BYTES: usize = 256 * 1024;
