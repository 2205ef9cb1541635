//! [`LightFlowHooks`]: the engine's [`Hooks`] carried out on LightFlow's documented API.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::book::AssetBook;
use super::callback_url::{CallbackEntry, CallbackUrls};
use super::client::LightFlowClient;
use super::error::ClientError;
use super::merge_patch::merge_members;
use super::notify::Webhook;
use super::reconcile::reconcile;
use crate::classify::{AssetStatus, FailureKind};
use crate::decide::CredentialScope;
use crate::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, HookError, Hooks, Job, Notice, Pending, Reconciled, Verdict,
};

/// The job metadata key under which the uuid of the attempt's LightFlow asset is kept.
pub const UUID_META: &str = "lightflow_uuid";

/// [`Hooks`] on LightFlow's API.
///
/// | hook | what it does at LightFlow |
/// |---|---|
/// | `resubmit` | `POST /assets` with the recorded parameters, the decision's `amend` merged (RFC 7386), and this attempt's callback entry |
/// | `republish` | the same post, with a new reference id when asked: LightFlow documents no publish call |
/// | `check` | `GET /assets?uuid=<the attempt's uuid>`, its status mapped |
/// | `reconcile` | list filters only; see [`reconcile`](crate::lightflow::reconcile) for how an attempt is matched |
/// | `fix_credentials` | `api`: the token read again; other scopes cannot be fixed from here |
/// | `notify`, `failed` | `tracing`, and the [`Webhook`] if one is set |
///
/// What LightFlow answers decides between the two kinds of error the engine knows: a failed API call (an HTTP
/// error, a timeout, no connection) is `Attempt::Failed(failure)`, which the policies decide on (API 401 and
/// 403 go to `fix_credentials("api")`, 429, 5xx and timeouts to the API profile); what no policy can repair
/// (no recorded parameters, an unreadable token, an answer LightFlow does not document, a book that fails)
/// is a [`HookError`], which ends the job with a verdict that says so.
///
/// ```
/// use lightflow_remedy::lightflow::{
///     CallbackKey, CallbackUrls, LightFlowClient, LightFlowHooks, MemoryAssetBook, TokenSource, Webhook,
/// };
/// use lightflow_remedy::{Policies, Remediator};
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = LightFlowClient::new(TokenSource::env("LIGHTFLOW_TOKEN"))?;
/// let callbacks = CallbackUrls::new("https://remedy.example.com/callbacks", CallbackKey::generate()?)?;
/// let hooks = LightFlowHooks::new(client, MemoryAssetBook::new(), callbacks)
///     .with_webhook(Webhook::new("https://hooks.example.com/T000/B000")?)
///     .with_reconcile_lookback(Duration::from_secs(2 * 3600));
/// let remediator = Remediator::builder(Policies::defaults(), hooks).build();
/// # drop(remediator); Ok(()) }
/// ```
pub struct LightFlowHooks<B: AssetBook> {
    client: LightFlowClient,
    book: B,
    callbacks: CallbackUrls,
    webhook: Option<Webhook>,
    reference_id_field: String,
    reconcile_lookback: Duration,
}

impl<B: AssetBook> LightFlowHooks<B> {
    /// How far back `reconcile` looks for an attempt whose post's answer was lost, unless told otherwise.
    pub const DEFAULT_RECONCILE_LOOKBACK: Duration = Duration::from_secs(3600);

    /// Where a republication's new reference id is put in the parameters, unless told otherwise:
    /// `referenceId` (**assumed**: the list filter's name; the create request's field is not in the
    /// documentation we have).
    pub const DEFAULT_REFERENCE_ID_FIELD: &'static str = "referenceId";

    /// Hooks that call LightFlow with `client`, read and record assets in `book`, and give LightFlow the
    /// callback entries of `callbacks`.
    pub fn new(client: LightFlowClient, book: B, callbacks: CallbackUrls) -> Self {
        LightFlowHooks {
            client,
            book,
            callbacks,
            webhook: None,
            reference_id_field: Self::DEFAULT_REFERENCE_ID_FIELD.to_owned(),
            reconcile_lookback: Self::DEFAULT_RECONCILE_LOOKBACK,
        }
    }

    /// The same hooks, posting notices and dead letters to `webhook` too.
    pub fn with_webhook(mut self, webhook: Webhook) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// The same hooks, putting a republication's new reference id in the parameters' member `field`.
    pub fn with_reference_id_field(mut self, field: impl Into<String>) -> Self {
        self.reference_id_field = field.into();
        self
    }

    /// The same hooks, with `reconcile` looking `lookback` back for an attempt whose post's answer was lost
    /// (longer than the longest delay between an attempt and its reconcile: a lease, a backoff).
    pub fn with_reconcile_lookback(mut self, lookback: Duration) -> Self {
        self.reconcile_lookback = lookback;
        self
    }

    /// The client.
    pub fn client(&self) -> &LightFlowClient {
        &self.client
    }

