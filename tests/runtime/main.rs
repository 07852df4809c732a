//! A function binary's own loop (`lambda::run`, on lambda_runtime) against a fake Lambda
//! Runtime API: what the function does with an event before any handler runs.
//!
//! Its own test binary: the runtime reads its configuration from the process environment,
//! which no other test may see.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// Reads one HTTP/1.1 request (head and `Content-Length` body).
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = head.lines().next().unwrap_or_default().to_owned();
            return Some((line, buf[end + 4..end + 4 + length].to_vec()));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serves `events` one per `next`, in order (then holds `next` open), and sends each
/// posted response, as JSON, to the returned channel.
async fn fake_runtime_api(events: Vec<Vec<u8>>) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (responses, received) = mpsc::unbounded_channel();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(events.into_iter().enumerate()));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (queue, responses) = (queue.clone(), responses.clone());
            tokio::spawn(async move {
                while let Some((line, body)) = read_request(&mut stream).await {
                    if line.contains("/runtime/invocation/next") {
                        let Some((n, event)) = queue.lock().await.next() else {
                            std::future::pending::<()>().await;
                            return;
                        };
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: request-{n}\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:000000000000:function:f\r\nContent-Length: {}\r\n\r\n",
                            event.len()
                        );
                        stream.write_all(head.as_bytes()).await.unwrap();
                        stream.write_all(&event).await.unwrap();
                    } else {
                        if line.contains("/response") {
                            let _ = responses.send(serde_json::from_slice(&body).unwrap());
                        } else {
                            let _ = responses.send(json!({ "unexpected": line }));
                        }
                        stream
                            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    (address, received)
}

/// The shipped verify event (API Gateway HTTP API, payload 2.0) with another body, and
/// without its `api-key` if `keyless`.
fn verify_event(body: &str, keyless: bool) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/08-verify-sms-otp.409-wrong-code.json"
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["body"] = json!(body);
    if keyless {
        event["headers"].as_object_mut().unwrap().remove("api-key");
    }
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn an_event_over_the_cap_is_answered_413_unparsed_and_the_next_one_is_served() {
    // A 6 MB body: the largest a synchronous invocation carries.
    let attack = format!("[{}0]", "0,".repeat(3 * 1024 * 1024 - 1));
    let events = vec![
        verify_event(&attack, false),
        verify_event("{\"verificationCode\": \"123456\"}", true),
    ];
    let (address, mut responses) = fake_runtime_api(events).await;
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "verify-sms-otp"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/verify-sms-otp"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "stream"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("TABLE_NAME", "never-reached"),
        // Nothing listens: neither event may reach DynamoDB.
        ("DYNAMODB_ENDPOINT", "http://127.0.0.1:9"),
        ("JWT_ISSUER", "https://identity.local"),
        ("JWT_AUDIENCE", "additional-factors"),
        (
            "JWT_HS256_SECRET",
            "events-development-secret-not-for-production",
        ),
        (
            "OTP_HMAC_SECRET",
            "events-development-otp-key-not-for-production",
        ),
        ("DEFAULT_ALLOWED_COUNTRY_CODES", "44"),
    ] {
        // SAFETY: set before the runtime starts, in a test binary of one test.
        unsafe { std::env::set_var(name, value) };
    }
    // The function's loop runs beside the checks, in this task (its future is not `Send`
    // for every lifetime, as `spawn` needs); it never ends on its own.
    let function = additional_factors::lambda::run::<additional_factors::lambda::VerifySmsOtp>();
    let checks = async move {
        let refused = next(&mut responses).await;
        assert_eq!(refused["statusCode"], 413, "{refused}");
        let body: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
        assert!(body["message"].is_string(), "{body}");
        assert!(
            refused["headers"]["request-ref"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{refused}"
        );
        assert_eq!(refused["headers"]["content-type"], "application/json");

        // The next event is served whole: the 413 was for that event only. (Without an api-key
        // it is refused by the pipeline, before any store call.)
        let served = next(&mut responses).await;
        assert_eq!(served["statusCode"], 400, "{served}");
        let body: Value = serde_json::from_str(served["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["syntaxErrors"]["invalidFields"][0]["fieldName"], "api-key",
            "{body}"
        );
        // Shaped alike: both answers are HTTP API (payload 2.0) responses.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&refused), keys(&served));
    };
    tokio::select! {
        stopped = function => panic!("the function stopped: {stopped:?}"),
        () = checks => {}
    }
}

async fn next(responses: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(60), responses.recv())
        .await
        .expect("the function posted no response")
        .unwrap()
}
