//! The API on DynamoDB and SNS, over HTTP to the local AWS-compatible server: the
//! walk-through, the concurrency rules, expiry the emulator never enforces, SNS failures, and
//! the number of DynamoDB requests each operation makes (the table in BENCHMARKS.md).

use additional_factors::store::{Codes, IdempotencyRecords, SmsEnrolments};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::helpers::*;

fn phone_token(t: &TestApp, programme: &str, user: &str, phone: &str) -> String {
    t.token_with(programme, user, json!({ "phone_number": phone }))
}

#[tokio::test]
async fn walk_through_enrol_verify_list_push_unlink() {
    let t = TestApp::on_aws().await;
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("e1"))
        .await
        .assert(204);
    let code = t.last_published_code(&phone).await;
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&wrong(&code))),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_INVALID");
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    assert_eq!(
        listed(&t, LIVE_KEY, &token).await,
        [row("OTP", "SMS", "ACTIVE")]
    );
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("CHANNEL_ALREADY_REGISTERED");

    let sbx = phone_token(&t, "sbx", "u1", &phone);
    let up = t.token_with("sbx", "u1", json!({"phone_number": phone, "amr": ["mfa"]}));
    t.send(Req::post(AUTHY).auth(SANDBOX_KEY, &sbx))
        .await
        .assert(204);
    t.send(Req::post(ACCEPT).auth(SANDBOX_KEY, &sbx))
        .await
        .assert(204);
    assert_eq!(
        listed(&t, SANDBOX_KEY, &sbx).await,
        [row("PUSH", "AUTHY", "ACTIVE")]
    );
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &sbx))
        .await
        .assert(403);
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert(204);
    assert!(listed(&t, SANDBOX_KEY, &sbx).await.is_empty());
    t.send(Req::delete(AUTHY).auth(SANDBOX_KEY, &up))
        .await
        .assert_conflict("CHANNEL_NOT_REGISTERED");
    assert_eq!(t.published_to(&phone).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_wrong_codes_compare_at_most_five_on_dynamodb() {
    let t = Arc::new(TestApp::on_aws().await);
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_published_code(&phone).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (t, token, bad) = (t.clone(), token.clone(), wrong(&code));
            tokio::spawn(async move {
                t.send(
                    Req::post(VERIFY)
                        .auth(LIVE_KEY, &token)
                        .json(code_body(&bad)),
                )
                .await
            })
        })
        .collect();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 409, "{}", r.raw);
        *codes.entry(r.error_code().to_owned()).or_default() += 1;
    }
    assert_eq!(t.app.context.metrics.codes_compared(), 5);
    assert_eq!(codes.get("STATE_INVALID"), Some(&45));
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("STATE_INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_enrolments_with_one_reference_publish_one_sms() {
    let t = Arc::new(TestApp::on_aws().await);
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (t, token) = (t.clone(), token.clone());
            tokio::spawn(async move {
                t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("once"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let r = task.await.unwrap();
        assert!(
            r.status == 204 || r.error_code() == "IDEMPOTENT_REQUEST_IN_PROGRESS",
            "{} {}",
            r.status,
            r.raw
        );
    }
    assert_eq!(
        t.published_to(&phone).await.len(),
        1,
        "counted from the server's record of published SMS"
    );
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("once"))
        .await;
    assert_eq!(
        (r.status, r.header("idempotent-replayed")),
        (204, Some("true"))
    );
    assert_eq!(t.published_to(&phone).await.len(), 1);
}

#[tokio::test]
async fn an_expired_challenge_whose_item_still_exists_is_expired() {
    let t = TestApp::on_aws().await;
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    let code = t.last_published_code(&phone).await;
    t.clock.advance(300);
    let token = phone_token(&t, "live", "u1", &phone);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_EXPIRED");
    t.clock.advance(3_600);
    let token = phone_token(&t, "live", "u1", &phone);
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert_conflict("VERIFICATION_CODE_EXPIRED");
}

#[tokio::test]
async fn unreachable_sns_is_a_503_and_leaves_nothing_behind() {
    let t = TestApp::on_aws_with_sns(Some("http://127.0.0.1:9")).await;
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("try"))
        .await;
    r.assert(503);
    assert_eq!(r.header("retry-after"), Some("2"));
    // No usable challenge, and the reference is free for the retry.
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body("000000")),
    )
    .await
    .assert_conflict("STATE_INVALID");
    let again = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("try"))
        .await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (503, None)
    );
}

/// A stand-in SNS endpoint that records each request's form parameters and fails the first
/// `failures` requests with a 500 `InternalError`.
struct SnsCapture {
    url: String,
    requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn sns_capture(failures: u32) -> SnsCapture {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicU32::new(failures));
    let recorded = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (recorded, failures) = (recorded.clone(), failures.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                };
                let params: HashMap<String, String> = body
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (form_decode(k), form_decode(v)))
                    .collect();
                recorded.lock().unwrap().push(params);
                let fail = failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let (status, xml) = if fail {
                    ("500 Internal Server Error", "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>boom</Message></Error><RequestId>r</RequestId></ErrorResponse>")
                } else {
                    ("200 OK", "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>")
                };
                let response = format!("HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len());
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    SnsCapture { url, requests }
}

