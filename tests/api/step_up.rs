//! Step-up challenges (README, *Step-up*): every status and errorCode of the step-up
//! routes, on the memory store and on DynamoDB/SNS, and the session they step up.

use std::{collections::HashMap, sync::Arc};

use additional_factors::domain::{
    channel::Channel, factor::FactorStatus, programme::Programme, send_limits::SendLimits,
};
use serde_json::{json, Value};

use crate::helpers::*;

/// A live user with an ACTIVE SMS factor on `phone`; returns their token.
async fn with_sms_factor(
    t: &TestApp,
    key: &str,
    programme: &str,
    user: &str,
    phone: &str,
) -> String {
    let token = t.token_with(programme, user, json!({"phone_number": phone}));
    t.send(Req::post(SMS).auth(key, &token)).await.assert(204);
    let code = code_sent_to(t, phone).await;
    t.send(Req::post(VERIFY).auth(key, &token).json(code_body(&code)))
        .await
        .assert(204);
    token
}

fn step_up_events(t: &TestApp) -> Vec<Value> {
    t.events
        .events()
        .into_iter()
        .filter(|e| e["type"] == "stepup")
        .collect()
}

// ---- SMS ------------------------------------------------------------------------------------

on_both!(
    sms_steps_up_the_session,
    an_sms_step_up_steps_up_its_session_only
);
async fn an_sms_step_up_steps_up_its_session_only(t: TestApp) {
    let phone = phone_for(&t);
    let claims = |sid: &str| json!({"phone_number": phone, "sid": sid});
    let token = with_sms_factor(&t, LIVE_KEY, "live", "u1", &phone).await;
    let session = t.token_with("live", "u1", claims("s1"));
    // Adding a push factor next to an ACTIVE one needs step-up.
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &session))
        .await
        .assert(403);
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &session))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    let text = if t.aws.is_some() {
        t.published_to(&phone).await.pop().unwrap()
    } else {
        t.texts_to(&phone).pop().unwrap()
    };
    assert_eq!(
        text,
        format!("{code} is your live verification code. It expires in 5 minutes."),
        "the SMS says only the code and the programme"
    );
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &session)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    // The same session (a later token with the same sid) is stepped up: unlink of an
    // ACTIVE factor needs it, and gets it.
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let later = t.token_with("live", "u1", claims("s1"));
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &later))
        .await
        .assert(204);
    // Another session of the same user, and the same sid of another user, gain nothing.
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    for other in [token.clone(), t.token_with("live", "u1", claims("s2"))] {
        t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &other))
            .await
            .assert(403);
    }
    t.put_factor("live", "u2", Channel::Biometric, FactorStatus::Active)
        .await;
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &t.token_with("live", "u2", claims("s1"))))
        .await
        .assert(403);
    // The code works once.
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &session)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("STATE_INVALID");
    let events = step_up_events(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["status"], "VERIFIED");
    assert_eq!(events[0]["channel"], "SMS");
    assert_eq!(events[0]["credentialId"], "u1");
    assert_eq!(events[0]["programmeId"], "live");
    assert!(events[0]["challengeId"].is_string());
    // 15 minutes after verification, the session is no longer stepped up.
    t.clock.advance(901);
    let late = t.token_with("live", "u1", claims("s1"));
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &late))
        .await
        .assert(403);
}

on_both!(
    sms_ladder,
    the_wrong_code_ladder_then_declined_then_state_invalid
);
async fn the_wrong_code_ladder_then_declined_then_state_invalid(t: TestApp) {
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, LIVE_KEY, "live", "u1", &phone).await;
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    let guess = |c: String| {
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&c))
    };
    for expected in [
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "VERIFICATION_CODE_INVALID",
        "ONE_CHALLENGE_LIMIT_REMAINING",
        "CHALLENGE_LIMIT_EXCEEDED",
    ] {
        t.send(guess(wrong(&code))).await.assert_conflict(expected);
    }
    t.send(guess(code.clone()))
        .await
        .assert_conflict("STATE_INVALID");
    let events = step_up_events(&t);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], "DECLINED");
    // A new code after 15 s; it expires after 5 minutes.
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert_conflict("RETRY_IN_15SEC");
    t.clock.advance(15);
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = code_sent_to(&t, &phone).await;
    t.clock.advance(300);
    t.send(guess(code))
        .await
        .assert_conflict("VERIFICATION_CODE_EXPIRED");
}

