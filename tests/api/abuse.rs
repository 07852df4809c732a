//! Abuse-proof: what strangers, hostile tenants and other users try, and what they get.
//! Each test here failed before its fix (SECURITY.md, "Attacks measured").

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use additional_factors::{
    app::DeploymentPolicy,
    domain::{
        channel::Channel,
        factor::FactorStatus,
        programme::{Countries, Programme},
        send_limits::{SendLimits, SmsBudget},
    },
    http::router::{Route, MAX_CALLBACK_BODY_BYTES, MAX_USER_BODY_BYTES},
    push::authy::AuthyPushProvider,
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, Request, Respond, ResponseTemplate,
};

use crate::helpers::*;

// ---- 1. bounded input ---------------------------------------------------------------------

/// A body of `n` bytes shaped like the 984 MB attack: `[0,0,0,...]`.
fn zeros(n: usize) -> Vec<u8> {
    let mut body = b"[0".to_vec();
    while body.len() + 3 <= n {
        body.extend_from_slice(b",0");
    }
    body.push(b']');
    body
}

#[tokio::test]
async fn every_route_refuses_a_body_over_its_cap_with_413_before_anything_else() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    for route in Route::ALL {
        let cap = route.max_body_bytes();
        assert!(
            cap <= MAX_CALLBACK_BODY_BYTES,
            "{route:?}: a few KB at most"
        );
        let path = route.path_template().replace("{channel}", "SMS");
        // No credentials at all: a stranger's huge body costs nothing.
        for body in [zeros(cap + 1), zeros(6 * 1024 * 1024)] {
            let r = t.send(Req::new(route.method(), &path).body(&body)).await;
            r.assert(413);
            assert!(r.body["message"].is_string(), "{route:?}");
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        // With credentials and an idempotency-ref, still 413 and nothing claimed.
        t.send(
            Req::new(route.method(), &path)
                .auth(LIVE_KEY, &token)
                .idem("big-1")
                .body(zeros(cap + 1)),
        )
        .await
        .assert(413);
    }
    assert!(t.sms.sent().is_empty());
    // At the cap, a route answers as usual (here: a JSON array is not the verify body).
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("big-1")
            .body(zeros(MAX_USER_BODY_BYTES)),
    )
    .await
    .assert(400);
}

#[tokio::test]
async fn a_callback_with_a_stale_nonce_or_too_many_parameters_is_refused() {
    let t = TestApp::new().await;
    // A stale nonce is refused whatever the body (it is not even parsed).
    let stale = Req::post(CALLBACK)
        .header("x-authy-signature-nonce", (t.now() - 301).to_string())
        .header("x-authy-signature", "AAAA")
        .body("not json at all");
    t.send(stale).await.assert(401);
    // A signed body that flattens to more parameters than any Authy callback holds.
    let many: Vec<Value> = (0..300).map(|i| json!(i)).collect();
    t.send(t.authy_callback(&json!({"uuid": "x", "status": "approved", "pad": many})))
        .await
        .assert(401);
    // A genuine one still passes.
    t.send(t.authy_callback(&json!({"uuid": "unknown", "status": "approved"})))
        .await
        .assert(200);
}

// ---- 2. SMS pumping -------------------------------------------------------------------------

fn uk_only() -> DeploymentPolicy {
    DeploymentPolicy {
        default_countries: Countries::Only(vec!["44".into()]),
        ..DeploymentPolicy::default()
    }
}

#[tokio::test]
async fn live_programmes_naming_no_country_send_only_where_the_deployment_allows() {
    let mut t = TestApp::new().await;
    t.set_policy(uk_only());
    let us = json!({"phone_number": "+12025550143"});
    for route in [SMS, AUTHY] {
        t.send(Req::post(route).auth(LIVE_KEY, &t.token_with("live", "u1", us.clone())))
            .await
            .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
    }
    assert!(t.sms.sent().is_empty());
    t.send(Req::post(SMS).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(204);
    // A sandbox sends nothing: it keeps every country.
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &t.token_with("sbx", "u1", us.clone())))
        .await
        .assert(204);
    // A programme's own list wins over the deployment's.
    let mut americas = Programme::new("americas", false);
    americas.allowed_country_codes = vec!["1".into()];
    t.add_programme("americas-key-0000001", americas).await;
    t.send(Req::post(SMS).auth("americas-key-0000001", &t.token_with("americas", "u1", us)))
        .await
        .assert(204);
    t.send(Req::post(SMS).auth("americas-key-0000001", &t.token("americas", "u2")))
        .await
        .assert_conflict("MOBILE_COUNTRY_NOT_SUPPORTED");
}

