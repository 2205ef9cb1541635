//! `LightFlowHooks` against a fake LightFlow on loopback: callback URLs that round-trip through
//! `Callback::from_query` and `AttemptKey::parse` and refuse forged tokens; each hook on its own; and whole jobs
//! on a `Remediator` with a `MemoryStore`, reported by the callback LightFlow would make.
//!
//! The jobs run on real time with short delays, not paused time: the fake LightFlow answers through real
//! sockets, and paused time would jump over the client's timeouts while a socket is waited on.
#![cfg(feature = "lightflow")]

use std::sync::Arc;
use std::time::Duration;

use lightflow_remedy::classify::Callback;
use lightflow_remedy::decide::CredentialScope;
use lightflow_remedy::engine::{
    Attempt, AttemptKey, Checked, CredentialFix, Hooks, Job, JobId, Notice, Outcome, Pending, Reconciled, Remediator,
    ReportAnswer, StoreSettings,
};
use lightflow_remedy::lightflow::{
    AssetBook, CallbackKey, CallbackMethod, CallbackUrls, KeyError, LightFlowClient, LightFlowHooks, MemoryAssetBook,
    Refused, TokenSource, UUID_META, Webhook,
};
use lightflow_remedy::store::{MemoryStore, SystemClock};
use lightflow_remedy::testing::policies;
use lightflow_remedy::{Failure, FailureKind};
use serde_json::{Map, Value, json};

#[path = "support/fake_lightflow.rs"]
mod fake_lightflow;

use fake_lightflow::{Answer, FakeLightFlow};

const INPUT: &str = "https://example.com/in.mp4";
const CALLBACK_BASE: &str = "https://remedy.example.com/callbacks?tenant=acme";

fn key(asset_id: &str, job: u64, attempt: u32) -> AttemptKey<'_> {
    AttemptKey { asset_id, job: JobId(job), attempt }
}

fn urls() -> CallbackUrls {
    let key = CallbackKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    CallbackUrls::new(CALLBACK_BASE, key).unwrap()
}

