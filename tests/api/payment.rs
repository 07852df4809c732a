//! Payment challenges (README, *Payment challenges*): one amount to one payee, bound to the code or
//! the push, and a signed proof any payment service verifies offline — checked here with an
//! independent JWS library (`jsonwebtoken`) against the JWKS the API serves.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
};

use additional_factors::{
    domain::{channel::Channel, factor::FactorStatus, programme::Programme},
    proof::{kms::KmsSigner, local::LocalSigner, ProofSigner, PublicKey, SignError},
};
use async_trait::async_trait;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::helpers::*;

const PAY_SMS: &str = "/challenges/otp/SMS";
const PAY_PUSH: &str = "/challenges/push/AUTHY";
const JWKS: &str = "/.well-known/jwks.json";
const SANDBOX_JWKS: &str = "/.well-known/sandbox-jwks.json";

fn body(reference: &str) -> Value {
    json!({"reference": reference, "amount": {"currency": "EUR", "value": 12550},
           "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}})
}

fn verify_path(id: &str) -> String {
    format!("/challenges/{id}/otp/SMS/verify")
}

async fn texts(t: &TestApp, phone: &str) -> Vec<String> {
    if t.aws.is_some() {
        t.published_to(phone).await
    } else {
        t.texts_to(phone)
    }
}

async fn code_sent_to(t: &TestApp, phone: &str) -> String {
    extract_code(texts(t, phone).await.last().unwrap()).unwrap()
}

/// A live user with an ACTIVE SMS factor on `phone`; returns their token.
async fn with_sms_factor(t: &TestApp, phone: &str) -> String {
    let token = t.token_with("live", "u1", json!({"phone_number": phone}));
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

async fn start_sms(t: &TestApp, token: &str, reference: &str) -> Resp {
    t.send(
        Req::post(PAY_SMS)
            .auth(LIVE_KEY, token)
            .json(body(reference)),
    )
    .await
}

fn payment_events(t: &TestApp) -> Vec<Value> {
    t.events
        .events()
        .into_iter()
        .filter(|e| e["type"] == "payment_challenge")
        .collect()
}

/// Verifies a proof as a payment service would: the key by `kid` from the JWKS, ES256 only,
/// the issuer, then the values of the payment about to be made.
pub(crate) fn verify_proof(jwks: &Value, proof: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(proof).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some("sca-proof+jwt") {
        return Err(format!("header {header:?}"));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not in the JWKS")?;
    let key =
        DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
            .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[PROOF_ISSUER]);
    validation.validate_exp = false; // the tests' clock is pinned in the past
    validation.set_required_spec_claims(&["iss", "exp", "sub"]);
    jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// The proof with its payload's `field` changed, the signature kept.
fn tampered(proof: &str, change: impl Fn(&mut Value)) -> String {
    let parts: Vec<&str> = proof.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    change(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

// ---- SMS ------------------------------------------------------------------------------------

on_both!(
    sms_payment,
    an_sms_payment_yields_a_proof_of_exactly_what_was_approved
);
async fn an_sms_payment_yields_a_proof_of_exactly_what_was_approved(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, &phone).await;
    let started = start_sms(&t, &token, "pay_8f2c").await;
    started.assert(200);
    let id = started.body["scaChallengeId"].as_str().unwrap().to_owned();
    assert_eq!(started.body.as_object().unwrap().len(), 1);
    let code = code_sent_to(&t, &phone).await;
    assert_eq!(
        texts(&t, &phone).await.last().unwrap(),
        &format!("{code} approves EUR 125.50 to Acme Ltd (GB29...6819). Never share this code.")
    );
    let verify = |code: &str| {
        Req::post(&verify_path(&id))
            .auth(LIVE_KEY, &token)
            .json(code_body(code))
    };
    t.send(verify(&wrong(&code)))
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    let verified = t.send(verify(&code)).await;
    verified.assert(200);
    let proof = verified.body["proof"].as_str().unwrap().to_owned();
    // GET: the same proof again; a second verify is refused; the reference is final.
    let got = t
        .send(Req::get(&format!("/challenges/{id}")).auth(LIVE_KEY, &token))
        .await;
    got.assert(200);
    assert_eq!(
        got.body,
        json!({"scaChallengeId": id, "status": "VERIFIED", "proof": proof})
    );
    t.send(verify(&code)).await.assert_conflict("STATE_INVALID");
    start_sms(&t, &token, "pay_8f2c")
        .await
        .assert_conflict("STATE_INVALID");
    // The proof, checked offline against the JWKS.
    let jwks = t.send(Req::get(JWKS)).await;
    jwks.assert(200);
    // Cached no longer than a proof lives.
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    let claims = verify_proof(&jwks.body, &proof).unwrap();
    assert_eq!(
        claims,
        json!({
            "iss": PROOF_ISSUER, "sub": "u1", "programme_id": "live", "sca_challenge_id": id,
            "reference": "pay_8f2c", "amount": {"currency": "EUR", "value": 12550},
            "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"},
            "amr": ["sms", "otp"], "sandbox": false, "iat": t.now(), "exp": t.now() + 300,
        })
    );
    // Change any approved value and the proof no longer verifies.
    for change in [
        |c: &mut Value| c["amount"]["value"] = json!(99_999),
        |c: &mut Value| c["amount"]["currency"] = json!("USD"),
        |c: &mut Value| c["payee"]["account"] = json!("GB00ATTACKER0000000000"),
        |c: &mut Value| c["payee"]["name"] = json!("Mallory"),
        |c: &mut Value| c["reference"] = json!("pay_other"),
        |c: &mut Value| c["sub"] = json!("u2"),
        |c: &mut Value| c["programme_id"] = json!("other"),
    ] as [fn(&mut Value); 7]
    {
        assert!(verify_proof(&jwks.body, &tampered(&proof, change)).is_err());
    }
    let events = payment_events(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["status"], "VERIFIED");
    assert_eq!(events[0]["reference"], "pay_8f2c");
    assert_eq!(events[0]["scaChallengeId"], id.as_str());
    assert!(
        !events[0].to_string().contains("GB29NWBK"),
        "never the payee account"
    );
}

on_both!(
    sms_ladder,
    the_ladder_declines_and_the_reference_waits_15_seconds
);
async fn the_ladder_declines_and_the_reference_waits_15_seconds(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, &phone).await;
    let id = start_sms(&t, &token, "r1").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    // One challenge per reference at a time.
    start_sms(&t, &token, "r1")
        .await
        .assert_conflict("STATE_INVALID");
    let code = code_sent_to(&t, &phone).await;
    for expected in [
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "ONE_CHALLENGE_LIMIT_REMAINING",
        "CHALLENGE_LIMIT_EXCEEDED",
    ] {
        t.send(
            Req::post(&verify_path(&id))
                .auth(LIVE_KEY, &token)
                .json(code_body(&wrong(&code))),
        )
        .await
        .assert_conflict(expected);
    }
    t.send(
        Req::post(&verify_path(&id))
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("STATE_INVALID");
    let got = t
        .send(Req::get(&format!("/challenges/{id}")).auth(LIVE_KEY, &token))
        .await;
    assert_eq!(
        got.body,
        json!({"scaChallengeId": id, "status": "DECLINED"})
    );
    start_sms(&t, &token, "r1")
        .await
        .assert_conflict("RETRY_IN_15SEC");
    t.clock.advance(15);
    let second = start_sms(&t, &token, "r1").await;
    second.assert(200);
    let second = second.body["scaChallengeId"].as_str().unwrap().to_owned();
    // Expiry: 5 minutes, read by the service.
    t.clock.advance(300);
    let code = code_sent_to(&t, &phone).await;
    t.send(
        Req::post(&verify_path(&second))
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_EXPIRED");
    let got = t
        .send(Req::get(&format!("/challenges/{second}")).auth(LIVE_KEY, &token))
        .await;
    assert_eq!(got.body["status"], "EXPIRED");
    start_sms(&t, &token, "r1").await.assert(200);
    let statuses: Vec<_> = payment_events(&t)
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["DECLINED"]);
}

on_both!(refusals, every_refusal_of_a_payment_challenge);
async fn every_refusal_of_a_payment_challenge(t: TestApp) {
    let phone = phone_for(&t);
    let token = t.token_with("live", "u1", json!({"phone_number": phone}));
    start_sms(&t, &token, "r1")
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    let token = with_sms_factor(&t, &phone).await;
    let other_phone = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    start_sms(&t, &other_phone, "r1")
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    // Validation lists every invalid field by its JSON path.
    let r = t
        .send(Req::post(PAY_SMS).auth(LIVE_KEY, &token).json(
            json!({"reference": "", "amount": {"currency": "XYZ", "value": 1.5},
                             "payee": {"name": "A\u{0}", "account": "x".repeat(35)}}),
        ))
        .await;
    r.assert(400);
    let fields: Vec<(String, String)> = r
        .fields()
        .into_iter()
        .map(|(name, error, _)| (name, error))
        .collect();
    assert_eq!(
        fields,
        [
            ("reference".into(), "SIZE".into()),
            ("amount.currency".into(), "IN".into()),
            ("amount.value".into(), "REGEX".into()),
            ("payee.name".into(), "REGEX".into()),
            ("payee.account".into(), "SIZE".into()),
        ]
    );
    t.send(
        Req::post("/challenges/otp/EMAIL")
            .auth(LIVE_KEY, &token)
            .json(body("r1")),
    )
    .await
    .assert_field("channel", "IN", &["SMS"]);
    t.send(Req::post(PAY_SMS).auth(LIVE_KEY, &token).body("{not json"))
        .await
        .assert(400);
    // Unknown ids, and another user's, are 404s on GET and verify.
    let id = start_sms(&t, &token, "r1").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = t.token_with("live", "u2", json!({"phone_number": phone}));
    for who in [&token, &stranger] {
        let unknown = if who == &token { "nope" } else { id.as_str() };
        t.send(Req::get(&format!("/challenges/{unknown}")).auth(LIVE_KEY, who))
            .await
            .assert(404);
        t.send(
            Req::post(&verify_path(unknown))
                .auth(LIVE_KEY, who)
                .json(code_body("123456")),
        )
        .await
        .assert(404);
    }
    // The simulator answers push challenges only.
    t.send(Req::post(&format!("/simulate/challenges/{id}/accept")).auth(LIVE_KEY, &token))
        .await
        .assert(404);
    let mut no_sms = Programme::new("no-sms", false);
    no_sms.enabled_channels = vec![Channel::Authy];
    t.add_programme("no-sms-key-00000001", no_sms).await;
    t.send(
        Req::post(PAY_SMS)
            .auth("no-sms-key-00000001", &t.token("no-sms", "u1"))
            .json(body("r1")),
    )
    .await
    .assert_conflict("CHANNEL_NOT_SUPPORTED");
}

#[tokio::test]
async fn payment_sms_share_the_send_limits() {
    let t = TestApp::new().await;
    let mut p = Programme::new("tight", false);
    p.send_limits.per_user_per_hour = 1;
    t.add_programme("tight-key-00000001", p).await;
    let token = t.token("tight", "u1");
    t.send(Req::post(SMS).auth("tight-key-00000001", &token))
        .await
        .assert(204);
    t.send(
        Req::post(VERIFY)
            .auth("tight-key-00000001", &token)
            .json(code_body(&t.last_code(PHONE))),
    )
    .await
    .assert(204);
    let r = t
        .send(
            Req::post(PAY_SMS)
                .auth("tight-key-00000001", &token)
                .json(body("r1")),
        )
        .await;
    r.assert(429);
    assert_eq!(
        r.header("x-ratelimit-limit"),
        Some("1, 1;w=3600, 20;w=86400")
    );
    // Nothing was written: the reference is free once the window turns.
    t.clock.advance(3_600);
    let token = t.token("tight", "u1");
    t.send(
        Req::post(PAY_SMS)
            .auth("tight-key-00000001", &token)
            .json(body("r1")),
    )
    .await
    .assert(200);
}

#[tokio::test]
async fn an_idempotent_payment_sms_is_sent_once_and_a_long_payee_is_cut_not_the_amount() {
    let t = TestApp::new().await;
    let token = with_sms_factor(&t, PHONE).await;
    let long = json!({"reference": "r-long", "amount": {"currency": "KWD", "value": 1_234_567},
                      "payee": {"name": "N".repeat(70), "account": "KW81CBKU0000000000001234560101"}});
    let first = t
        .send(
            Req::post(PAY_SMS)
                .auth(LIVE_KEY, &token)
                .idem("p1")
                .json(long.clone()),
        )
        .await;
    first.assert(200);
    let again = t
        .send(
            Req::post(PAY_SMS)
                .auth(LIVE_KEY, &token)
                .idem("p1")
                .json(long),
        )
        .await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let sent = t.texts_to(PHONE);
    assert_eq!(sent.len(), 2, "the enrolment's and one payment SMS");
    let text = sent.last().unwrap();
    assert!(text.contains("approves KWD 1234.567 to NNNN"), "{text}");
    assert!(text.chars().count() <= 160, "one GSM-7 segment: {text}");
    assert!(text.ends_with(". Never share this code."));
}

/// A signer that fails its first `n` signatures, as KMS throttling would.
struct FlakySigner {
    inner: LocalSigner,
    failures: AtomicU32,
}

#[async_trait]
impl ProofSigner for FlakySigner {
    async fn current_key(&self) -> Result<PublicKey, SignError> {
        self.inner.current_key().await
    }
    async fn public_keys(&self) -> Result<Vec<PublicKey>, SignError> {
        self.inner.public_keys().await
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SignError::new("KMS throttled"));
        }
        self.inner.sign(message).await
    }
}

#[tokio::test]
async fn a_signing_failure_is_a_503_that_consumes_nothing() {
    let mut t = TestApp::new().await;
    let signer = Arc::new(FlakySigner {
        inner: LocalSigner::generate().unwrap(),
        failures: AtomicU32::new(1),
    });
    Arc::get_mut(&mut t.app).unwrap().proof_keys.live = signer;
    let token = with_sms_factor(&t, PHONE).await;
    let id = start_sms(&t, &token, "r1").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = t.last_code(PHONE);
    let verify = || {
        Req::post(&verify_path(&id))
            .auth(LIVE_KEY, &token)
            .idem("v1")
            .json(code_body(&code))
    };
    t.send(verify()).await.assert(503);
    let got = t
        .send(Req::get(&format!("/challenges/{id}")).auth(LIVE_KEY, &token))
        .await;
    assert_eq!(got.body["status"], "PENDING", "nothing consumed");
    // The retry of the same request compares its own counted attempt again: a proof.
    let r = t.send(verify()).await;
    r.assert(200);
    assert!(r.body["proof"].is_string());
    assert_eq!(payment_events(&t).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parallel_wrong_payment_guesses_on_dynamodb_compare_at_most_five() {
    let t = Arc::new(TestApp::on_aws().await);
    let phone = unique_phone();
    let token = with_sms_factor(&t, &phone).await;
    let id = start_sms(&t, &token, "r-brute").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = t.last_published_code(&phone).await;
    let compared_before = t.app.context.metrics.codes_compared();
    let limiter = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let (t, token, limiter, id) = (t.clone(), token.clone(), limiter.clone(), id.clone());
            let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
            tokio::spawn(async move {
                let _permit = limiter.acquire().await.unwrap();
                t.send(
                    Req::post(&verify_path(&id))
                        .auth(LIVE_KEY, &token)
                        .json(code_body(&guess)),
                )
                .await
            })
        })
        .collect();
    let mut answers: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 409, "{}", r.raw);
        *answers.entry(r.error_code().to_owned()).or_default() += 1;
    }
    assert_eq!(t.app.context.metrics.codes_compared() - compared_before, 5);
    assert_eq!(answers.get("STATE_INVALID"), Some(&995), "{answers:?}");
}