on_both!(sms_refusals, every_refusal_of_an_sms_step_up);
async fn every_refusal_of_an_sms_step_up(t: TestApp) {
    let phone = phone_for(&t);
    let start = |token: &str| Req::post(STEP_UP_SMS).auth(LIVE_KEY, token);
    // No factor, a pending one, one verified with another phone, no phone at all.
    let token = t.token_with("live", "u1", json!({"phone_number": phone}));
    t.send(start(&token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.send(start(&token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    let code = code_sent_to(&t, &phone).await;
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    let other_phone = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    t.send(start(&other_phone))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    let no_phone = t.token_with("live", "u1", json!({"phone_number": null}));
    t.send(start(&no_phone))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    // Verify with nothing pending, or from a token with another phone: nothing counted.
    let verify = |token: &str| {
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, token)
            .json(code_body("123456"))
    };
    t.send(verify(&token))
        .await
        .assert_conflict("STATE_INVALID");
    t.send(start(&token)).await.assert(204);
    let code = code_sent_to(&t, &phone).await;
    t.send(verify(&other_phone))
        .await
        .assert_conflict("STATE_INVALID");
    // Validation as in enrolment: the channel, then the body.
    t.send(Req::post("/stepup/challenges/otp/EMAIL").auth(LIVE_KEY, &token))
        .await
        .assert_field("channel", "IN", &["SMS"]);
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &token)
            .json(json!({})),
    )
    .await
    .assert_field("verificationCode", "REQUIRED", &[]);
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body("12345")),
    )
    .await
    .assert_field("verificationCode", "SIZE", &["6", "6"]);
    // The code still works: the refusals counted nothing.
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    // A programme with SMS disabled.
    let mut push_only = Programme::new("push-only", false);
    push_only.enabled_channels = vec![Channel::Authy];
    t.add_programme("push-only-key-00001", push_only).await;
    t.send(Req::post(STEP_UP_SMS).auth("push-only-key-00001", &t.token("push-only", "u1")))
        .await
        .assert_conflict("CHANNEL_NOT_SUPPORTED");
}

on_both!(sms_limits, step_up_sms_share_the_send_limits_of_enrolment);
async fn step_up_sms_share_the_send_limits_of_enrolment(t: TestApp) {
    let mut p = Programme::new("two", false);
    p.send_limits = SendLimits {
        per_user_per_hour: 2,
        ..SendLimits::default()
    };
    t.add_programme("two-key-00000000001", p).await;
    let phone = phone_for(&t);
    let token = with_sms_factor(&t, "two-key-00000000001", "two", "u1", &phone).await;
    t.send(Req::post(STEP_UP_SMS).auth("two-key-00000000001", &token))
        .await
        .assert(204);
    t.clock.advance(15);
    let r = t
        .send(Req::post(STEP_UP_SMS).auth("two-key-00000000001", &token))
        .await;
    r.assert(429);
    assert_eq!(
        r.header("x-ratelimit-limit"),
        Some("2, 2;w=3600, 20;w=86400")
    );
    // An idempotent step-up is sent once.
    t.clock.advance(3_600);
    let token = t.token_with("two", "u1", json!({"phone_number": phone}));
    for _ in 0..2 {
        t.send(
            Req::post(STEP_UP_SMS)
                .auth("two-key-00000000001", &token)
                .idem("step-up-1"),
        )
        .await
        .assert(204);
    }
    let sent = if t.aws.is_some() {
        t.published_to(&phone).await.len()
    } else {
        t.texts_to(&phone).len()
    };
    assert_eq!(sent, 3, "enrolment, one step-up, one idempotent step-up");
}

#[tokio::test]
async fn a_step_up_lasts_no_longer_than_the_token_that_proved_it() {
    let t = TestApp::new().await;
    with_sms_factor(&t, LIVE_KEY, "live", "u1", PHONE).await;
    let short = t.token_with("live", "u1", json!({"sid": "s1", "exp": t.now() + 120}));
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &short))
        .await
        .assert(204);
    t.send(
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &short)
            .json(code_body(&t.last_code(PHONE))),
    )
    .await
    .assert(204);
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    t.clock.advance(151);
    let fresh = t.token_with("live", "u1", json!({"sid": "s1"}));
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &fresh))
        .await
        .assert(403);
}