fn params() -> Map<String, Value> {
    json!({"input": {"urlPath": INPUT}, "4k": true, "perceptual-quality": {"h264": {"maxResolution": 2160}},
           "callbacks": [{"url": "https://host.example.com/own", "method": "GET"}]})
    .as_object()
    .cloned()
    .unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Hooks on the fake, with a book that has the parameters of `asset-1`.
async fn hooks_on(fake: &FakeLightFlow, token: TokenSource) -> LightFlowHooks<Arc<MemoryAssetBook>> {
    let client = LightFlowClient::builder(token).base_url(&fake.base).timeout(Duration::from_secs(2)).build().unwrap();
    let book = Arc::new(MemoryAssetBook::new());
    book.record_parameters("asset-1", &params()).await.unwrap();
    let webhook = Webhook::new(&format!("{}/webhook/T0/B0/secret", fake.base)).unwrap();
    LightFlowHooks::new(client, book, urls()).with_webhook(webhook)
}

async fn hooks(fake: &FakeLightFlow) -> LightFlowHooks<Arc<MemoryAssetBook>> {
    hooks_on(fake, TokenSource::fixed("token")).await
}

#[test]
fn callback_urls_round_trip_and_refuse_what_is_not_theirs() {
    let urls = urls().with_header_secret("X-Remedy-Secret", "hdr-secret");
    let key = key("asset#1 with spaces&more", 7, 3);
    let entry = urls.entry(JobId(7), &key);
    assert!(entry.url.starts_with(
        "https://remedy.example.com/callbacks?tenant=acme&attempt=asset%231+with+spaces%26more%237.3&token="
    ));
    assert_eq!(
        entry.to_json(),
        json!({"url": entry.url, "method": "POST", "headers": [{"name": "X-Remedy-Secret", "value": "hdr-secret"}]})
    );
    assert_eq!(urls.clone().with_method(CallbackMethod::Get).entry(JobId(7), &key).to_json()["method"], "GET");

    // Both of LightFlow's forms come back to the URL; the query says which attempt, the token whose.
    let get = Callback::from_query(&format!("{}&status=finished&endDate=2026-01-01T00:00:00.000Z", entry.url)).unwrap();
    let post = Callback::from_request(Some(&entry.url), Some(r#"{"uuid": "u", "status": "finished"}"#)).unwrap();
    for callback in [&get, &post] {
        assert_eq!(callback.param("tenant"), Some("acme"), "the host's own parameter is kept");
        let parsed = AttemptKey::parse(callback.param("attempt").unwrap()).unwrap();
        assert_eq!(parsed, key);
        let token = callback.param("token").unwrap();
        assert_eq!(token.len(), 43, "256 bits in base64url without padding");
        assert!(urls.verify(parsed.job, token));
        assert_eq!(urls.authenticate(callback, [("x-remedy-secret", b"hdr-secret".as_slice())]), Ok(()));
    }
    let token = urls.token(JobId(7));
    let mut forged = token.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let other_key = CallbackKey::generate().unwrap();
    let other = CallbackUrls::new(CALLBACK_BASE, other_key).unwrap();
    for (case, job, token) in [
        ("forged", 7, forged.as_str()),
        ("short", 7, &token[..20]),
        ("empty", 7, ""),
        ("longer", 7, &format!("{token}A")),
        ("another job's", 8, token.as_str()),
        ("another key's", 7, &other.token(JobId(7))),
    ] {
        assert!(!urls.verify(JobId(job), token), "{case}");
    }
    let bad = |query: &str| Callback::from_query(&format!("status=finished&{query}")).unwrap();
    let secret = [("X-REMEDY-SECRET", b"hdr-secret".as_slice())];
    assert_eq!(urls.authenticate(&bad(""), secret), Err(Refused::NoAttempt));
    assert_eq!(urls.authenticate(&bad("attempt=asset-7.3"), secret), Err(Refused::BadAttempt));
    assert_eq!(urls.authenticate(&bad("attempt=a%237.3"), secret), Err(Refused::BadToken));
    let other_job = format!("attempt=a%238.3&token={token}");
    assert_eq!(urls.authenticate(&bad(&other_job), secret), Err(Refused::BadToken));
    assert_eq!(urls.authenticate(&get, [("x-remedy-secret", b"wrong-secre".as_slice())]), Err(Refused::BadHeader));
    assert_eq!(urls.authenticate(&get, []), Err(Refused::BadHeader));

    // Secrets stay out of Debug; keys of the wrong size or text are refused.
    for shown in [format!("{urls:?}"), format!("{entry:?}")] {
        assert!(!shown.contains(&token) && !shown.contains("hdr-secret"), "{shown}");
    }
    assert_eq!(CallbackKey::from_base64("AAEC").unwrap_err(), KeyError::Length(3));
    assert_eq!(CallbackKey::from_base64("not base64!").unwrap_err(), KeyError::NotBase64);
    assert!(CallbackUrls::new("https://h.example.com/cb?token=x", CallbackKey::generate().unwrap()).is_err());
    assert!(
        urls.is_ours("https://remedy.example.com/callbacks?attempt=x") && !urls.is_ours("https://host.example.com/own")
    );
}

#[tokio::test]
async fn resubmit_posts_the_amended_parameters_with_this_attempts_callback() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let job = Job::new("asset-1");
    // RFC 7386: `null` removes, objects merge, the rest replaces.
    let amend = object(json!({"4k": null, "perceptual-quality": {"h264": {"maxResolution": 1080}}, "tags": ["r"]}));
    let first = hooks.resubmit(&job, &amend, &key("asset-1", 7, 1)).await.unwrap();
    assert_eq!(first, Attempt::Submitted { reference: "uuid-1".into() });
    assert_eq!(job.meta(UUID_META), Some(json!("uuid-1")));
    let body = fake.last().json();
    let sent = &body["parameters"];
    assert_eq!(sent["input"], json!({"urlPath": INPUT}));
    assert_eq!(sent.get("4k"), None);
    assert_eq!(sent["perceptual-quality"], json!({"h264": {"maxResolution": 1080}}));
    assert_eq!(sent["tags"], json!(["r"]));
    let callbacks = sent["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 2, "the host's own entry and this attempt's: {callbacks:?}");
    assert_eq!(callbacks[0]["url"], "https://host.example.com/own");
    assert_eq!(callbacks[1], urls().entry(JobId(7), &key("asset-1", 7, 1)).to_json());

    // The same attempt again (a repetition after a lost answer): not posted twice.
    let again = hooks.resubmit(&job, &amend, &key("asset-1", 7, 1)).await.unwrap();
    assert_eq!((again, fake.posts().len()), (first, 1));

    // The next attempt replaces the earlier attempt's entry with its own.
    hooks.resubmit(&job, &Map::new(), &key("asset-1", 7, 2)).await.unwrap();
    let sent = fake.last().json()["parameters"].clone();
    let urls_sent: Vec<&str> = sent["callbacks"].as_array().unwrap().iter().filter_map(|c| c["url"].as_str()).collect();
    assert_eq!(urls_sent.len(), 2);
    assert!(urls_sent[1].contains("attempt=asset-1%237.2"), "{urls_sent:?}");
    assert_eq!(hooks.book().lineage("asset-1").await.unwrap(), ["uuid-1", "uuid-2"]);
}

#[tokio::test]
async fn resubmit_answers_api_failures_as_failed_and_the_rest_as_hook_errors() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let job = Job::new("asset-1");
    fake.script(Answer::new(503, r#"{"message": "maintenance"}"#).header("retry-after", "20"));
    let Attempt::Failed(f) = hooks.resubmit(&job, &Map::new(), &key("asset-1", 1, 1)).await.unwrap() else {
        panic!("an API failure is the policies' to decide on")
    };
    assert_eq!((f.kind(), f.code(), f.retry_after()), (FailureKind::Api, 503, Some(Duration::from_secs(20))));

    let unknown = hooks.resubmit(&Job::new("asset-2"), &Map::new(), &key("asset-2", 1, 1)).await.unwrap_err();
    assert!(unknown.0.contains("the parameters of asset asset-2 are unknown"), "{unknown}");

    fake.script(Answer::new(201, "<html>created</html>"));
    let undocumented = hooks.resubmit(&job, &Map::new(), &key("asset-1", 1, 2)).await.unwrap_err();
    assert!(undocumented.0.contains("not as LightFlow documents: the body is not JSON"), "{undocumented}");

    let no_token = hooks_on(&fake, TokenSource::env("LIGHTFLOW_TEST_TOKEN_UNSET")).await;
    let err = no_token.resubmit(&job, &Map::new(), &key("asset-1", 1, 3)).await.unwrap_err();
    assert!(err.0.contains("LIGHTFLOW_TEST_TOKEN_UNSET"), "{err}");

    // An answer that says the asset ended already is taken as its result.
    fake.script(Answer::new(
        201,
        r#"{"uuid": "u9", "status": "error", "assetError": {"code": 2003, "message": "corrupt"}}"#,
    ));
    let ended = hooks.resubmit(&job, &Map::new(), &key("asset-1", 1, 4)).await.unwrap();
    assert!(matches!(&ended, Attempt::Failed(f) if f.code() == 2003), "{ended:?}");
}

#[tokio::test]
async fn check_maps_each_status_lightflow_documents() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let job = Job::new("asset-1");
    type Expected = fn(&Result<Checked, lightflow_remedy::engine::HookError>) -> bool;
    let table: &[(&str, Value, Expected)] = &[
        ("queued", json!({"status": "queued"}), |c| matches!(c, Ok(Checked::Running))),
        ("running", json!({"status": "running"}), |c| matches!(c, Ok(Checked::Running))),
        ("finished", json!({"status": "finished"}), |c| matches!(c, Ok(Checked::Succeeded))),
        (
            "error with its assetError",
            json!({"status": "error", "assetError": {"code": 2404, "message": "remote 404"}}),
            |c| matches!(c, Ok(Checked::Failed(f)) if f.code() == 2404 && f.message() == "remote 404"),
        ),
        (
            "error without assetError",
            json!({"status": "error"}),
            |c| matches!(c, Ok(Checked::Failed(f)) if f.code() == Failure::NO_CODE),
        ),
        ("canceled", json!({"status": "canceled"}), |c| matches!(c, Ok(Checked::Canceled))),
        ("a status not documented", json!({"status": "archived"}), |c| matches!(c, Ok(Checked::Unknown))),
        ("no status", json!({}), |c| matches!(c, Ok(Checked::Unknown))),
    ];
    for (i, (case, fields, expected)) in table.iter().enumerate() {
        let uuid = format!("u{i}");
        let mut asset = fields.clone();
        asset["uuid"] = json!(uuid);
        fake.add_asset(asset);
        let pending = Pending { key: key("asset-1", 1, 1), reference: &uuid };
        let checked = hooks.check(&job, &pending).await;
        assert!(expected(&checked), "{case}: {checked:?}");
        assert_eq!(fake.last().pairs(), [("uuid".to_owned(), uuid.clone())], "{case}");
    }
    let pending = Pending { key: key("asset-1", 1, 1), reference: "nowhere" };
    assert_eq!(hooks.check(&job, &pending).await, Ok(Checked::Unknown));
    // LightFlow in trouble: asked again later; refused: the policies decide (fix_credentials for 401).
    fake.script(Answer::new(503, ""));
    assert_eq!(hooks.check(&job, &pending).await, Ok(Checked::Running));
    fake.script(Answer::new(401, r#"{"message": "invalid token"}"#));
    let refused = hooks.check(&job, &pending).await;
    assert!(matches!(&refused, Ok(Checked::Failed(f)) if f.code() == 401 && f.notes().len() == 1), "{refused:?}");
}

#[tokio::test]
async fn reconcile_matches_by_uuid_then_by_input_and_creation_time() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let book = hooks.book().clone();
    let job = Job::new("asset-1");
    // Attempt 0 is the asset itself: its id is the original uuid.
    fake.add_asset(json!({"uuid": "asset-1", "status": "error", "input": {"urlPath": INPUT}}));
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 0)).await, Ok(Reconciled::NotDone));
    // Attempt 1 is recorded: found by its uuid.
    book.record_attempt("asset-1", "asset-1#1.1", "u1").await.unwrap();
    fake.add_asset(json!({"uuid": "u1", "status": "running", "input": {"urlPath": INPUT}}));
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 1)).await, Ok(Reconciled::NotDone), "still running");
    fake.set_status("u1", "finished", None);
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 1)).await, Ok(Reconciled::Done));

    // Attempt 2's answer was lost: the one unknown asset of the same input, created lately, is its own.
    fake.add_asset(json!({"uuid": "u2", "status": "finished", "input": {"urlPath": INPUT}}));
    fake.add_asset(json!({"uuid": "other", "status": "finished", "input": {"urlPath": "https://example.com/x.mp4"}}));
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 2)).await, Ok(Reconciled::Done));
    let search = fake.last().pairs();
    let names: Vec<&str> = search.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["creationDateFrom", "inputUrlPath", "pageIndex", "pageSize"]);
    assert_eq!(search[1].1, INPUT);
    assert_eq!(book.attempt("asset-1", "asset-1#1.2").await.unwrap().as_deref(), Some("u2"), "recorded");

    // Attempt 3: two unknown assets could be it: ambiguous, not done.
    fake.add_asset(json!({"uuid": "u3", "status": "finished", "input": {"urlPath": INPUT}}));
    fake.add_asset(json!({"uuid": "u4", "status": "finished", "input": {"urlPath": INPUT}}));
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 3)).await, Ok(Reconciled::NotDone));
    assert_eq!(book.attempt("asset-1", "asset-1#1.3").await.unwrap(), None);

    // LightFlow failing: not done, never an error that would end the job.
    fake.script(Answer::new(500, "down"));
    assert_eq!(hooks.reconcile(&job, &key("asset-1", 1, 1)).await, Ok(Reconciled::NotDone));
    // Nothing recorded to search by.
    assert_eq!(hooks.reconcile(&Job::new("asset-9"), &key("asset-9", 1, 1)).await, Ok(Reconciled::NotDone));
}

