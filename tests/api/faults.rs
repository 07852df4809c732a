//! Injected faults between the functions and DynamoDB/SNS: a proxy in front of the local
//! AWS-compatible server refuses connections, resets them mid-response, delays past the SDK
//! timeout, or answers DynamoDB `ThrottlingException` / `ProvisionedThroughputExceededException`
//! and SNS `Throttling` / `InternalError`. Every route answers 503 with `Retry-After` within
//! its time budget, and the next request, faults gone, works: nothing was left half-done.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

use crate::helpers::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Pass,
    /// The connection is closed before anything is answered.
    Refuse,
    /// A DynamoDB request reaches the server; its answer is cut halfway. (An SNS request is
    /// dropped unsent instead: SNS `Publish` has no idempotency key, so a text accepted whose
    /// answer was lost is sent again by any retry, the SDK's or the caller's. No code can
    /// tell that case apart; SECURITY.md says so.)
    ResetMidResponse,
    /// Longer than the SDK's per-attempt timeout.
    Delay,
    DynamoThrottling,
    DynamoProvisionedThroughput,
    SnsThrottling,
    SnsInternalError,
}

pub struct FaultProxy {
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    faulted: Arc<std::sync::atomic::AtomicU64>,
}

impl FaultProxy {
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// How many requests met a fault.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn canned(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub async fn fault_proxy(upstream: &str) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let fault = Arc::new(Mutex::new(Fault::Pass));
    let faulted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (shared, counter) = (fault.clone(), faulted.clone());
    // The emulator behind is one Python process: concurrent TransactWriteItems make it slow
    // by orders of magnitude (measured: 20 clients, median 8.6 s, some HTML 500s), where
    // DynamoDB serves them in milliseconds. Requests pass to it two at a time, so what the
    // faults test is the service's handling of faults, not the emulator's contention.
    let upstream_slots = Arc::new(tokio::sync::Semaphore::new(2));
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let (upstream, fault, counter) = (upstream.clone(), shared.clone(), counter.clone());
            let upstream_slots = upstream_slots.clone();
            tokio::spawn(async move {
                while let Some(request) = read_http_message(&mut client).await {
                    let mut mode = *fault.lock().unwrap();
                    let to_sns = !String::from_utf8_lossy(&request).contains("DynamoDB_20120810");
                    if mode == Fault::ResetMidResponse && to_sns {
                        mode = Fault::Refuse;
                    }
                    if mode != Fault::Pass {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let answer = match mode {
                        Fault::Refuse => return,
                        Fault::Delay => {
                            tokio::time::sleep(additional_factors::aws::ATTEMPT_TIMEOUT + Duration::from_millis(500)).await;
                            return;
                        }
                        Fault::DynamoThrottling => canned(
                            "400 Bad Request",
                            "application/x-amz-json-1.0",
                            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
                        ),
                        Fault::DynamoProvisionedThroughput => canned(
                            "400 Bad Request",
                            "application/x-amz-json-1.0",
                            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
                        ),
                        Fault::SnsThrottling => canned(
                            "400 Bad Request",
                            "text/xml",
                            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                        ),
                        Fault::SnsInternalError => canned(
                            "500 Internal Server Error",
                            "text/xml",
                            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>boom</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                        ),
                        Fault::Pass | Fault::ResetMidResponse => {
                            // A request still queued here when its caller gave up (the SDK's
                            // attempt timeout) is never forwarded: a late copy reaching the
                            // emulator after the SDK's retry would be a second SMS or write
                            // that no network in front of AWS produces from a queue.
                            let _slot = tokio::select! {
                                slot = upstream_slots.acquire() => match slot {
                                    Ok(slot) => slot,
                                    Err(_) => return,
                                },
                                () = caller_gone(&client) => return,
                            };
                            let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                            if server.write_all(&request).await.is_err() {
                                return;
                            }
                            let Some(answer) = read_http_message(&mut server).await else { return };
                            if mode == Fault::ResetMidResponse {
                                let _ = client.write_all(&answer[..answer.len() / 2]).await;
                                return;
                            }
                            answer
                        }
                    };
                    if client.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    FaultProxy {
        url,
        fault,
        faulted,
    }
}

/// Resolves when the caller closes its connection (it sends nothing else while it waits).
async fn caller_gone(client: &TcpStream) {
    let mut byte = [0u8; 1];
    match client.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Builds the same request again (for its retry).
type RequestMaker = Box<dyn Fn() -> Req + Send + Sync>;

/// The time a request may take under any fault: within the 10 s function timeout.
const BUDGET: Duration = Duration::from_secs(9);

#[track_caller]
fn assert_unavailable(r: &Resp, started: Instant, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.raw);
    assert_eq!(r.header("retry-after"), Some("2"), "{what}");
    assert_eq!(r.raw, "", "{what}");
    assert!(
        started.elapsed() < BUDGET,
        "{what}: took {:?}",
        started.elapsed()
    );
}

async fn on_faulty_aws() -> (TestApp, FaultProxy) {
    let proxy = fault_proxy(&aws_endpoint()).await;
    let t = TestApp::on_aws_behind(&proxy.url).await;
    (t, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_503_under_every_dynamodb_fault_and_recovers() {
    let faults = [
        Fault::Refuse,
        Fault::ResetMidResponse,
        Fault::Delay,
        Fault::DynamoThrottling,
        Fault::DynamoProvisionedThroughput,
    ];
    let tasks: Vec<_> = faults
        .into_iter()
        .map(|fault| {
            tokio::spawn(async move {
                let (t, proxy) = on_faulty_aws().await;
                let phone = unique_phone();
                let token =
                    t.token_with("sbx", "u1", json!({"phone_number": phone, "amr": ["mfa"]}));
                let auth = |r: Req| r.auth(SANDBOX_KEY, &token);
                // Warm the programme cache so every route reaches its own store calls.
                t.send(auth(Req::get(LIST))).await.assert(200);
                let routes: Vec<(&str, RequestMaker)> = vec![
                    ("list", Box::new(|| Req::get(LIST))),
                    ("enrol SMS", Box::new(|| Req::post(SMS).idem("enrol"))),
                    (
                        "verify",
                        Box::new(|| Req::post(VERIFY).idem("verify").json(code_body("123456"))),
                    ),
                    ("enrol push", Box::new(|| Req::post(AUTHY).idem("push"))),
                    ("accept", Box::new(|| Req::post(ACCEPT).idem("accept"))),
                    ("unlink", Box::new(|| Req::delete(AUTHY).idem("unlink"))),
                ];
                for (what, request) in &routes {
                    proxy.set(fault);
                    let started = Instant::now();
                    let r = t.send(auth(request())).await;
                    assert_unavailable(&r, started, &format!("{fault:?} {what}"));
                    proxy.set(Fault::Pass);
                    // A claim whose release failed too (every call was cut) holds the
                    // reference for its lease (60 s, IDEMPOTENT_REQUEST_IN_PROGRESS); past it,
                    // the same request, retried with the same reference, runs to its end.
                    t.clock.advance(61);
                    let token =
                        t.token_with("sbx", "u1", json!({"phone_number": phone, "amr": ["mfa"]}));
                    let auth = |r: Req| r.auth(SANDBOX_KEY, &token);
                    let again = t.send(auth(request())).await;
                    assert!(
                        again.status < 500,
                        "{fault:?} {what} after recovery: {} {}",
                        again.status,
                        again.raw
                    );
                    assert_eq!(
                        again.header("idempotent-replayed"),
                        None,
                        "{fault:?} {what}: nothing was kept from the 503"
                    );
                }
                // The whole flow ended where it should have.
                let token = t.token_with("sbx", "u1", json!({"phone_number": phone}));
                assert_eq!(
                    listed(&t, SANDBOX_KEY, &token).await,
                    [row("OTP", "SMS", "ACTIVE")],
                    "{fault:?}"
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_enrolment_answers_503_under_every_sns_fault_and_the_retry_sends_one_code() {
    for fault in [
        Fault::Refuse,
        Fault::Delay,
        Fault::SnsThrottling,
        Fault::SnsInternalError,
    ] {
        let proxy = fault_proxy(&aws_endpoint()).await;
        let t = TestApp::on_aws_with_sns(Some(&proxy.url)).await;
        let phone = unique_phone();
        let token = t.token_with("live", "u1", json!({ "phone_number": phone }));
        proxy.set(fault);
        let started = Instant::now();
        let r = t
            .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("e"))
            .await;
        assert_unavailable(&r, started, &format!("{fault:?}"));
        assert!(t.published_to(&phone).await.is_empty(), "{fault:?}");
        proxy.set(Fault::Pass);
        t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("e"))
            .await
            .assert(204);
        let code = t.last_published_code(&phone).await;
        assert_eq!(t.published_to(&phone).await.len(), 1, "{fault:?}");
        t.send(
            Req::post(VERIFY)
                .auth(LIVE_KEY, &token)
                .json(code_body(&code)),
        )
        .await
        .assert(204);
    }
}

/// An SMS sender that hangs on its first send (a dependency slower than any timeout).
struct HangsOnce(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl additional_factors::sms::SmsSender for HangsOnce {
    async fn send(
        &self,
        _: &additional_factors::sms::SmsMessage,
    ) -> Result<(), additional_factors::sms::SmsError> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_request_past_its_budget_is_cut_and_answered_503_and_its_retry_runs() {
    let t = TestApp::with_sms(Some(Arc::new(HangsOnce(false.into())))).await;
    let token = t.token("live", "u1");
    let started = Instant::now();
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("slow"))
        .await;
    assert_unavailable(&r, started, "hanging SMS provider");
    assert!(started.elapsed() >= additional_factors::aws::REQUEST_DEADLINE);
    // A 503 keeps nothing: the claim of the cut request was dropped, and the retry runs to
    // its end (not a replay, not IDEMPOTENT_REQUEST_IN_PROGRESS).
    let retried = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("slow"))
        .await;
    retried.assert(204);
    assert_eq!(retried.header("idempotent-replayed"), None);
}

/// An SMS sender that succeeds just before the request's deadline, after making DynamoDB
/// slower than any timeout: the request's answer is then kept past its deadline.
struct SlowSendThenSlowStore {
    proxy: Arc<FaultProxy>,
    sent: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl additional_factors::sms::SmsSender for SlowSendThenSlowStore {
    async fn send(
        &self,
        _: &additional_factors::sms::SmsMessage,
    ) -> Result<(), additional_factors::sms::SmsError> {
        self.proxy.set(Fault::Delay);
        tokio::time::sleep(additional_factors::aws::REQUEST_DEADLINE - Duration::from_secs(1))
            .await;
        self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_sent_near_the_deadline_is_answered_204_even_when_its_answer_cannot_be_kept() {
    let proxy = Arc::new(fault_proxy(&aws_endpoint()).await);
    let sms = Arc::new(SlowSendThenSlowStore {
        proxy: proxy.clone(),
        sent: 0.into(),
    });
    let t = TestApp::on_aws_behind_with_sms(&proxy.url, sms.clone()).await;
    let token = t.token("live", "u1");
    let started = Instant::now();
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("late"))
        .await;
    // The SMS went out: the caller is told so, although keeping the answer (DynamoDB now
    // slower than any timeout) ran past the deadline and failed. A 503 here would have the
    // caller retry, and send a second SMS once the claim's lease ran out.
    r.assert(204);
    let elapsed = started.elapsed();
    assert!(
        elapsed > additional_factors::aws::REQUEST_DEADLINE
            && elapsed < BUDGET + Duration::from_millis(500),
        "took {elapsed:?}"
    );
    assert_eq!(sms.sent.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The claim was never completed: the same request is held off (not run again) until its
    // lease ends.
    proxy.set(Fault::Pass);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("late"))
        .await
        .assert_conflict("IDEMPOTENT_REQUEST_IN_PROGRESS");
    assert_eq!(sms.sent.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// An SMS sender that panics on its first send (a bug in a dependency).
struct PanicsOnce(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl additional_factors::sms::SmsSender for PanicsOnce {
    async fn send(
        &self,
        _: &additional_factors::sms::SmsMessage,
    ) -> Result<(), additional_factors::sms::SmsError> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a bug in a dependency");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panic_is_that_requests_500_with_a_request_ref_and_the_next_requests_are_served() {
    let t = TestApp::with_sms(Some(Arc::new(PanicsOnce(false.into())))).await;
    let token = t.token("live", "u1");
    let r = t
        .send(Req::post(SMS).auth(LIVE_KEY, &token).idem("first"))
        .await;
    assert_eq!(r.status, 500, "{}", r.raw);
    assert_eq!(r.raw, "", "no internal text in the body");
    let request_ref = r.header("request-ref").expect("a request-ref").to_owned();
    assert!(!request_ref.is_empty());
    // The log line an on-call engineer finds by that request-ref says what happened.
    let logs = t.log_text();
    assert!(
        logs.lines().any(|l| l.contains(&request_ref)
            && l.contains("internal error")
            && l.contains("the request panicked")),
        "{logs}"
    );
    // The same process serves on: a read, and the enrolment again.
    t.send(Req::get(LIST).auth(LIVE_KEY, &token))
        .await
        .assert(200);
    t.send(Req::post(SMS).auth(LIVE_KEY, &token).idem("second"))
        .await
        .assert(204);
}
