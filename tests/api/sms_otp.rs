//! SMS one-time passwords: step one (`POST .../otp/SMS`) and step two (`.../verify`).

use additional_factors::domain::{channel::Channel, programme::Programme};
use serde_json::json;

use crate::helpers::*;

async fn enrol(t: &TestApp, key: &str, token: &str) -> Resp {
    t.send(Req::post(SMS).auth(key, token)).await
}

async fn verify(t: &TestApp, key: &str, token: &str, code: &str) -> Resp {
    t.send(Req::post(VERIFY).auth(key, token).json(code_body(code)))
        .await
}

#[tokio::test]
async fn step_one_sends_a_fresh_six_digit_code_to_the_tokens_phone() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let texts = t.texts_to(PHONE);
    assert_eq!(texts.len(), 1);
    let code = extract_code(&texts[0]).unwrap();
    assert!(texts[0].contains("expires in 5 minutes"));
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")]
    );
    verify(&t, LIVE_KEY, &token, &code).await.assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
}

#[tokio::test]
async fn sandbox_sends_nothing_and_takes_123456() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    enrol(&t, SANDBOX_KEY, &token).await.assert(204);
    assert!(t.sms.sent().is_empty());
    verify(&t, SANDBOX_KEY, &token, "654321")
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    verify(&t, SANDBOX_KEY, &token, "123456").await.assert(204);
}

#[tokio::test]
async fn the_sms_text_follows_the_programme_template() {
    let t = TestApp::new().await;
    let mut p = Programme::new("acme", false);
    p.name = "Acme Pay".into();
    p.sms_template = "{programme}: your code is {code}".into();
    t.add_programme("acme-key-000000001", p).await;
    enrol(&t, "acme-key-000000001", &t.token("acme", "u1"))
        .await
        .assert(204);
    let text = t.texts_to(PHONE).pop().unwrap();
    assert_eq!(
        text,
        format!("Acme Pay: your code is {}", extract_code(&text).unwrap())
    );
}

#[tokio::test]
async fn step_one_conflicts_in_the_contracts_order() {
    let t = TestApp::new().await;
    let mut no_sms = Programme::new("nosms", false);
    no_sms.enabled_channels = vec![Channel::Authy];
    t.add_programme("nosms-key-00000001", no_sms).await;
    let mut uk_only = Programme::new("uk", false);
    uk_only.allowed_country_codes = vec!["44".into()];
    t.add_programme("uk-key-00000000001", uk_only).await;

    // SMS disabled wins even without a phone.
    let r = enrol(
        &t,
        "nosms-key-00000001",
        &t.token_with("nosms", "u1", json!({"phone_number": null})),
    )
    .await;
    r.assert_conflict("CHANNEL_NOT_SUPPORTED");
    enrol(
        &t,
        LIVE_KEY,
        &t.token_with("live", "u1", json!({"phone_number": null})),
    )
    .await
    .assert_conflict("MOBILE_NUMBER_NOT_AVAILABLE");
    for bad in [
        "07700900123",
        "+44 7700 900123",
        "+4477",
        "+0123456789",
        "+99912345678",
    ] {
        enrol(
            &t,
            LIVE_KEY,
            &t.token_with("live", "u1", json!({"phone_number": bad})),
        )
        .await
        .assert_conflict("MOBILE_NUMBER_INVALID");
    }
    enrol(
        &t,
        LIVE_KEY,
        &t.token_with("live", "u1", json!({"phone_number": 447700900123u64})),
    )
    .await
    .assert_conflict("MOBILE_NUMBER_INVALID");
    enrol(
        &t,
        "uk-key-00000000001",
        &t.token_with("uk", "u1", json!({"phone_number": "+14155550100"})),
    )
    .await
    .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    enrol(&t, "uk-key-00000000001", &t.token("uk", "u1"))
        .await
        .assert(204);
    assert_eq!(t.sms.sent().len(), 1);

    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    verify(&t, LIVE_KEY, &token, &t.last_code(PHONE))
        .await
        .assert(204);
    enrol(&t, LIVE_KEY, &token)
        .await
        .assert_conflict("CHANNEL_ALREADY_REGISTERED");
    assert_eq!(t.sms.sent().len(), 2);
}

#[tokio::test]
async fn channel_must_be_sms() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    for channel in ["EMAIL", "sms", "AUTHY"] {
        let r = t
            .send(
                Req::post(&format!("/authentication_factors/otp/{channel}")).auth(LIVE_KEY, &token),
            )
            .await;
        r.assert_field("channel", "IN", &["SMS"]);
        let r = t
            .send(
                Req::post(&format!("/authentication_factors/otp/{channel}/verify"))
                    .auth(LIVE_KEY, &token)
                    .json(code_body("123456")),
            )
            .await;
        r.assert_field("channel", "IN", &["SMS"]);
    }
    assert!(t.sms.sent().is_empty());
}

