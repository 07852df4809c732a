//! Hardening: brute force at scale on DynamoDB, and the request parsers under generated
//! hostile input (every answer a 4xx in the contract's format, never a panic or a 5xx).

use std::{collections::HashMap, sync::Arc};

use serde_json::json;

use additional_factors::http::router::Route;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_parallel_wrong_guesses_on_dynamodb_compare_at_most_five() {
    let t = Arc::new(TestApp::on_aws().await);
    let phone = unique_phone();
    let token = t.token_with("live", "u1", json!({ "phone_number": phone }));
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_published_code(&phone).await;
    let limiter = Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let (t, token, limiter) = (t.clone(), token.clone(), limiter.clone());
            // Every guess differs from the code (and from each other where it can).
            let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
            tokio::spawn(async move {
                let _permit = limiter.acquire().await.unwrap();
                t.send(
                    Req::post(VERIFY)
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
    assert_eq!(
        t.app.context.metrics.codes_compared(),
        5,
        "counted from the store's grants: {answers:?}"
    );
    assert_eq!(answers.get("STATE_INVALID"), Some(&995));
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("STATE_INVALID");
}

/// A small deterministic generator (the tests must be reproducible).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Hostile bodies: deep nesting, huge strings, invalid UTF-8, duplicate keys, wrong types.
fn hostile_body(g: &mut Gen) -> Vec<u8> {
    match g.below(9) {
        0 => format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        1 => format!(r#"{{"verificationCode": "{}"}}"#, "9".repeat(1_000_000)).into_bytes(),
        2 => {
            let mut b = br#"{"verificationCode": ""#.to_vec();
            b.extend(g.bytes(6).iter().map(|x| x | 0x80));
            b.extend_from_slice(br#""}"#);
            b
        }
        3 => br#"{"verificationCode": "123456", "verificationCode": "654321"}"#.to_vec(),
        4 => format!(r#"{{"verificationCode": {}}}"#, g.next()).into_bytes(),
        5 => br#"{"verificationCode": ["1","2","3","4","5","6"]}"#.to_vec(),
        6 => {
            let len = g.below(200) as usize;
            g.bytes(len)
        }
        7 => format!(r#"{{"verificationCode": "{}"}}"#, "\\u0000".repeat(6)).into_bytes(),
        _ => format!(
            r#"{{"a": {}}}"#,
            "{\"a\":".repeat(200) + "1" + &"}".repeat(200)
        )
        .into_bytes(),
    }
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_in_the_contract_format_and_change_nothing() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let user = t.user("live", "u1");
    let mut g = Gen(0x5EED_1234_ABCD_0001);
    // Hostile bodies where a body is read.
    for round in 0..300 {
        let r = t
            .send(
                Req::post(VERIFY)
                    .auth(LIVE_KEY, &token)
                    .body(hostile_body(&mut g)),
            )
            .await;
        assert!(
            r.status == 400 || r.status == 409 || r.status == 413,
            "round {round}: {} {}",
            r.status,
            r.raw
        );
        r.assert(r.status);
        if r.status == 400 {
            let message = r.body["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty() && message.len() <= 255,
                "round {round}: {}",
                r.raw
            );
        }
    }
    // Hostile header values on every mutating route: always a 400, nothing run.
    let routes = [
        Req::post as fn(&str) -> Req,
        Req::post,
        Req::post,
        Req::delete,
    ];
    for round in 0..200 {
        let value: Vec<u8> = match g.below(4) {
            0 => g.bytes(8).iter().map(|b| b | 0x80).collect(),
            1 => vec![b'x'; 256 + g.below(10_000) as usize],
            2 => b"tab\tinside".to_vec(),
            _ => Vec::new(),
        };
        let i = round % 4;
        let path = [SMS, VERIFY, AUTHY, AUTHY][i];
        let body = hostile_body(&mut g);
        // A body over the route's cap is refused before any header is read.
        let too_large = body.len() > Route::EnrolSmsOtp.max_body_bytes();
        let r = t
            .send(
                routes[i](path)
                    .auth(LIVE_KEY, &token)
                    .header("idempotency-ref", value)
                    .body(body),
            )
            .await;
        if too_large {
            r.assert(413);
            continue;
        }
        r.assert(400);
        assert_eq!(r.fields()[0].0, "idempotency-ref", "round {round}");
    }
    // Path parameters: every byte pattern a client could put in the channel segment.
    for round in 0..200 {
        let len = 1 + g.below(12) as usize;
        let segment: String = g.bytes(len).iter().map(|b| format!("%{b:02X}")).collect();
        let r = t
            .send(
                Req::post(&format!("/authentication_factors/otp/{segment}")).auth(LIVE_KEY, &token),
            )
            .await;
        assert!(
            r.status == 400 || r.status == 404,
            "round {round}: {} {}",
            r.status,
            r.raw
        );
    }
    // Nothing was counted or sent by any of it: the challenge is intact.
    assert_eq!(t.memory().challenge_attempts(&user), Some(0));
    assert_eq!(t.sms.sent().len(), 1);
}

#[tokio::test]
async fn a_6_mb_body_is_a_clean_413_and_a_long_code_a_clean_400() {
    let t = TestApp::new().await;
    let token = t.token("live", "u1");
    let body = format!(
        r#"{{"verificationCode": "{}"}}"#,
        "1".repeat(6 * 1024 * 1024)
    );
    let r = t
        .send(Req::post(VERIFY).auth(LIVE_KEY, &token).body(body))
        .await;
    r.assert(413);
    assert!(r.body["message"].is_string());
    let body = format!(r#"{{"verificationCode": "{}"}}"#, "1".repeat(3_000));
    let r = t
        .send(Req::post(VERIFY).auth(LIVE_KEY, &token).body(body))
        .await;
    r.assert_field("verificationCode", "SIZE", &["6", "6"]);
}

#[tokio::test]
async fn a_repeated_field_is_a_malformed_body() {
    let t = TestApp::new().await;
    let token = t.token("sbx", "u1");
    t.send(Req::post(SMS).auth(SANDBOX_KEY, &token))
        .await
        .assert(204);
    for body in [
        r#"{"verificationCode": "654321", "verificationCode": "123456"}"#,
        r#"{"verificationCode": "123456", "verificationCode": "123456"}"#,
    ] {
        let r = t
            .send(Req::post(VERIFY).auth(SANDBOX_KEY, &token).body(body))
            .await;
        r.assert(400);
        assert!(r.body.get("syntaxErrors").is_none());
    }
    assert_eq!(t.memory().challenge_attempts(&t.user("sbx", "u1")), Some(0));
    // Repeated fields elsewhere are not ours to judge; an array is not an object.
    t.send(
        Req::post(VERIFY)
            .auth(SANDBOX_KEY, &token)
            .body(r#"["123456"]"#),
    )
    .await
    .assert(400);
    t.send(
        Req::post(VERIFY)
            .auth(SANDBOX_KEY, &token)
            .body(r#"{"x": 1, "x": 2, "verificationCode": "123456"}"#),
    )
    .await
    .assert(204);
}

/// Every way in with a bad key or token is the same empty 401, and none is measurably slower
/// than the others: in particular a key sharing a long prefix with a real one costs what a
/// random one costs (the key is hashed before it is looked up: no timing oracle). The cases
/// run interleaved, so machine load affects them alike; medians of 300 rounds each.
#[tokio::test]
async fn every_refusal_is_an_empty_401_in_about_the_same_time() {
    use std::time::{Duration, Instant};

    use additional_factors::domain::programme::Programme;
    let t = TestApp::new().await;
    let mut disabled = Programme::new("off", false);
    disabled.disabled = true;
    t.add_programme("disabled-programme-api-key-0001", disabled)
        .await;
    let good = t.token("live", "u1");
    let now = t.now();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "unknown key",
            "completely-unrelated-key-000000".into(),
            good.clone(),
        ),
        (
            "key sharing a prefix",
            format!("{}X", &LIVE_KEY[..LIVE_KEY.len() - 1]),
            good.clone(),
        ),
        (
            "disabled programme",
            "disabled-programme-api-key-0001".into(),
            t.token("off", "u1"),
        ),
        ("foreign programme", SANDBOX_KEY.into(), good.clone()),
        (
            "expired",
            LIVE_KEY.into(),
            t.token_with("live", "u1", json!({"exp": now - 3600})),
        ),
        (
            "not yet valid",
            LIVE_KEY.into(),
            t.token_with("live", "u1", json!({"nbf": now + 3600})),
        ),
        (
            "wrong issuer",
            LIVE_KEY.into(),
            t.token_with("live", "u1", json!({"iss": "x"})),
        ),
        (
            "wrong audience",
            LIVE_KEY.into(),
            t.token_with("live", "u1", json!({"aud": "x"})),
        ),
        (
            "truncated",
            LIVE_KEY.into(),
            good[..good.len() - 3].to_owned(),
        ),
        (
            "oversized",
            LIVE_KEY.into(),
            format!("{good}{}", "A".repeat(8 * 1024)),
        ),
        (
            "alg none",
            LIVE_KEY.into(),
            format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                good.split('.').nth(1).unwrap()
            ),
        ),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..300 {
        for (i, (why, key, token)) in cases.iter().enumerate() {
            let request = Req::get(LIST).auth(key, token);
            let started = Instant::now();
            let r = t.send(request).await;
            samples[i].push(started.elapsed());
            assert_eq!((r.status, r.raw.as_str()), (401, ""), "{why}");
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect();
    let fastest = *medians.iter().min().unwrap();
    for ((why, _, _), median) in cases.iter().zip(&medians) {
        println!("401 for {why:<22} median {median:?}");
        assert!(
            *median < fastest * 3,
            "{why}: {median:?} against {fastest:?}"
        );
    }
    let close = |a: Duration, b: Duration| a.max(b).as_secs_f64() / a.min(b).as_secs_f64() < 1.5;
    // Whether a key is valid cannot be learnt from the time of a 401: an unknown key with a
    // good token costs what a valid key with a bad token costs, and a near miss of a real key
    // what a random key does.
    assert!(
        close(medians[0], medians[1]),
        "prefix: {:?} vs {:?}",
        medians[0],
        medians[1]
    );
    assert!(
        close(medians[0], medians[4]),
        "unknown key {:?} vs expired token {:?}",
        medians[0],
        medians[4]
    );
    assert!(
        close(medians[2], medians[6]),
        "disabled {:?} vs wrong issuer {:?}",
        medians[2],
        medians[6]
    );
}
