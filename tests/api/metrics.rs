//! What the service counts (CloudWatch EMF lines in Lambda; `crate::metrics`), read from a
//! recording sink: each family of the operations issue, with bounded dimensions only.

use additional_factors::domain::{programme::Programme, send_limits::SendLimits};
use serde_json::json;

use crate::helpers::*;

fn has(counted: &[String], wanted: &str) -> bool {
    counted.iter().any(|c| c == wanted)
}

#[tokio::test]
async fn an_sms_enrolment_counts_the_sms_the_codes_compared_and_the_replay() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("e"))
        .await
        .assert(204);
    let replayed = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("e"))
        .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    let code = t.last_code(PHONE);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&wrong(&code))),
    )
    .await
    .assert(409);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    let counted = t.counted();
    for wanted in [
        "SmsSent programme=live country=44",
        "Replays route=enrol_sms_otp",
        "CodesCompared programme=live result=wrong",
        "CodesCompared programme=live result=right",
    ] {
        assert!(has(&counted, wanted), "{wanted}: {counted:?}");
    }
    // One SMS, counted once (the replay sent nothing).
    assert_eq!(
        counted.iter().filter(|c| c.starts_with("SmsSent")).count(),
        1
    );
    // Bounded dimensions: no user, phone or code in any of them.
    for c in &counted {
        assert!(
            !c.contains("u1") && !c.contains("7700") && !c.contains(&code),
            "{c}"
        );
    }
}

#[tokio::test]
async fn the_last_wrong_code_of_a_challenge_and_a_full_send_limit_are_counted() {
    let t = TestApp::new().await;
    let mut programme = Programme::new("tight", false);
    programme.wrong_code_limit = 2;
    programme.send_limits = SendLimits {
        per_user_per_hour: 1,
        ..SendLimits::default()
    };
    t.add_programme("tight-api-key-0123456789", programme).await;
    let token = t.token("tight", "u1");
    let auth = |r: Req| r.auth("tight-api-key-0123456789", &token);
    t.send(auth(Req::post(SMS))).await.assert(204);
    let code = t.last_code(PHONE);
    for _ in 0..2 {
        t.send(auth(Req::post(VERIFY)).json(code_body(&wrong(&code))))
            .await;
    }
    t.send(auth(Req::post(SMS))).await.assert(429);
    let counted = t.counted();
    assert!(
        has(&counted, "ChallengeLimitReached programme=tight"),
        "{counted:?}"
    );
    assert!(
        has(&counted, "SmsRefused programme=tight limit=user"),
        "{counted:?}"
    );
}

#[tokio::test]
async fn a_503_a_push_an_authy_callback_and_the_cold_start_are_counted() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.memory().fail_next(1);
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(503);
    let stale = Req::post(CALLBACK)
        .header("x-authy-signature", "AAAA")
        .header("x-authy-signature-nonce", "1")
        .json(json!({"uuid": "x"}));
    t.send(stale).await.assert(401);
    let counted = t.counted();
    for wanted in [
        "PushRequests programme=live",
        "DependencyFailures route=list_factors",
        "Callbacks status=401",
    ] {
        assert!(has(&counted, wanted), "{wanted}: {counted:?}");
    }
    // A process starts cold once: at most one of its requests says so (tests share it).
    assert!(
        counted
            .iter()
            .filter(|c| c.starts_with("ColdStarts"))
            .count()
            <= 1
    );
}