    /// The book.
    pub fn book(&self) -> &B {
        &self.book
    }

    /// The callback URLs.
    pub fn callbacks(&self) -> &CallbackUrls {
        &self.callbacks
    }

    /// Posts the asset again: the recorded parameters, `amend` merged, `reference_id` set if given, this
    /// attempt's callback entry. An attempt the book already has a uuid for is not posted again.
    async fn post(
        &self,
        job: &Job,
        amend: &Map<String, Value>,
        reference_id: Option<String>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let asset = job.asset_id();
        let key_text = key.to_string();
        let book_failed = |e: super::book::BookError| HookError::new(format!("asset {asset}: {e}"));
        if let Some(uuid) = self.book.attempt(asset, &key_text).await.map_err(book_failed)? {
            tracing::info!(asset, attempt = %key_text, uuid, "this attempt was posted already: not posted again");
            job.set_meta(UUID_META, uuid.clone());
            return Ok(Attempt::Submitted { reference: uuid });
        }
        let Some(mut params) = self.book.parameters(asset).await.map_err(book_failed)? else {
            return Err(HookError::new(format!(
                "the parameters of asset {asset} are unknown: LightFlow gives no way to read them back, and none \
                 were recorded (the gateway records them when it creates an asset)"
            )));
        };
        merge_members(&mut params, amend);
        if let Some(reference_id) = reference_id {
            params.insert(self.reference_id_field.clone(), Value::String(reference_id));
        }
        set_callback(&mut params, self.callbacks.entry(key.job, key), &self.callbacks)
            .map_err(|what| HookError::new(format!("asset {asset}: {what}")))?;
        let created = match self.client.create_asset(&params).await {
            Ok(created) => created,
            Err(ClientError::Failed(failure)) => {
                tracing::info!(asset, attempt = %key_text, failure = %failure.key(), "POST /assets failed");
                return Ok(Attempt::Failed(failure));
            }
            Err(e) => return Err(HookError::new(format!("asset {asset}, attempt {key_text}: {e}"))),
        };
        let uuid = created.uuid().to_owned();
        tracing::info!(asset, attempt = %key_text, uuid, "posted to LightFlow");
        if let Err(e) = self.book.record_attempt(asset, &key_text, &uuid).await {
            tracing::warn!(asset, attempt = %key_text, uuid, error = %e, "the new asset could not be recorded");
        }
        job.set_meta(UUID_META, uuid.clone());
        Ok(match created.status() {
            Some(Ok(AssetStatus::Finished)) => Attempt::Succeeded,
            Some(Ok(AssetStatus::Error)) => Attempt::Failed(created.error_failure()),
            _ => Attempt::Submitted { reference: uuid },
        })
    }

    /// A new reference id for attempt `key`: the recorded one (or the asset id) with `-r<job>-<attempt>`, the
    /// same for a repetition of the attempt.
    async fn new_reference_id(&self, job: &Job, key: &AttemptKey<'_>) -> String {
        let recorded = match self.book.parameters(job.asset_id()).await {
            Ok(Some(params)) => params.get(&self.reference_id_field).and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        let base = recorded.unwrap_or_else(|| job.asset_id().to_owned());
        format!("{base}-r{}-{}", key.job, key.attempt)
    }
}

/// Puts `entry` in `parameters.callbacks`, in place of the entries of `urls` an earlier attempt left there;
/// the host's own entries stay.
fn set_callback(params: &mut Map<String, Value>, entry: CallbackEntry, urls: &CallbackUrls) -> Result<(), String> {
    let list = callbacks_of(params).map_err(|e| format!("its recorded {e}"))?;
    list.retain(|e| !e.get("url").and_then(Value::as_str).is_some_and(|url| urls.is_ours(url)));
    list.push(entry.to_json());
    Ok(())
}

/// The `callbacks` array of LightFlow's `parameters` (made if missing or null); `Err` when it is something else.
pub(crate) fn callbacks_of(params: &mut Map<String, Value>) -> Result<&mut Vec<Value>, String> {
    let callbacks = params.entry("callbacks").or_insert_with(|| Value::Array(Vec::new()));
    if callbacks.is_null() {
        *callbacks = Value::Array(Vec::new());
    }
    match callbacks {
        Value::Array(list) => Ok(list),
        _ => Err("`parameters.callbacks` is not an array".to_owned()),
    }
}

impl<B: AssetBook> Hooks for LightFlowHooks<B> {
    async fn resubmit(
        &self,
        job: &Job,
        amend: &Map<String, Value>,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        self.post(job, amend, None, key).await
    }

    /// LightFlow documents no publish call (nor a Brightcove re-publish endpoint): a republication is a new
    /// `POST /assets` of the whole asset, under a new reference id when asked.
    async fn republish(
        &self,
        job: &Job,
        target: &str,
        new_reference_id: bool,
        key: &AttemptKey<'_>,
    ) -> Result<Attempt, HookError> {
        let reference_id = if new_reference_id { Some(self.new_reference_id(job, key).await) } else { None };
        tracing::info!(
            asset = job.asset_id(),
            target,
            new_reference_id,
            "republishing: the whole asset is posted again"
        );
        self.post(job, &Map::new(), reference_id, key).await
    }