#[tokio::test]
async fn verify_body_errors_are_400s_and_change_nothing() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let user = t.user("live", "u1");
    let send = |body: Option<&str>| {
        let mut req = Req::post(VERIFY).auth(LIVE_KEY, &token);
        if let Some(b) = body {
            req = req.body(b);
        }
        t.send(req)
    };
    send(None)
        .await
        .assert_field("verificationCode", "REQUIRED", &[]);
    send(Some("{}"))
        .await
        .assert_field("verificationCode", "REQUIRED", &[]);
    send(Some(r#"{"verificationCode": null}"#))
        .await
        .assert_field("verificationCode", "REQUIRED", &[]);
    send(Some(r#"{"verificationCode": ""}"#))
        .await
        .assert_field("verificationCode", "SIZE", &["6", "6"]);
    send(Some(r#"{"verificationCode": "12345"}"#))
        .await
        .assert_field("verificationCode", "SIZE", &["6", "6"]);
    send(Some(r#"{"verificationCode": "1234567"}"#))
        .await
        .assert_field("verificationCode", "SIZE", &["6", "6"]);
    send(Some(r#"{"verificationCode": "12345a"}"#))
        .await
        .assert_field("verificationCode", "REGEX", &["^[0-9]*$"]);
    send(Some(r#"{"verificationCode": "١٢٣٤٥٦"}"#))
        .await
        .assert_field("verificationCode", "REGEX", &["^[0-9]*$"]);
    for malformed in [
        "{",
        "[]",
        "\"123456\"",
        r#"{"verificationCode": 123456}"#,
        "nul",
    ] {
        let r = send(Some(malformed)).await;
        r.assert(400);
        assert!(r.body["message"].is_string(), "{malformed}");
        assert!(r.body.get("syntaxErrors").is_none(), "{malformed}");
    }
    assert_eq!(
        t.memory().challenge_attempts(&user),
        Some(0),
        "no attempt was counted"
    );
    // Path and body errors are reported together.
    let r = t
        .send(
            Req::post("/authentication_factors/otp/X/verify")
                .auth(LIVE_KEY, &token)
                .json(json!({})),
        )
        .await;
    assert_eq!(r.fields().len(), 2);
}

#[tokio::test]
async fn the_attempt_ladder_then_state_invalid_even_for_the_right_code() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    let bad = wrong(&code);
    for expected in [
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "ONE_CHALLENGE_LIMIT_REMAINING",
        "CHALLENGE_LIMIT_EXCEEDED",
    ] {
        verify(&t, LIVE_KEY, &token, &bad)
            .await
            .assert_conflict(expected);
    }
    verify(&t, LIVE_KEY, &token, &code)
        .await
        .assert_conflict("STATE_INVALID");
    verify(&t, LIVE_KEY, &token, &bad)
        .await
        .assert_conflict("STATE_INVALID");
    assert_eq!(t.app.context.metrics.codes_compared(), 5);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")]
    );
    // Step one again revives the factor with a fresh challenge.
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    verify(&t, LIVE_KEY, &token, &t.last_code(PHONE))
        .await
        .assert(204);
}

#[tokio::test]
async fn a_right_code_on_the_last_try_succeeds() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    for _ in 0..4 {
        verify(&t, LIVE_KEY, &token, &wrong(&code))
            .await
            .assert(409);
    }
    verify(&t, LIVE_KEY, &token, &code).await.assert(204);
}

#[tokio::test]
async fn the_wrong_code_limit_is_per_programme() {
    let t = TestApp::new().await;
    for (limit, ladder) in [
        (1, vec!["CHALLENGE_LIMIT_EXCEEDED"]),
        (
            2,
            vec!["ONE_CHALLENGE_LIMIT_REMAINING", "CHALLENGE_LIMIT_EXCEEDED"],
        ),
        (
            10,
            [
                vec!["VERIFICATION_CODE_INVALID"; 8],
                vec!["ONE_CHALLENGE_LIMIT_REMAINING", "CHALLENGE_LIMIT_EXCEEDED"],
            ]
            .concat(),
        ),
    ] {
        let id = format!("lim{limit}");
        let key = format!("limit-{limit}-key-000001");
        let mut p = Programme::new(&id, false);
        p.wrong_code_limit = limit;
        t.add_programme(&key, p).await;
        let token = t.token(&id, "u1");
        enrol(&t, &key, &token).await.assert(204);
        let code = t.last_code(PHONE);
        for expected in ladder {
            verify(&t, &key, &token, &wrong(&code))
                .await
                .assert_conflict(expected);
        }
        verify(&t, &key, &token, &code)
            .await
            .assert_conflict("STATE_INVALID");
    }
}

#[tokio::test]
async fn a_code_expires_after_300_seconds() {
    for (elapsed, ok) in [(299, true), (300, false), (301, false)] {
        let t = TestApp::new().await;
        let token = t.token("live", "u1");
        enrol(&t, LIVE_KEY, &token).await.assert(204);
        let code = t.last_code(PHONE);
        t.clock.advance(elapsed);
        let r = verify(&t, LIVE_KEY, &token, &code).await;
        if ok {
            r.assert(204);
        } else {
            r.assert_conflict("VERIFICATION_CODE_EXPIRED");
            assert_eq!(
                t.memory().challenge_attempts(&t.user("live", "u1")),
                Some(0),
                "an expired challenge counts nothing"
            );
        }
    }
}

#[tokio::test]
async fn a_code_works_once() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    verify(&t, LIVE_KEY, &token, &code).await.assert(204);
    verify(&t, LIVE_KEY, &token, &code)
        .await
        .assert_conflict("CHANNEL_ALREADY_REGISTERED");
    // With another phone the factor is INACTIVE and there is no challenge for that phone.
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    verify(&t, LIVE_KEY, &other, &code)
        .await
        .assert_conflict("STATE_INVALID");
}

#[tokio::test]
async fn verify_without_a_challenge_is_state_invalid() {
    let t = TestApp::new().await;
    verify(&t, LIVE_KEY, &t.token("live", "u1"), "123456")
        .await
        .assert_conflict("STATE_INVALID");
}

#[tokio::test]
async fn a_new_challenge_replaces_the_old_one() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let first = t.last_code(PHONE);
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let second = t.last_code(PHONE);
    if first != second {
        verify(&t, LIVE_KEY, &token, &first)
            .await
            .assert_conflict("VERIFICATION_CODE_INVALID");
    }
    verify(&t, LIVE_KEY, &token, &second).await.assert(204);
}

#[tokio::test]
async fn a_challenge_belongs_to_the_phone_it_was_sent_to() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    let none = t.token_with("live", "u1", json!({"phone_number": null}));
    verify(&t, LIVE_KEY, &other, &code)
        .await
        .assert_conflict("STATE_INVALID");
    verify(&t, LIVE_KEY, &none, &code)
        .await
        .assert_conflict("STATE_INVALID");
    assert_eq!(
        t.memory().challenge_attempts(&t.user("live", "u1")),
        Some(0)
    );
    assert_eq!(t.app.context.metrics.codes_compared(), 0);
    verify(&t, LIVE_KEY, &token, &code).await.assert(204);
}

#[tokio::test]
async fn a_changed_phone_makes_the_factor_inactive_and_step_one_runs_again() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    verify(&t, LIVE_KEY, &token, &t.last_code(PHONE))
        .await
        .assert(204);
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    assert_eq!(
        listed(&t, LIVE_KEY, &other).await,
        [row("OTP", "SMS", "INACTIVE")]
    );
    enrol(&t, LIVE_KEY, &other).await.assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &other).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")]
    );
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")]
    );
    verify(&t, LIVE_KEY, &other, &t.last_code(OTHER_PHONE))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &other).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "INACTIVE")]
    );
}