#[tokio::test]
async fn the_deployment_s_sms_budget_holds_across_programmes() {
    let mut t = TestApp::new().await;
    t.set_policy(DeploymentPolicy {
        sms_budget: SmsBudget {
            per_hour: 3,
            per_day: 50,
        },
        ..DeploymentPolicy::default()
    });
    for i in 0..3 {
        let id = format!("tenant{i}");
        let key = format!("tenant-key-000000000{i}");
        t.add_programme(&key, Programme::new(&id, false)).await;
        let phone = json!({"phone_number": format!("+4477009001{i}0")});
        t.send(Req::post(SMS).auth(&key, &t.token_with(&id, "u", phone)))
            .await
            .assert(204);
    }
    let r = t
        .send(Req::post(SMS).auth(
            LIVE_KEY,
            &t.token_with("live", "u9", json!({"phone_number": OTHER_PHONE})),
        ))
        .await;
    r.assert(429);
    assert_eq!(
        r.header("x-ratelimit-limit"),
        Some("3, 3;w=3600, 50;w=86400")
    );
    assert_eq!(r.header("retry-after"), Some("3570"));
    assert_eq!(t.sms.sent().len(), 3, "the budget's 429 sent nothing");
    // Sandboxes spend no budget.
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &t.token("sbx", "u1")))
        .await
        .assert(204);
}

#[tokio::test]
async fn a_programme_limits_sms_per_country_per_day() {
    let t = TestApp::new().await;
    let mut p = Programme::new("pumped", false);
    p.send_limits.per_country_per_day_overrides = [("44".to_owned(), 2)].into();
    t.add_programme("pumped-key-00000001", p).await;
    for i in 0..2 {
        let phone = json!({"phone_number": format!("+4477009002{i}0")});
        t.send(Req::post(SMS).auth(
            "pumped-key-00000001",
            &t.token_with("pumped", &format!("u{i}"), phone),
        ))
        .await
        .assert(204);
    }
    let r = t
        .send(Req::post(SMS).auth("pumped-key-00000001", &t.token("pumped", "u9")))
        .await;
    r.assert(429);
    assert_eq!(r.header("x-ratelimit-limit"), Some("2, 2;w=86400"));
    // Another country of the same programme is not limited by it.
    t.send(Req::post(SMS).auth(
        "pumped-key-00000001",
        &t.token_with("pumped", "u8", json!({"phone_number": "+33612345678"})),
    ))
    .await
    .assert(204);
}

#[tokio::test]
async fn push_enrolments_are_limited_per_number_across_users() {
    let t = TestApp::new().await;
    let mut p = Programme::new("pushy", true);
    p.send_limits = SendLimits {
        push_per_number_per_day: 2,
        ..SendLimits::default()
    };
    t.add_programme("pushy-key-000000001", p).await;
    for user in ["a", "b"] {
        t.send(Req::post(AUTHY).auth("pushy-key-000000001", &t.token("pushy", user)))
            .await
            .assert(204);
    }
    t.send(Req::post(AUTHY).auth("pushy-key-000000001", &t.token("pushy", "c")))
        .await
        .assert_conflict("CHALLENGE_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn counters_come_back_only_when_sns_definitely_sent_nothing() {
    let t = TestApp::new().await;
    let mut p = Programme::new("one", false);
    p.send_limits.per_user_per_hour = 1;
    t.add_programme("one-key-00000000001", p).await;
    let token = t.token("one", "u1");
    // A definite refusal: the counter is given back, the retry works.
    t.sms.fail_next(1);
    t.send(Req::post(SMS).auth("one-key-00000000001", &token))
        .await
        .assert(503);
    t.send(Req::post(SMS).auth("one-key-00000000001", &token))
        .await
        .assert(204);
    // An unknown outcome (a timeout): the SMS may have left, so it still counts.
    let token = t.token_with("one", "u2", json!({"phone_number": OTHER_PHONE}));
    t.sms.fail_next_unknown(1);
    t.send(Req::post(SMS).auth("one-key-00000000001", &token))
        .await
        .assert(503);
    t.send(Req::post(SMS).auth("one-key-00000000001", &token))
        .await
        .assert(429);
}

// ---- 3. sandbox never costs live users anything --------------------------------------------

#[tokio::test]
async fn ten_sandbox_enrolments_with_a_live_user_s_number_cost_the_live_user_nothing() {
    let t = TestApp::new().await;
    for i in 0..10 {
        t.send(Req::post(SMS).auth(SANDBOX_KEY, &t.token("sbx", &format!("tester{}", i / 5))))
            .await
            .assert(204);
    }
    // The sandbox's own per-number counter is full...
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &t.token("sbx", "tester9")))
        .await
        .assert(429);
    // ...the live number's is untouched.
    t.send(Req::post(SMS).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(204);
}

