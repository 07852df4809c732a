//! Push factors against Twilio Authy's documented protocol: the adapter's requests to a local
//! fake Authy (wiremock), each provider failure, the signed-callback table, the full flows,
//! and the lifecycle events (recorded, and published to the local SNS-compatible server).

use std::{sync::Arc, time::Duration};

use additional_factors::{
    aws::sdk_config,
    domain::channel::Channel,
    events::{Change, EventPublisher, FactorEvent, SnsTopicEvents},
    push::authy::AuthyPushProvider,
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{header, method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::helpers::*;

const KEY: &str = "authy-app-key-for-tests";

async fn fake_authy() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/protected/json/users/new"))
        .and(header("X-Authy-API-Key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"message": "User created successfully.", "user": {"id": 987}, "success": true}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/onetouch/json/users/987/approval_requests"))
        .and(header("X-Authy-API-Key", KEY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"approval_request": {"uuid": "uuid-1"}, "success": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/protected/json/users/987/remove"))
        .and(header("X-Authy-API-Key", KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"message": "User removed from application", "success": true}),
            ),
        )
        .mount(&server)
        .await;
    server
}

async fn on_authy(server: &MockServer, timeout: Duration) -> TestApp {
    let provider = AuthyPushProvider::new(server.uri(), KEY, timeout).unwrap();
    TestApp::with_push_provider(Arc::new(provider)).await
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            let decode = |s: &str| {
                let mut out = Vec::new();
                let b = s.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' {
                        out.push(
                            u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16)
                                .unwrap(),
                        );
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn mfa(t: &TestApp) -> String {
    t.token_with("live", "u1", json!({"amr": ["mfa"]}))
}

#[tokio::test]
async fn enrolment_registers_the_phone_and_pushes_a_request_as_authy_documents() {
    let server = fake_authy().await;
    let t = on_authy(&server, Duration::from_secs(3)).await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let register = form(&requests[0].body);
    assert_eq!(requests[0].url.path(), "/protected/json/users/new");
    assert_eq!(
        requests[0].headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let get = |f: &Vec<(String, String)>, k: &str| {
        f.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    };
    assert_eq!(
        get(&register, "user[cellphone]").as_deref(),
        Some("7700900123")
    );
    assert_eq!(get(&register, "user[country_code]").as_deref(), Some("44"));
    // Authy never texts its own install link: no SMS leaves that our limits do not count.
    assert_eq!(
        get(&register, "send_install_link_via_sms").as_deref(),
        Some("false")
    );
    let email = get(&register, "user[email]").unwrap();
    assert!(email.ends_with("@users.invalid") && !email.contains("7700900123"));
    let approval = form(&requests[1].body);
    assert_eq!(
        requests[1].url.path(),
        "/onetouch/json/users/987/approval_requests"
    );
    assert_eq!(
        get(&approval, "message").as_deref(),
        Some("live: approve adding this device as a security factor.")
    );
    assert_eq!(
        get(&approval, "seconds_to_expire").as_deref(),
        Some("86400")
    );
    assert!(get(&approval, "details[Action]").is_some());
}

#[tokio::test]
async fn the_full_flow_approved_then_unlinked_and_denied_then_reenrolled() {
    let server = fake_authy().await;
    let t = on_authy(&server, Duration::from_secs(3)).await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let r = t
        .send(t.authy_callback(&json!({"uuid": "uuid-1", "status": "approved", "authy_id": 987})))
        .await;
    r.assert(200);
    assert_eq!(r.raw, "");
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    t.send(Req::delete(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(403);
    t.send(Req::delete(AUTHY).auth(LIVE_KEY, &mfa(&t)))
        .await
        .assert(204);
    assert!(listed(&t, LIVE_KEY, &token).await.is_empty());
    let removed = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/protected/json/users/987/remove")
        .count();
    assert_eq!(removed, 1, "Authy forgets the user on unlink");

    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": "uuid-1", "status": "denied"})))
        .await
        .assert(200);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "INACTIVE")]
    );
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
    let events: Vec<String> = t
        .events
        .events()
        .iter()
        .map(|e| format!("{} {}", e["type"], e["status"]))
        .collect();
    assert_eq!(
        events,
        [
            "\"AUTHY_PUSH\" \"ACTIVE\"",
            "\"AUTHY_PUSH\" \"UNLINKED\"",
            "\"AUTHY_PUSH\" \"INACTIVE\""
        ]
    );
}

#[tokio::test]
async fn provider_failures_are_503s_that_leave_nothing_behind() {
    for (what, response) in [
        (
            "HTTP 500",
            ResponseTemplate::new(500).set_body_json(json!({"success": false})),
        ),
        (
            "success false",
            ResponseTemplate::new(200).set_body_json(json!({"success": false, "message": "nope"})),
        ),
        (
            "no uuid",
            ResponseTemplate::new(200).set_body_json(json!({"success": true})),
        ),
        (
            "not JSON",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        (
            "too slow",
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_json(json!({"approval_request": {"uuid": "late"}, "success": true})),
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/protected/json/users/new"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"user": {"id": 987}, "success": true})),
            )
            .mount(&server)
            .await;
        Mock::given(path("/onetouch/json/users/987/approval_requests"))
            .respond_with(response)
            .mount(&server)
            .await;
        let t = on_authy(&server, Duration::from_millis(500)).await;
        let token = t.token("live", "u1");
        let started = std::time::Instant::now();
        let r = t
            .send(Req::post(AUTHY).auth(LIVE_KEY, &token).idem("push-1"))
            .await;
        assert_eq!(r.status, 503, "{what}");
        assert_eq!(r.header("retry-after"), Some("2"), "{what}");
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{what}: bounded by the timeout"
        );
        assert!(
            listed(&t, LIVE_KEY, &token).await.is_empty(),
            "{what}: nothing half-done"
        );
        // Nothing kept under the reference, and no push request counted.
        let again = t
            .send(Req::post(AUTHY).auth(LIVE_KEY, &token).idem("push-1"))
            .await;
        assert_eq!(
            (again.status, again.header("idempotent-replayed")),
            (503, None),
            "{what}"
        );
    }
    // Unreachable Authy.
    let provider =
        AuthyPushProvider::new("http://127.0.0.1:9", KEY, Duration::from_secs(1)).unwrap();
    let t = TestApp::with_push_provider(Arc::new(provider)).await;
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &t.token("live", "u1")))
        .await
        .assert(503);
}

