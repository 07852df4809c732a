//! BIOMETRIC enrolment: a device key in the programme's own app, proved by a signature over
//! bytes this API chose. Every scenario runs on the memory store and on DynamoDB, with a
//! simulated device holding a P-256 key.

use serde_json::json;

use crate::helpers::*;

const VERIFY_BIOMETRIC: &str = "/authentication_factors/push/BIOMETRIC/verify";

fn user() -> String {
    format!("u{}", unique())
}

/// Step one for `device`: the signing input.
async fn start(t: &TestApp, key: &str, token: &str, device: &Device) -> String {
    let started = t
        .send(
            Req::post(BIOMETRIC)
                .auth(key, token)
                .json(device.enrol_body()),
        )
        .await;
    started.assert(200);
    started.body["signingInput"].as_str().unwrap().to_owned()
}

on_both!(enrolment, a_device_enrols_by_signing_what_the_api_chose);
async fn a_device_enrols_by_signing_what_the_api_chose(t: TestApp) {
    let user = user();
    let token = t.token("live", &user);
    let device = Device::new();
    let input = start(&t, LIVE_KEY, &token, &device).await;
    let said = decoded(&input);
    assert_eq!(said["v"], 1);
    assert_eq!(said["type"], "enrol");
    assert_eq!(said["programmeId"], "live");
    assert_eq!(said["nonce"].as_str().unwrap().len(), 43, "32 random bytes");
    assert!(said["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "BIOMETRIC", "PENDING_VERIFICATION")]
    );
    let verify = |signature: String| {
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({ "signature": signature }))
    };
    // A signature over other bytes, or by another key: the wrong-code ladder, counted.
    t.send(verify(device.sign(&input, "APPROVE")))
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    t.send(verify(Device::new().sign(&input, "ENROL")))
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    // The device's own signature, in DER as a phone gives it.
    t.send(verify(device.sign_der(&input, "ENROL")))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "BIOMETRIC", "ACTIVE")]
    );
    let active: Vec<_> = t
        .events
        .events()
        .into_iter()
        .filter(|e| e["type"] == "BIOMETRIC" && e["status"] == "ACTIVE")
        .collect();
    assert_eq!(active.len(), 1, "announced once");
    // Enrolment pushes nothing: the app sent the key and signed in the same session.
    assert!(t.devices.sent().is_empty());
    // It works once.
    t.send(verify(device.sign(&input, "ENROL")))
        .await
        .assert_conflict("STATE_INVALID");
    // An ACTIVE factor: step one again needs step-up, then is CHANNEL_ALREADY_REGISTERED.
    t.send(
        Req::post(BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(Device::new().enrol_body()),
    )
    .await
    .assert(403);
    let up = t.token_with("live", &user, json!({"amr": ["mfa"], "iat": t.now()}));
    t.send(
        Req::post(BIOMETRIC)
            .auth(LIVE_KEY, &up)
            .json(Device::new().enrol_body()),
    )
    .await
    .assert_conflict("CHANNEL_ALREADY_REGISTERED");
    // The key is registered: another user cannot enrol it.
    let other = t.token("live", &format!("{user}-other"));
    t.send(
        Req::post(BIOMETRIC)
            .auth(LIVE_KEY, &other)
            .json(device.enrol_body()),
    )
    .await
    .assert_conflict("STATE_INVALID");
    // Unlinked (stepped up), the key is free again and the factor gone.
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &up))
        .await
        .assert(204);
    assert!(listed(&t, LIVE_KEY, &token).await.is_empty());
    // Its endpoint is deleted: a stale device gets no more pushes.
    assert_eq!(
        t.devices.deleted(),
        [format!("outbox:FCM:{}", device.push_token)]
    );
    start(&t, LIVE_KEY, &other, &device).await;
}

on_both!(
    enrolment_ladder,
    the_ladder_then_expiry_then_a_new_step_one_replaces_the_device
);
async fn the_ladder_then_expiry_then_a_new_step_one_replaces_the_device(t: TestApp) {
    let token = t.token("live", &user());
    let device = Device::new();
    let input = start(&t, LIVE_KEY, &token, &device).await;
    let wrong = || {
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({ "signature": device.sign(&input, "DECLINE") }))
    };
    for expected in [
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "ONE_CHALLENGE_LIMIT_REMAINING",
        "CHALLENGE_LIMIT_EXCEEDED",
    ] {
        t.send(wrong()).await.assert_conflict(expected);
    }
    let right = |input: &str| {
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({ "signature": device.sign(input, "ENROL") }))
    };
    t.send(right(&input)).await.assert_conflict("STATE_INVALID");
    // A new step one replaces the pending device and its signing input.
    let second = start(&t, LIVE_KEY, &token, &device).await;
    assert_ne!(second, input);
    t.clock.advance(300);
    t.send(right(&second))
        .await
        .assert_conflict("VERIFICATION_CODE_EXPIRED");
    let third = start(&t, LIVE_KEY, &token, &device).await;
    t.send(right(&third)).await.assert(204);
}

