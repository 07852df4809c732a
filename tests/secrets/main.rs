//! A deployed function fetches its secrets from Secrets Manager (a local server speaking its
//! API) and keeps them fresh: its own loop (`lambda::run`) against a fake Lambda Runtime API,
//! with only secret ids in its environment.
//!
//! Its own test binary: the function reads its configuration from the process environment,
//! which no other test may see.

use additional_factors::store::Seeding;
use std::time::Duration;

use additional_factors::{
    auth::mint_hs256,
    domain::{crypto::api_key_hash, programme::Programme},
    store::dynamodb::DynamoStore,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[path = "../runtime/fake.rs"]
mod fake;

const TOKEN_KEY: &str = "token-key-one-at-least-32-bytes-long!!";
const ROTATED_TOKEN_KEY: &str = "token-key-two-at-least-32-bytes-long!!";
const OTP_KEY: &str = "otp-hmac-key-at-least-32-bytes-long!!!";
const API_KEY: &str = "secrets-test-api-key";

fn endpoint() -> String {
    std::env::var("TEST_AWS_ENDPOINT").expect(
        "TEST_AWS_ENDPOINT is not set: run scripts/test, which starts a local DynamoDB/SNS-compatible server",
    )
}

async fn sdk() -> aws_config::SdkConfig {
    additional_factors::aws::sdk_config(Some(&endpoint())).await
}

/// A token's claims, issued now (by this machine's clock, as the function reads it) for an
/// hour: no token may live longer than a day.
fn claims() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({
        "sub": "secrets-user", "programme_id": "secrets-sandbox",
        "iss": "https://identity.local", "aud": "additional-factors",
        "iat": now, "exp": now + 3_600, "phone_number": "+447700900123",
    })
}

/// The shipped list-factors event, with this test's api key and a token signed by `key`.
fn list_event(key: &str) -> Vec<u8> {
    with_token(&mint_hs256(key.as_bytes(), &claims()).unwrap())
}

/// The shipped list-factors event, with this test's api key and `token`.
fn with_token(token: &str) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/03-list-factors.200-empty.json"
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["headers"]["api-key"] = json!(API_KEY);
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    serde_json::to_vec(&event).unwrap()
}

async fn next(responses: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(60), responses.recv())
        .await
        .expect("the function posted no response")
        .unwrap()
}