#[tokio::test]
async fn the_callback_table() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let request = t.push.requests()[0].1.clone();
    let approved = json!({"uuid": request, "status": "approved", "authy_id": 1, "approval_request": {"transaction": {"details": {"Action": "Add this device"}}}});
    let pending = || async {
        listed(&t, LIVE_KEY, &token).await == [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    };

    // Refused, and nothing read: the store sees no operation at all.
    let before = t.memory().operations();
    let cases: Vec<(&str, Req)> = vec![
        ("no headers", Req::post(CALLBACK).json(approved.clone())),
        (
            "no nonce",
            Req::post(CALLBACK)
                .header("x-authy-signature", "abc")
                .json(approved.clone()),
        ),
        (
            "no signature",
            Req::post(CALLBACK)
                .header("x-authy-signature-nonce", t.now().to_string())
                .json(approved.clone()),
        ),
        (
            "wrong signature",
            Req::post(CALLBACK)
                .header(
                    "x-authy-signature",
                    additional_factors::push::authy_signature::sign(
                        "another-key",
                        &t.now().to_string(),
                        "POST",
                        CALLBACK_URL,
                        &approved,
                    ),
                )
                .header("x-authy-signature-nonce", t.now().to_string())
                .json(approved.clone()),
        ),
        (
            "signed for another URL",
            Req::post(CALLBACK)
                .header(
                    "x-authy-signature",
                    additional_factors::push::authy_signature::sign(
                        AUTHY_KEY,
                        &t.now().to_string(),
                        "POST",
                        "https://evil.test/webhooks/authy",
                        &approved,
                    ),
                )
                .header("x-authy-signature-nonce", t.now().to_string())
                .json(approved.clone()),
        ),
        ("body changed after signing", {
            let nonce = t.now().to_string();
            let sig = additional_factors::push::authy_signature::sign(
                AUTHY_KEY,
                &nonce,
                "POST",
                CALLBACK_URL,
                &json!({"uuid": request, "status": "denied"}),
            );
            Req::post(CALLBACK)
                .header("x-authy-signature", sig)
                .header("x-authy-signature-nonce", nonce)
                .json(approved.clone())
        }),
        (
            "not JSON",
            Req::post(CALLBACK)
                .header("x-authy-signature", "abc")
                .header("x-authy-signature-nonce", "1")
                .body("uuid=x"),
        ),
    ];
    for (why, req) in cases {
        let r = t.send(req).await;
        assert_eq!((r.status, r.raw.as_str()), (401, ""), "{why}");
    }
    assert_eq!(
        t.memory().operations(),
        before,
        "nothing was read for a refused callback"
    );
    assert!(pending().await);

    // A stale nonce (signed 10 minutes ago) is refused.
    let stale = t.authy_callback(&approved);
    t.clock.advance(600);
    t.send(stale).await.assert(401);
    assert!(pending().await);

    // Expired: stays pending. Unknown request: 200, nothing.
    t.send(t.authy_callback(&json!({"uuid": request, "status": "expired"})))
        .await
        .assert(200);
    assert!(pending().await);
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": "nobody", "status": "approved"})))
        .await
        .assert(200);
    assert!(pending().await);

    // Valid: approved. The same callback again is a replay.
    t.clock.advance(1);
    let valid = t.authy_callback(&approved);
    let replay = t.authy_callback(&approved);
    t.send(valid).await.assert(200);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    t.send(replay).await.assert(401);

    // A later, validly signed "denied" about the answered request changes nothing.
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": request, "status": "denied"})))
        .await
        .assert(200);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    assert_eq!(t.events.events().len(), 1);
}

