//! What the service logs: every line of a request carries its `request-ref`, phone numbers
//! are masked, and nothing secret is written (every `TestApp` checks that when dropped; these
//! tests prove the check sees the logs and can fail).

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn every_line_of_a_request_carries_its_request_ref_and_phones_are_masked() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    let r = t.send(Req::post(SMS).auth(LIVE_KEY, &token)).await;
    r.assert(204);
    let code = t.last_code(PHONE);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&wrong(&code))),
    )
    .await
    .assert(409);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    let logs = t.log_text();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    assert!(lines.len() >= 6, "{logs}");
    let request_ref = r.header("request-ref").unwrap();
    let of_first: Vec<_> = lines
        .iter()
        .filter(|l| l["span"]["request_ref"] == request_ref)
        .collect();
    assert!(
        of_first.len() >= 2,
        "the first request's lines carry its request-ref"
    );
    for line in &lines {
        assert!(
            line["span"]["request_ref"].is_string(),
            "a line without request_ref: {line}"
        );
        // What on-call filters by: the route, whether the environment was cold, and, once
        // the api key is known, the programme (structured values, not debug strings).
        assert!(line["span"]["route"].is_string(), "{line}");
        assert!(line["span"]["cold_start"].is_boolean(), "{line}");
        assert_eq!(line["span"]["programme"], "live", "{line}");
        for (field, value) in line.as_object().unwrap() {
            let text = value.to_string();
            assert!(
                !text.contains("Some(") && !text.contains("None"),
                "{field} is a debug string: {line}"
            );
        }
    }
    // One process, one cold start: only its first request says so.
    let cold: Vec<_> = lines
        .iter()
        .filter(|l| l["span"]["cold_start"] == true)
        .map(|l| l["span"]["request_ref"].to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(cold.len() <= 1, "{cold:?}");
    assert!(logs.contains("+44*******123"), "the masked phone is logged");
    t.assert_logs_clean();
}

#[tokio::test]
#[should_panic(expected = "a log line holds a secret")]
async fn the_leak_check_fails_on_a_leaked_phone_number() {
    let t = TestApp::new().await;
    t.log_line(&format!("sent to {PHONE}"));
    t.assert_logs_clean();
}

#[tokio::test]
#[should_panic(expected = "a log line holds a secret")]
async fn the_leak_check_fails_on_a_leaked_code() {
    let t = TestApp::new().await;
    t.send(Req::post(SMS).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(204);
    t.log_line(&format!("the code is {}", t.last_code(PHONE)));
    t.assert_logs_clean();
}

#[tokio::test]
#[should_panic(expected = "a log line holds a secret")]
async fn the_leak_check_fails_on_a_code_ending_a_sentence() {
    let t = TestApp::new().await;
    t.send(Req::post(SMS).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(204);
    t.log_line(&format!("sent {}.", t.last_code(PHONE)));
    t.assert_logs_clean();
}

/// A decimal whose fraction happens to hold the code's digits (an SDK's retry delay,
/// `190.123456ms`) is not the code.
#[tokio::test]
async fn a_decimal_holding_the_codes_digits_is_not_a_leak() {
    let t = TestApp::new().await;
    t.send(Req::post(SMS).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(204);
    t.log_line(&format!("retrying after 190.{}ms", t.last_code(PHONE)));
    t.assert_logs_clean();
}
