//! `openapi.yaml` describes exactly what is implemented: every route of the router is in it
//! and nothing else, and real responses for every documented status (but 500) of every
//! operation are checked against it — status, required headers, content type and body schema.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use additional_factors::{
    domain::{channel::Channel, factor::FactorStatus, programme::Programme},
    http::router::Route,
};
use serde_json::{json, Value};

use crate::helpers::*;

fn spec() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let mut target = spec;
            for part in reference.trim_start_matches("#/").split('/') {
                target = &target[part];
            }
            resolve(spec, target)
        }
        None => node,
    }
}

/// A small JSON Schema check: the keywords `openapi.yaml` uses.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if schema.get("$ref").is_some() {
        errors.extend(validate(spec, resolve(spec, schema), value, at));
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: not a {kind}: {value}"));
            return errors;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let (Some(max), Some(s)) = (
        schema.get("maxLength").and_then(Value::as_u64),
        value.as_str(),
    ) {
        if s.chars().count() as u64 > max {
            errors.push(format!("{at}: longer than {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(required.as_str().unwrap()) {
                errors.push(format!("{at}: missing {required}"));
            }
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => errors.extend(validate(spec, sub, item, &format!("{at}.{key}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: unexpected property {key}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            errors.extend(validate(spec, items, item, &format!("{at}[{i}]")));
        }
    }
    errors
}

/// Checks one response against the operation's documented response for its status.
fn check(spec: &Value, route: Route, r: &Resp) {
    let operation = &spec["paths"][route.path_template()][route.method().to_lowercase()];
    assert!(operation.is_object(), "{route:?} is not in openapi.yaml");
    let documented = &operation["responses"][r.status.to_string()];
    assert!(
        documented.is_object(),
        "{route:?} answered {} which is not documented: {}",
        r.status,
        r.raw
    );
    let documented = resolve(spec, documented);
    for (name, header) in documented["headers"].as_object().into_iter().flatten() {
        if resolve(spec, header)["required"] == Value::Bool(true) {
            assert!(
                r.header(&name.to_lowercase()).is_some(),
                "{route:?} {}: header {name} missing",
                r.status
            );
        }
    }
    match documented["content"]["application/json"]["schema"].as_object() {
        Some(_) => {
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{route:?} {}",
                r.status
            );
            let schema = &documented["content"]["application/json"]["schema"];
            let errors = validate(spec, schema, &r.body, "body");
            assert!(errors.is_empty(), "{route:?} {}: {errors:?}", r.status);
        }
        None => assert_eq!(r.raw, "", "{route:?} {} has an undocumented body", r.status),
    }
}

#[test]
fn the_spec_has_exactly_the_routes_of_the_router() {
    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<_> = Route::ALL
        .iter()
        .map(|r| (r.method().to_owned(), r.path_template().to_owned()))
        .collect();
    assert_eq!(documented, routed);
}

/// A signer whose KMS cannot be reached.
struct NoKms;

#[async_trait::async_trait]
impl additional_factors::proof::ProofSigner for NoKms {
    async fn current_key(
        &self,
    ) -> Result<additional_factors::proof::PublicKey, additional_factors::proof::SignError> {
        Err(additional_factors::proof::SignError::new("KMS unreachable"))
    }
    async fn public_keys(
        &self,
    ) -> Result<Vec<additional_factors::proof::PublicKey>, additional_factors::proof::SignError>
    {
        Err(additional_factors::proof::SignError::new("KMS unreachable"))
    }
    async fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, additional_factors::proof::SignError> {
        Err(additional_factors::proof::SignError::new("KMS unreachable"))
    }
}

#[tokio::test]
async fn every_documented_status_of_every_operation_matches_the_spec() {
    let spec = spec();
    let t = TestApp::new().await;
    let mut seen: HashMap<Route, BTreeSet<u16>> = HashMap::new();
    let mut record = |route: Route, r: Resp| {
        check(&spec, route, &r);
        seen.entry(route).or_default().insert(r.status);
    };
    let live = t.token("live", "u1");
    let sbx = t.token("sbx", "u1");
    let up = t.token_with("sbx", "u1", json!({"amr": ["mfa"]}));
    let no_phone = t.token_with("live", "u1", json!({"phone_number": null}));

    // The common answers, on every route.
    for route in Route::ALL {
        let sms = matches!(
            route,
            Route::EnrolSmsOtp
                | Route::VerifySmsOtp
                | Route::StepUpSms
                | Route::VerifyStepUpSms
                | Route::PaymentSms
                | Route::VerifyPaymentSms
        );
        let path = route
            .path_template()
            .replace("{channel}", if sms { "SMS" } else { "AUTHY" })
            .replace("{id}", "no-such-challenge")
            .replace("{scaChallengeId}", "no-such-challenge");
        let bad = route
            .path_template()
            .replace("{channel}", "NOPE")
            .replace("{id}", "no-such-challenge")
            .replace("{scaChallengeId}", "no-such-challenge");
        record(
            route,
            t.send(Req::new(route.method(), &path).body(vec![b' '; route.max_body_bytes() + 1]))
                .await,
        ); // 413
        if route == Route::Jwks || route == Route::SandboxJwks {
            continue; // no credentials: its answers are below
        }
        record(route, t.send(Req::new(route.method(), &path)).await); // 400 api-key
        record(
            route,
            t.send(Req::new(route.method(), &path).auth(LIVE_KEY, "x.y.z"))
                .await,
        ); // 401
        t.memory().fail_next(1);
        record(
            route,
            t.send(Req::new(route.method(), &path).auth("uncached-key", &live))
                .await,
        ); // 503
        if route != Route::ListFactors && route != Route::AuthyCallback {
            record(
                route,
                t.send(Req::new(route.method(), &bad).auth(SANDBOX_KEY, &sbx))
                    .await,
            ); // 400 fields
        }
    }
    record(
        Route::ListFactors,
        t.send(Req::get(LIST).auth(LIVE_KEY, &live)).await,
    );

    // SMS.
    record(
        Route::EnrolSmsOtp,
        t.send(Req::post(SMS).auth(LIVE_KEY, &no_phone)).await,
    ); // 409
    record(
        Route::VerifySmsOtp,
        t.send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &live)
                .json(code_body("000000")),
        )
        .await,
    ); // 409
    record(
        Route::VerifySmsOtp,
        t.send(Req::post(VERIFY).auth(LIVE_KEY, &live).body("{"))
            .await,
    ); // 400 malformed
    record(
        Route::EnrolSmsOtp,
        t.send(Req::post(SMS).auth(LIVE_KEY, &live).idem("r1"))
            .await,
    ); // 204
    record(
        Route::EnrolSmsOtp,
        t.send(Req::post(SMS).auth(LIVE_KEY, &live).idem("r1"))
            .await,
    ); // 204 replayed
    record(
        Route::VerifySmsOtp,
        t.send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &live)
                .json(code_body(&t.last_code(PHONE))),
        )
        .await,
    ); // 204
    let mut tight = Programme::new("tight", false);
    tight.send_limits.per_user_per_hour = 0;
    t.add_programme("tight-key-00000001", tight).await;
    record(
        Route::EnrolSmsOtp,
        t.send(Req::post(SMS).auth("tight-key-00000001", &t.token("tight", "u1")))
            .await,
    ); // 429

    // Push.
    record(
        Route::EnrolPush,
        t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &sbx)).await,
    ); // 204
    record(
        Route::SimulatePushReject,
        t.send(Req::post(REJECT).auth(SANDBOX_KEY, &sbx)).await,
    ); // 204
    record(
        Route::SimulatePushReject,
        t.send(Req::post(REJECT).auth(SANDBOX_KEY, &sbx)).await,
    ); // 409
    record(
        Route::SimulatePushAccept,
        t.send(Req::post(ACCEPT).auth(LIVE_KEY, &live)).await,
    ); // 404
    record(
        Route::SimulatePushReject,
        t.send(Req::post(REJECT).auth(LIVE_KEY, &live)).await,
    ); // 404
    record(
        Route::EnrolPush,
        t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &sbx)).await,
    ); // 204
    record(
        Route::SimulatePushAccept,
        t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &sbx)).await,
    ); // 204
    record(
        Route::SimulatePushAccept,
        t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &sbx)).await,
    ); // 409
    record(
        Route::EnrolPush,
        t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &sbx)).await,
    ); // 403
    record(
        Route::EnrolPush,
        t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &up)).await,
    ); // 409
    record(
        Route::UnlinkPush,
        t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &sbx)).await,
    ); // 403
    record(
        Route::UnlinkPush,
        t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up)).await,
    ); // 204
    record(
        Route::UnlinkPush,
        t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up)).await,
    ); // 409
    t.put_factor("sbx", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    record(
        Route::ListFactors,
        t.send(Req::get(LIST).auth(SANDBOX_KEY, &sbx)).await,
    );

    // Step-up by SMS: the live user's SMS factor is ACTIVE.
    record(
        Route::StepUpSms,
        t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &live)).await,
    ); // 204
    record(
        Route::StepUpSms,
        t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &live)).await,
    ); // 409 RETRY_IN_15SEC
    let code = t.last_code(PHONE);
    record(
        Route::VerifyStepUpSms,
        t.send(
            Req::post(STEP_UP_VERIFY)
                .auth(LIVE_KEY, &live)
                .json(code_body(&code)),
        )
        .await,
    ); // 204
    record(
        Route::VerifyStepUpSms,
        t.send(
            Req::post(STEP_UP_VERIFY)
                .auth(LIVE_KEY, &live)
                .json(code_body(&code)),
        )
        .await,
    ); // 409 STATE_INVALID
    let mut one = Programme::new("one-sms", false);
    one.send_limits.per_user_per_hour = 1;
    t.add_programme("one-sms-key-000001", one).await;
    let one_token = t.token("one-sms", "u1");
    t.send(Req::post(SMS).auth("one-sms-key-000001", &one_token))
        .await
        .assert(204);
    t.send(
        Req::post(VERIFY)
            .auth("one-sms-key-000001", &one_token)
            .json(code_body(&t.last_code(PHONE))),
    )
    .await
    .assert(204);
    record(
        Route::StepUpSms,
        t.send(Req::post(STEP_UP_SMS).auth("one-sms-key-000001", &one_token))
            .await,
    ); // 429

    // Step-up by push, in the sandbox: an ACTIVE Authy factor first.
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &sbx))
        .await
        .assert(204);
    for (answer, route) in [
        ("accept", Route::SimulateStepUpAccept),
        ("reject", Route::SimulateStepUpReject),
    ] {
        let started = t
            .send(Req::post(STEP_UP_PUSH).auth(SANDBOX_KEY, &sbx))
            .await;
        let id = started.body["id"].as_str().unwrap().to_owned();
        record(Route::StepUpPush, started); // 200
        record(
            Route::GetStepUpChallenge,
            t.send(Req::get(&format!("/stepup/challenges/{id}")).auth(SANDBOX_KEY, &sbx))
                .await,
        ); // 200
        let simulate = format!("/simulate/stepup/challenges/{id}/{answer}");
        record(
            route,
            t.send(Req::post(&simulate).auth(SANDBOX_KEY, &sbx)).await,
        ); // 204
        record(
            route,
            t.send(Req::post(&simulate).auth(SANDBOX_KEY, &sbx)).await,
        ); // 409
        record(
            route,
            t.send(Req::post(&simulate).auth(LIVE_KEY, &live)).await,
        ); // 404 (live)
    }
    record(
        Route::StepUpPush,
        t.send(Req::post(STEP_UP_PUSH).auth(LIVE_KEY, &live)).await,
    ); // 409 CHANNEL_NOT_REGISTERED

    // Payments: SMS for the live user (its SMS factor is ACTIVE), push in the sandbox (its
    // Authy factor is ACTIVE since the step-up section).
    let payment = |reference: &str| {
        json!({"reference": reference, "amount": {"currency": "EUR", "value": 100},
               "payee": {"name": "Acme", "account": "GB29NWBK60161331926819"}})
    };
    let started = t
        .send(
            Req::post("/challenges/otp/SMS")
                .auth(LIVE_KEY, &live)
                .json(payment("p1")),
        )
        .await;
    let sca = started.body["scaChallengeId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    record(Route::PaymentSms, started); // 200
    record(
        Route::PaymentSms,
        t.send(
            Req::post("/challenges/otp/SMS")
                .auth(LIVE_KEY, &live)
                .json(payment("p1")),
        )
        .await,
    ); // 409 STATE_INVALID
    record(
        Route::PaymentSms,
        t.send(
            Req::post("/challenges/otp/SMS")
                .auth("one-sms-key-000001", &one_token)
                .json(payment("p1")),
        )
        .await,
    ); // 429
    let verify = format!("/challenges/{sca}/otp/SMS/verify");
    let code = t.last_code(PHONE);
    record(
        Route::VerifyPaymentSms,
        t.send(
            Req::post(&verify)
                .auth(LIVE_KEY, &live)
                .json(code_body(&code)),
        )
        .await,
    ); // 200
    record(
        Route::VerifyPaymentSms,
        t.send(
            Req::post(&verify)
                .auth(LIVE_KEY, &live)
                .json(code_body(&code)),
        )
        .await,
    ); // 409
    record(
        Route::VerifyPaymentSms,
        t.send(
            Req::post("/challenges/nope/otp/SMS/verify")
                .auth(LIVE_KEY, &live)
                .json(code_body(&code)),
        )
        .await,
    ); // 404
    record(
        Route::GetPaymentChallenge,
        t.send(Req::get(&format!("/challenges/{sca}")).auth(LIVE_KEY, &live))
            .await,
    ); // 200
       // A sandbox user of its own, whose push requests this hour are all still free.
    let sbx9 = t.token("sbx", "u9");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &sbx9))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &sbx9))
        .await
        .assert(204);
    for (answer, route) in [
        ("accept", Route::SimulatePaymentAccept),
        ("reject", Route::SimulatePaymentReject),
    ] {
        let started = t
            .send(
                Req::post("/challenges/push/AUTHY")
                    .auth(SANDBOX_KEY, &sbx9)
                    .json(payment(answer)),
            )
            .await;
        let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
        record(Route::PaymentPush, started); // 200
        let simulate = format!("/simulate/challenges/{id}/{answer}");
        record(
            route,
            t.send(Req::post(&simulate).auth(SANDBOX_KEY, &sbx9)).await,
        ); // 204
        record(
            route,
            t.send(Req::post(&simulate).auth(SANDBOX_KEY, &sbx9)).await,
        ); // 409
    }
    record(
        Route::PaymentPush,
        t.send(
            Req::post("/challenges/push/AUTHY")
                .auth(LIVE_KEY, &live)
                .json(payment("p9")),
        )
        .await,
    ); // 409 CHANNEL_NOT_REGISTERED
    record(
        Route::Jwks,
        t.send(Req::get("/.well-known/jwks.json")).await,
    ); // 200
    record(
        Route::SandboxJwks,
        t.send(Req::get("/.well-known/sandbox-jwks.json")).await,
    ); // 200
    let mut broken = TestApp::new().await;
    let app = Arc::get_mut(&mut broken.app).unwrap();
    app.proof_keys.live = Arc::new(NoKms);
    app.proof_keys.sandbox = additional_factors::proof::SandboxKey(Arc::new(NoKms));
    record(
        Route::Jwks,
        broken.send(Req::get("/.well-known/jwks.json")).await,
    ); // 503
    record(
        Route::SandboxJwks,
        broken
            .send(Req::get("/.well-known/sandbox-jwks.json"))
            .await,
    ); // 503

    // BIOMETRIC: step one's signing input, a wrong signature, the right one.
    let device = Device::new();
    let owner = t.token("live", "device-owner");
    let started = t
        .send(
            Req::post("/authentication_factors/push/BIOMETRIC")
                .auth(LIVE_KEY, &owner)
                .json(device.enrol_body()),
        )
        .await;
    let input = started.body["signingInput"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    record(Route::EnrolPush, started); // 200
    let verify = |signature: String| {
        Req::post("/authentication_factors/push/BIOMETRIC/verify")
            .auth(LIVE_KEY, &owner)
            .json(json!({ "signature": signature }))
    };
    record(
        Route::VerifyBiometric,
        t.send(verify(device.sign(&input, "DECLINE"))).await,
    ); // 409
    record(
        Route::VerifyBiometric,
        t.send(verify(device.sign(&input, "ENROL"))).await,
    ); // 204
    let update = |signer: &Device| {
        let signed_at = t.now();
        Req::put("/authentication_factors/push/BIOMETRIC")
            .auth(LIVE_KEY, &owner)
            .json(json!({"pushToken": "t2", "signedAt": signed_at,
                         "signature": signer.sign("push-token.t2", &signed_at.to_string())}))
    };
    record(
        Route::UpdateDevicePush,
        t.send(update(&Device::new())).await,
    ); // 409
    record(Route::UpdateDevicePush, t.send(update(&device)).await); // 204
                                                                    // The device's challenges: listed, a wrong answer, an unknown id, the right one.
    let pushed = t
        .send(Req::post("/stepup/challenges/push/BIOMETRIC").auth(LIVE_KEY, &owner))
        .await;
    let id = pushed.body["id"].as_str().unwrap_or("").to_owned();
    record(Route::StepUpPush, pushed); // 200
    let listed = t
        .send(Req::get("/authentication_factors/push/BIOMETRIC/challenges").auth(LIVE_KEY, &owner))
        .await;
    let input = listed.body["challenges"][0]["signingInput"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    record(Route::ListDeviceChallenges, listed); // 200
    let answer = |id: &str, signature: String| {
        Req::post(&format!(
            "/authentication_factors/push/BIOMETRIC/challenges/{id}"
        ))
        .auth(LIVE_KEY, &owner)
        .json(json!({ "decision": "APPROVE", "signature": signature }))
    };
    record(
        Route::AnswerDeviceChallenge,
        t.send(answer(&id, device.sign(&input, "DECLINE"))).await,
    ); // 409
    record(
        Route::AnswerDeviceChallenge,
        t.send(answer("no-such-challenge", device.sign(&input, "APPROVE")))
            .await,
    ); // 404
    record(
        Route::AnswerDeviceChallenge,
        t.send(answer(&id, device.sign(&input, "APPROVE"))).await,
    ); // 204

    // Authy's callback.
    let callback = json!({"uuid": "unknown", "status": "approved"});
    record(
        Route::AuthyCallback,
        t.send(t.authy_callback(&callback)).await,
    ); // 200
    t.memory().fail_next(1);
    t.clock.advance(1);
    record(
        Route::AuthyCallback,
        t.send(t.authy_callback(&callback)).await,
    ); // 503
    let without = TestApp::without_authy().await;
    record(
        Route::AuthyCallback,
        without.send(without.authy_callback(&callback)).await,
    ); // 404

    for route in Route::ALL {
        let operation = &spec["paths"][route.path_template()][route.method().to_lowercase()];
        let documented: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .filter(|s| *s != 500)
            .collect();
        assert_eq!(
            seen.get(&route).cloned().unwrap_or_default(),
            documented,
            "{route:?}"
        );
    }
}

#[tokio::test]
async fn unrouted_requests_answer_in_the_route_error_format() {
    let spec = spec();
    let t = TestApp::new().await;
    for r in [
        t.send(Req::get("/nope")).await,
        t.send(Req::new("PATCH", LIST)).await,
    ] {
        let errors = validate(
            &spec,
            &spec["components"]["schemas"]["RouteError"],
            &r.body,
            "body",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(r.header("request-ref").is_some());
    }
}

/// Every event the service publishes on its topic is what `openapi.yaml`'s `webhooks` say
/// (issue 25, item 5): each factor change of each channel, each step-up and payment outcome.
#[test]
fn every_published_event_matches_its_webhook_in_the_spec() {
    use additional_factors::{
        domain::{channel::Channel, step_up::ChallengeStatus},
        events::{Change, Event, FactorEvent, PaymentEvent, StepUpEvent},
    };
    let spec = spec();
    let schema = |webhook: &str| {
        spec["webhooks"][webhook]["post"]["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    };
    let mut checked = 0;
    for channel in [Channel::Sms, Channel::Authy, Channel::Biometric] {
        for change in [Change::Active, Change::Inactive, Change::Unlinked] {
            let event = Event::Factor(FactorEvent {
                credential_id: "u1".into(),
                programme_id: "p1".into(),
                channel,
                change,
                published_timestamp: 1_796_000_000_000,
            });
            let errors = validate(&spec, &schema("factorChanged"), &event.to_json(), "event");
            assert!(errors.is_empty(), "{errors:?}");
            checked += 1;
        }
        for status in [
            ChallengeStatus::Verified,
            ChallengeStatus::Declined,
            ChallengeStatus::Expired,
        ] {
            let step_up = Event::StepUp(StepUpEvent {
                credential_id: "u1".into(),
                programme_id: "p1".into(),
                challenge_id: "c1".into(),
                channel,
                status,
                published_timestamp: 1,
            });
            let errors = validate(&spec, &schema("stepUpSettled"), &step_up.to_json(), "event");
            assert!(errors.is_empty(), "{errors:?}");
            let payment = Event::Payment(PaymentEvent {
                credential_id: "u1".into(),
                programme_id: "p1".into(),
                sca_challenge_id: "c1".into(),
                channel,
                reference: "pay_1".into(),
                status,
                published_timestamp: 1,
            });
            let json = payment.to_json();
            let errors = validate(&spec, &schema("paymentChallengeSettled"), &json, "event");
            assert!(errors.is_empty(), "{errors:?}");
            assert!(json.get("payee").is_none(), "never the payee");
            checked += 2;
        }
    }
    assert_eq!(checked, 27);
    // Each schema refuses what it does not describe (the check can fail).
    let wrong = serde_json::json!({"type": "stepup", "credentialId": "u1"});
    assert!(!validate(&spec, &schema("stepUpSettled"), &wrong, "event").is_empty());
}

/// The spec's security schemes name both credentials, and its tags set the client routes
/// apart from the provider callback and the simulators.
#[test]
fn the_spec_declares_its_credentials_and_tags_every_operation() {
    let spec = spec();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["name"], "api-key");
    assert_eq!(schemes["auth_token"]["scheme"], "bearer");
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let tag = operation["tags"][0].as_str().unwrap_or("");
            assert!(tags.contains(&tag), "{method} {path}: tag {tag:?}");
            let expected = if path.starts_with("/simulate/") {
                "Sandbox simulators"
            } else if path.starts_with("/webhooks/") {
                "Provider callbacks"
            } else {
                tag
            };
            assert_eq!(tag, expected, "{method} {path}");
        }
    }
}