#[tokio::test]
async fn every_field_of_step_one_is_checked_and_listed() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    let device = Device::new();
    let send = |body: serde_json::Value| {
        let t = &t;
        let token = token.clone();
        async move {
            t.send(Req::post(BIOMETRIC).auth(LIVE_KEY, &token).json(body))
                .await
        }
    };
    let empty = send(json!({})).await;
    empty.assert(400);
    let fields: Vec<_> = empty.fields().into_iter().map(|(f, e, _)| (f, e)).collect();
    assert_eq!(
        fields,
        [
            ("publicKey".to_owned(), "REQUIRED".to_owned()),
            ("pushToken".to_owned(), "REQUIRED".to_owned()),
            ("platform".to_owned(), "REQUIRED".to_owned()),
            ("deviceName".to_owned(), "REQUIRED".to_owned()),
        ]
    );
    let mut private = device.jwk();
    private["d"] = json!("AAAA");
    let bad = send(
        json!({"publicKey": private, "pushToken": "a b", "platform": "WINDOWS",
                          "deviceName": "Pixel\u{202E}8"}),
    )
    .await;
    let fields: Vec<_> = bad.fields().into_iter().map(|(f, e, _)| (f, e)).collect();
    assert_eq!(
        fields,
        [
            ("publicKey".to_owned(), "REGEX".to_owned()),
            ("pushToken".to_owned(), "REGEX".to_owned()),
            ("platform".to_owned(), "IN".to_owned()),
            ("deviceName".to_owned(), "REGEX".to_owned()),
        ]
    );
    let mut off_curve = device.jwk();
    off_curve["y"] = off_curve["x"].clone();
    let mut body = device.enrol_body();
    body["publicKey"] = off_curve;
    send(body).await.assert_field(
        "publicKey",
        "REGEX",
        &["a public JWK on P-256: kty EC, crv P-256, x, y; no d"],
    );
    let mut long = device.enrol_body();
    long["deviceName"] = json!("d".repeat(65));
    send(long)
        .await
        .assert_field("deviceName", "SIZE", &["1", "64"]);
    let mut too_long = device.enrol_body();
    too_long["pushToken"] = json!("t".repeat(4097));
    send(too_long)
        .await
        .assert_field("pushToken", "SIZE", &["1", "4096"]);
    // AUTHY takes no body, and refuses one that is not a JSON object.
    t.send(
        Req::post(AUTHY)
            .auth(LIVE_KEY, &token)
            .body("\u{1}\u{2}not json"),
    )
    .await
    .assert(400);
    // A repeated key is refused whole; a verify body without a signature is a 400.
    let repeated = t
        .send(
            Req::post(BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .body(r#"{"platform": "FCM", "platform": "APNS"}"#),
        )
        .await;
    repeated.assert(400);
    t.send(Req::post(VERIFY_BIOMETRIC).auth(LIVE_KEY, &token))
        .await
        .assert_field("signature", "REQUIRED", &[]);
    t.send(
        Req::post("/authentication_factors/push/AUTHY/verify")
            .auth(LIVE_KEY, &token)
            .json(json!({"signature": device.sign("x", "ENROL")})),
    )
    .await
    .assert_field("channel", "IN", &["BIOMETRIC"]);
    // Nothing pending: STATE_INVALID.
    t.send(
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({"signature": device.sign("x", "ENROL")})),
    )
    .await
    .assert_conflict("STATE_INVALID");
    assert!(
        listed(&t, LIVE_KEY, &token).await.is_empty(),
        "nothing changed"
    );
    // The longest push token fits the route's body cap.
    let mut longest = device.enrol_body();
    longest["pushToken"] = json!("t".repeat(4096));
    longest["deviceName"] = json!("\u{00e9}".repeat(64));
    send(longest).await.assert(200);
}

#[tokio::test]
async fn a_programme_without_the_channel_or_a_platform_application_is_not_supported() {
    let t = TestApp::new().await;
    let mut programme = additional_factors::domain::programme::Programme::new("nobio", false);
    programme.enabled_channels = vec![
        additional_factors::domain::channel::Channel::Sms,
        additional_factors::domain::channel::Channel::Authy,
    ];
    t.add_programme("nobio-key-000000001", programme).await;
    let token = t.token("nobio", "u1");
    t.send(
        Req::post(BIOMETRIC)
            .auth("nobio-key-000000001", &token)
            .json(Device::new().enrol_body()),
    )
    .await
    .assert_conflict("CHANNEL_NOT_SUPPORTED");
    // A deployment with no SNS platform application for the device's platform.
    let mut bare = TestApp::new().await;
    std::sync::Arc::get_mut(&mut bare.app).unwrap().device_push =
        std::sync::Arc::new(additional_factors::push::device::NoDevicePush);
    bare.send(
        Req::post(BIOMETRIC)
            .auth(LIVE_KEY, &bare.token("live", "u1"))
            .json(Device::new().enrol_body()),
    )
    .await
    .assert_conflict("CHANNEL_NOT_SUPPORTED");
}

