//! The LightFlow client against a fake LightFlow on loopback: each answer the error catalogue and the API
//! summary describe becomes the failure it is, the list filters go in the query under their documented names,
//! the token goes in `Authorization: Bearer` and nowhere else, and a slow or absent LightFlow is a timeout.
#![cfg(feature = "lightflow")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightflow_remedy::classify::AssetStatus;
use lightflow_remedy::lightflow::{ClientError, LightFlowClient, ListQuery, TokenSource, Webhook};
use lightflow_remedy::{Category, Downstream, FailureKind};
use serde_json::json;

#[path = "support/fake_lightflow.rs"]
mod fake_lightflow;

use fake_lightflow::{Answer, FakeLightFlow};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig-THE-SECRET";

fn client(fake: &FakeLightFlow) -> LightFlowClient {
    client_with(fake, TokenSource::fixed(TOKEN))
}

fn client_with(fake: &FakeLightFlow, token: TokenSource) -> LightFlowClient {
    LightFlowClient::builder(token).base_url(&fake.base).timeout(Duration::from_millis(500)).build().expect("a client")
}

/// What a case expects of the error.
enum Expect {
    Api { status: u16, message: &'static str, retry_after: Option<Duration>, notes: usize },
    Undocumented { status: u16, what: &'static str },
}

#[tokio::test]
async fn each_documented_answer_becomes_its_failure() {
    let fake = FakeLightFlow::start().await;
    let client = client(&fake);
    let html = "<html><head><title>500 Internal Server Error</title></head><body><h1>Oops</h1></body></html>";
    let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(61));
    let table: Vec<(&str, Answer, Expect)> = vec![
        (
            "401: a revoked or regenerated token (assumed)",
            Answer::new(401, r#"{"message": "invalid token"}"#),
            Expect::Api { status: 401, message: "invalid token", retry_after: None, notes: 0 },
        ),
        (
            "403",
            Answer::new(403, r#"{"message": "forbidden"}"#),
            Expect::Api { status: 403, message: "forbidden", retry_after: None, notes: 0 },
        ),
        (
            "404 with LightFlow's documented body",
            Answer::new(404, r#"{"message": "asset not found"}"#),
            Expect::Api { status: 404, message: "asset not found", retry_after: None, notes: 0 },
        ),
        (
            "429 with Retry-After in seconds",
            Answer::new(429, r#"{"message": "slow down"}"#).header("retry-after", "30"),
            Expect::Api { status: 429, message: "slow down", retry_after: Some(Duration::from_secs(30)), notes: 0 },
        ),
        (
            "429 with Retry-After as an HTTP date",
            Answer::new(429, "").header("retry-after", &in_a_minute),
            Expect::Api { status: 429, message: "", retry_after: Some(Duration::from_secs(61)), notes: 0 },
        ),
        (
            "429 with a Retry-After that is not one",
            Answer::new(429, "").header("retry-after", "soon"),
            Expect::Api { status: 429, message: "", retry_after: None, notes: 1 },
        ),
        (
            "500 with a proxy's HTML page",
            Answer::new(500, html).header("content-type", "text/html"),
            Expect::Api { status: 500, message: "500 Internal Server Error Oops", retry_after: None, notes: 1 },
        ),
        (
            "503 with no body",
            Answer::new(503, ""),
            Expect::Api { status: 503, message: "", retry_after: None, notes: 0 },
        ),
        (
            "502 with plain text",
            Answer::new(502, "Bad Gateway"),
            Expect::Api { status: 502, message: "Bad Gateway", retry_after: None, notes: 1 },
        ),
        (
            "200 whose body is not JSON",
            Answer::new(200, "<html>maintenance</html>"),
            Expect::Undocumented { status: 200, what: "the body is not JSON" },
        ),
        ("200 with no body", Answer::new(200, ""), Expect::Undocumented { status: 200, what: "the body is empty" }),
        (
            "200 without items",
            Answer::new(200, r#"{"totalItems": 0}"#),
            Expect::Undocumented { status: 200, what: "`items` is missing" },
        ),
        (
            "200 with an item without uuid",
            Answer::new(200, r#"{"items": [{"status": "queued"}]}"#),
            Expect::Undocumented { status: 200, what: "`items[0]`: the asset has no `uuid`" },
        ),
        (
            "a redirect, which is not followed",
            Answer::new(302, "").header("location", "https://elsewhere.example.com/assets"),
            Expect::Undocumented { status: 302, what: "neither a success" },
        ),
    ];
    for (case, answer, expect) in table {
        fake.script(answer);
        let err = client.list_assets(&ListQuery::new()).await.expect_err(case);
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("THE-SECRET"), "{case}: {shown}");
        }
        match (err, expect) {
            (ClientError::Failed(f), Expect::Api { status, message, retry_after, notes }) => {
                assert_eq!((f.kind(), f.code(), f.category()), (FailureKind::Api, status, Category::Api), "{case}");
                assert_eq!(f.downstream(), Downstream::LightflowApi, "{case}");
                assert_eq!(f.message(), message, "{case}");
                match (f.retry_after(), retry_after) {
                    // An HTTP date is read against the clock: allow the second the test took.
                    (Some(got), Some(want)) => assert!(got <= want && got + Duration::from_secs(2) >= want, "{case}"),
                    (got, want) => assert_eq!(got, want, "{case}"),
                }
                assert_eq!(f.notes().len(), notes, "{case}: {:?}", f.notes());
            }
            (ClientError::Undocumented { call, status: got, what: text }, Expect::Undocumented { status, what }) => {
                assert_eq!((call, got), ("GET /assets", status), "{case}");
                assert!(text.contains(what), "{case}: {text}");
            }
            (err, _) => panic!("{case}: {err:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_lightflow_is_a_timeout_failure() {
    let fake = FakeLightFlow::start().await;
    fake.script(Answer::new(200, r#"{"items": []}"#).after(Duration::from_secs(3)));
    let client = LightFlowClient::builder(TokenSource::fixed(TOKEN))
        .base_url(&fake.base)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = client.list_assets(&ListQuery::new()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "the timeout cut the call short");
    let ClientError::Failed(f) = err else { panic!("{err:?}") };
    assert_eq!(
        (f.kind(), f.category(), f.downstream()),
        (FailureKind::Timeout, Category::Timeout, Downstream::LightflowApi)
    );
    assert_eq!(f.message(), "GET /assets did not answer within 200ms");
    assert_eq!(f.notes().len(), 1, "the reason is noted: {:?}", f.notes());
}

#[tokio::test]
async fn an_unreachable_lightflow_is_a_timeout_failure() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = LightFlowClient::builder(TokenSource::fixed(TOKEN))
        .base_url(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = client.create_asset(json!({"input": {}}).as_object().unwrap()).await.unwrap_err();
    let ClientError::Failed(f) = err else { panic!("{err:?}") };
    assert_eq!(f.kind(), FailureKind::Timeout);
    assert_eq!(f.message(), "POST /assets: LightFlow could not be reached");
    assert!(!format!("{f:?}").contains("THE-SECRET"));
    // The note says why, without the URL (a search's query may carry an input URL's signature).
    assert!(f.notes().iter().all(|n| !n.contains("127.0.0.1")), "{:?}", f.notes());
}

#[tokio::test]
async fn list_filters_appear_in_the_query_as_documented() {
    let fake = FakeLightFlow::start().await;
    let client = client(&fake);
    let query = ListQuery::new()
        .uuid("0b5c")
        .status([AssetStatus::Error, AssetStatus::Canceled])
        .created_from(UNIX_EPOCH + Duration::from_millis(1_550_176_368_898))
        .created_to(UNIX_EPOCH + Duration::from_secs(1_550_200_000))
        .reference_id("ref 1&2")
        .input_url_path("https://example.com/in.mp4?sig=a+b")
        .name("trailer")
        .label("remedy")
        .tags("a,b")
        .features(["perceptual-quality"])
        .show_demo(false)
        .page(2, 50);
    let page = client.list_assets(&query).await.unwrap();
    assert!(page.items.is_empty());
    let seen = fake.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/assets"));
    let pairs: Vec<(String, String)> = seen.pairs();
    let expected: Vec<(String, String)> = [
        ("uuid", "0b5c"),
        ("status", "error,canceled"),
        ("creationDateFrom", "2019-02-14T20:32:48.898Z"),
        ("creationDateTo", "2019-02-15T03:06:40.000Z"),
        ("referenceId", "ref 1&2"),
        ("inputUrlPath", "https://example.com/in.mp4?sig=a+b"),
        ("name", "trailer"),
        ("label", "remedy"),
        ("tags", "a,b"),
        ("features", "perceptual-quality"),
        ("showDemo", "false"),
        ("pageIndex", "2"),
        ("pageSize", "50"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(pairs, expected);
    // Without filters, no query at all.
    client.list_assets(&ListQuery::new()).await.unwrap();
    assert_eq!(fake.last().query, "");
}

#[tokio::test]
async fn create_posts_the_parameters_and_reads_the_uuid() {
    let fake = FakeLightFlow::start().await;
    let client = client(&fake);
    let params = json!({"input": {"urlPath": "https://example.com/in.mp4"},
                        "perceptual-quality": {"h264": {"maxBitrate": 8000}}});
    let asset = client.create_asset(params.as_object().unwrap()).await.unwrap();
    assert_eq!((asset.uuid(), asset.status()), ("uuid-1", Some(Ok(AssetStatus::Queued))));
    let seen = fake.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/assets"));
    assert_eq!(seen.json(), json!({ "parameters": params }));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(seen.accept.as_deref(), Some("application/json"));

    // An answer without a uuid is not what LightFlow documents.
    fake.script(Answer::new(201, r#"{"id": "x"}"#));
    let err = client.create_asset(params.as_object().unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Undocumented { call: "POST /assets", status: 201, what } if what.contains("no `uuid`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn one_asset_is_found_by_the_uuid_filter_and_only_by_its_own_uuid() {
    let fake = FakeLightFlow::start().await;
    let client = client(&fake);
    fake.add_asset(json!({"uuid": "a-1", "status": "finished"}));
    let found = client.asset("a-1").await.unwrap().expect("found");
    assert_eq!(found.status(), Some(Ok(AssetStatus::Finished)));
    assert_eq!(fake.last().pairs(), [("uuid".to_owned(), "a-1".to_owned())]);
    assert_eq!(client.asset("a-2").await.unwrap(), None);
    // A filter that matches loosely (not documented either way): an item of another uuid is not the asset.
    fake.script(Answer::new(200, r#"{"items": [{"uuid": "a-10", "status": "finished"}]}"#));
    assert_eq!(client.asset("a-1").await.unwrap(), None);
}

#[tokio::test]
async fn the_token_is_sent_as_bearer_and_shown_nowhere() {
    let fake = FakeLightFlow::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let source = TokenSource::file(&file);
    let client = client_with(&fake, source.clone());
    client.list_assets(&ListQuery::new()).await.unwrap();
    assert_eq!(fake.last().authorization, Some(format!("Bearer {TOKEN}")));

    // Regenerated in the portal and written to the file: read again on demand, and used.
    std::fs::write(&file, "regenerated-THE-SECRET-2").unwrap();
    client.list_assets(&ListQuery::new()).await.unwrap();
    assert_eq!(fake.last().authorization, Some(format!("Bearer {TOKEN}")), "kept until reloaded");
    assert_eq!(client.token_source().reload(), Ok(lightflow_remedy::lightflow::Reloaded::Changed));
    client.list_assets(&ListQuery::new()).await.unwrap();
    assert_eq!(fake.last().authorization.as_deref(), Some("Bearer regenerated-THE-SECRET-2"));

    // Nothing shows it: the client, the source, the errors of every kind.
    fake.script(Answer::new(401, r#"{"message": "bad token"}"#));
    let refused = client.list_assets(&ListQuery::new()).await.unwrap_err();
    std::fs::write(&file, "bad\u{7}THE-SECRET").unwrap();
    let unreadable = source.reload().unwrap_err();
    let unset = LightFlowClient::builder(TokenSource::env("LIGHTFLOW_TEST_TOKEN_UNSET"))
        .base_url(&fake.base)
        .build()
        .unwrap()
        .list_assets(&ListQuery::new())
        .await
        .unwrap_err();
    assert!(matches!(unset, ClientError::Token(_)), "{unset:?}");
    let shown = [
        format!("{client:?}"),
        format!("{source:?}"),
        format!("{refused} {refused:?}"),
        format!("{unreadable} {unreadable:?}"),
        format!("{unset} {unset:?}"),
    ];
    for text in shown {
        assert!(!text.contains("THE-SECRET") && !text.contains(TOKEN), "{text}");
    }
}

#[tokio::test]
async fn a_webhook_posts_slack_text_and_survives_failures() {
    let fake = FakeLightFlow::start().await;
    let hook = Webhook::new(&format!("{}/services/T000/B000/XXXX", fake.base)).unwrap();
    fake.script(Answer::new(200, "ok"));
    assert!(hook.send("asset a1: gave up").await);
    let seen = fake.last();
    assert_eq!((seen.path.as_str(), seen.json()), ("/services/T000/B000/XXXX", json!({"text": "asset a1: gave up"})));
    assert!(!format!("{hook:?}").contains("XXXX"));
    fake.script(Answer::new(500, "no"));
    assert!(!hook.send("again").await);
    fake.script(Answer::new(200, "late").after(Duration::from_secs(3)));
    assert!(!hook.with_timeout(Duration::from_millis(100)).send("slow").await);
}
