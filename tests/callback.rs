//! LightFlow callbacks, as a host's callback handler receives them: the POST body and the GET query form, read
//! into what they mean for a remediation. Never a panic, whatever arrives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightflow_remedy::classify::{AssetStatus, Callback, CallbackError, CallbackPos, CallbackResult};
use lightflow_remedy::{Category, ClassifyError, Failure, Pos};
use proptest::prelude::*;

/// The documented sample's fields (the guide's curl example is not valid JSON; this is its content), with the
/// end LightFlow presumably adds.
const SAMPLE: &str = r#"{
  "uuid": "5c9d2b8e-8d2c-4a6e-9d4b-0f6c2a1e7b3d",
  "assetName": "My asset",
  "inputUrl": "https://example.com/video.mp4",
  "username": "user@example.com",
  "startDate": "2019-02-14T20:32:48.898Z",
  "endDate": "2019-02-14T20:45:03.120Z",
  "status": "error",
  "assetError": {"code": 2404, "message": "Error downloading input file: remote server returned HTTP 404"},
  "somethingNew": {"nested": [1, 2, 3]}
}"#;

#[test]
fn the_documented_post_body() {
    let c = Callback::from_json(SAMPLE).unwrap();
    assert_eq!(c.uuid.as_deref(), Some("5c9d2b8e-8d2c-4a6e-9d4b-0f6c2a1e7b3d"));
    assert_eq!(c.asset_name.as_deref(), Some("My asset"));
    assert_eq!(c.input_url.as_deref(), Some("https://example.com/video.mp4"));
    assert_eq!(c.username.as_deref(), Some("user@example.com"));
    assert_eq!(c.status, AssetStatus::Error);
    assert_eq!(c.start_time(), Some(UNIX_EPOCH + Duration::from_millis(1_550_176_368_898)));
    assert_eq!(c.end_time(), Some(UNIX_EPOCH + Duration::from_millis(1_550_177_103_120)));
    let CallbackResult::Failed(f) = c.result() else { panic!("an error callback fails: {c:?}") };
    assert_eq!((f.code(), f.category()), (2404, Category::Storage));
    assert_eq!(f.message(), "Error downloading input file: remote server returned HTTP 404");
    assert_eq!(Some(&f), c.failure.as_ref());
}

