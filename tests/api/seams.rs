//! Where two features meet (issue "every guarantee holds at the seams"): an idempotency
//! reference never buys an uncounted comparison of a code, and a reference is bound to the
//! target it names (the path's challenge id, a step-up's session). Each scenario runs on the
//! memory store and on DynamoDB/SNS.

use serde_json::{json, Value};

use crate::helpers::*;

const PAY_SMS: &str = "/challenges/otp/SMS";

fn payment(reference: &str, account: &str) -> Value {
    json!({"reference": reference, "amount": {"currency": "EUR", "value": 12550},
           "payee": {"name": "Acme Ltd", "account": account}})
}

/// A live user with an ACTIVE SMS factor on `phone`, in session `sid`; returns the token.
async fn with_sms_factor(t: &TestApp, phone: &str, sid: &str) -> String {
    let token = t.token_with("live", "u1", json!({"phone_number": phone, "sid": sid}));
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = code_sent_to(t, phone).await;
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    token
}

/// Six codes other than `code`, and `code` among the last ones: what an attacker behind one
/// reference would try.
fn guesses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = code.to_owned();
    for _ in 0..5 {
        c = wrong(&c);
        out.push(c.clone());
    }
    out.insert(3, code.to_owned());
    out
}

/// Sends the guesses behind reference `r1` to `path`: the first is a wrong code (409), every
/// other one reuses the reference with another body (400), and each uses one attempt, so
/// after the wrong-code limit (5) the challenge is dead even for its right code.
async fn guesses_behind_one_reference_use_attempts(
    t: &TestApp,
    token: &str,
    path: &str,
    code: &str,
) {
    let send = |c: String| {
        Req::post(path)
            .auth(LIVE_KEY, token)
            .idem("r1")
            .json(code_body(&c))
    };
    let all = guesses(code);
    t.send(send(all[0].clone()))
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    for c in &all[1..5] {
        t.send(send(c.clone())).await.assert(400);
    }
    // Five attempts used (one wrong code, four mismatches, the right code among them): dead.
    let right = t
        .send(Req::post(path).auth(LIVE_KEY, token).json(code_body(code)))
        .await;
    right.assert(409);
    assert_ne!(
        right.error_code(),
        "",
        "the right code after the limit is refused"
    );
    assert!(
        ["STATE_INVALID", "CHALLENGE_LIMIT_EXCEEDED"].contains(&right.error_code()),
        "{}",
        right.error_code()
    );
}

on_both!(
    enrolment_reference_reuse_counts,
    a_reused_reference_on_enrolment_verify_uses_an_attempt
);
async fn a_reused_reference_on_enrolment_verify_uses_an_attempt(t: TestApp) {
    let phone = phone_for(&t);
    let token = t.token_with("live", "u1", json!({"phone_number": phone}));
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    guesses_behind_one_reference_use_attempts(&t, &token, VERIFY, &code).await;
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")],
        "nothing activated"
    );
}

on_both!(
    step_up_reference_reuse_counts,
    a_reused_reference_on_step_up_verify_uses_an_attempt
);
async fn a_reused_reference_on_step_up_verify_uses_an_attempt(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, &phone, "s1").await;
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    guesses_behind_one_reference_use_attempts(&t, &token, STEP_UP_VERIFY, &code).await;
    // Not stepped up: removing a push factor listed ACTIVE still needs it.
    t.put_factor(
        "live",
        "u1",
        additional_factors::domain::channel::Channel::Biometric,
        additional_factors::domain::factor::FactorStatus::Active,
    )
    .await;
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &token))
        .await
        .assert(403);
}

on_both!(
    payment_reference_reuse_counts,
    a_reused_reference_on_payment_verify_uses_an_attempt
);
async fn a_reused_reference_on_payment_verify_uses_an_attempt(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, &phone, "s1").await;
    let started = t
        .send(
            Req::post(PAY_SMS)
                .auth(LIVE_KEY, &token)
                .json(payment("pay-1", "GB29NWBK60161331926819")),
        )
        .await;
    started.assert(200);
    let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
    let code = code_sent_to(&t, &phone).await;
    let path = format!("/challenges/{id}/otp/SMS/verify");
    guesses_behind_one_reference_use_attempts(&t, &token, &path, &code).await;
    let status = t
        .send(Req::get(&format!("/challenges/{id}")).auth(LIVE_KEY, &token))
        .await;
    status.assert(200);
    assert_eq!(status.body["status"], "DECLINED", "the ladder ended it");
    assert!(status.body.get("proof").is_none());
}