#[tokio::test]
async fn republish_posts_the_asset_again_under_a_new_reference_id() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let mut with_reference = params();
    with_reference.insert("referenceId".into(), json!("trailer-2026"));
    hooks.book().record_parameters("asset-1", &with_reference).await.unwrap();
    let job = Job::new("asset-1");
    let answer = hooks.republish(&job, "brightcove", true, &key("asset-1", 7, 2)).await.unwrap();
    assert_eq!(answer, Attempt::Submitted { reference: "uuid-1".into() });
    assert_eq!(fake.last().json()["parameters"]["referenceId"], "trailer-2026-r7-2");
    hooks.republish(&job, "brightcove", false, &key("asset-1", 7, 3)).await.unwrap();
    assert_eq!(fake.last().json()["parameters"]["referenceId"], "trailer-2026", "kept when no new one is asked");
}

#[tokio::test]
async fn fix_credentials_reads_the_api_token_again_and_fixes_nothing_else() {
    let fake = FakeLightFlow::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "first").unwrap();
    let hooks = hooks_on(&fake, TokenSource::file(&file)).await;
    let job = Job::new("asset-1");
    std::fs::write(&file, "second").unwrap();
    assert_eq!(hooks.fix_credentials(&job, CredentialScope::Api).await, Ok(CredentialFix::Fixed));
    hooks.resubmit(&job, &Map::new(), &key("asset-1", 1, 1)).await.unwrap();
    assert_eq!(fake.last().authorization.as_deref(), Some("Bearer second"));
    std::fs::remove_file(&file).unwrap();
    assert_eq!(hooks.fix_credentials(&job, CredentialScope::Api).await, Ok(CredentialFix::CannotFix));
    for scope in [CredentialScope::Storage, CredentialScope::Brightcove, CredentialScope::Upload, CredentialScope::Drm]
    {
        assert_eq!(hooks.fix_credentials(&job, scope).await, Ok(CredentialFix::CannotFix), "{scope}");
    }
}