// ---- push -----------------------------------------------------------------------------------

async fn with_authy_factor(t: &TestApp) -> String {
    let token = t.token("sbx", "u1");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    token
}

on_both!(
    push_payment,
    a_push_payment_approved_in_the_sandbox_yields_a_sandbox_proof
);
async fn a_push_payment_approved_in_the_sandbox_yields_a_sandbox_proof(t: TestApp) {
    let token = with_authy_factor(&t).await;
    let start = |reference: &str| {
        Req::post(PAY_PUSH)
            .auth(SANDBOX_KEY, &token)
            .json(body(reference))
    };
    let r = t.send(start("r1")).await;
    r.assert(200);
    let id = r.body["scaChallengeId"].as_str().unwrap().to_owned();
    let get = |id: &str| Req::get(&format!("/challenges/{id}")).auth(SANDBOX_KEY, &token);
    assert_eq!(t.send(get(&id)).await.body["status"], "PENDING");
    let accept = format!("/simulate/challenges/{id}/accept");
    t.send(Req::post(&accept).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    let got = t.send(get(&id)).await;
    assert_eq!(got.body["status"], "VERIFIED");
    // A sandbox proof: signed by the sandbox key, published only in the sandbox JWKS.
    let proof = got.body["proof"].as_str().unwrap();
    let live = t.send(Req::get(JWKS)).await.body;
    assert_eq!(
        verify_proof(&live, proof),
        Err("kid not in the JWKS".into())
    );
    let sandbox = t.send(Req::get(SANDBOX_JWKS)).await.body;
    let claims = verify_proof(&sandbox, proof).unwrap();
    assert_eq!(
        claims["amr"],
        json!(["swk", "user"]),
        "Authy holds a software key"
    );
    assert_eq!(claims["sandbox"], true);
    assert_eq!(claims["sub"], "u1");
    assert_eq!(claims["programme_id"], "sbx");
    t.send(Req::post(&accept).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("STATE_INVALID");
    // Denied, then a new challenge for the same reference may start (no 15 s wait: no SMS).
    let r = t.send(start("r2")).await;
    let denied = r.body["scaChallengeId"].as_str().unwrap().to_owned();
    t.send(Req::post(&format!("/simulate/challenges/{denied}/reject")).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        t.send(get(&denied)).await.body,
        json!({"scaChallengeId": denied, "status": "DECLINED"})
    );
    t.send(start("r2")).await.assert(200);
    // The simulator in a live programme is a 404.
    t.send(Req::post(&accept).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(404);
    let statuses: Vec<_> = payment_events(&t)
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap().to_owned(),
                e["channel"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("VERIFIED".to_owned(), json!("AUTHY")),
            ("DECLINED".to_owned(), json!("AUTHY"))
        ]
    );
}

#[tokio::test]
async fn push_payments_need_an_active_authy_factor_and_count_as_push_requests() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(
        Req::post(PAY_PUSH)
            .auth(SANDBOX_KEY, &token)
            .json(body("r1")),
    )
    .await
    .assert_conflict("CHANNEL_NOT_REGISTERED");
    let mut p = Programme::new("bombed", true);
    p.send_limits.push_per_user_per_hour = 2;
    t.add_programme("bombed-key-00000001", p).await;
    let token = t.token("bombed", "u1");
    t.send(Req::post(AUTHY).auth("bombed-key-00000001", &token))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth("bombed-key-00000001", &token))
        .await
        .assert(204);
    t.send(
        Req::post(PAY_PUSH)
            .auth("bombed-key-00000001", &token)
            .json(body("r1")),
    )
    .await
    .assert(200);
    t.send(
        Req::post(PAY_PUSH)
            .auth("bombed-key-00000001", &token)
            .json(body("r2")),
    )
    .await
    .assert_conflict("CHALLENGE_LIMIT_EXCEEDED");
    // Unlinking Authy voids its pending payment challenges.
    t.put_factor("bombed", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let id = {
        let mut q = Programme::new("roomy", true);
        q.send_limits.push_per_user_per_hour = 10;
        t.add_programme("roomy-key-000000001", q).await;
        let token = t.token("roomy", "u1");
        t.send(Req::post(AUTHY).auth("roomy-key-000000001", &token))
            .await
            .assert(204);
        t.send(Req::post(ACCEPT).auth("roomy-key-000000001", &token))
            .await
            .assert(204);
        let r = t
            .send(
                Req::post(PAY_PUSH)
                    .auth("roomy-key-000000001", &token)
                    .json(body("r1")),
            )
            .await;
        r.body["scaChallengeId"].as_str().unwrap().to_owned()
    };
    let roomy = t.token_with("roomy", "u1", json!({"amr": ["mfa"]}));
    t.send(Req::delete(AUTHY).auth("roomy-key-000000001", &roomy))
        .await
        .assert(204);
    t.send(
        Req::post(&format!("/simulate/challenges/{id}/accept")).auth("roomy-key-000000001", &roomy),
    )
    .await
    .assert_conflict("STATE_INVALID");
}

/// Authy answers each approval request with a new uuid.
struct Uuids(AtomicU32);

impl wiremock::Respond for Uuids {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        wiremock::ResponseTemplate::new(200).set_body_json(
            json!({"approval_request": {"uuid": format!("uuid-{n}")}, "success": true}),
        )
    }
}

