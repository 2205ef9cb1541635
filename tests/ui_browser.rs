//! The operator's web view in a real browser: Debian's headless Chromium, driven through WebDriver
//! (`chromedriver`, started by the test on a free port), against a service built in this process with jobs in
//! every phase, on a SQLite file, remediating through the simulated LightFlow.
//!
//! Without `chromium` and `chromedriver` the browser tests say so on standard error and pass, unless
//! `REMEDY_REQUIRE_BROWSER` is set (`.ci/run` sets it): then they fail. The run saves a screenshot of each page
//! in `docs/` (`ui-overview.png`, `ui-jobs.png`, `ui-job.png`, `ui-policies.png`).
//!
//! What an attacker tries is checked over plain HTTP as well (no browser needed): no token, a viewer's token on
//! an action, a forged POST without the CSRF token, script in every field that comes from outside.
#![cfg(feature = "serve")]

#[path = "support/ui_service.rs"]
mod ui_service;

use std::time::Duration;

use fantoccini::{Client, Locator};
use lightflow_remedy::serve::CONTENT_SECURITY_POLICY;
use lightflow_remedy::store::Phase;
use ui_service::{Browser, HOSTILE_ASSET, HOSTILE_MESSAGE, OPERATOR, Running, VIEWER};

/// The text of the page's `main`.
async fn main_text(client: &Client) -> String {
    client.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
}

/// Saves what the browser shows as `docs/NAME`.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