#[tokio::test]
async fn notices_go_to_the_webhook_and_a_failing_webhook_is_harmless() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let job = Job::new("asset-1");
    let notice = Notice { channel: "ops".into(), message: "Brightcove keeps refusing".into(), about: "3004".into() };
    fake.script(Answer::new(200, "ok"));
    assert_eq!(hooks.notify(&job, &notice).await, Ok(()));
    let seen = fake.last();
    assert_eq!(seen.path, "/webhook/T0/B0/secret");
    assert_eq!(seen.json(), json!({"text": "[ops] asset asset-1 (3004): Brightcove keeps refusing"}));
    fake.script(Answer::new(500, "no"));
    assert_eq!(hooks.notify(&job, &notice).await, Ok(()));
}

/// A remediator on a memory store, on real time, with `hooks`.
fn remediator(
    script: &str,
    hooks: LightFlowHooks<Arc<MemoryAssetBook>>,
) -> Remediator<LightFlowHooks<Arc<MemoryAssetBook>>> {
    let settings = StoreSettings { poll_every: Duration::from_millis(20), ..StoreSettings::default() };
    Remediator::builder(policies(script), hooks)
        .without_circuit_breaker()
        .store_with(Arc::new(MemoryStore::new()), Arc::new(SystemClock), settings)
        .build()
}

