//! `idempotency-ref`: replay, mismatch, in progress, and what is (not) kept.

use std::sync::Arc;

use additional_factors::sms::{recording::RecordingSmsSender, SmsError, SmsMessage, SmsSender};
use async_trait::async_trait;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::helpers::*;

#[tokio::test]
async fn a_replayed_enrolment_sends_no_second_sms() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    let first = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("ref-1"))
        .await;
    first.assert(204);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("ref-1"))
        .await;
    again.assert(204);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_ne!(again.header("request-ref"), first.header("request-ref"));
    assert_eq!(t.sms.sent().len(), 1);
}

#[tokio::test]
async fn a_replayed_verification_counts_no_second_attempt() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let bad = wrong(&t.last_code(PHONE));
    let body = format!(r#"{{"verificationCode": "{bad}"}}"#);
    let spaced = format!("{{\n  \"verificationCode\" :\"{bad}\"  }}");
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("v-1")
            .body(&body),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    let r = t
        .send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token)
                .idem("v-1")
                .body(&spaced),
        )
        .await;
    r.assert_conflict("VERIFICATION_CODE_INVALID");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        t.memory().challenge_attempts(&t.user("live", "u1")),
        Some(1)
    );
}

#[tokio::test]
async fn key_order_does_not_matter_but_the_body_does() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    t.send(
        Req::post(VERIFY)
            .auth(SANDBOX_KEY, &token)
            .idem("k")
            .body(r#"{"verificationCode":"123456","x":1}"#),
    )
    .await
    .assert(204);
    let r = t
        .send(
            Req::post(VERIFY)
                .auth(SANDBOX_KEY, &token)
                .idem("k")
                .body(r#"{"x":1,"verificationCode":"123456"}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.header("idempotent-replayed")),
        (204, Some("true"))
    );
    let r = t
        .send(
            Req::post(VERIFY)
                .auth(SANDBOX_KEY, &token)
                .idem("k")
                .json(code_body("123457")),
        )
        .await;
    r.assert(400);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("idempotency-ref"));
    assert!(r.body.get("syntaxErrors").is_none());
}

#[tokio::test]
async fn another_operation_under_the_same_reference_is_a_400() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token).idem("same"))
        .await
        .assert(204);
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &token).idem("same"))
        .await
        .assert(400);
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &token).idem("same"))
        .await
        .assert(400);
    t.send(
        Req::post(AUTHY)
            .auth(SANDBOX_KEY, &token)
            .idem("same")
            .body("{}"),
    )
    .await
    .assert(400);
    // The reference belongs to the user: another user's identical reference is unrelated.
    t.send(
        Req::post(SMS)
            .auth(SANDBOX_KEY, &t.token("sbx", "u2"))
            .idem("same"),
    )
    .await
    .assert(204);
}

#[tokio::test]
async fn final_400s_and_409s_are_kept() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("bad-body")
            .json(json!({})),
    )
    .await
    .assert_field("verificationCode", "REQUIRED", &[]);
    let r = t
        .send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token)
                .idem("bad-body")
                .json(json!({})),
        )
        .await;
    r.assert_field("verificationCode", "REQUIRED", &[]);
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .idem("c")
            .json(code_body("111111")),
    )
    .await
    .assert_conflict("STATE_INVALID");
    // The state changes, but the kept answer does not.
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let r = t
        .send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token)
                .idem("c")
                .json(code_body("111111")),
        )
        .await;
    r.assert_conflict("STATE_INVALID");
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn a_401_403_429_or_503_keeps_nothing() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    // 429: five sends, then the sixth under a reference is limited; an hour later it runs.
    for _ in 0..5 {
        t.send(Req::post(SMS).auth(SANDBOX_KEY, &token))
            .await
            .assert(204);
    }
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &token).idem("later"))
        .await
        .assert(429);
    t.clock.advance(3_600);
    let token = t.token("sbx", "u1");
    let r = t
        .send(Req::post(SMS).auth(SANDBOX_KEY, &token).idem("later"))
        .await;
    assert_eq!((r.status, r.header("idempotent-replayed")), (204, None));
    // 403: step-up needed, then given.
    t.send(
        Req::post(VERIFY)
            .auth(SANDBOX_KEY, &token)
            .json(code_body("123456")),
    )
    .await
    .assert(204);
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token).idem("push"))
        .await
        .assert(403);
    let up = t.token_with("sbx", "u1", json!({"amr": ["mfa"]}));
    let r = t
        .send(Req::post(AUTHY).auth(SANDBOX_KEY, &up).idem("push"))
        .await;
    assert_eq!((r.status, r.header("idempotent-replayed")), (204, None));
    // 503 after the reference was claimed: the claim is dropped.
    t.memory().fail_operation("delete_factor");
    let r = t
        .send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up).idem("del"))
        .await;
    assert_eq!(r.status, 503);
    let r = t
        .send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up).idem("del"))
        .await;
    assert_eq!((r.status, r.header("idempotent-replayed")), (204, None));
}