#[tokio::test]
async fn step_up_costs_one_read_only_where_step_up_is_needed() {
    let t = TestApp::new().await;
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let ops = |t: &TestApp| t.memory().operations();
    // Warm the programme cache.
    t.send(Req::get(LIST).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(200);
    let before = ops(&t);
    t.send(Req::get(LIST).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(200);
    assert_eq!(ops(&t) - before, 1, "a listing reads no grant");
    let mfa = t.token_with("live", "u1", json!({"amr": ["mfa"]}));
    let before = ops(&t);
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &mfa))
        .await
        .assert(204);
    let with_mfa = ops(&t) - before;
    t.put_factor("live", "u1", Channel::Biometric, FactorStatus::Active)
        .await;
    let before = ops(&t);
    t.send(Req::delete(BIOMETRIC).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(403);
    assert_eq!(ops(&t) - before, 2, "the factor, then the session's grant");
    assert_eq!(
        with_mfa, 1,
        "a fresh mfa token reads nothing before the delete"
    );
}

#[tokio::test]
async fn dependency_failures_are_503s_that_lose_nothing() {
    let t = TestApp::new().await;
    let token = with_sms_factor(&t, LIVE_KEY, "live", "u1", PHONE).await;
    t.memory().fail_operation("start_step_up_sms");
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(503);
    t.sms.fail_next(1);
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(503);
    // The unsent challenge is gone; the retry (a refused send waits no 15 s) works.
    t.clock.advance(15);
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_code(PHONE);
    t.memory().fail_operation("complete_step_up_sms");
    let verify = || {
        Req::post(STEP_UP_VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("v-1")
            .json(code_body(&code))
    };
    t.send(verify()).await.assert(503);
    // The retry of the same request compares its own counted attempt again and succeeds.
    t.send(verify()).await.assert(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parallel_wrong_step_up_guesses_on_dynamodb_compare_at_most_five() {
    let t = Arc::new(TestApp::on_aws().await);
    let phone = unique_phone();
    let token = with_sms_factor(&t, LIVE_KEY, "live", "u1", &phone).await;
    t.send(Req::post(STEP_UP_SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_published_code(&phone).await;
    let compared_before = t.app.context.metrics.codes_compared();
    let limiter = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let (t, token, limiter) = (t.clone(), token.clone(), limiter.clone());
            let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
            tokio::spawn(async move {
                let _permit = limiter.acquire().await.unwrap();
                t.send(
                    Req::post(STEP_UP_VERIFY)
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

/// A sandbox user with an ACTIVE Authy factor; returns their plain token.
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

async fn start_push(t: &TestApp, token: &str) -> String {
    let r = t
        .send(Req::post(STEP_UP_PUSH).auth(SANDBOX_KEY, token))
        .await;
    r.assert(200);
    assert_eq!(r.body.as_object().map(|o| o.len()), Some(1));
    r.body["id"].as_str().unwrap().to_owned()
}

async fn status_of(t: &TestApp, token: &str, id: &str) -> String {
    let r = t
        .send(Req::get(&format!("/stepup/challenges/{id}")).auth(SANDBOX_KEY, token))
        .await;
    r.assert(200);
    assert_eq!(r.body["id"], id);
    r.body["status"].as_str().unwrap().to_owned()
}

on_both!(
    push_steps_up,
    a_push_step_up_approved_in_the_sandbox_steps_up_the_session
);
async fn a_push_step_up_approved_in_the_sandbox_steps_up_the_session(t: TestApp) {
    let token = with_authy_factor(&t).await;
    // Unlinking the ACTIVE Authy factor needs step-up.
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(403);
    let id = start_push(&t, &token).await;
    assert_eq!(status_of(&t, &token, &id).await, "PENDING");
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{id}/accept")).auth(SANDBOX_KEY, &token),
    )
    .await
    .assert(204);
    assert_eq!(status_of(&t, &token, &id).await, "VERIFIED");
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{id}/reject")).auth(SANDBOX_KEY, &token),
    )
    .await
    .assert_conflict("STATE_INVALID");
    // Another user's id is unknown to them.
    t.send(Req::get(&format!("/stepup/challenges/{id}")).auth(SANDBOX_KEY, &t.token("sbx", "u2")))
        .await
        .assert(404);
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    let events = step_up_events(&t);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["status"].as_str(), events[0]["channel"].as_str()),
        (Some("VERIFIED"), Some("AUTHY"))
    );
    assert_eq!(events[0]["challengeId"], id.as_str());
}

on_both!(
    push_outcomes,
    a_push_step_up_denied_expired_or_voided_steps_up_nothing
);
async fn a_push_step_up_denied_expired_or_voided_steps_up_nothing(t: TestApp) {
    let token = with_authy_factor(&t).await;
    let denied = start_push(&t, &token).await;
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{denied}/reject"))
            .auth(SANDBOX_KEY, &token),
    )
    .await
    .assert(204);
    assert_eq!(status_of(&t, &token, &denied).await, "DECLINED");
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token))
        .await
        .assert(403);
    let late = start_push(&t, &token).await;
    t.clock.advance(300);
    assert_eq!(status_of(&t, &token, &late).await, "EXPIRED");
    assert_eq!(status_of(&t, &token, &late).await, "EXPIRED");
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{late}/accept")).auth(SANDBOX_KEY, &token),
    )
    .await
    .assert_conflict("STATE_INVALID");
    // Unlinking Authy voids its pending push challenges.
    let voided = start_push(&t, &token).await;
    let mfa = t.token_with("sbx", "u1", json!({"amr": ["mfa"]}));
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &mfa))
        .await
        .assert(204);
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{voided}/accept"))
            .auth(SANDBOX_KEY, &token),
    )
    .await
    .assert_conflict("STATE_INVALID");
    assert_eq!(status_of(&t, &token, &voided).await, "EXPIRED");
    let statuses: Vec<_> = step_up_events(&t)
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        ["DECLINED", "EXPIRED", "EXPIRED"],
        "each outcome once"
    );
    // Without an ACTIVE Authy factor, no push step-up.
    t.send(Req::post(STEP_UP_PUSH).auth(SANDBOX_KEY, &token))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    // Unknown ids, and the simulator in a live programme.
    t.send(Req::get("/stepup/challenges/nope").auth(SANDBOX_KEY, &token))
        .await
        .assert(404);
    t.send(Req::post("/simulate/stepup/challenges/nope/accept").auth(SANDBOX_KEY, &token))
        .await
        .assert(404);
    t.send(
        Req::post(&format!("/simulate/stepup/challenges/{voided}/accept"))
            .auth(LIVE_KEY, &t.token("live", "u1")),
    )
    .await
    .assert(404);
}