/// The SNS mobile push adapter against the local AWS-compatible server (moto implements
/// platform applications and endpoints): an endpoint per device, a push per challenge with
/// only its id and line, a new token, a stale (disabled) endpoint, deletion.
#[tokio::test]
async fn sns_mobile_push_makes_endpoints_publishes_and_reports_disabled_ones() {
    use additional_factors::{
        domain::device::Platform,
        push::{
            device::{Delivery, DeviceMessage, DevicePlatforms, DevicePush},
            device_sns::SnsDevicePush,
        },
    };
    let endpoint = aws_endpoint();
    let sdk = additional_factors::aws::sdk_config(Some(&endpoint)).await;
    let client = aws_sdk_sns::Client::new(&sdk);
    let application = fcm_application(&client).await;
    let lazy_client = client.clone();
    let push = SnsDevicePush::new(
        additional_factors::aws::lazy(move || lazy_client),
        [(Platform::Fcm, application)].into_iter().collect(),
    );
    assert!(push.supports(Platform::Fcm) && !push.supports(Platform::Apns));
    let token = format!("fcm-token-{}", unique());
    let device = push.create_endpoint(Platform::Fcm, &token).await.unwrap();
    let message = DeviceMessage {
        challenge_id: format!("challenge-{}", unique()),
        body: "live: approve EUR 1.00 to Bob (GB29...6819)".into(),
    };
    assert_eq!(
        push.publish(&device, Platform::Fcm, &message)
            .await
            .unwrap(),
        Delivery::Sent
    );
    let data = moto_data(&endpoint).await;
    let published = data["sns"]["PlatformEndpoint"].to_string();
    assert!(published.contains(&message.challenge_id), "{published}");
    assert!(published.contains(&token));
    // A new token keeps the endpoint.
    let renewed = push
        .set_token(&device, Platform::Fcm, &format!("{token}-2"))
        .await
        .unwrap();
    assert_eq!(renewed, device);
    // The token went stale: SNS disabled the endpoint; the push reports it, not a failure.
    client
        .set_endpoint_attributes()
        .endpoint_arn(&device)
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();
    assert_eq!(
        push.publish(&device, Platform::Fcm, &message)
            .await
            .unwrap(),
        Delivery::EndpointDisabled
    );
    push.delete_endpoint(&device).await.unwrap();
    // A platform without an application cannot make an endpoint.
    assert!(push.create_endpoint(Platform::Apns, &token).await.is_err());
}

on_both!(
    push_token_upkeep,
    a_device_replaces_its_push_token_by_signing_it
);
async fn a_device_replaces_its_push_token_by_signing_it(t: TestApp) {
    let token = t.token("live", &user());
    let device = Device::new();
    let update = |push_token: &str, signed_at: i64, signer: &Device| {
        Req::put(BIOMETRIC).auth(LIVE_KEY, &token).json(json!({
            "pushToken": push_token, "signedAt": signed_at,
            "signature": signer.sign(&format!("push-token.{push_token}"), &signed_at.to_string()),
        }))
    };
    // Not ACTIVE yet: nothing to update.
    t.send(update("new-token", t.now(), &device))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    let input = start(&t, LIVE_KEY, &token, &device).await;
    t.send(
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({ "signature": device.sign(&input, "ENROL") })),
    )
    .await
    .assert(204);
    // Another key, or a stale signedAt: STATE_INVALID, nothing changed.
    t.send(update("new-token", t.now(), &Device::new()))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(update("new-token", t.now() - 301, &device))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(update("new-token", t.now() + 301, &device))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(update("new-token", t.now() - 60, &device))
        .await
        .assert(204);
    let factor = t
        .store
        .get_factor(
            &t.user("live", token_user(&t, &token).as_str()),
            additional_factors::domain::channel::Channel::Biometric,
        )
        .await
        .unwrap()
        .unwrap();
    let kept = factor.device.unwrap();
    assert_eq!(kept.push_token, "new-token");
    assert_eq!(kept.endpoint.as_deref(), Some("outbox:FCM:new-token"));
    // Bad fields are listed.
    let bad = t
        .send(
            Req::put(BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .json(json!({"pushToken": "", "signedAt": "soon"})),
        )
        .await;
    let fields: Vec<_> = bad.fields().into_iter().map(|(f, e, _)| (f, e)).collect();
    assert_eq!(
        fields,
        [
            ("pushToken".to_owned(), "SIZE".to_owned()),
            ("signedAt".to_owned(), "REGEX".to_owned()),
            ("signature".to_owned(), "REQUIRED".to_owned()),
        ]
    );
}

/// The `sub` of a token this file minted.
fn token_user(t: &TestApp, token: &str) -> String {
    let _ = t;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}