fn form_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn the_sns_request_carries_number_text_type_and_sender_id() {
    let capture = sns_capture(0).await;
    let t = TestApp::on_aws_with_sns(Some(&capture.url)).await;
    let mut acme = additional_factors::domain::programme::Programme::new("acme", false);
    acme.sms_sender_id = Some("ACME".into());
    t.add_programme("acme-api-key-000001", acme).await;
    let phone = unique_phone();
    t.send(Req::post(SMS).auth(
        "acme-api-key-000001",
        &phone_token(&t, "acme", "u1", &phone),
    ))
    .await
    .assert(204);
    let requests = capture.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let p = &requests[0];
    assert_eq!(p.get("Action").map(String::as_str), Some("Publish"));
    assert_eq!(p.get("PhoneNumber"), Some(&phone));
    let code = extract_code(&p["Message"]).unwrap();
    t.secret(&code);
    assert_eq!(
        p["Message"],
        format!("{code} is your acme verification code. It expires in 5 minutes.")
    );
    let attributes: HashMap<&str, (&str, &str)> = (1..=2)
        .map(|i| {
            let key = |k: &str| p[&format!("MessageAttributes.entry.{i}.{k}")].as_str();
            (
                key("Name"),
                (key("Value.DataType"), key("Value.StringValue")),
            )
        })
        .collect();
    assert_eq!(
        attributes["AWS.SNS.SMS.SMSType"],
        ("String", "Transactional")
    );
    assert_eq!(attributes["AWS.SNS.SMS.SenderID"], ("String", "ACME"));
}

#[tokio::test]
async fn a_failing_sns_is_a_503_and_the_retry_sends_a_new_code() {
    // Three 500s: every attempt of the SDK's retry policy fails.
    let capture = sns_capture(3).await;
    let t = TestApp::on_aws_with_sns(Some(&capture.url)).await;
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("sms-1"))
        .await;
    r.assert(503);
    assert_eq!(capture.requests.lock().unwrap().len(), 3);
    let first_code = extract_code(&capture.requests.lock().unwrap()[0]["Message"]).unwrap();
    t.secret(&first_code);
    // The unsent code is not usable; the retry under the same reference runs and sends anew.
    let retry = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("sms-1"))
        .await;
    assert_eq!(
        (retry.status, retry.header("idempotent-replayed")),
        (204, None)
    );
    let requests = capture.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4);
    let code = extract_code(&requests[3]["Message"]).unwrap();
    t.secret(&code);
    if code != first_code {
        t.send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token)
                .json(code_body(&first_code)),
        )
        .await
        .assert_conflict("VERIFICATION_CODE_INVALID");
    }
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
}

/// DynamoDB requests per operation, counted by the adapter. These are the numbers in
/// BENCHMARKS.md; a change that adds a round trip fails here.
#[tokio::test]
async fn dynamodb_requests_per_operation() {
    let t = TestApp::on_aws().await;
    let phone = unique_phone();
    let token = phone_token(&t, "live", "u1", &phone);
    let mut table: Vec<(&str, u64, u64)> = Vec::new();
    let mut measure = |name: &'static str, before: u64, after: u64, expected: u64| {
        table.push((name, after - before, expected));
    };
    let b = t.dynamodb_requests();
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
    measure(
        "list (cold: programme read + query)",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
    measure("list (programme cached)", b, t.dynamodb_requests(), 1);
    let b = t.dynamodb_requests();
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(204);
    measure("enrol SMS", b, t.dynamodb_requests(), 1);
    let code = t.last_published_code(&phone).await;
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&wrong(&code))),
    )
    .await
    .assert(409);
    measure("verify, wrong code", b, t.dynamodb_requests(), 1);
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(204);
    measure("verify, right code", b, t.dynamodb_requests(), 2);
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token)
            .json(code_body(&code)),
    )
    .await
    .assert(409);
    measure(
        "verify, no challenge (CHANNEL_ALREADY_REGISTERED)",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(Req::post(SMS).auth(LIVE_KEY, &token))
        .await
        .assert(409);
    measure(
        "enrol SMS, already registered (409)",
        b,
        t.dynamodb_requests(),
        1,
    );
    let other = unique_phone();
    let token2 = phone_token(&t, "live", "u2", &other);
    let b = t.dynamodb_requests();
    t.send(Req::post(SMS).auth(LIVE_KEY, &token2).idem("r"))
        .await
        .assert(204);
    measure(
        "enrol SMS with idempotency-ref (claim in the transaction)",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(Req::post(SMS).auth(LIVE_KEY, &token2).idem("r"))
        .await
        .assert(204);
    measure("replay", b, t.dynamodb_requests(), 1);
    let code2 = t.last_published_code(&other).await;
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token2)
            .idem("w")
            .json(code_body(&wrong(&code2))),
    )
    .await
    .assert(409);
    measure(
        "verify, wrong code, with idempotency-ref",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token2)
            .idem("v")
            .json(code_body(&code2)),
    )
    .await
    .assert(204);
    measure(
        "verify, right code, with idempotency-ref (record in the transaction)",
        b,
        t.dynamodb_requests(),
        2,
    );
    let b = t.dynamodb_requests();
    let replayed = t
        .send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token2)
                .idem("v")
                .json(code_body(&code2)),
        )
        .await;
    replayed.assert(204);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    measure(
        "verify replay (count refused, factor read, record found)",
        b,
        t.dynamodb_requests(),
        3,
    );
    let b = t.dynamodb_requests();
    t.send(
        Req::post(VERIFY)
            .auth(LIVE_KEY, &token2)
            .json(code_body("12345")),
    )
    .await
    .assert(400);
    measure("verify, 400", b, t.dynamodb_requests(), 0);
    let no_phone = t.token_with("live", "u3", json!({"phone_number": null}));
    let b = t.dynamodb_requests();
    t.send(Req::post(SMS).auth(LIVE_KEY, &no_phone))
        .await
        .assert(409);
    measure("enrol SMS, no phone (409)", b, t.dynamodb_requests(), 0);
    let b = t.dynamodb_requests();
    t.send(Req::get(LIST).auth("unknown-key", &token))
        .await
        .assert(401);
    measure("unknown api key (401)", b, t.dynamodb_requests(), 1);
    // SNS: one Publish per code sent; none for replays, conflicts or verifications.
    assert_eq!(t.sns_requests(), 2);
    for (name, measured, expected) in &table {
        println!("dynamodb requests | {name:<55} | {measured}");
        assert_eq!(measured, expected, "{name}");
    }
}