/// Opens `path` of the view and waits for its `main`.
async fn open(client: &Client, running: &Running, path: &str) {
    client.goto(&format!("{}{path}", running.base)).await.unwrap();
    client.wait().for_element(Locator::Css("main")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_every_page_filters_the_jobs_and_cancels_and_retries_from_the_page() {
    let Some(browser) = Browser::start().await else { return };
    let running = Running::start().await;
    let client = browser.client().await;
    // Signing in by the link the demo prints: the token leaves the address bar at once.
    open(&client, &running, &format!("/login?token={OPERATOR}")).await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui", "{url}");
    assert!(!url.as_str().contains(OPERATOR));
    let overview = main_text(&client).await;
    for word in ["Overview", "waiting", "awaiting a result", "recovered", "failed", "Failures by category", "storage"] {
        assert!(overview.contains(word), "the overview shows {word}: {overview}");
    }
    assert!(!client.find_all(Locator::Css("svg.chart rect")).await.unwrap().is_empty(), "the chart has bars");
    screenshot(&client, "ui-overview.png").await;

    // The jobs: every phase is listed; a hostile message and asset id show as text, and no script ran.
    open(&client, &running, "/jobs").await;
    let jobs = main_text(&client).await;
    for state in ["waiting", "calling", "awaiting", "recovered", "failed"] {
        assert!(jobs.contains(state), "the jobs page lists a {state} job: {jobs}");
    }
    assert!(jobs.contains(HOSTILE_ASSET), "the hostile asset id shows as text");
    assert!(client.get_alert_text().await.is_err(), "no script of the data ran");
    screenshot(&client, "ui-jobs.png").await;

    // Filters: by state through the form, then by asset search.
    client.find(Locator::Css("select[name=state]")).await.unwrap().select_by_value("failed").await.unwrap();
    client.find(Locator::Css("form.filters button[type=submit]")).await.unwrap().click().await.unwrap();
    until_url(&client, "state=failed").await;
    let rows = client.find_all(Locator::Css("table.jobs tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "one failed job");
    assert!(rows[0].text().await.unwrap().contains("failed-2404"));
    open(&client, &running, "/jobs?asset=wait-").await;
    let found = client.find_all(Locator::Css("table.jobs tbody td a")).await.unwrap();
    let mut names = Vec::new();
    for a in found {
        names.push(a.text().await.unwrap());
    }
    names.sort();
    assert_eq!(names, ["wait-1", "wait-2", "wait-3"]);

    // Select two waiting jobs and cancel them from the page.
    for asset in ["wait-1", "wait-2"] {
        let selector = format!("input[name=asset][value='{asset}']");
        client.find(Locator::Css(&selector)).await.unwrap().click().await.unwrap();
    }
    client.find(Locator::Css("button[value=cancel]")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("p.notice")).await.unwrap();
    let notice = client.find(Locator::Css("p.notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("Cancel: done for 2 of 2"), "{notice}");
    for asset in ["wait-1", "wait-2"] {
        let row = running.store.job_of(asset).await.unwrap().unwrap();
        assert_eq!(row.outcome.as_deref(), Some("cancelled"), "{asset}: {row:?}");
    }
    assert_eq!(running.store.job_of("wait-3").await.unwrap().unwrap().phase, Phase::Waiting);

    // One job's page: its failure as text, its timeline and next step; retry now from its button.
    open(&client, &running, "/jobs/wait-3").await;
    let page = main_text(&client).await;
    for word in ["What happens next", "retry", "History", "Submitted", "Decisions by rule", "Dead letter"] {
        if word == "Dead letter" {
            assert!(!page.contains(word), "a waiting job has no dead letter");
        } else {
            assert!(page.contains(word), "the job page shows {word}: {page}");
        }
    }
    client.find(Locator::Css("button[value=retry_now]")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("p.notice")).await.unwrap();
    let notice = client.find(Locator::Css("p.notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("Retry now: the job is due now"), "{notice}");
    let log = main_text(&client).await;
    assert!(log.contains("retry_now") && log.contains(&format!("operator:{}", running.operator_fp)), "{log}");
    assert!(running.store.actions(Some("wait-3"), 10).await.unwrap().iter().any(|a| a.action == "retry_now"));

    // The hostile job's page: the message renders as text.
    open(&client, &running, &format!("/jobs/{}", urlencode(HOSTILE_ASSET))).await;
    let message = client.find(Locator::Css("pre.message")).await.unwrap().text().await.unwrap();
    assert_eq!(message, HOSTILE_MESSAGE);
    assert!(client.get_alert_text().await.is_err(), "no script of the data ran");
    // The failed job's page has its dead letter.
    open(&client, &running, "/jobs/failed-2404").await;
    let page = main_text(&client).await;
    assert!(page.contains("Dead letter") && page.contains("check the input URL"), "{page}");
    // The recovered job's: its resubmission in the ledger, the uuid LightFlow gave it, the rule that decided.
    open(&client, &running, "/jobs/recovered-1").await;
    let page = main_text(&client).await;
    for word in ["Call resubmit started, key recovered-1#", "LightFlow uuid", "browser-tests.rhai", "Ended: recovered"]
    {
        assert!(page.contains(word), "the recovered job's page shows {word}: {page}");
    }
    screenshot(&client, "ui-job.png").await;

    // The policies: the table and the explain form.
    open(&client, &running, "/policies").await;
    client.find(Locator::Css("input[name=code]")).await.unwrap().send_keys("2503").await.unwrap();
    let attempt = client.find(Locator::Css("input[name=attempt]")).await.unwrap();
    attempt.clear().await.unwrap();
    attempt.send_keys("2").await.unwrap();
    client.find(Locator::Css("input[name=ctx]")).await.unwrap().send_keys(r#"{"plan": "pro"}"#).await.unwrap();
    client.find(Locator::Css("form.filters button[type=submit]")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("ol.steps")).await.unwrap();
    let page = main_text(&client).await;
    assert!(page.contains("At failure 2") && page.contains("The effective table"), "{page}");
    assert!(page.contains("2404") && page.contains("fail: "), "the table has the catalogue's rows");
    screenshot(&client, "ui-policies.png").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_button_and_its_post_is_refused() {
    let Some(browser) = Browser::start().await else { return };
    let running = Running::start().await;
    let client = browser.client().await;
    open(&client, &running, &format!("/login?token={VIEWER}")).await;
    open(&client, &running, "/jobs").await;
    assert!(client.find_all(Locator::Css("input[type=checkbox][name=asset]")).await.unwrap().is_empty(), "no checkbox");
    assert!(client.find_all(Locator::Css("button[value=cancel]")).await.unwrap().is_empty(), "no cancel");
    open(&client, &running, "/jobs/wait-1").await;
    assert!(client.find_all(Locator::Css("button[value=retry_now]")).await.unwrap().is_empty(), "no retry now");
    let role = client.find(Locator::Css("header .role")).await.unwrap().text().await.unwrap();
    assert!(role.starts_with("viewer"), "{role}");
    // The viewer's own session, posting as a page of theirs would: refused.
    let cookie = client.get_named_cookie(lightflow_remedy::serve::SESSION_COOKIE).await.unwrap();
    let session = format!("{}={}", cookie.name(), cookie.value());
    let csrf = client.find(Locator::Css("form.who input[name=csrf]")).await.unwrap().attr("value").await.unwrap();
    let body = format!("csrf={}&action=cancel&asset=wait-1", csrf.unwrap_or_default());
    let (status, _) = running.post("/actions", Some(&session), &body).await;
    assert_eq!(status, 403);
    assert_eq!(running.store.job_of("wait-1").await.unwrap().unwrap().phase, Phase::Waiting, "nothing changed");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_nothing_is_shown_and_a_forged_post_is_refused() {
    let running = Running::start().await;
    let secret_words = ["wait-1", "failed-2404", HOSTILE_ASSET, "2404", "awaiting"];
    for path in ["", "/", "/jobs", "/jobs/wait-1", "/policies", "/jobs?state=failed", "/nothing-here/x"] {
        let (status, headers, body) = running.get(path, None, None).await;
        assert!(
            status == 401 || (status == 404 && path == "/nothing-here/x") || (status == 308 && path == "/"),
            "{path}: {status}"
        );
        for word in secret_words {
            assert!(!body.contains(word), "{path} shows {word} without a token");
        }
        if status == 401 {
            assert_eq!(
                headers.get("content-security-policy").and_then(|v| v.to_str().ok()),
                Some(CONTENT_SECURITY_POLICY)
            );
        }
    }
    // Wrong tokens, as a bearer or at sign-in.
    let (status, _, body) = running.get("/jobs", Some("not-a-token"), None).await;
    assert_eq!(status, 401);
    assert!(!body.contains("wait-1"));
    let (status, _, _) = running.get(&format!("/login?token={OPERATOR}x"), None, None).await;
    assert_eq!(status, 401);
    // A page with a token has the headers that keep it safe.
    let (status, headers, body) = running.get("/jobs", Some(OPERATOR), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("wait-1"));
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    // Everything from outside is escaped: the hostile asset id, message and context never appear as markup.
    let (_, _, page) = running.get(&format!("/jobs/{}", urlencode(HOSTILE_ASSET)), Some(OPERATOR), None).await;
    assert!(!page.contains("<script>") && !page.contains("<img"), "raw markup of the data: {page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the message as text");
    assert!(page.contains("&lt;img src=x onerror=alert(3)&gt;"), "the context as text");
    // An operator's session signed in, then a forged POST without the CSRF token (as another site would send
    // it), with another session's token, and with none at all.
    let session = running.sign_in(OPERATOR).await;
    let other = running.sign_in(VIEWER).await;
    let other_csrf = running.csrf_of(&other).await;
    for body in ["action=cancel&asset=wait-1".to_owned(), format!("csrf={other_csrf}&action=cancel&asset=wait-1")] {
        let (status, _) = running.post("/actions", Some(&session), &body).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, _) = running.post("/actions", None, "action=cancel&asset=wait-1").await;
    assert_eq!(status, 401);
    assert_eq!(running.store.job_of("wait-1").await.unwrap().unwrap().phase, Phase::Waiting, "nothing changed");
    assert!(running.store.actions(None, 10).await.unwrap().is_empty(), "no action was taken");
    // With its own CSRF token, the operator's action goes through, and is logged with who did it.
    let csrf = running.csrf_of(&session).await;
    let (status, location) =
        running.post("/actions", Some(&session), &format!("csrf={csrf}&action=cancel&asset=wait-1")).await;
    assert_eq!(status, 303, "{location}");
    let acted = running.store.actions(Some("wait-1"), 10).await.unwrap();
    assert_eq!(acted.len(), 1);
    assert_eq!((acted[0].role.as_str(), acted[0].answer.as_str()), ("operator", "cancelled"));
    assert_eq!(acted[0].who, format!("operator:{}", running.operator_fp));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Waits until the browser's address holds `part` (a form's answer has come).
async fn until_url(client: &Client, part: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !client.current_url().await.unwrap().as_str().contains(part) {
        assert!(tokio::time::Instant::now() < deadline, "the browser never reached {part}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `text` as one segment of a URL path.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