on_both!(
    a_reference_names_its_payment,
    a_reference_used_on_another_payment_challenge_is_a_400
);
async fn a_reference_used_on_another_payment_challenge_is_a_400(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, &phone, "s1").await;
    let start = |reference: &str| {
        Req::post(PAY_SMS)
            .auth(LIVE_KEY, &token)
            .json(payment(reference, "GB29NWBK60161331926819"))
    };
    let a = t.send(start("pay-a")).await;
    a.assert(200);
    let a = a.body["scaChallengeId"].as_str().unwrap().to_owned();
    let code_a = code_sent_to(&t, &phone).await;
    let verify = |id: &str, code: &str| {
        Req::post(&format!("/challenges/{id}/otp/SMS/verify"))
            .auth(LIVE_KEY, &token)
            .idem("same-ref")
            .json(code_body(code))
    };
    let proof = t.send(verify(&a, &code_a)).await;
    proof.assert(200);
    assert!(proof.body["proof"].is_string());
    let b = t.send(start("pay-b")).await;
    b.assert(200);
    let b = b.body["scaChallengeId"].as_str().unwrap().to_owned();
    let code_b = code_sent_to(&t, &phone).await;
    // The same reference and body on challenge B: not A's proof, a 400.
    let crossed = t.send(verify(&b, &code_a)).await;
    crossed.assert(400);
    assert!(crossed.header("idempotent-replayed").is_none());
    assert!(!crossed.raw.contains("proof"));
    // B is still pending, one attempt used: its own code verifies it.
    let own = t
        .send(
            Req::post(&format!("/challenges/{b}/otp/SMS/verify"))
                .auth(LIVE_KEY, &token)
                .json(code_body(&code_b)),
        )
        .await;
    own.assert(200);
    assert_ne!(own.body["proof"], proof.body["proof"]);
    // And A's retry is still A's answer.
    let again = t.send(verify(&a, &code_a)).await;
    again.assert(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["proof"], proof.body["proof"]);
}

on_both!(
    a_reference_names_its_session,
    a_step_up_reference_used_by_another_session_is_a_400
);
async fn a_step_up_reference_used_by_another_session_is_a_400(t: TestApp) {
    let phone = phone_for(&t);
    let s1 = with_sms_factor(&t, &phone, "s1").await;
    let s2 = t.token_with("live", "u1", json!({"phone_number": phone, "sid": "s2"}));
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &s1))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    let verify = |token: &str| {
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, token)
            .idem("step-ref")
            .json(code_body(&code))
    };
    t.send(verify(&s1)).await.assert(204);
    // Session s2 replays s1's request: no 204 for a step-up that never happened.
    let crossed = t.send(verify(&s2)).await;
    crossed.assert(400);
    assert!(crossed.header("idempotent-replayed").is_none());
    t.put_factor(
        "live",
        "u1",
        additional_factors::domain::channel::Channel::Biometric,
        additional_factors::domain::factor::FactorStatus::Active,
    )
    .await;
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &s2))
        .await
        .assert(403);
    // s1's own retry is its replay.
    let again = t.send(verify(&s1)).await;
    again.assert(204);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // Starting a step-up is session-bound too.
    let start = |token: &str| {
        Req::post(STEP_UP_SMS)
            .auth(LIVE_KEY, token)
            .idem("start-ref")
    };
    t.clock.advance(16);
    t.send(start(&s1)).await.assert(204);
    t.send(start(&s2)).await.assert(400);
}

// ---- the allow-list when an SMS is sent; one handset, one spelling ---------------------------

/// A programme `id` under a new api key, sending to `countries` only.
async fn programme_with_countries(t: &TestApp, api_key: &str, id: &str, countries: &[&str]) {
    let mut programme = additional_factors::domain::programme::Programme::new(id, false);
    programme.allowed_country_codes = countries.iter().map(|c| (*c).to_owned()).collect();
    t.add_programme(api_key, programme).await;
}

on_both!(
    the_allow_list_holds_at_send_time,
    cutting_a_country_stops_step_up_and_payment_codes_to_numbers_enrolled_there
);
async fn cutting_a_country_stops_step_up_and_payment_codes_to_numbers_enrolled_there(t: TestApp) {
    let phone = phone_for(&t);
    let key = format!("cut-key-{}", unique());
    let id = format!("cut-{}", unique());
    programme_with_countries(&t, &key, &id, &["44"]).await;
    let token = t.token_with(&id, "u1", json!({"phone_number": phone}));
    t.send(Req::post(SMS).auth(&key, &token)).await.assert(204);
    let code = code_sent_to(&t, &phone).await;
    t.send(Req::post(VERIFY).auth(&key, &token).json(code_body(&code)))
        .await
        .assert(204);
    t.send(Req::post(STEP_UP_SMS).auth(&key, &token))
        .await
        .assert(204);
    // The operator cuts the UK: the same programme now allows France only.
    let cut = format!("cut-key-2-{}", unique());
    programme_with_countries(&t, &cut, &id, &["33"]).await;
    t.clock.advance(16);
    let sent_before = if t.aws.is_some() {
        t.published_to(&phone).await.len()
    } else {
        t.texts_to(&phone).len()
    };
    t.send(Req::post(STEP_UP_SMS).auth(&cut, &token))
        .await
        .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    t.send(
        Req::post(PAY_SMS)
            .auth(&cut, &token)
            .json(payment("pay-cut", "GB29NWBK60161331926819")),
    )
    .await
    .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    t.send(Req::post(SMS).auth(&cut, &token))
        .await
        .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    let sent_after = if t.aws.is_some() {
        t.published_to(&phone).await.len()
    } else {
        t.texts_to(&phone).len()
    };
    assert_eq!(sent_before, sent_after, "no SMS went out");
}

