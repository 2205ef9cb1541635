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
        let f = Failure::from_api_response(503, &text, Some(&text), SystemTime::now());
        prop_assert!(f.is_ok(), "any body and any header classify: {:?}", f);
    }

    #[test]
    fn any_body_is_an_api_failure_with_a_short_one_line_message(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        markup in proptest::bool::ANY,
    ) {
        let text = String::from_utf8_lossy(&bytes);
        let body = if markup { format!("<html><p>{text}</p>") } else { text.into_owned() };
        let f = Failure::from_api_response(502, &body, None, SystemTime::UNIX_EPOCH).unwrap();
        prop_assert_eq!(f.code(), 502);
        // LightFlow's own JSON keeps its message as given; anything else is excerpted.
        if !f.notes().is_empty() {
            prop_assert!(f.message().chars().count() <= 200, "{}", f.message());
            prop_assert!(!f.message().contains(['\n', '\r']), "{:?}", f.message());
        }
        // Inside the JSON shape, as a string body, it classifies the same.
        let doc = serde_json::json!({ "http_status": 502, "body": body }).to_string();
        prop_assert_eq!(Failure::from_json(&doc, SystemTime::UNIX_EPOCH).unwrap(), f);
    }

    #[test]
    fn arbitrary_statuses_and_codes(status in any::<u16>(), code in any::<u16>(), header in "[0-9a-zA-Z ,:+.-]{0,32}") {
        let api = Failure::from_api_response(status, "", Some(&header), SystemTime::UNIX_EPOCH);
        prop_assert_eq!(api.is_ok(), (400..=599).contains(&status));
        if let Ok(f) = api {
            // A header is either read or dropped with a note, never both.
            let read = lightflow_remedy::classify::retry_after(&header, SystemTime::UNIX_EPOCH);
            prop_assert_eq!(f.retry_after(), read.as_ref().ok().copied());
            prop_assert_eq!(f.retry_after_ignored().is_some(), read.is_err());
        }
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
    assert!(f.notes().is_empty());
    let html = Failure::from_api_response(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", None, now);
    assert_eq!(html.as_ref().map(Failure::message), Ok("502 Bad Gateway"));
    let empty = Failure::from_api_response(503, "", None, now).unwrap();
    assert_eq!((empty.message(), empty.notes().len()), ("", 0), "an empty body has no message");
    assert!(matches!(
        Failure::from_api_response(200, "<html>", None, now),
        Err(ClassifyError::StatusOutOfRange { status, .. }) if status == "200"
    ));
}

/// RFC 9110, section 10.2.3: `Retry-After = HTTP-date / delay-seconds`; what is neither is dropped and noted.
#[test]
fn retry_after_per_rfc_9110() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let secs = |s| Some(Duration::from_secs(s));
    let table: &[(&str, Option<Duration>)] = &[
        ("120", secs(120)),
        ("0", secs(0)),
        ("Sun, 06 Nov 1994 08:51:37 GMT", secs(120)),
        ("Sunday, 06-Nov-94 08:51:37 GMT", secs(120)),
        ("Sun Nov  6 08:51:37 1994", secs(120)),
        ("Sun, 06 Nov 1994 08:00:00 GMT", secs(0)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", secs(0)),
        ("soon", None),
        ("-100", None),
        ("1.5", None),
        ("", None),
        ("1e2", None),
        ("Sun, 06 Nov 1994 08:51:37", None),
        ("Sun, 31 Nov 1994 08:51:37 GMT", None),
        ("sun, 06 nov 1994 08:51:37 gmt", None),
    ];
    for (header, expected) in table {
        let f = Failure::from_api_response(429, "", Some(header), now).unwrap();
        assert_eq!(f.retry_after(), *expected, "{header:?}");
        assert_eq!(f.retry_after_ignored().is_some(), expected.is_none(), "{header:?}: {:?}", f.notes());
        if let Some(note) = f.retry_after_ignored() {
            assert!(note.starts_with(&format!("Retry-After `{header}` ignored: ")), "{note}");
        }
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["retry_after_ignored"].as_str(), f.retry_after_ignored(), "serialised too");
    }
    // Huge values are long waits, clamped by the policy's max_hint later.
    let huge = Failure::from_api_response(429, "", Some("99999999999999999999"), now).unwrap();
    assert_eq!(huge.retry_after(), Some(lightflow_remedy::classify::MAX_RETRY_AFTER));
}
