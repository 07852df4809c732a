//! Send limits: every 429 with its headers, windows aligned to the epoch, and the rule that
//! a limited request sends nothing and changes nothing.

use additional_factors::domain::{programme::Programme, send_limits::SendLimits};
use serde_json::json;

use crate::helpers::*;

async fn enrol(t: &TestApp, key: &str, token: &str) -> Resp {
    t.send(Req::post(SMS).auth(key, token)).await
}

#[track_caller]
fn assert_limited(r: &Resp, limit: &str, reset: i64) {
    r.assert(429);
    assert_eq!(r.raw, "");
    assert_eq!(r.header("x-ratelimit-limit"), Some(limit));
    assert_eq!(
        r.header("x-ratelimit-reset"),
        Some(reset.to_string().as_str())
    );
    assert_eq!(r.header("retry-after"), Some(reset.to_string().as_str()));
}

#[tokio::test]
async fn five_codes_per_user_per_hour_then_429_until_the_hour_turns() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    for _ in 0..5 {
        enrol(&t, LIVE_KEY, &token).await.assert(204);
    }
    let last_code = t.last_code(PHONE);
    // T0 is 30 s into its hour: 3,570 s until the window resets.
    assert_limited(
        &enrol(&t, LIVE_KEY, &token).await,
        "5, 5;w=3600, 20;w=86400",
        3_570,
    );
    assert_eq!(t.sms.sent().len(), 5, "a limited request sends nothing");
    // ...and changes nothing: the last code still works.
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&last_code)),
    )
    .await
    .assert(204);
    // Another user is not limited.
    enrol(
        &t,
        LIVE_KEY,
        &t.token_with("live", "u2", json!({"phone_number": OTHER_PHONE})),
    )
    .await
    .assert(204);
}

#[tokio::test]
async fn the_hour_window_starts_on_the_hour() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    for _ in 0..5 {
        enrol(&t, LIVE_KEY, &token).await.assert(204);
    }
    t.clock.advance(3_569);
    let token = t.token("live", "u1");
    assert_limited(
        &enrol(&t, LIVE_KEY, &token).await,
        "5, 5;w=3600, 20;w=86400",
        1,
    );
    t.clock.advance(1);
    enrol(&t, LIVE_KEY, &token).await.assert(204);
}

#[tokio::test]
async fn twenty_codes_per_user_per_day() {
    let t = TestApp::new().await;
    let mut p = Programme::new("busy", false);
    p.send_limits = SendLimits {
        per_number_per_day: 100,
        ..SendLimits::default()
    };
    t.add_programme("busy-key-0000000001", p).await;
    for _hour in 0..4 {
        let token = t.token("busy", "u1");
        for _ in 0..5 {
            enrol(&t, "busy-key-0000000001", &token).await.assert(204);
        }
        t.clock.advance(3_600);
    }
    // T0 + 4 h: 10:00:30 + 4 h = 14:00:30 → 35,970 s to midnight.
    let token = t.token("busy", "u1");
    assert_limited(
        &enrol(&t, "busy-key-0000000001", &token).await,
        "20, 5;w=3600, 20;w=86400",
        35_970,
    );
    assert_eq!(t.sms.sent().len(), 20);
}

#[tokio::test]
async fn ten_codes_per_number_per_day_across_users_and_programmes() {
    let t = TestApp::new().await;
    let mut other = Programme::new("other", false);
    other.name = "Other".into();
    t.add_programme("other-key-000000001", other).await;
    for i in 0..5 {
        enrol(&t, LIVE_KEY, &t.token("live", &format!("user-{i}")))
            .await
            .assert(204);
        enrol(
            &t,
            "other-key-000000001",
            &t.token("other", &format!("user-{i}")),
        )
        .await
        .assert(204);
    }
    let r = enrol(&t, LIVE_KEY, &t.token("live", "user-9")).await;
    assert_limited(&r, "10, 10;w=86400", 86_400 - 36_030);
    // A sandbox counts in counters of its own: live sends never spend its quota (and
    // `abuse::ten_sandbox_enrolments_...` shows the other way round).
    enrol(&t, SANDBOX_KEY, &t.token("sbx", "user-9"))
        .await
        .assert(204);
}

#[tokio::test]
async fn the_programme_cap_is_configurable() {
    let t = TestApp::new().await;
    let mut p = Programme::new("capped", true);
    p.send_limits = SendLimits {
        per_programme_per_day: 3,
        ..SendLimits::default()
    };
    t.add_programme("capped-key-00000001", p).await;
    for i in 0..3 {
        let token = t.token_with(
            "capped",
            &format!("u{i}"),
            json!({"phone_number": format!("+4477009001{i:02}")}),
        );
        enrol(&t, "capped-key-00000001", &token).await.assert(204);
    }
    let token = t.token_with("capped", "u9", json!({"phone_number": "+447700900199"}));
    assert_limited(
        &enrol(&t, "capped-key-00000001", &token).await,
        "3, 3;w=86400",
        86_400 - 36_030,
    );
}

#[tokio::test]
async fn sandbox_limits_are_the_live_ones() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    for _ in 0..5 {
        enrol(&t, SANDBOX_KEY, &token).await.assert(204);
    }
    enrol(&t, SANDBOX_KEY, &token).await.assert(429);
}

#[tokio::test]
async fn a_request_that_would_send_nothing_consumes_no_limit() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    enrol(&t, LIVE_KEY, &token).await.assert(204);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&t.last_code(PHONE))),
    )
    .await
    .assert(204);
    for _ in 0..10 {
        enrol(&t, LIVE_KEY, &token)
            .await
            .assert_conflict("CHANNEL_ALREADY_REGISTERED");
    }
    // Four more codes for another phone still fit in the hour.
    let other = t.token_with("live", "u1", json!({"phone_number": OTHER_PHONE}));
    for _ in 0..4 {
        enrol(&t, LIVE_KEY, &other).await.assert(204);
    }
    enrol(&t, LIVE_KEY, &other).await.assert(429);
}