#[tokio::test]
async fn entry_1_is_the_us_and_canada_only() {
    let t = TestApp::new().await;
    programme_with_countries(&t, "nanp-key-0001", "nanp", &["1"]).await;
    programme_with_countries(&t, "jm-key-0001", "jm", &["1876"]).await;
    let jamaica = json!({"phone_number": "+18765550123"});
    t.send(Req::post(SMS).auth(
        "nanp-key-0001",
        &t.token_with("nanp", "u1", jamaica.clone()),
    ))
    .await
    .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    t.send(Req::post(SMS).auth("jm-key-0001", &t.token_with("jm", "u1", jamaica)))
        .await
        .assert(204);
    let us = json!({"phone_number": "+14155550123"});
    t.send(Req::post(SMS).auth("nanp-key-0001", &t.token_with("nanp", "u2", us.clone())))
        .await
        .assert(204);
    t.send(Req::post(SMS).auth("jm-key-0001", &t.token_with("jm", "u2", us)))
        .await
        .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
}

#[tokio::test]
async fn a_trunk_zero_spelling_is_not_a_second_handset() {
    let t = TestApp::new().await;
    for phone in ["+4407700900123", "+33061234567"] {
        let token = t.token_with("live", "u1", json!({"phone_number": phone}));
        t.send(Req::post(SMS).auth(LIVE_KEY, &token))
            .await
            .assert_conflict("MOBILE_NUMBER_INVALID");
        t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
            .await
            .assert_conflict("MOBILE_NUMBER_INVALID");
    }
    // Italy keeps its 0.
    let rome = t.token_with("live", "u2", json!({"phone_number": "+390612345678"}));
    t.send(Req::post(SMS).auth(LIVE_KEY, &rome))
        .await
        .assert(204);
}

// ---- sandbox proofs are not live proofs -------------------------------------------------------

/// The key of `proof`'s `kid` in a JWKS, if it holds one.
fn key_for(jwks: &Value, proof: &str) -> Option<jsonwebtoken::DecodingKey> {
    let kid = jsonwebtoken::decode_header(proof).ok()?.kid?;
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == kid.as_str())?;
    jsonwebtoken::DecodingKey::from_ec_components(jwk["x"].as_str()?, jwk["y"].as_str()?).ok()
}

fn claims_of(key: &jsonwebtoken::DecodingKey, proof: &str) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_issuer(&[PROOF_ISSUER]);
    jsonwebtoken::decode::<Value>(proof, key, &validation)
        .unwrap()
        .claims
}

on_both!(
    sandbox_proofs_are_not_live,
    a_proof_made_with_the_sandbox_s_fixed_code_never_verifies_against_the_live_jwks
);
async fn a_proof_made_with_the_sandbox_s_fixed_code_never_verifies_against_the_live_jwks(
    t: TestApp,
) {
    // Anyone can make this proof: a sandbox programme's code is always 123456.
    let token = t.token_with("sbx", &format!("u{}", unique()), json!({}));
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(
        Req::post(VERIFY)
            .auth(SANDBOX_KEY, &token)
            .json(code_body("123456")),
    )
    .await
    .assert(204);
    let started = t
        .send(
            Req::post(PAY_SMS)
                .auth(SANDBOX_KEY, &token)
                .json(payment("pay-sbx", "GB29NWBK60161331926819")),
        )
        .await;
    started.assert(200);
    let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
    let proof = t
        .send(
            Req::post(&format!("/challenges/{id}/otp/SMS/verify"))
                .auth(SANDBOX_KEY, &token)
                .json(code_body("123456")),
        )
        .await;
    proof.assert(200);
    let proof = proof.body["proof"].as_str().unwrap().to_owned();
    let live = t.send(Req::get("/.well-known/jwks.json")).await;
    live.assert(200);
    assert!(key_for(&live.body, &proof).is_none(), "not a live key");
    let sandbox = t.send(Req::get("/.well-known/sandbox-jwks.json")).await;
    sandbox.assert(200);
    assert_eq!(sandbox.header("cache-control"), Some("public, max-age=300"));
    let key = key_for(&sandbox.body, &proof).expect("the sandbox key");
    let claims = claims_of(&key, &proof);
    assert_eq!(claims["sandbox"], true);
    assert_eq!(claims["amr"], json!(["sms", "otp"]));
    // The two sets share no key.
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(kids(&live.body)
        .iter()
        .all(|kid| !kids(&sandbox.body).contains(kid)));
}
