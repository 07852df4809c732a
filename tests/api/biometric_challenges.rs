//! BIOMETRIC step-up and payment challenges: pushed to the device, listed by it, answered by
//! its signature over the exact bytes it showed. Every scenario runs on the memory store and on
//! DynamoDB, with a simulated device holding a P-256 key; the SNS mobile push path runs against
//! the local AWS-compatible server.

use std::sync::Arc;

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

use crate::helpers::*;

const VERIFY_BIOMETRIC: &str = "/authentication_factors/push/BIOMETRIC/verify";
const DEVICE_CHALLENGES: &str = "/authentication_factors/push/BIOMETRIC/challenges";
const STEP_UP_BIOMETRIC: &str = "/stepup/challenges/push/BIOMETRIC";
const PAY_BIOMETRIC: &str = "/challenges/push/BIOMETRIC";
const ROOMY_KEY: &str = "roomy-programme-api-key-0001";

fn user() -> String {
    format!("u{}", unique())
}

fn payment(reference: &str) -> Value {
    json!({"reference": reference, "amount": {"currency": "EUR", "value": 12550},
           "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}})
}

/// Enrols `device` as the user's BIOMETRIC factor (step one, then its signature).
async fn enrol(t: &TestApp, key: &str, token: &str, device: &Device) {
    let started = t
        .send(
            Req::post(BIOMETRIC)
                .auth(key, token)
                .json(device.enrol_body()),
        )
        .await;
    started.assert(200);
    let input = started.body["signingInput"].as_str().unwrap();
    t.send(
        Req::post(VERIFY_BIOMETRIC)
            .auth(key, token)
            .json(json!({ "signature": device.sign(input, "ENROL") })),
    )
    .await
    .assert(204);
}

/// What the device lists.
async fn pending(t: &TestApp, key: &str, token: &str) -> Vec<Value> {
    let listed = t.send(Req::get(DEVICE_CHALLENGES).auth(key, token)).await;
    listed.assert(200);
    listed.body["challenges"].as_array().unwrap().clone()
}

fn answer(key: &str, token: &str, id: &str, decision: &str, signature: String) -> Req {
    Req::post(&format!("{DEVICE_CHALLENGES}/{id}"))
        .auth(key, token)
        .json(json!({ "decision": decision, "signature": signature }))
}

async fn step_up_status(t: &TestApp, key: &str, token: &str, id: &str) -> String {
    let got = t
        .send(Req::get(&format!("/stepup/challenges/{id}")).auth(key, token))
        .await;
    got.assert(200);
    got.body["status"].as_str().unwrap().to_owned()
}

async fn payment_status(t: &TestApp, key: &str, token: &str, id: &str) -> Value {
    let got = t
        .send(Req::get(&format!("/challenges/{id}")).auth(key, token))
        .await;
    got.assert(200);
    got.body.clone()
}

on_both!(step_up, a_device_steps_up_the_session_that_asked);
async fn a_device_steps_up_the_session_that_asked(t: TestApp) {
    let user = user();
    // The web session asks; the app (the same user, its own session) answers.
    let web = t.token_with("live", &user, json!({"sid": "web"}));
    let app = t.token_with("live", &user, json!({"sid": "app"}));
    let device = Device::new();
    enrol(&t, LIVE_KEY, &app, &device).await;
    assert!(pending(&t, LIVE_KEY, &app).await.is_empty(), "none → []");
    let started = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &web))
        .await;
    started.assert(200);
    let id = started.body["id"].as_str().unwrap().to_owned();
    // The push carries the id and a line: never the signing input or its nonce.
    let pushes = t.devices.sent();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].push_token, device.push_token);
    assert_eq!(pushes[0].message.challenge_id, id);
    assert_eq!(pushes[0].message.body, "live: confirm it is you");
    // The device lists it, and the same bytes every time.
    let listed = pending(&t, LIVE_KEY, &app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["purpose"], "STEP_UP");
    assert_eq!(pending(&t, LIVE_KEY, &app).await, listed);
    let input = listed[0]["signingInput"].as_str().unwrap().to_owned();
    let said = decoded(&input);
    assert_eq!(said["v"], 1);
    assert_eq!(said["type"], "step_up");
    assert_eq!(said["id"], id.as_str());
    assert_eq!(said["programmeId"], "live");
    assert_eq!(said["message"], "live: confirm it is you");
    assert_eq!(said["nonce"].as_str().unwrap().len(), 43);
    assert_eq!(said["expiresAt"], listed[0]["expiresAt"]);
    assert!(!pushes[0]
        .message
        .body
        .contains(said["nonce"].as_str().unwrap()));
    assert_eq!(step_up_status(&t, LIVE_KEY, &web, &id).await, "PENDING");
    // Not stepped up yet: unlinking the ACTIVE factor needs it.
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &web))
        .await
        .assert(403);
    // A signature over other bytes, or by another key: counted, nothing settled.
    t.send(answer(
        LIVE_KEY,
        &app,
        &id,
        "APPROVE",
        device.sign(&input, "DECLINE"),
    ))
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    t.send(answer(
        LIVE_KEY,
        &app,
        &id,
        "APPROVE",
        Device::new().sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(step_up_status(&t, LIVE_KEY, &web, &id).await, "PENDING");
    t.send(answer(
        LIVE_KEY,
        &app,
        &id,
        "APPROVE",
        device.sign_der(&input, "APPROVE"),
    ))
    .await
    .assert(204);
    assert_eq!(step_up_status(&t, LIVE_KEY, &web, &id).await, "VERIFIED");
    assert!(pending(&t, LIVE_KEY, &app).await.is_empty());
    // Answered once; an unknown id, or another user's, is a 404.
    t.send(answer(
        LIVE_KEY,
        &app,
        &id,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("STATE_INVALID");
    t.send(answer(
        LIVE_KEY,
        &app,
        "nope",
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert(404);
    let stranger = t.token("live", &format!("{user}-x"));
    t.send(answer(
        LIVE_KEY,
        &stranger,
        &id,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert(404);
    let announced: Vec<_> = t
        .events
        .events()
        .into_iter()
        .filter(|e| e["type"] == "stepup" && e["channel"] == "BIOMETRIC")
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(announced, ["VERIFIED"]);
    // The session that asked is stepped up, the device's is not.
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &app))
        .await
        .assert(403);
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &web))
        .await
        .assert(204);
}

on_both!(
    step_up_refusals,
    a_decline_the_ladder_expiry_and_unlinking_settle_nothing_else
);
async fn a_decline_the_ladder_expiry_and_unlinking_settle_nothing_else(t: TestApp) {
    // Room for six pushes this hour (the default is five).
    let mut roomy = additional_factors::domain::programme::Programme::new("roomy", false);
    roomy.send_limits.push_per_user_per_hour = 10;
    t.add_programme(ROOMY_KEY, roomy).await;
    let user = user();
    let token = t.token("roomy", &user);
    let device = Device::new();
    // No ACTIVE factor: nothing to push to.
    t.send(Req::post(STEP_UP_BIOMETRIC).auth(ROOMY_KEY, &token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    enrol(&t, ROOMY_KEY, &token, &device).await;
    let start = || async {
        let started = t
            .send(Req::post(STEP_UP_BIOMETRIC).auth(ROOMY_KEY, &token))
            .await;
        started.assert(200);
        let id = started.body["id"].as_str().unwrap().to_owned();
        let listed = pending(&t, ROOMY_KEY, &token).await;
        let input = listed.iter().find(|c| c["id"] == id.as_str()).unwrap()["signingInput"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, input)
    };
    // A signed DECLINE declines; an unsigned one is a 400 that changes nothing.
    let (declined, input) = start().await;
    let unsigned = t
        .send(
            Req::post(&format!("{DEVICE_CHALLENGES}/{declined}"))
                .auth(ROOMY_KEY, &token)
                .json(json!({"decision": "MAYBE"})),
        )
        .await;
    unsigned.assert(400);
    let fields: Vec<_> = unsigned
        .fields()
        .into_iter()
        .map(|(f, e, _)| (f, e))
        .collect();
    assert_eq!(
        fields,
        [
            ("decision".to_owned(), "IN".to_owned()),
            ("signature".to_owned(), "REQUIRED".to_owned()),
        ]
    );
    t.send(answer(
        ROOMY_KEY,
        &token,
        &declined,
        "DECLINE",
        device.sign(&input, "DECLINE"),
    ))
    .await
    .assert(204);
    assert_eq!(
        step_up_status(&t, ROOMY_KEY, &token, &declined).await,
        "DECLINED"
    );
    // The ladder: its end declines the challenge.
    let (laddered, input) = start().await;
    for expected in [
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "ONE_CHALLENGE_LIMIT_REMAINING",
        "CHALLENGE_LIMIT_EXCEEDED",
    ] {
        t.send(answer(
            ROOMY_KEY,
            &token,
            &laddered,
            "APPROVE",
            device.sign(&input, "ENROL"),
        ))
        .await
        .assert_conflict(expected);
    }
    assert_eq!(
        step_up_status(&t, ROOMY_KEY, &token, &laddered).await,
        "DECLINED"
    );
    t.send(answer(
        ROOMY_KEY,
        &token,
        &laddered,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("STATE_INVALID");
    // Past expiresAt.
    let (late, input) = start().await;
    t.clock.advance(300);
    assert!(pending(&t, ROOMY_KEY, &token).await.is_empty());
    t.send(answer(
        ROOMY_KEY,
        &token,
        &late,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("VERIFICATION_CODE_EXPIRED");
    // Unlinked: its pending challenges expire, and the same key enrolled again cannot
    // revive them.
    let (orphan, input) = start().await;
    let up = t.token_with("roomy", &user, json!({"amr": ["mfa"], "iat": t.now()}));
    t.send(Req::delete(BIOMETRIC).auth(ROOMY_KEY, &up))
        .await
        .assert(204);
    assert_eq!(
        step_up_status(&t, ROOMY_KEY, &token, &orphan).await,
        "EXPIRED"
    );
    t.send(answer(
        ROOMY_KEY,
        &token,
        &orphan,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("STATE_INVALID");
    enrol(&t, ROOMY_KEY, &up, &device).await;
    assert!(pending(&t, ROOMY_KEY, &token).await.is_empty());
    t.send(answer(
        ROOMY_KEY,
        &token,
        &orphan,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert_conflict("STATE_INVALID");
    assert_eq!(
        step_up_status(&t, ROOMY_KEY, &token, &orphan).await,
        "EXPIRED"
    );
}

on_both!(payment, a_device_approves_the_exact_payment_it_showed);
async fn a_device_approves_the_exact_payment_it_showed(t: TestApp) {
    let token = t.token("live", &user());
    let device = Device::new();
    enrol(&t, LIVE_KEY, &token, &device).await;
    let started = t
        .send(
            Req::post(PAY_BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .json(payment("pay-bio-1")),
        )
        .await;
    started.assert(200);
    let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
    let pushes = t.devices.sent();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].message.challenge_id, id);
    // The line shows the account masked, never whole.
    assert_eq!(
        pushes[0].message.body,
        "live: approve EUR 125.50 to Acme Ltd (GB29...6819)"
    );
    let listed = pending(&t, LIVE_KEY, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["purpose"], "PAYMENT");
    let input = listed[0]["signingInput"].as_str().unwrap().to_owned();
    let said = decoded(&input);
    assert_eq!(said["type"], "payment");
    assert_eq!(said["id"], id.as_str());
    assert_eq!(said["amount"], json!({"currency": "EUR", "value": 12550}));
    assert_eq!(
        said["payee"],
        json!({"name": "Acme Ltd", "account": "GB29NWBK60161331926819"})
    );
    assert_eq!(said["message"], pushes[0].message.body.as_str());
    let said = said.clone();
    assert_eq!(
        payment_status(&t, LIVE_KEY, &token, &id).await["status"],
        "PENDING"
    );
    t.send(answer(
        LIVE_KEY,
        &token,
        &id,
        "APPROVE",
        device.sign_der(&input, "APPROVE"),
    ))
    .await
    .assert(204);
    let got = payment_status(&t, LIVE_KEY, &token, &id).await;
    assert_eq!(got["status"], "VERIFIED");
    // The API's word, checked against its live JWKS...
    let jwks = t.send(Req::get("/.well-known/jwks.json")).await.body;
    let claims = crate::payment::verify_proof(&jwks, got["proof"].as_str().unwrap()).unwrap();
    assert_eq!(claims["amr"], json!(["hwk", "user"]));
    assert_eq!(claims["sandbox"], false);
    assert_eq!(claims["reference"], "pay-bio-1");
    // ...and the device's own, offline: its key, its signature over the bytes it showed.
    assert_eq!(claims["cnf"]["jwk"], device.jwk());
    let approval = &claims["device_approval"];
    assert_eq!(approval["signing_input"], input.as_str());
    let signature = URL_SAFE_NO_PAD
        .decode(approval["signature"].as_str().unwrap())
        .unwrap();
    assert_eq!(signature.len(), 64, "r‖s, whatever form the device sent");
    let jwk = &claims["cnf"]["jwk"];
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let signed = decoded(approval["signing_input"].as_str().unwrap());
    assert_eq!(signed["amount"], claims["amount"]);
    assert_eq!(signed["payee"], claims["payee"]);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{input}.APPROVE").as_bytes(), &signature)
        .expect("the device signed these exact bytes");
    // The reference is held by the VERIFIED challenge.
    t.send(
        Req::post(PAY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(payment("pay-bio-1")),
    )
    .await
    .assert_conflict("STATE_INVALID");
    // A signed DECLINE of another payment: DECLINED, no proof.
    let second = t
        .send(
            Req::post(PAY_BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .json(payment("pay-bio-2")),
        )
        .await;
    let second = second.body["scaChallengeId"].as_str().unwrap().to_owned();
    let input = pending(&t, LIVE_KEY, &token).await[0]["signingInput"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(answer(
        LIVE_KEY,
        &token,
        &second,
        "DECLINE",
        device.sign(&input, "DECLINE"),
    ))
    .await
    .assert(204);
    let got = payment_status(&t, LIVE_KEY, &token, &second).await;
    assert_eq!(got["status"], "DECLINED");
    assert!(got.get("proof").is_none());
    t.assert_logs_clean();
    // The service's own lines, at the levels it logs in production (the AWS SDK's TRACE lines,
    // which print whole items, are off there).
    let logs: Vec<String> = t
        .log_text()
        .lines()
        .filter(|l| {
            ["INFO", "WARN", "ERROR"]
                .iter()
                .any(|v| l.contains(&format!("\"level\":\"{v}\"")))
        })
        .map(str::to_owned)
        .collect();
    assert!(logs
        .iter()
        .any(|l| l.contains("device answered a challenge")));
    let signature = approval["signature"].as_str().unwrap();
    let nonce = said["nonce"].as_str().unwrap();
    for secret in [input.as_str(), signature, nonce, device.push_token.as_str()] {
        assert!(
            logs.iter().all(|l| !l.contains(secret)),
            "a log line holds {secret}"
        );
    }
}

on_both!(sandbox, the_simulators_settle_biometric_challenges_too);
async fn the_simulators_settle_biometric_challenges_too(t: TestApp) {
    let token = t.token("sbx", &user());
    let device = Device::new();
    enrol(&t, SANDBOX_KEY, &token, &device).await;
    let step_up = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(SANDBOX_KEY, &token))
        .await;
    step_up.assert(200);
    let step_up = step_up.body["id"].as_str().unwrap().to_owned();
    let pay = t
        .send(
            Req::post(PAY_BIOMETRIC)
                .auth(SANDBOX_KEY, &token)
                .json(payment("pay-sbx")),
        )
        .await;
    pay.assert(200);
    let pay = pay.body["scaChallengeId"].as_str().unwrap().to_owned();
    // A sandbox pushes nothing through SNS; its device finds the challenges by listing.
    assert!(t.devices.sent().is_empty());
    assert_eq!(pending(&t, SANDBOX_KEY, &token).await.len(), 2);
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{step_up}/accept"))
            .auth(SANDBOX_KEY, &token),
    )
    .await
    .assert(204);
    assert_eq!(
        step_up_status(&t, SANDBOX_KEY, &token, &step_up).await,
        "VERIFIED"
    );
    t.send(Req::post(&format!("/simulate/challenges/{pay}/accept")).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    let got = payment_status(&t, SANDBOX_KEY, &token, &pay).await;
    let jwks = t
        .send(Req::get("/.well-known/sandbox-jwks.json"))
        .await
        .body;
    let claims = crate::payment::verify_proof(&jwks, got["proof"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sandbox"], true);
    assert!(claims.get("cnf").is_none() && claims.get("device_approval").is_none());
    assert!(pending(&t, SANDBOX_KEY, &token).await.is_empty());
    // A real device answers a sandbox challenge as well; its proof is the sandbox key's.
    let pay = t
        .send(
            Req::post(PAY_BIOMETRIC)
                .auth(SANDBOX_KEY, &token)
                .json(payment("pay-sbx-2")),
        )
        .await;
    let pay = pay.body["scaChallengeId"].as_str().unwrap().to_owned();
    let input = pending(&t, SANDBOX_KEY, &token).await[0]["signingInput"]
        .as_str()
        .unwrap()
        .to_owned();
    t.send(answer(
        SANDBOX_KEY,
        &token,
        &pay,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert(204);
    let got = payment_status(&t, SANDBOX_KEY, &token, &pay).await;
    let claims = crate::payment::verify_proof(&jwks, got["proof"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sandbox"], true);
    assert_eq!(claims["cnf"]["jwk"], device.jwk());
}

on_both!(
    reused_reference,
    a_reused_reference_with_another_answer_uses_an_attempt
);
async fn a_reused_reference_with_another_answer_uses_an_attempt(t: TestApp) {
    let token = t.token("live", &user());
    let device = Device::new();
    enrol(&t, LIVE_KEY, &token, &device).await;
    let started = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &token))
        .await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    let input = pending(&t, LIVE_KEY, &token).await[0]["signingInput"]
        .as_str()
        .unwrap()
        .to_owned();
    let reference = format!("ref-{}", unique());
    t.send(
        answer(
            LIVE_KEY,
            &token,
            &id,
            "APPROVE",
            device.sign(&input, "ENROL"),
        )
        .header("idempotency-ref", &reference),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    // Four more bodies behind the same reference, the right one among them: each a 400 that
    // used an attempt, never compared; the ladder is spent, the challenge declined.
    for decision in ["DECLINE", "DECLINE", "APPROVE", "APPROVE"] {
        let body = if decision == "APPROVE" {
            device.sign(&input, "APPROVE")
        } else {
            device.sign(&input, "ENROL")
        };
        t.send(answer(LIVE_KEY, &token, &id, decision, body).header("idempotency-ref", &reference))
            .await
            .assert(400);
    }
    assert_eq!(step_up_status(&t, LIVE_KEY, &token, &id).await, "DECLINED");
}

/// Through SNS mobile push at the local AWS-compatible server: the push lands on the device's
/// platform endpoint; a disabled endpoint still leaves the challenge (found by listing); SNS
/// unreachable is a 503 that keeps nothing and gives the push request back.
#[tokio::test]
async fn pushes_go_through_sns_and_a_failing_sns_keeps_nothing() {
    use additional_factors::{domain::device::Platform, push::device_sns::SnsDevicePush};
    let endpoint = aws_endpoint();
    let sdk = additional_factors::aws::sdk_config(Some(&endpoint)).await;
    let client = aws_sdk_sns::Client::new(&sdk);
    let application = fcm_application(&client).await;
    let sns = |client: aws_sdk_sns::Client| {
        Arc::new(SnsDevicePush::new(
            additional_factors::aws::lazy(move || client),
            [(Platform::Fcm, application.clone())].into_iter().collect(),
        ))
    };
    let mut t = TestApp::on_aws().await;
    t.set_device_push(sns(client.clone()));
    let token = t.token("live", &user());
    let device = Device::new();
    enrol(&t, LIVE_KEY, &token, &device).await;
    let started = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &token))
        .await;
    started.assert(200);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let published = moto_data(&endpoint).await["sns"]["PlatformEndpoint"].to_string();
    assert!(published.contains(&id), "{published}");
    // The token went stale: SNS disabled the endpoint. The challenge is still made.
    let factor = t
        .store
        .get_factor(
            &t.user("live", &token_sub(&token)),
            additional_factors::domain::channel::Channel::Biometric,
        )
        .await
        .unwrap()
        .unwrap();
    let arn = factor.device.unwrap().endpoint.unwrap();
    client
        .set_endpoint_attributes()
        .endpoint_arn(&arn)
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();
    t.clock.advance(1);
    let stale = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &token))
        .await;
    stale.assert(200);
    let stale = stale.body["id"].as_str().unwrap().to_owned();
    let listed = pending(&t, LIVE_KEY, &token).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], stale.as_str(), "newest first");

    // SNS unreachable: 503, nothing kept, the push request given back.
    let unreachable = additional_factors::aws::sdk_config(Some("http://127.0.0.1:9")).await;
    let mut t = TestApp::on_aws().await;
    t.set_device_push(sns(aws_sdk_sns::Client::new(&unreachable)));
    let token = t.token("live", &user());
    let device = Device::new();
    enrol_without_push(&t, &token, &device).await;
    t.send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &token))
        .await
        .assert(503);
    t.send(
        Req::post(PAY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(payment("pay-down")),
    )
    .await
    .assert(503);
    assert!(pending(&t, LIVE_KEY, &token).await.is_empty());
    let user = t.user("live", &token_sub(&token));
    assert!(t
        .store
        .payment_by_reference(&user, "pay-down")
        .await
        .unwrap()
        .is_none());
    // Neither counts as a push sent.
    let counted = t.counted();
    assert!(
        counted.iter().all(|c| !c.starts_with("PushRequests")),
        "{counted:?}"
    );
}

/// Enrols a device through an SNS that cannot be reached: its endpoint is seeded directly.
async fn enrol_without_push(t: &TestApp, token: &str, device: &Device) {
    use additional_factors::domain::{
        channel::Channel,
        device::{Device as Kept, DeviceKey, Platform},
        factor::{FactorRecord, FactorStatus},
    };
    let key = DeviceKey::from_jwk(&device.jwk()).unwrap();
    let factor = FactorRecord {
        channel: Channel::Biometric,
        status: FactorStatus::Active,
        phone_hash: None,
        provider_ref: None,
        pending_request: None,
        verified_by: None,
        updated_at: t.now(),
        device: Some(Kept {
            key,
            platform: Platform::Fcm,
            push_token: device.push_token.clone(),
            name: "Pixel 8".into(),
            endpoint: Some("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1".into()),
        }),
    };
    t.store
        .put_factor(&t.user("live", &token_sub(token)), &factor)
        .await
        .unwrap();
}

/// The `sub` of a token the tests minted.
fn token_sub(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

on_both!(list_cap, the_device_lists_its_ten_newest);
async fn the_device_lists_its_ten_newest(t: TestApp) {
    let mut roomy = additional_factors::domain::programme::Programme::new("roomy", false);
    roomy.send_limits.push_per_user_per_hour = 20;
    t.add_programme(ROOMY_KEY, roomy).await;
    let token = t.token("roomy", &user());
    enrol(&t, ROOMY_KEY, &token, &Device::new()).await;
    let mut started = Vec::new();
    for _ in 0..11 {
        t.clock.advance(1);
        let id = t
            .send(Req::post(STEP_UP_BIOMETRIC).auth(ROOMY_KEY, &token))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        started.push(id);
    }
    let listed: Vec<_> = pending(&t, ROOMY_KEY, &token)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let newest: Vec<_> = started.iter().rev().take(10).cloned().collect();
    assert_eq!(listed, newest);
}

/// DynamoDB requests per BIOMETRIC operation, counted by the adapter (the numbers in
/// BENCHMARKS.md; a change that adds a round trip fails here). The programme is cached first.
#[tokio::test]
async fn biometric_dynamodb_requests_per_operation() {
    let t = TestApp::on_aws().await;
    let token = t.token("live", &user());
    let device = Device::new();
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
    let mut table: Vec<(&str, u64, u64)> = Vec::new();
    let mut measure = |name: &'static str, before: u64, after: u64, expected: u64| {
        table.push((name, after - before, expected));
    };
    let b = t.dynamodb_requests();
    let started = t
        .send(
            Req::post(BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .json(device.enrol_body()),
        )
        .await;
    started.assert(200);
    measure("BIOMETRIC step one", b, t.dynamodb_requests(), 3);
    let input = started.body["signingInput"].as_str().unwrap().to_owned();
    let verify = |signature: String| {
        Req::post(VERIFY_BIOMETRIC)
            .auth(LIVE_KEY, &token)
            .json(json!({ "signature": signature }))
    };
    let b = t.dynamodb_requests();
    t.send(verify(device.sign(&input, "DECLINE")))
        .await
        .assert(409);
    measure(
        "BIOMETRIC verify, wrong signature",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(verify(device.sign(&input, "ENROL")))
        .await
        .assert(204);
    measure(
        "BIOMETRIC verify, right signature",
        b,
        t.dynamodb_requests(),
        3,
    );
    let b = t.dynamodb_requests();
    let started = t
        .send(Req::post(STEP_UP_BIOMETRIC).auth(LIVE_KEY, &token))
        .await;
    started.assert(200);
    measure("BIOMETRIC step-up push", b, t.dynamodb_requests(), 3);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let b = t.dynamodb_requests();
    let input = pending(&t, LIVE_KEY, &token).await[0]["signingInput"]
        .as_str()
        .unwrap()
        .to_owned();
    measure("device's list", b, t.dynamodb_requests(), 2);
    let b = t.dynamodb_requests();
    t.send(answer(
        LIVE_KEY,
        &token,
        &id,
        "APPROVE",
        device.sign(&input, "ENROL"),
    ))
    .await
    .assert(409);
    measure(
        "device's answer, wrong signature",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(answer(
        LIVE_KEY,
        &token,
        &id,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert(204);
    measure(
        "device's answer, step-up approved",
        b,
        t.dynamodb_requests(),
        4,
    );
    let b = t.dynamodb_requests();
    let started = t
        .send(
            Req::post(PAY_BIOMETRIC)
                .auth(LIVE_KEY, &token)
                .json(payment("pay-count")),
        )
        .await;
    started.assert(200);
    measure("BIOMETRIC payment push", b, t.dynamodb_requests(), 4);
    let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
    let input = pending(&t, LIVE_KEY, &token).await[0]["signingInput"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = t.dynamodb_requests();
    t.send(answer(
        LIVE_KEY,
        &token,
        &id,
        "APPROVE",
        device.sign(&input, "APPROVE"),
    ))
    .await
    .assert(204);
    measure(
        "device's answer, payment approved",
        b,
        t.dynamodb_requests(),
        4,
    );
    for (name, measured, _) in &table {
        println!("dynamodb requests | {name:<45} | {measured}");
    }
    for (name, measured, expected) in &table {
        assert_eq!(measured, expected, "{name}");
    }
}