#[test]
fn what_each_callback_means() {
    use CallbackResult as R;
    let no_code = || Failure::asset_without_code("LightFlow reported the asset in error, without an assetError");
    // (POST body, result)
    let posts: Vec<(&str, CallbackResult)> = vec![
        (r#"{"uuid": "u", "status": "finished"}"#, R::Succeeded),
        (r#"{"uuid": "u", "status": "FINISHED"}"#, R::Succeeded),
        (r#"{"uuid": "u", "status": "canceled"}"#, R::Canceled),
        (r#"{"uuid": "u", "status": "cancelled"}"#, R::Canceled),
        (r#"{"uuid": "u", "status": "queued"}"#, R::NotFinished),
        (r#"{"uuid": "u", "status": "running"}"#, R::NotFinished),
        (r#"{"uuid": "u", "status": "error"}"#, R::Failed(no_code())),
        (r#"{"uuid": "u", "status": "error", "assetError": null}"#, R::Failed(no_code())),
        (r#"{"status": "error", "assetError": {"code": 3003}}"#, R::Failed(Failure::asset(3003, "").unwrap())),
        // No status, but an assetError: the asset failed.
        (
            r#"{"uuid": "u", "assetError": {"code": 2001, "message": "m"}}"#,
            R::Failed(Failure::asset(2001, "m").unwrap()),
        ),
        // The status decides: a finished asset that still carries an old error succeeded.
        (r#"{"status": "finished", "assetError": {"code": 2001}}"#, R::Succeeded),
        (r#"{"status": "error", "uuid": null, "endDate": null, "extra": true}"#, R::Failed(no_code())),
    ];
    for (body, expected) in posts {
        assert_eq!(Callback::from_json(body).map(|c| c.result()), Ok(expected), "{body}");
    }
    // (GET query, result, asset)
    let gets: Vec<(&str, CallbackResult, Option<&str>)> = vec![
        ("status=finished&endDate=2019-02-14T20%3A45%3A03.120Z", R::Succeeded, None),
        ("?asset=job-7&status=error&endDate=2019-02-14T20:45:03.120Z", R::Failed(no_code()), Some("job-7")),
        ("https://host.example/lightflow/cb?asset=job%207&status=running", R::NotFinished, Some("job 7")),
        ("/cb?status=canceled&asset=%E6%97%A5", R::Canceled, Some("日")),
    ];
    for (query, expected, asset) in gets {
        let c = Callback::from_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!((c.result(), c.asset.as_deref()), (expected, asset), "{query}");
    }
}

#[test]
fn a_failure_without_a_code_is_an_unknown_one_that_says_so() {
    let CallbackResult::Failed(f) = Callback::from_query("status=error").unwrap().result() else { panic!() };
    assert_eq!((f.key().to_string(), f.category()), (Failure::NO_CODE.to_string(), Category::Unknown));
    assert!(f.notes().iter().any(|n| n.contains("no assetError code")), "{:?}", f.notes());
    // The defaults treat it as any unknown code: one retry, then fail.
    let policies = lightflow_remedy::Policies::defaults();
    let e = policies.explain(&f, 1, &lightflow_remedy::Context::new(), 0);
    assert_eq!(e.first().kind(), lightflow_remedy::ActionKind::Retry);
}

#[test]
fn either_form_through_one_entry_point() {
    let post = Callback::from_request(Some("asset=job-9&tenant=acme"), Some(SAMPLE)).unwrap();
    assert_eq!((post.asset.as_deref(), post.param("tenant")), (Some("job-9"), Some("acme")));
    assert_eq!(post.status, AssetStatus::Error);
    // The query fills in what the body lacks; the body wins where both speak.
    let mixed = Callback::from_request(Some("status=finished&uuid=q"), Some(r#"{"uuid": "b"}"#)).unwrap();
    assert_eq!((mixed.status, mixed.uuid.as_deref()), (AssetStatus::Finished, Some("b")));
    let get = Callback::from_request(Some("status=queued"), Some("  ")).unwrap();
    assert_eq!(get.result(), CallbackResult::NotFinished);
    assert!(matches!(Callback::from_request(None, None), Err(CallbackError::MissingStatus { .. })));
}

#[test]
fn malformed_callbacks_are_typed_errors_with_positions() {
    let body = |line, column| Some(CallbackPos::Body(Pos { line, column }));
    let table: &[(&str, Option<CallbackPos>, &str)] = &[
        ("", body(1, 1), "malformed JSON"),
        ("{\"uuid\": \"u\",\n \"status\": finished}", body(2, 13), "malformed JSON"),
        ("\"finished\"", body(1, 1), "a callback body is a JSON object, found a string"),
        (r#"{"uuid": "u"}"#, body(1, 1), "has no `status`"),
        (r#"{"uuid": "u", "status": "archived"}"#, body(1, 25), r#""archived" is not an asset status"#),
        (r#"{"uuid": 42, "status": "error"}"#, body(1, 10), "`uuid` must be a string, found a number"),
        (
            "{\"status\": \"error\",\n  \"assetError\": {\"code\": 99}}",
            body(2, 26),
            "`assetError.code` = 99 is out of range",
        ),
        (r#"{"status": "error", "assetError": {"message": "m"}}"#, body(1, 35), "`assetError.code` is missing"),
    ];
    for (text, pos, words) in table {
        let err = Callback::from_json(text).expect_err(text);
        assert_eq!(err.position(), *pos, "{text}: {err}");
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
    let err = Callback::from_json(r#"{"status": "error", "assetError": {"code": "x"}}"#).unwrap_err();
    assert!(matches!(err, CallbackError::AssetError(ClassifyError::NonIntegerCode { at: "assetError.code", .. })));
    let query = |column| Some(CallbackPos::Query { column });
    let table: &[(&str, Option<CallbackPos>, &str)] = &[
        ("asset=1", None, "has no `status`"),
        ("asset=1&status=ok", query(9), r#""ok" is not an asset status"#),
        ("status=running&status=error", query(16), "given twice"),
        ("asset=a&asset=b&status=error", query(9), "`asset` is given twice"),
    ];
    for (text, pos, words) in table {
        let err = Callback::from_query(text).expect_err(text);
        assert_eq!(err.position(), *pos, "{text}: {err}");
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
}

#[test]
fn a_callback_serialises_for_logs() {
    let c = Callback::from_json(SAMPLE).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["status"], "error");
    assert_eq!(json["failure"]["code"], 2404);
    assert_eq!(json["end_date"], "2019-02-14T20:45:03.120Z");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_reads_or_errors(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        query in "[a-zA-Z=&%?#+/:.0-9]{0,64}",
    ) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Callback::from_json(&text);
        let _ = Callback::from_query(&text);
        let _ = Callback::from_request(Some(&query), Some(&text));
        if let Ok(c) = Callback::from_query(&query) {
            // What reads has a meaning.
            let _ = c.result();
            let _ = (c.end_time(), SystemTime::now());
        }
    }

    #[test]
    fn every_status_in_either_form(status in proptest::sample::select(AssetStatus::ALL.to_vec()), asset in "[a-z0-9 /&=?%]{1,16}") {
        let encoded: String = form_urlencoded::byte_serialize(asset.as_bytes()).collect();
        let c = Callback::from_query(&format!("asset={encoded}&status={status}")).unwrap();
        prop_assert_eq!((c.status, c.asset.as_deref()), (status, Some(asset.as_str())));
        let body = serde_json::json!({ "uuid": asset, "status": status }).to_string();
        prop_assert_eq!(Callback::from_json(&body).unwrap().status, status);
    }
}
