//! Classification never panics: arbitrary JSON and arbitrary text give a failure or a typed error.

use std::time::{Duration, SystemTime};

use lightflow_remedy::{Category, ClassifyError, Downstream, Failure, FailureKind};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        (1000i64..10_000).prop_map(|n| json!(n)),
        "[a-z0-9 :]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("assetError".to_owned()),
            Just("code".to_owned()),
            Just("message".to_owned()),
            Just("http_status".to_owned()),
            Just("body".to_owned()),
            Just("retry_after".to_owned()),
            Just("status".to_owned()),
            Just("id".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_classifies_or_errors(value in json_value()) {
        let text = value.to_string();
        if let Ok(f) = Failure::from_json(&text, SystemTime::now()) {
            // What classifies is valid and survives a round trip.
            let back: Failure = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
            prop_assert_eq!(back, f);
        }
    }

    #[test]
    fn arbitrary_text_classifies_or_errors(text in ".{0,64}") {
        let _ = Failure::from_json(&text, SystemTime::now());
        let _ = Failure::from_api_response(503, &text, Some(&text), SystemTime::now());
    }

    #[test]
    fn arbitrary_statuses_and_codes(status in any::<u16>(), code in any::<u16>(), header in "[0-9a-zA-Z ,:]{0,32}") {
        let api = Failure::from_api_response(status, "", Some(&header), SystemTime::UNIX_EPOCH);
        prop_assert_eq!(api.is_ok(), (400..=599).contains(&status) && lightflow_remedy::classify::retry_after(&header, SystemTime::UNIX_EPOCH).is_ok());
        prop_assert_eq!(Failure::asset(code, "").is_ok(), (1000..=9999).contains(&code));
    }
}

#[test]
fn catalogue_fields_come_with_the_failure() {
    let table = [
        (2404, Category::Storage, Downstream::InputStorage),
        (2055, Category::Protection, Downstream::Ezdrm),
        (2066, Category::Protection, Downstream::LightflowService),
        (3003, Category::Brightcove, Downstream::Brightcove),
        (4013, Category::Packaging, Downstream::OutputUpload),
        (4014, Category::Packaging, Downstream::LightflowService),
        (6001, Category::Inference, Downstream::LightflowService),
        (7001, Category::Encoder, Downstream::LightflowService),
        (8123, Category::Unknown, Downstream::LightflowService),
    ];
    for (code, category, downstream) in table {
        let f = Failure::from_json(&json!({ "code": code, "message": "m" }).to_string(), SystemTime::now()).unwrap();
        assert_eq!((f.kind(), f.category(), f.downstream()), (FailureKind::Asset, category, downstream), "{code}");
    }
}

#[test]
fn api_failures_carry_status_body_and_retry_after() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let date = httpdate::fmt_http_date(now + Duration::from_secs(120));
    let f = Failure::from_api_response(503, r#"{"message": "asset not found"}"#, Some(&date), now).unwrap();
    assert_eq!((f.code(), f.message(), f.retry_after()), (503, "asset not found", Some(Duration::from_secs(120))));
    assert_eq!(f.category(), Category::Api);
    assert!(matches!(
        Failure::from_api_response(503, "<html>bad gateway</html>", None, now),
        Err(ClassifyError::MalformedJson { line: 1, column: 1, .. })
    ));
    assert!(matches!(
        Failure::from_api_response(503, "[]", None, now),
        Err(ClassifyError::NotAnObject { at: "body", .. })
    ));
    assert!(Failure::from_api_response(503, "", None, now).is_ok(), "an empty body has no message");
}
