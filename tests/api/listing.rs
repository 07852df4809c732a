//! `GET /authentication_factors`: what each token sees.

use additional_factors::domain::{channel::Channel, factor::FactorStatus};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_user_without_factors_gets_an_empty_list() {
    let t = TestApp::new().await;
    let r = t
        .send(Req::get(LIST).auth(LIVE_KEY, &t.token("live", "u1")))
        .await;
    r.assert(200);
    assert_eq!(r.body, json!({"factors": []}));
}

#[tokio::test]
async fn factors_are_listed_sms_authy_biometric() {
    let t = TestApp::new().await;
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    t.put_factor("live", "u1", Channel::Authy, FactorStatus::Inactive)
        .await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [
            row("OTP", "SMS", "PENDING_VERIFICATION"),
            row("PUSH", "AUTHY", "INACTIVE"),
            row("PUSH", "BIOMETRIC", "ACTIVE")
        ]
    );
}

#[tokio::test]
async fn a_verified_sms_factor_is_inactive_for_a_token_with_another_phone() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&t.last_code(PHONE))),
    )
    .await
    .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    assert_eq!(
        listed(&t, LIVE_KEY, &other).await,
        [row("OTP", "SMS", "INACTIVE")]
    );
    let invalid = t.token_with("live", "u1", json!({"phone_number": "07700900123"}));
    assert_eq!(
        listed(&t, LIVE_KEY, &invalid).await,
        [row("OTP", "SMS", "INACTIVE")]
    );
    let none = t.token_with("live", "u1", json!({"phone_number": null}));
    assert_eq!(
        listed(&t, LIVE_KEY, &none).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
    // Another user of the same programme, and the same user id in another programme, see nothing.
    assert!(listed(&t, LIVE_KEY, &t.token("live", "u2"))
        .await
        .is_empty());
    assert!(listed(&t, SANDBOX_KEY, &t.token("sbx", "u1"))
        .await
        .is_empty());
}

#[tokio::test]
async fn the_store_failing_is_a_503_with_retry_after() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200); // programme now cached
    t.memory().fail_next(1);
    let r = t.send(Req::get(LIST).auth(LIVE_KEY, &token)).await;
    r.assert(503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.raw, "");
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
}