#[tokio::test]
async fn a_function_fetches_its_secrets_at_run_time_and_follows_a_rotation() {
    let unique = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let table = format!("secrets-{unique}");
    let token_secret = format!("af-test/{unique}/jwt");
    let otp_secret = format!("af-test/{unique}/otp");
    let sdk = sdk().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    store.create_table_if_missing().await.unwrap();
    store
        .put_programme(
            &api_key_hash(API_KEY),
            &Programme::new("secrets-sandbox", true),
        )
        .await
        .unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    secrets
        .create_secret()
        .name(&token_secret)
        .secret_string(TOKEN_KEY)
        .send()
        .await
        .unwrap();
    // The HMAC key's secret does not exist yet: the function cannot serve until it does.

    // The identity service also publishes public keys (a JWKS URL, fetched like a secret).
    let identity = additional_factors::proof::local::LocalSigner::generate().unwrap();
    let jwks_server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/.well-known/jwks.json"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(additional_factors::proof::jwks(&identity).await.unwrap()),
        )
        .mount(&jwks_server)
        .await;
    let jwks_url = format!("{}/.well-known/jwks.json", jwks_server.uri());

    let (feed, events) = mpsc::unbounded_channel();
    let (address, mut responses) = fake::fed_runtime_api(events).await;
    let endpoint = endpoint();
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "list-factors"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/list-factors"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "stream"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("TABLE_NAME", table.as_str()),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("SECRETS_ENDPOINT", endpoint.as_str()),
        ("JWT_ISSUER", "https://identity.local"),
        ("JWT_AUDIENCE", "additional-factors"),
        // Ids only, as the template deploys them: no secret in the environment.
        ("JWT_HS256_SECRET_ID", token_secret.as_str()),
        ("OTP_HMAC_SECRET_ID", otp_secret.as_str()),
        ("JWT_JWKS_URL", jwks_url.as_str()),
        ("SECRETS_REFRESH_SECONDS", "1"),
        ("DEFAULT_ALLOWED_COUNTRY_CODES", "44"),
    ] {
        // SAFETY: set before the function starts, in a test binary of one test.
        unsafe { std::env::set_var(name, value) };
    }
    let function = additional_factors::lambda::run::<
        additional_factors::handlers::list_factors::ListFactors,
    >();
    let checks = async move {
        // Init could not fetch the HMAC key: a 503 with Retry-After, not a failed init.
        feed.send(list_event(TOKEN_KEY)).unwrap();
        let unready = next(&mut responses).await;
        assert_eq!(unready["statusCode"], 503, "{unready}");
        assert!(unready["headers"]["retry-after"].is_string(), "{unready}");

        secrets
            .create_secret()
            .name(&otp_secret)
            .secret_string(OTP_KEY)
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        feed.send(list_event(TOKEN_KEY)).unwrap();
        let served = next(&mut responses).await;
        assert_eq!(served["statusCode"], 200, "{served}");
        feed.send(list_event(ROTATED_TOKEN_KEY)).unwrap();
        assert_eq!(next(&mut responses).await["statusCode"], 401);
        let es256 = additional_factors::proof::sign_proof(&identity, &claims())
            .await
            .unwrap();
        feed.send(with_token(&es256)).unwrap();
        assert_eq!(next(&mut responses).await["statusCode"], 200, "JWKS key");

        // Rotation: the new key verifies within the refresh interval, and tokens the key it
        // replaced (AWSPREVIOUS) signed before the rotation still verify; tokens it signs
        // after the rotation do not (a leaked key stops working when it is rotated out), and
        // a key never stored never did.
        let signed_before = list_event(TOKEN_KEY);
        let signed_before_again = list_event(TOKEN_KEY);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        secrets
            .put_secret_value()
            .secret_id(&token_secret)
            .secret_string(ROTATED_TOKEN_KEY)
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        for (what, event, status) in [
            ("the new key", list_event(ROTATED_TOKEN_KEY), 200),
            ("the old key, signed before", signed_before, 200),
            ("the old key, signed after", list_event(TOKEN_KEY), 401),
            (
                "a key never held",
                list_event("a-key-no-secret-ever-held-32-bytes!!!!"),
                401,
            ),
        ] {
            feed.send(event).unwrap();
            let answer = next(&mut responses).await;
            assert_eq!(answer["statusCode"], status, "{what}: {answer}");
        }

        // The emergency path: the previous version's AWSPREVIOUS label removed, the key it
        // holds verifies nothing from the next refresh on.
        let versions = secrets
            .list_secret_version_ids()
            .secret_id(&token_secret)
            .send()
            .await
            .unwrap();
        let previous = versions
            .versions()
            .iter()
            .find(|v| v.version_stages().iter().any(|s| s == "AWSPREVIOUS"))
            .and_then(|v| v.version_id())
            .unwrap()
            .to_owned();
        secrets
            .update_secret_version_stage()
            .secret_id(&token_secret)
            .version_stage("AWSPREVIOUS")
            .remove_from_version_id(previous)
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        feed.send(list_event(ROTATED_TOKEN_KEY)).unwrap();
        assert_eq!(next(&mut responses).await["statusCode"], 200, "the refresh");
        feed.send(signed_before_again).unwrap();
        let answer = next(&mut responses).await;
        assert_eq!(answer["statusCode"], 401, "AWSPREVIOUS removed: {answer}");
    };
    tokio::select! {
        stopped = function => panic!("the function stopped: {stopped:?}"),
        () = checks => {}
    }
}