#[tokio::test]
async fn a_callback_for_a_request_replaced_by_a_newer_one_changes_nothing() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    t.send(Req::post(AUTHY).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let (old, new) = (
        t.push.requests()[0].1.clone(),
        t.push.requests()[1].1.clone(),
    );
    t.send(t.authy_callback(&json!({"uuid": old, "status": "approved"})))
        .await
        .assert(200);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "PENDING_VERIFICATION")]
    );
    t.clock.advance(1);
    t.send(t.authy_callback(&json!({"uuid": new, "status": "approved"})))
        .await
        .assert(200);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
}

#[tokio::test]
async fn every_change_is_announced() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
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
    let up = t.token_with("sbx", "u1", json!({"amr": ["mfa"]}));
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    t.send(Req::post(REJECT).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    let events = t.events.events();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("SMS_OTP".into(), "ACTIVE".into()),
            ("AUTHY_PUSH".into(), "INACTIVE".into()),
            ("AUTHY_PUSH".into(), "UNLINKED".into())
        ]
    );
    for e in &events {
        assert_eq!(
            (e["credentialId"].as_str(), e["programmeId"].as_str()),
            (Some("u1"), Some("sbx"))
        );
        assert_eq!(e["publishedTimestamp"], T0 * 1000);
    }
}

#[tokio::test]
async fn events_are_published_to_the_sns_topic() {
    let endpoint = aws_endpoint();
    let client = aws_sdk_sns::Client::new(&sdk_config(Some(&endpoint)).await);
    let topic = client
        .create_topic()
        .name(format!("factor-events-{}", unique()))
        .send()
        .await
        .unwrap();
    let arn = topic.topic_arn().unwrap().to_owned();
    let publisher = SnsTopicEvents::new(client, &arn);
    let event = FactorEvent {
        credential_id: "u1".into(),
        programme_id: "p1".into(),
        channel: Channel::Biometric,
        change: Change::Unlinked,
        published_timestamp: 1_795_946_430_000,
    };
    publisher.publish(&event.clone().into()).await.unwrap();
    let data: Value = moto_data(&endpoint).await;
    let topic = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == arn.as_str())
        .unwrap()
        .clone();
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let message: Value = serde_json::from_str(sent[0][1].as_str().unwrap()).unwrap();
    assert_eq!(
        message,
        json!({"credentialId": "u1", "programmeId": "p1", "type": "BIOMETRIC", "status": "UNLINKED", "publishedTimestamp": 1_795_946_430_000i64})
    );
}
