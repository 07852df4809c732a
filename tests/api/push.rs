//! Push factors: Authy enrolment, the sandbox simulator, step-up, and unlink.

use additional_factors::domain::{channel::Channel, factor::FactorStatus, programme::Programme};
use serde_json::json;

use crate::helpers::*;

fn mfa(t: &TestApp, programme: &str, user: &str) -> String {
    t.token_with(programme, user, json!({"amr": ["pwd", "mfa"]}))
}

async fn activate_sms(t: &TestApp, key: &str, token: &str) {
    t.send(Req::post(SMS).auth(key, token)).await.assert(204);
    let code = if key == SANDBOX_KEY {
        "123456".to_owned()
    } else {
        t.last_code(PHONE)
    };
    t.send(Req::post(VERIFY).auth(key, token).json(code_body(&code)))
        .await
        .assert(204);
}

#[tokio::test]
async fn sandbox_enrol_then_accept_is_active() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert!(t.push.requests().is_empty(), "no provider call in sandbox");
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &mfa(&t, "sbx", "u1")))
        .await
        .assert_conflict("CHANNEL_ALREADY_REGISTERED");
}

#[tokio::test]
async fn reject_is_inactive_and_enrolling_again_is_pending_again() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(REJECT).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(REJECT).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "INACTIVE")]
    );
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
}

#[tokio::test]
async fn live_enrolment_calls_the_provider_and_the_simulator_is_404() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    assert_eq!(t.push.requests().len(), 1);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
    for path in [ACCEPT, REJECT] {
        let r = t.send(Req::post(path).auth(LIVE_KEY, &token)).await;
        r.assert(404);
        assert_eq!(r.body["code"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_provider_failure_is_a_503_that_costs_nothing() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.push.fail_next(1);
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(503);
    assert!(listed(&t, LIVE_KEY, &token).await.is_empty());
    for _ in 0..5 {
        t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
            .await
            .assert(204);
    }
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert_conflict("CHALLENGE_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn five_push_requests_per_user_per_hour() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    for _ in 0..5 {
        t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
            .await
            .assert(204);
    }
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("CHALLENGE_LIMIT_EXCEEDED");
    t.clock.advance(3_600);
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &t.token("sbx", "u1")))
        .await
        .assert(204);
}

#[tokio::test]
async fn push_enrolment_conflicts() {
    let t = TestApp::new().await;
    let mut no_push = Programme::new("nopush", true);
    no_push.enabled_channels = vec![Channel::Sms];
    t.add_programme("nopush-key-00000001", no_push).await;
    let mut uk = Programme::new("uk", true);
    uk.allowed_country_codes = vec!["+44".into()];
    t.add_programme("uk-key-00000000001", uk).await;
    t.send(Req::post(AUTHY).auth("nopush-key-00000001", &t.token("nopush", "u1")))
        .await
        .assert_conflict("CHANNEL_NOT_SUPPORTED");
    let no_phone = t.token_with("sbx", "u1", json!({"phone_number": null}));
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &no_phone))
        .await
        .assert_conflict("MOBILE_NUMBER_NOT_AVAILABLE");
    let bad_phone = t.token_with("sbx", "u1", json!({"phone_number": "+44"}));
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &bad_phone))
        .await
        .assert_conflict("MOBILE_NUMBER_INVALID");
    let us = t.token_with("uk", "u1", json!({"phone_number": "+14155550100"}));
    t.send(Req::post(AUTHY).auth("uk-key-00000000001", &us))
        .await
        .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    for channel in ["SMS", "BIOMETRIC", "authy"] {
        let path = format!("/authentication_factors/push/{channel}");
        if channel != "BIOMETRIC" {
            t.send(Req::post(&path).auth(SANDBOX_KEY, &t.token("sbx", "u1")))
                .await
                .assert_field("channel", "IN", &["AUTHY", "BIOMETRIC"]);
        }
        let sim = format!("/simulate/authentication_factors/push/{channel}/accept");
        t.send(Req::post(&sim).auth(SANDBOX_KEY, &t.token("sbx", "u1")))
            .await
            .assert_field("channel", "IN", &["AUTHY"]);
    }
}

#[tokio::test]
async fn adding_a_push_factor_next_to_an_active_one_needs_step_up_first() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    activate_sms(&t, SANDBOX_KEY, &token).await;
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(403);
    let r = t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token)).await;
    assert_eq!(r.body, json!({"errorCode": "STEP_UP_REQUIRED"}));
    // Step-up comes before the 409s: a phone-less, not stepped-up token still gets 403...
    // unless its SMS factor is not listed ACTIVE for it (another phone → INACTIVE).
    let other_phone = t.token_with("sbx", "u1", json!({"phone_number": OTHER_PHONE}));
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &other_phone))
        .await
        .assert(204);
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &mfa(&t, "sbx", "u1")))
        .await
        .assert(204);
}

#[tokio::test]
async fn unlink_authy_and_biometric() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    t.send(Req::delete(BIOMETRIC).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    // A pending factor is removed without step-up, and its request dies with it.
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert!(listed(&t, SANDBOX_KEY, &token).await.is_empty());
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("STATE_INVALID");
    // An active one needs step-up.
    t.put_factor("sbx", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    t.send(Req::delete(BIOMETRIC).auth(SANDBOX_KEY, &token))
        .await
        .assert(403);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "BIOMETRIC", "ACTIVE")]
    );
    t.send(Req::delete(BIOMETRIC).auth(SANDBOX_KEY, &mfa(&t, "sbx", "u1")))
        .await
        .assert(204);
    assert!(listed(&t, SANDBOX_KEY, &token).await.is_empty());
    // An inactive one does not.
    t.put_factor("sbx", "u1", Channel::Authy, FactorStatus::Inactive)
        .await;
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    for channel in ["SMS", "authy", "X"] {
        let path = format!("/authentication_factors/push/{channel}");
        t.send(Req::delete(&path).auth(SANDBOX_KEY, &token))
            .await
            .assert_field("channel", "IN", &["AUTHY", "BIOMETRIC"]);
    }
}

#[tokio::test]
async fn full_push_flow_enrol_accept_unlink_then_reject_and_reenrol() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    let up = mfa(&t, "sbx", "u1");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    assert!(listed(&t, SANDBOX_KEY, &token).await.is_empty());
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(REJECT).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "INACTIVE")]
    );
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
}