#[tokio::test]
async fn a_live_push_payment_shows_amount_and_payee_and_its_callback_yields_a_proof() {
    use wiremock::{
        matchers::{method, path},
        Mock, MockServer, ResponseTemplate,
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/protected/json/users/new"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"user": {"id": 7}, "success": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/onetouch/json/users/7/approval_requests"))
        .respond_with(Uuids(AtomicU32::new(0)))
        .mount(&server)
        .await;
    let provider = additional_factors::push::authy::AuthyPushProvider::new(
        server.uri(),
        AUTHY_KEY,
        std::time::Duration::from_secs(3),
    )
    .unwrap();
    let t = TestApp::with_push_provider(Arc::new(provider)).await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.send(t.authy_callback(&json!({"uuid": "uuid-0", "status": "approved"})))
        .await
        .assert(200);
    let r = t
        .send(Req::post(PAY_PUSH).auth(LIVE_KEY, &token).json(body("r1")))
        .await;
    r.assert(200);
    let id = r.body["scaChallengeId"].as_str().unwrap().to_owned();
    let requests = server.received_requests().await.unwrap();
    let pushed = String::from_utf8(requests.last().unwrap().body.clone()).unwrap();
    assert!(
        pushed.contains(
            "message=live%3A%20approve%20EUR%20125.50%20to%20Acme%20Ltd%20%28GB29...6819%29"
        ),
        "{pushed}"
    );
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": "uuid-1", "status": "approved"})))
        .await
        .assert(200);
    let got = t
        .send(Req::get(&format!("/challenges/{id}")).auth(LIVE_KEY, &token))
        .await;
    assert_eq!(got.body["status"], "VERIFIED");
    let jwks = t.send(Req::get(JWKS)).await.body;
    let claims = verify_proof(&jwks, got.body["proof"].as_str().unwrap()).unwrap();
    assert_eq!(claims["amount"], json!({"currency": "EUR", "value": 12550}));
    assert_eq!(
        claims["amr"],
        json!(["swk", "user"]),
        "Authy holds a software key"
    );
    assert_eq!(claims["sandbox"], false);
    // Live keys only in the live JWKS; the sandbox JWKS holds none of them.
    let sandbox = t.send(Req::get(SANDBOX_JWKS)).await.body;
    assert!(verify_proof(&sandbox, got.body["proof"].as_str().unwrap()).is_err());
}