// ---- 4. one person, two programmes ---------------------------------------------------------

/// Authy answers each approval request with a new uuid.
struct NewUuidEachTime(AtomicU32);

impl Respond for NewUuidEachTime {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(
            json!({"approval_request": {"uuid": format!("uuid-{n}")}, "success": true}),
        )
    }
}

#[tokio::test]
async fn unlinking_in_one_programme_keeps_the_authy_user_another_programme_uses() {
    let server = MockServer::start().await;
    // Authy gives the same phone the same user id, whichever programme registers it.
    Mock::given(method("POST"))
        .and(path("/protected/json/users/new"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"user": {"id": 555}, "success": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/onetouch/json/users/555/approval_requests"))
        .respond_with(NewUuidEachTime(AtomicU32::new(0)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/protected/json/users/555/remove"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&server)
        .await;
    let provider = AuthyPushProvider::new(server.uri(), AUTHY_KEY, Duration::from_secs(3)).unwrap();
    let t = TestApp::with_push_provider(Arc::new(provider)).await;
    t.add_programme("second-key-00000001", Programme::new("second", false))
        .await;
    for (n, (key, programme)) in [(LIVE_KEY, "live"), ("second-key-00000001", "second")]
        .into_iter()
        .enumerate()
    {
        t.send(Req::post(AUTHY).auth(key, &t.token(programme, "u1")))
            .await
            .assert(204);
        t.send(t.authy_callback(&json!({"uuid": format!("uuid-{n}"), "status": "approved"})))
            .await
            .assert(200);
        assert_eq!(
            listed(&t, key, &t.token(programme, "u1")).await,
            [row("PUSH", "AUTHY", "ACTIVE")]
        );
    }
    let removals = || async {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/remove"))
            .count()
    };
    let mfa = |programme: &str| t.token_with(programme, "u1", json!({"amr": ["mfa"]}));
    t.send(Req::delete(AUTHY).auth(LIVE_KEY, &mfa("live")))
        .await
        .assert(204);
    assert_eq!(
        removals().await,
        0,
        "the other programme's factor still uses it"
    );
    assert_eq!(
        listed(&t, "second-key-00000001", &t.token("second", "u1")).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    // The last factor that uses it goes: now Authy forgets the user.
    t.send(Req::delete(AUTHY).auth("second-key-00000001", &mfa("second")))
        .await
        .assert(204);
    assert_eq!(removals().await, 1);
}

// ---- 5. retried verifications cannot compare for free ---------------------------------------

#[tokio::test]
async fn a_reused_reference_with_another_code_counts_another_attempt() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    // The first wrong guess is counted, but its answer is never kept (the put that would keep
    // it fails): no record holds the reference.
    t.memory().fail_operation("keep_idempotency");
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("r1")
            .json(code_body(&wrong(&code))),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    let user = t.user("live", "u1");
    assert_eq!(t.memory().challenge_attempts(&user), Some(1));
    t.clock.advance(61);
    // The same reference with another code is another attempt, counted before it is compared.
    let other_wrong = wrong(&wrong(&code));
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("r1")
            .json(code_body(&other_wrong)),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(t.memory().challenge_attempts(&user), Some(2));
}

#[tokio::test]
async fn a_right_codes_answer_is_kept_in_its_own_write_and_announced_once() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    // The answer rides in the activation's write: no separate recording that could fail.
    let verify = |token: &str| {
        Req::post(VERIFY)
            .auth(LIVE_KEY, token)
            .idem("v1")
            .json(code_body(&code))
    };
    t.send(verify(&token)).await.assert(204);
    let user = t.user("live", "u1");
    let again = t.send(verify(&token)).await;
    again.assert(204);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The same user's same request from a token with another phone: the kept answer, which
    // tells nothing new; the factor stays on the first phone.
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    let replayed = t.send(verify(&other)).await;
    replayed.assert(204);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        t.memory().challenge_attempts(&user),
        None,
        "the challenge is consumed"
    );
    let active: Vec<_> = t
        .events
        .events()
        .into_iter()
        .filter(|e| e["status"] == "ACTIVE")
        .collect();
    assert_eq!(active.len(), 1, "ACTIVE announced once: {active:?}");
}

/// A reference used again with another code is a 400 that still uses an attempt: the code
/// was counted before the reference could be claimed, and compared; a right one activates
/// nothing (`seams.rs` runs the whole ladder behind one reference on both stores).
#[tokio::test]
async fn a_reused_reference_with_another_code_is_a_400_that_uses_an_attempt() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    let user = t.user("live", "u1");
    let with_ref = |code: &str| {
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("r1")
            .json(code_body(code))
    };
    t.send(with_ref(&wrong(&code)))
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(t.memory().challenge_attempts(&user), Some(1));
    t.send(with_ref(&wrong(&wrong(&code)))).await.assert(400);
    assert_eq!(t.memory().challenge_attempts(&user), Some(2));
    t.send(with_ref(&code)).await.assert(400);
    assert_eq!(t.memory().challenge_attempts(&user), Some(3));
    // The same mismatched request again is the same attempt: not counted twice.
    t.send(with_ref(&code)).await.assert(400);
    assert_eq!(t.memory().challenge_attempts(&user), Some(3));
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "PENDING_VERIFICATION")],
        "a mismatched right code activates nothing"
    );
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
}

