//! A function binary's own loop (`lambda::run`, on lambda_runtime) against a fake Lambda
//! Runtime API: what the function does with an event before any handler runs.
//!
//! Its own test binary: the runtime reads its configuration from the process environment,
//! which no other test may see.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

mod fake;
use fake::fake_runtime_api;

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

/// The same event as an API Gateway REST API sends it (payload 1.0, as the template
/// deploys): the stage in its request context, the headers twice over.
fn as_rest_event(event: &[u8]) -> Vec<u8> {
    let v2: Value = serde_json::from_slice(event).unwrap();
    let path = v2["rawPath"].as_str().unwrap();
    let method = v2["requestContext"]["http"]["method"].clone();
    let multi: serde_json::Map<String, Value> = v2["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    let rest = json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": v2["headers"],
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": format!("/prod{path}"),
            "stage": "prod",
            "requestId": "rest-request",
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": v2["body"],
        "isBase64Encoded": false,
    });
    serde_json::to_vec(&rest).unwrap()
}

#[tokio::test]
async fn an_event_over_the_cap_is_answered_413_unparsed_and_the_next_one_is_served() {
    // A 6 MB body: the largest a synchronous invocation carries.
    let attack = format!("[{}0]", "0,".repeat(3 * 1024 * 1024 - 1));
    let events = vec![
        verify_event(&attack, false),
        verify_event("{\"verificationCode\": \"123456\"}", true),
        as_rest_event(&verify_event(&attack, false)),
        as_rest_event(&verify_event("{\"verificationCode\": \"123456\"}", true)),
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
        // As the template sets it: a REST API's event names its stage.
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
    ] {
        // SAFETY: set before the runtime starts, in a test binary of one test.
        unsafe { std::env::set_var(name, value) };
    }
    // The function's loop runs beside the checks, in this task (its future is not `Send`
    // for every lifetime, as `spawn` needs); it never ends on its own.
    let function = additional_factors::lambda::run::<
        additional_factors::handlers::verify_sms_otp::VerifySmsOtp,
    >();
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

        // The same through a REST API (the deployed one): the 413 is a REST API's proxy
        // response, shaped as the next event's, which reaches its route although its path
        // carries the stage.
        let refused_rest = next(&mut responses).await;
        assert_eq!(refused_rest["statusCode"], 413, "{refused_rest}");
        let served_rest = next(&mut responses).await;
        assert_eq!(served_rest["statusCode"], 400, "{served_rest}");
        let body: Value = serde_json::from_str(served_rest["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["syntaxErrors"]["invalidFields"][0]["fieldName"], "api-key",
            "{body}"
        );
        assert_eq!(keys(&refused_rest), keys(&served_rest));
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