// ---- KMS ------------------------------------------------------------------------------------

/// A proof signed by an asymmetric ECC_NIST_P256 key in the local AWS-compatible server's
/// KMS, verified with the independent library against the JWKS built from `GetPublicKey`;
/// after a rotation the JWKS lists both keys and old proofs still verify.
#[tokio::test]
async fn kms_signed_proofs_verify_against_the_jwks_across_a_rotation() {
    let config = additional_factors::aws::sdk_config(Some(&aws_endpoint())).await;
    let kms = aws_sdk_kms::Client::new(&config);
    let create = || async {
        kms.create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned()
    };
    let (old, new) = (create().await, create().await);
    let mut t = TestApp::new().await;
    Arc::get_mut(&mut t.app).unwrap().proof_keys.live =
        Arc::new(KmsSigner::new(kms.clone(), old.clone(), None));
    let token = with_sms_factor(&t, PHONE).await;
    let id = start_sms(&t, &token, "r1").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let proof = t
        .send(
            Req::post(&verify_path(&id))
                .auth(LIVE_KEY, &token)
                .json(code_body(&t.last_code(PHONE))),
        )
        .await
        .body["proof"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = t.send(Req::get(JWKS)).await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let claims = verify_proof(&jwks, &proof).unwrap();
    assert_eq!(claims["sca_challenge_id"], id.as_str());
    assert!(verify_proof(
        &jwks,
        &tampered(&proof, |c| c["amount"]["value"] = json!(1))
    )
    .is_err());
    // Rotation: the new key signs, the JWKS lists the new key and the previous one.
    let rotated = KmsSigner::new(kms, new, Some(old));
    Arc::get_mut(&mut t.app).unwrap().proof_keys.live = Arc::new(rotated);
    let jwks = t.send(Req::get(JWKS)).await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    verify_proof(&jwks, &proof).unwrap();
    t.clock.advance(15);
    let second = start_sms(&t, &token, "r2").await.body["scaChallengeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let proof = t
        .send(
            Req::post(&verify_path(&second))
                .auth(LIVE_KEY, &token)
                .json(code_body(&t.last_code(PHONE))),
        )
        .await
        .body["proof"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&proof).unwrap();
    assert_eq!(header.kid.as_deref(), jwks["keys"][0]["kid"].as_str());
    verify_proof(&jwks, &proof).unwrap();
}