    async fn fix_credentials(&self, job: &Job, scope: CredentialScope) -> Result<CredentialFix, HookError> {
        let asset = job.asset_id();
        if scope != CredentialScope::Api {
            tracing::warn!(
                asset,
                %scope,
                "the service cannot fix {scope} credentials: they are kept at LightFlow (stored inputs and outputs, \
                 integrations), and LightFlow documents no call to change them"
            );
            return Ok(CredentialFix::CannotFix);
        }
        let source = self.client.token_source();
        match source.reload() {
            // Readable is fixed, changed or not: another job may have read the new token first.
            Ok(reloaded) => {
                tracing::info!(asset, from = %source.describe(), ?reloaded, "the LightFlow token was read again");
                Ok(CredentialFix::Fixed)
            }
            Err(e) => {
                tracing::error!(asset, error = %e, "the LightFlow token cannot be read again");
                Ok(CredentialFix::CannotFix)
            }
        }
    }

    async fn reconcile(&self, job: &Job, key: &AttemptKey<'_>) -> Result<Reconciled, HookError> {
        Ok(reconcile(&self.client, &self.book, self.reconcile_lookback, job, key).await)
    }

    async fn check(&self, job: &Job, pending: &Pending<'_>) -> Result<Checked, HookError> {
        let asset = job.asset_id();
        let attempt = pending.key.to_string();
        let uuid = pending.reference;
        let found = match self.client.asset(uuid).await {
            Ok(found) => found,
            Err(ClientError::Failed(failure)) => {
                let transient = failure.kind() == FailureKind::Timeout || matches!(failure.code(), 429 | 500..=599);
                tracing::warn!(asset, attempt, uuid, failure = %failure.key(), transient, "check: LightFlow could not be asked");
                // A passing trouble is asked about again after the next wait; any other is for the policies.
                return Ok(if transient {
                    Checked::Running
                } else {
                    Checked::Failed(
                        failure.with_note(format!(
                            "asked while checking {attempt} ({uuid}): what became of it is unknown"
                        )),
                    )
                });
            }
            Err(e) => return Err(HookError::new(format!("asset {asset}, checking {attempt} ({uuid}): {e}"))),
        };
        let Some(found) = found else {
            tracing::warn!(asset, attempt, uuid, "check: LightFlow has no asset of this uuid");
            return Ok(Checked::Unknown);
        };
        Ok(match found.status() {
            Some(Ok(AssetStatus::Finished)) => Checked::Succeeded,
            Some(Ok(AssetStatus::Error)) => Checked::Failed(found.error_failure()),
            Some(Ok(AssetStatus::Queued | AssetStatus::Running)) => Checked::Running,
            // Posting again what someone canceled is not for the engine to decide: the job ends cancelled.
            Some(Ok(AssetStatus::Canceled)) => Checked::Canceled,
            Some(Err(e)) => {
                tracing::warn!(asset, attempt, uuid, error = %e, "check: the asset's status is not documented");
                Checked::Unknown
            }
            None => {
                tracing::warn!(asset, attempt, uuid, "check: the asset has no status");
                Checked::Unknown
            }
        })
    }

    async fn notify(&self, job: &Job, notice: &Notice) -> Result<(), HookError> {
        let asset = job.asset_id();
        tracing::warn!(asset, channel = %notice.channel, about = %notice.about, "{}", notice.message);
        if let Some(webhook) = &self.webhook {
            let text = format!("[{}] asset {asset} ({}): {}", notice.channel, notice.about, notice.message);
            webhook.send(&text).await;
        }
        Ok(())
    }

    async fn failed(&self, job: &Job, verdict: &Verdict) -> Result<(), HookError> {
        let asset = job.asset_id();
        tracing::error!(
            asset,
            kind = %verdict.kind,
            attempts = verdict.attempts,
            last = %verdict.last_failure.key(),
            hint = %verdict.hint,
            "remediation failed: {}",
            verdict.reason
        );
        if let Some(webhook) = &self.webhook {
            let text = format!(
                "lightflow-remedy gave up on asset {asset} ({}, after {} attempts): {}. Hint: {}",
                verdict.kind, verdict.attempts, verdict.reason, verdict.hint
            );
            webhook.send(&text).await;
        }
        Ok(())
    }
}

impl<B: AssetBook> fmt::Debug for LightFlowHooks<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LightFlowHooks")
            .field("client", &self.client)
            .field("callbacks", &self.callbacks)
            .field("webhook", &self.webhook)
            .field("reference_id_field", &self.reference_id_field)
            .field("reconcile_lookback", &self.reconcile_lookback)
            .finish_non_exhaustive()
    }
}
