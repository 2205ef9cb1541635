//! The host's job: one asset to remediate, its context and metadata, and the idempotency key of each attempt.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::decide::Context;
use crate::store::JobId;

/// One asset to remediate: its id, the host's context for it, and the seed of its jitter. Once submitted it
/// also carries the engine's [`JobId`], and the metadata its hooks keep on it ([`Job::set_meta`]).
///
/// ```
/// use lightflow_remedy::engine::Job;
/// let job = Job::new("asset-42").with_seed(7);
/// assert_eq!((job.asset_id(), job.seed()), ("asset-42", 7));
/// // A hook keeps what later hooks need, e.g. the LightFlow uuid of the attempt under way; it is stored with
/// // the job, and survives a restart with a durable store.
/// job.set_meta("lightflow_uuid", "6f1c...");
/// assert_eq!(job.meta("lightflow_uuid"), Some(serde_json::json!("6f1c...")));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    asset_id: Arc<str>,
    #[serde(default)]
    context: Context,
    seed: u64,
    /// Given by the engine at submit; kept by suspension and resume.
    #[serde(default)]
    id: JobId,
    #[serde(default, skip_serializing_if = "Meta::is_empty")]
    meta: Meta,
}

impl Job {
    /// A job for `asset_id`, with an empty context and a seed derived from the id (FNV-1a), so that
    /// different assets spread their retries differently and the same asset always the same way.
    pub fn new(asset_id: impl Into<Arc<str>>) -> Self {
        let asset_id = asset_id.into();
        let seed =
            asset_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Job { asset_id, context: Context::new(), seed, id: JobId::default(), meta: Meta::default() }
    }

    /// The same job with the host's context (tenant, plan, asset parameters, ...).
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// The same job with an explicit jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The asset's id: one active remediation per id.
    pub fn asset_id(&self) -> &str {
        &self.asset_id
    }

    /// The host's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The jitter seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The engine's id of this remediation (0 before the job is submitted).
    pub fn job_id(&self) -> JobId {
        self.id
    }

    /// A value a hook kept on the job with [`Job::set_meta`].
    pub fn meta(&self, key: &str) -> Option<Value> {
        self.meta.lock().and_then(|m| m.get(key).cloned())
    }

    /// Keeps `value` under `key` on the job, for the hooks called after this one: the engine stores it with
    /// the job (a durable store writes it after the hook's call). Hooks get `&Job`, so this takes `&self`.
    pub fn set_meta(&self, key: impl Into<String>, value: impl Into<Value>) {
        let mut map = self.meta.0.get_or_init(Box::default).lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key.into(), value.into());
    }

    /// All the metadata, as a map.
    pub fn meta_all(&self) -> Map<String, Value> {
        self.meta.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub(crate) fn id(&self) -> &Arc<str> {
        &self.asset_id
    }

    pub(crate) fn set_job_id(&mut self, id: JobId) {
        self.id = id;
    }
}

impl From<&str> for Job {
    fn from(asset_id: &str) -> Self {
        Job::new(asset_id)
    }
}

/// A stable idempotency key for one attempt of one job: the host can drop a duplicate resubmission (for
/// example after a shutdown and resume repeats a call whose answer was lost). A later job of the same asset
/// has another job id, so its keys never repeat an earlier job's.
///
/// It borrows the job's asset id for the length of the call; its text, `asset-id#job.attempt`, is the form to
/// keep or to send as an idempotency key.
///
/// ```
/// use lightflow_remedy::engine::{AttemptKey, JobId};
/// let key = AttemptKey { asset_id: "asset-42", job: JobId(7), attempt: 2 };
/// assert_eq!(key.to_string(), "asset-42#7.2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AttemptKey<'a> {
    /// The asset.
    pub asset_id: &'a str,
    /// The job: one remediation of the asset.
    pub job: JobId,
    /// Which resubmission or re-publication of the job, from 1.
    pub attempt: u32,
}

impl<'a> AttemptKey<'a> {
    /// Reads a key from its text (`asset-id#job.attempt`, as [`Display`](fmt::Display) writes it): e.g. the
    /// `attempt` parameter a host put in its callback URL. `None` for text that is not a key (the attempt is
    /// counted from 1).
    ///
    /// ```
    /// use lightflow_remedy::engine::{AttemptKey, JobId};
    /// let key = AttemptKey::parse("asset#42#7.2").unwrap();
    /// assert_eq!(key, AttemptKey { asset_id: "asset#42", job: JobId(7), attempt: 2 });
    /// assert_eq!(AttemptKey::parse("asset-42#7"), None);
    /// assert_eq!(AttemptKey::parse("asset-42#7.0"), None);
    /// ```
    pub fn parse(text: &'a str) -> Option<AttemptKey<'a>> {
        let (asset_id, numbers) = text.rsplit_once('#')?;
        let (job, attempt) = numbers.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if asset_id.is_empty() || !digits(job) || !digits(attempt) {
            return None;
        }
        let attempt: u32 = attempt.parse().ok().filter(|n| *n > 0)?;
        Some(AttemptKey { asset_id, job: JobId(job.parse().ok()?), attempt })
    }
}

impl fmt::Display for AttemptKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}.{}", self.asset_id, self.job, self.attempt)
    }
}

/// The metadata hooks keep on a job: allocated on first use, so that a job without any costs one word.
#[derive(Debug, Default)]
struct Meta(OnceLock<Box<Mutex<Map<String, Value>>>>);

impl Meta {
    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Map<String, Value>>> {
        self.0.get().map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn is_empty(&self) -> bool {
        self.lock().is_none_or(|m| m.is_empty())
    }

    fn of(map: Map<String, Value>) -> Self {
        let meta = Meta::default();
        if !map.is_empty() {
            let _ = meta.0.set(Box::new(Mutex::new(map)));
        }
        meta
    }
}

impl Clone for Meta {
    /// A copy: a clone of a job (a suspended state, a verdict) keeps what the metadata was then.
    fn clone(&self) -> Self {
        Meta::of(self.lock().map(|m| m.clone()).unwrap_or_default())
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.lock().map(|m| m.clone()), other.lock().map(|m| m.clone()));
        a.unwrap_or_default() == b.unwrap_or_default()
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.lock() {
            Some(map) => map.serialize(s),
            None => Map::new().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Meta::of)
    }
}

/// Where a remediator's job ids start: random (from the process's hash keys), so that the jobs of a remediator
/// built after a restart do not repeat an earlier one's ids, nor their idempotency keys.
pub(crate) fn first_job_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6a6f_6273);
    // Room below for 2^32 jobs before the ids wrap, which they may: they only need to differ.
    (h.finish() & !0xffff_ffff) | 1
}