/// A retried wrong guess is the same attempt: not counted again, even after other attempts
/// on the same challenge (the challenge keeps every attempt's id, not only the last).
#[tokio::test]
async fn a_retried_wrong_guess_is_not_counted_again_after_other_attempts() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    let user = t.user("live", "u1");
    // Its answer is lost: the retry runs again, and finds its attempt counted.
    t.memory().fail_operation("keep_idempotency");
    let first = || {
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("w1")
            .json(code_body(&wrong(&code)))
    };
    t.send(first())
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&wrong(&wrong(&code)))),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(t.memory().challenge_attempts(&user), Some(2));
    t.send(first())
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(
        t.memory().challenge_attempts(&user),
        Some(2),
        "not counted again"
    );
    // Now kept: the next retry is a replay.
    let replayed = t.send(first()).await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(t.memory().challenge_attempts(&user), Some(2));
    // And the right code still works.
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
}

// ---- 6. step-up is fresh --------------------------------------------------------------------

#[tokio::test]
async fn a_stepped_up_token_counts_only_while_its_second_factor_is_fresh() {
    let t = TestApp::new().await;
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let t = &t;
    let enrol = |claims: Value| {
        let token = t.token_with("live", "u1", claims);
        async move { t.send(Req::post(AUTHY).auth(LIVE_KEY, &token)).await }
    };
    let now = t.now();
    enrol(json!({"amr": ["mfa"], "iat": now - 900}))
        .await
        .assert(204);
    enrol(json!({"amr": ["mfa"], "iat": now - 901}))
        .await
        .assert(403);
    // auth_time wins over iat: a token refreshed later is as fresh as its authentication.
    enrol(json!({"amr": ["mfa"], "iat": now, "auth_time": now - 901}))
        .await
        .assert(403);
    enrol(json!({"amr": ["mfa"], "iat": now - 5000, "auth_time": now - 10}))
        .await
        .assert(204);
    // With neither time, mfa proves nothing.
    enrol(json!({"amr": ["mfa"], "iat": null}))
        .await
        .assert(403);
    // The programme sets its own freshness.
    let mut strict = Programme::new("strict", false);
    strict.step_up_max_age_seconds = 60;
    t.add_programme("strict-key-00000001", strict).await;
    t.put_factor("strict", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let stale = t.token_with("strict", "u1", json!({"amr": ["mfa"], "iat": now - 61}));
    t.send(Req::post(AUTHY).auth("strict-key-00000001", &stale))
        .await
        .assert(403);
}