/// The callback LightFlow would make for the last post: to the entry's URL, with its header.
fn callback_of_last_post(fake: &FakeLightFlow, body: Value) -> Callback {
    let post = fake.posts().pop().expect("a post");
    let entry = post.json()["parameters"]["callbacks"].as_array().and_then(|c| c.last().cloned()).unwrap();
    let url = entry["url"].as_str().unwrap().to_owned();
    Callback::from_request(Some(&url), Some(&body.to_string())).unwrap()
}

async fn wait_for_posts(fake: &FakeLightFlow, n: usize) {
    for _ in 0..500 {
        if fake.posts().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} posts expected, {} made", fake.posts().len());
}

#[tokio::test]
async fn a_job_recovers_through_a_resubmission_and_lightflows_callback() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let urls = hooks.callbacks().clone();
    let r = remediator(
        r#"on(2001, retry(#{ attempts: 2, initial: "50ms", jitter: "none" }).then(fail("gave up")));"#,
        hooks,
    );
    let handle = r.enqueue(Job::new("asset-1"), Failure::asset(2001, "download failed").unwrap()).await.unwrap();
    wait_for_posts(&fake, 1).await;
    let callback = callback_of_last_post(&fake, json!({"uuid": "uuid-1", "status": "finished"}));
    assert_eq!(urls.authenticate(&callback, []), Ok(()));
    let answer = r.report_callback(&callback).await.unwrap();
    assert!(matches!(answer, Some(ReportAnswer::Applied { .. })), "{answer:?}");
    let outcome = tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap();
    assert!(matches!(outcome, Outcome::Recovered { attempts: 1, .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_refused_token_is_read_again_and_the_job_goes_on() {
    let fake = FakeLightFlow::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "revoked").unwrap();
    let hooks = hooks_on(&fake, TokenSource::file(&file)).await;
    hooks.client().token_source().check().unwrap(); // read at start-up
    let script = r#"
        on(2001, retry(#{ attempts: 2, initial: "50ms", jitter: "none" }).then(fail("gave up")));
        on(http(401), fix_credentials("api").then(fail("the token is refused")));
    "#;
    let r = remediator(script, hooks);
    // The first post is refused; the operator has written the regenerated token meanwhile.
    fake.script(Answer::new(401, r#"{"message": "invalid token"}"#));
    std::fs::write(&file, "regenerated").unwrap();
    let handle = r.enqueue(Job::new("asset-1"), Failure::asset(2001, "download failed").unwrap()).await.unwrap();
    wait_for_posts(&fake, 2).await;
    let posts = fake.posts();
    assert_eq!(posts[0].authorization.as_deref(), Some("Bearer revoked"));
    assert_eq!(posts[1].authorization.as_deref(), Some("Bearer regenerated"));
    let callback = callback_of_last_post(&fake, json!({"uuid": "uuid-1", "status": "finished"}));
    r.report_callback(&callback).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap();
    assert!(matches!(outcome, Outcome::Recovered { attempts: 2, .. }), "{outcome:?}");
}

#[tokio::test]
async fn an_attempt_that_never_reports_is_checked_and_its_error_ends_the_job_in_the_dead_letter_webhook() {
    let fake = FakeLightFlow::start().await;
    let hooks = hooks(&fake).await;
    let script = r#"
        on(2001, retry(#{ attempts: 2, initial: "50ms", jitter: "none", await_result: "200ms" }).then(fail("gave up")));
        on(2404, fail("check the input URL"));
    "#;
    let r = remediator(script, hooks);
    let handle = r.enqueue(Job::new("asset-1"), Failure::asset(2001, "download failed").unwrap()).await.unwrap();
    wait_for_posts(&fake, 1).await;
    // No callback comes; LightFlow has the asset in error when the engine checks.
    fake.set_status("uuid-1", "error", Some(json!({"code": 2404, "message": "remote 404"})));
    let outcome = tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap();
    let Outcome::Failed { verdict } = outcome else { panic!("{outcome:?}") };
    assert_eq!(verdict.last_failure.code(), 2404);
    assert!(fake.seen().iter().any(|s| s.pairs().contains(&("uuid".into(), "uuid-1".into()))), "checked by uuid");
    // The dead letter went to the webhook.
    for _ in 0..200 {
        if fake.seen().iter().any(|s| s.path.starts_with("/webhook/")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let letter = fake.seen().into_iter().find(|s| s.path.starts_with("/webhook/")).expect("a dead letter posted");
    let text = letter.json()["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.starts_with("lightflow-remedy gave up on asset asset-1") && text.contains("check the input URL"),
        "{text}"
    );
}