/// A proxy in front of the DynamoDB-compatible server that sends every request twice and
/// answers with the second answer: what the SDK does when the first answer is lost on the
/// way back (a reset mid-response) and it retries.
async fn resending_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                while let Some(request) = read_http_message(&mut client).await {
                    let mut answer = Vec::new();
                    for _ in 0..2 {
                        let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                        server.write_all(&request).await.unwrap();
                        answer = read_http_message(&mut server).await.unwrap_or_default();
                    }
                    if client.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_resent_write_counts_one_attempt_keeps_its_own_claim_and_activates_once() {
    use additional_factors::{
        domain::{
            idempotency::IdempotencyRef,
            ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
        },
        store::{dynamodb::DynamoStore, AttemptOutcome, ClaimOutcome, NewChallenge, UserKey},
    };
    let endpoint = aws_endpoint();
    let table = format!("resend-{}", unique());
    let direct = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&additional_factors::aws::sdk_config(Some(&endpoint)).await),
        &table,
    );
    direct.create_table_if_missing().await.unwrap();
    let proxy = resending_proxy(endpoint).await;
    let resent = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&additional_factors::aws::sdk_config(Some(&proxy)).await),
        &table,
    );
    let user = UserKey {
        programme_id: "p".into(),
        credential_id: "u".into(),
    };
    let challenge = NewChallenge {
        challenge_id: "c".into(),
        code_hash: "h".into(),
        phone_hash: "ph".into(),
        wrong_code_limit: 5,
        expires_at: 2_000_000_000,
    };
    direct
        .start_sms_challenge(&user, &challenge, &[], 1_800_000_000)
        .await
        .unwrap();
    for expected in 1..=3 {
        match resent
            .count_sms_attempt(&user, &PhoneHash::from("ph"), &attempt_id(), 1_800_000_000)
            .await
            .unwrap()
        {
            AttemptOutcome::Counted(attempt) => {
                assert_eq!(attempt.attempts, expected, "one attempt per request")
            }
            other => panic!("{other:?}"),
        }
    }
    let reference = IdempotencyRef::parse(b"resent").unwrap();
    assert_eq!(
        resent
            .claim_idempotency(
                &user,
                &reference,
                "f",
                &LeaseId::from("lease"),
                1_800_000_000
            )
            .await
            .unwrap(),
        ClaimOutcome::Claimed,
        "a resent claim is still ours"
    );
    assert_eq!(
        direct
            .claim_idempotency(
                &user,
                &reference,
                "f",
                &LeaseId::from("other"),
                1_800_000_000
            )
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    // The emulator ignores the transaction's ClientRequestToken (DynamoDB dedupes by it), so
    // the resent activation is refused: the store finds its own attempt's success.
    assert!(resent
        .activate_sms_factor(
            &user,
            &ChallengeId::from("c"),
            &PhoneHash::from("ph"),
            &AttemptId::from("attempt-x"),
            1_800_000_000
        )
        .await
        .unwrap());
    assert!(!direct
        .activate_sms_factor(
            &user,
            &ChallengeId::from("c"),
            &PhoneHash::from("ph"),
            &AttemptId::from("attempt-y"),
            1_800_000_000
        )
        .await
        .unwrap());
}