#[tokio::test]
async fn a_failed_send_is_a_503_that_leaves_nothing_behind() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.sms.fail_next(1);
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("send-1"))
        .await;
    r.assert(503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(t.sms.sent().is_empty());
    assert_eq!(
        t.memory().challenge_attempts(&t.user("live", "u1")),
        None,
        "no usable challenge left"
    );
    // The retry with the same reference runs again, and the failed send was not charged.
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("send-1"))
        .await
        .assert(204);
    for _ in 0..4 {
        enrol(&t, LIVE_KEY, &token).await.assert(204);
    }
    assert_eq!(t.sms.sent().len(), 5);
    enrol(&t, LIVE_KEY, &token).await.assert(429);
}

#[tokio::test]
async fn a_store_failure_at_any_step_is_a_503() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
    t.memory().fail_next(1);
    enrol(&t, LIVE_KEY, &token).await.assert(503);
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    t.memory().fail_next(1);
    verify(&t, LIVE_KEY, &token, &t.last_code(PHONE))
        .await
        .assert(503);
    verify(&t, LIVE_KEY, &token, &t.last_code(PHONE))
        .await
        .assert(204);
}

#[tokio::test]
async fn a_retried_verification_counts_its_attempt_once() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    for _ in 0..4 {
        verify(&t, LIVE_KEY, &token, &wrong(&code))
            .await
            .assert(409);
    }
    // The fifth and last attempt is counted, then the store fails: 503, claim released.
    t.memory().fail_operation("activate_sms_factor");
    let right = || {
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("last-try")
            .json(code_body(&code))
    };
    t.send(right()).await.assert(503);
    assert_eq!(
        t.memory().challenge_attempts(&t.user("live", "u1")),
        Some(5)
    );
    // Its retry runs again but is the same attempt: not a sixth (which the limit refuses).
    t.send(right()).await.assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
    // Without a reference, the same request is a new attempt every time.
    let t = TestApp::new().await;
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    let code = t.last_code(PHONE);
    for _ in 0..4 {
        verify(&t, LIVE_KEY, &token, &wrong(&code))
            .await
            .assert(409);
    }
    t.memory().fail_operation("activate_sms_factor");
    verify(&t, LIVE_KEY, &token, &code).await.assert(503);
    verify(&t, LIVE_KEY, &token, &code)
        .await
        .assert_conflict("STATE_INVALID");
}