#[tokio::test]
async fn references_are_kept_for_a_day_at_least() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &token).idem("day"))
        .await
        .assert(204);
    t.clock.advance(24 * 3_600);
    let r = t
        .send(
            Req::post(AUTHY)
                .auth(SANDBOX_KEY, &t.token("sbx", "u1"))
                .idem("day"),
        )
        .await;
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    t.clock.advance(3_600);
    let r = t
        .send(
            Req::post(AUTHY)
                .auth(SANDBOX_KEY, &t.token("sbx", "u1"))
                .idem("day"),
        )
        .await;
    assert_eq!((r.status, r.header("idempotent-replayed")), (204, None));
}

#[tokio::test]
async fn a_bad_reference_is_a_400_and_runs_nothing() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem(""))
        .await
        .assert_field("idempotency-ref", "SIZE", &["1", "255"]);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem(&"x".repeat(256)))
        .await
        .assert_field("idempotency-ref", "SIZE", &["1", "255"]);
    for bad in [&b"a b"[..], b"tab\there", "caf\u{e9}".as_bytes()] {
        let r = t
            .send(
                Req::post(SMS)
                    .auth(LIVE_KEY, &token)
                    .header("idempotency-ref", bad),
            )
            .await;
        r.assert(400);
        assert_eq!(r.fields()[0].0, "idempotency-ref");
        assert_eq!(r.fields()[0].1, "REGEX");
    }
    t.send(Req::delete(AUTHY).auth(LIVE_KEY, &token).idem(""))
        .await
        .assert_field("idempotency-ref", "SIZE", &["1", "255"]);
    assert!(t.sms.sent().is_empty());
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem(&"x".repeat(255)))
        .await
        .assert(204);
}

/// An SMS sender that holds each send until the test lets it go.
struct GatedSms {
    inner: RecordingSmsSender,
    entered: Semaphore,
    release: Semaphore,
}

#[async_trait]
impl SmsSender for GatedSms {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        self.entered.add_permits(1);
        self.release.acquire().await.unwrap().forget();
        self.inner.send(message).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_first_request_runs_is_a_409_in_progress() {
    let gate = Arc::new(GatedSms {
        inner: RecordingSmsSender::new(),
        entered: Semaphore::new(0),
        release: Semaphore::new(0),
    });
    let t = Arc::new(TestApp::with_sms(Some(gate.clone())).await);
    let token = t.token("live", "u1");
    let first = {
        let (t, token) = (t.clone(), token.clone());
        tokio::spawn(async move {
            t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("slow"))
                .await
        })
    };
    gate.entered.acquire().await.unwrap().forget();
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("slow"))
        .await
        .assert_conflict("IDEMPOTENT_REQUEST_IN_PROGRESS");
    gate.release.add_permits(1);
    first.await.unwrap().assert(204);
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("slow"))
        .await;
    assert_eq!(
        (r.status, r.header("idempotent-replayed")),
        (204, Some("true"))
    );
    assert_eq!(gate.inner.sent().len(), 1);
}