#[tokio::test]
async fn push_step_ups_count_toward_the_push_requests_per_hour() {
    let t = TestApp::new().await;
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
    t.send(Req::post(STEP_UP_PUSH).auth("bombed-key-00000001", &token))
        .await
        .assert(200);
    t.send(Req::post(STEP_UP_PUSH).auth("bombed-key-00000001", &token))
        .await
        .assert_conflict("CHALLENGE_LIMIT_EXCEEDED");
    let mut sms_only = Programme::new("sms-only", true);
    sms_only.enabled_channels = vec![Channel::Sms];
    t.add_programme("sms-only-key-000001", sms_only).await;
    t.send(Req::post(STEP_UP_PUSH).auth("sms-only-key-000001", &t.token("sms-only", "u1")))
        .await
        .assert_conflict("CHANNEL_NOT_SUPPORTED");
    t.send(Req::post("/stepup/challenges/push/SMS").auth("bombed-key-00000001", &token))
        .await
        .assert_field("channel", "IN", &["AUTHY", "BIOMETRIC"]);
}

/// Authy answers each approval request with a new uuid.
struct Uuids(std::sync::atomic::AtomicU32);

impl wiremock::Respond for Uuids {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        wiremock::ResponseTemplate::new(200).set_body_json(
            json!({"approval_request": {"uuid": format!("uuid-{n}")}, "success": true}),
        )
    }
}

#[tokio::test]
async fn a_live_push_step_up_goes_to_authy_and_its_signed_callback_settles_it() {
    use wiremock::{
        matchers::{method, path},
        Mock, MockServer, ResponseTemplate,
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/protected/json/users/new"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"user": {"id": 42}, "success": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/onetouch/json/users/42/approval_requests"))
        .respond_with(Uuids(std::sync::atomic::AtomicU32::new(0)))
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
    let r = t.send(Req::post(STEP_UP_PUSH).auth(LIVE_KEY, &token)).await;
    r.assert(200);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let requests = server.received_requests().await.unwrap();
    let body = String::from_utf8(requests.last().unwrap().body.clone()).unwrap();
    assert!(
        body.contains("message=live%3A%20approve%20this%20sign-in%20step."),
        "the message names the programme: {body}"
    );
    assert!(body.contains("seconds_to_expire=300"), "{body}");
    let get = || Req::get(&format!("/stepup/challenges/{id}")).auth(LIVE_KEY, &token);
    assert_eq!(t.send(get()).await.body["status"], "PENDING");
    // The callback is routed by the request's stored purpose: this one is a step-up.
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": "uuid-1", "status": "approved"})))
        .await
        .assert(200);
    assert_eq!(t.send(get()).await.body["status"], "VERIFIED");
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")],
        "the factor itself is unchanged"
    );
    // The session is stepped up: the ACTIVE factor can be unlinked with the same token.
    t.send(Req::delete(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    // Authy failing: a 503, and the push counter given back.
    let t2 = TestApp::with_push_provider(Arc::new(
        additional_factors::push::authy::AuthyPushProvider::new(
            "http://127.0.0.1:9",
            AUTHY_KEY,
            std::time::Duration::from_millis(200),
        )
        .unwrap(),
    ))
    .await;
    let mut factor = additional_factors::domain::factor::FactorRecord {
        channel: Channel::Authy,
        status: FactorStatus::Active,
        phone_hash: None,
        provider_ref: Some("42".into()),
        pending_request: None,
        verified_by: None,
        updated_at: t2.now(),
        device: None,
    };
    factor.phone_hash = None;
    t2.store
        .put_factor(&t2.user("live", "u1"), &factor)
        .await
        .unwrap();
    t2.send(Req::post(STEP_UP_PUSH).auth(LIVE_KEY, &t2.token("live", "u1")))
        .await
        .assert(503);
}
