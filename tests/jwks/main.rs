//! A deployment whose identity service signs with its own keys (Cognito, Auth0, Okta, Entra:
//! ES256 or RS256 behind a JWKS URL) and holds no HS256 secret: the function names no token
//! secret and fetches none; a token signed by a key the identity service added after the
//! last fetch verifies at once (one early refetch, at most one a minute), not at the next
//! refresh. The function's own loop (`lambda::run`) against a fake Lambda Runtime API.
//!
//! Its own test binary: the function reads its configuration from the process environment,
//! which no other test may see.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use additional_factors::{
    domain::{crypto::api_key_hash, programme::Programme},
    proof::{jwks, local::LocalSigner, sign_proof},
    store::{dynamodb::DynamoStore, Seeding},
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[path = "../runtime/fake.rs"]
mod fake;

const OTP_KEY: &str = "otp-hmac-key-at-least-32-bytes-long!!!";
const API_KEY: &str = "jwks-test-api-key";

/// The identity service's JWKS endpoint: serves the keys it holds now, counting fetches.
#[derive(Clone, Default)]
struct IdentityKeys {
    document: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl wiremock::Respond for IdentityKeys {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        wiremock::ResponseTemplate::new(200).set_body_json(self.document.lock().unwrap().clone())
    }
}

async fn keys_of(signers: &[&LocalSigner]) -> Value {
    let mut keys = Vec::new();
    for signer in signers {
        keys.extend(
            jwks(*signer).await.unwrap()["keys"]
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    json!({ "keys": keys })
}

fn event(token: &str) -> Vec<u8> {
    json!({
        "version": "2.0", "routeKey": "GET /authentication_factors", "rawPath": "/authentication_factors",
        "rawQueryString": "",
        "headers": {"api-key": API_KEY, "authorization": format!("Bearer {token}")},
        "requestContext": {"accountId": "1", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": "GET", "path": "/authentication_factors", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "test"},
            "requestId": "r", "routeKey": "GET /authentication_factors", "stage": "$default",
            "time": "", "timeEpoch": 0},
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

async fn token(signer: &LocalSigner) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://identity.local", "aud": "additional-factors",
        "sub": "u1", "programme_id": "jwks-sandbox", "phone_number": "+447700900123",
        "iat": now, "exp": now + 600});
    sign_proof(signer, &claims).await.unwrap()
}

#[tokio::test]
async fn a_jwks_only_deployment_fetches_an_added_key_at_once_and_no_more_than_once_a_minute() {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT").expect("scripts/test starts moto");
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let table = format!("jwks-{unique}");
    let otp_secret = format!("af-test/{unique}/otp");
    let sdk = additional_factors::aws::sdk_config(Some(&endpoint)).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    store.create_table_if_missing().await.unwrap();
    store
        .put_programme(
            &api_key_hash(API_KEY),
            &Programme::new("jwks-sandbox", true),
        )
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&otp_secret)
        .secret_string(OTP_KEY)
        .send()
        .await
        .unwrap();

    let first = LocalSigner::generate().unwrap();
    let added = LocalSigner::generate().unwrap();
    let never = LocalSigner::generate().unwrap();
    let identity = IdentityKeys::default();
    *identity.document.lock().unwrap() = keys_of(&[&first]).await;
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/.well-known/jwks.json"))
        .respond_with(identity.clone())
        .mount(&server)
        .await;
    let jwks_url = format!("{}/.well-known/jwks.json", server.uri());

    let (feed, events) = mpsc::unbounded_channel();
    let (address, mut responses) = fake::fed_runtime_api(events).await;
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "list-factors"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("TABLE_NAME", table.as_str()),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("SECRETS_ENDPOINT", endpoint.as_str()),
        ("JWT_ISSUER", "https://identity.local"),
        ("JWT_AUDIENCE", "additional-factors"),
        // As the template deploys it with TokenSecretName empty: no token secret named.
        ("JWT_HS256_SECRET_ID", ""),
        ("OTP_HMAC_SECRET_ID", otp_secret.as_str()),
        ("JWT_JWKS_URL", jwks_url.as_str()),
        // No periodic refresh within the test: only the unknown kid fetches early.
        ("SECRETS_REFRESH_SECONDS", "3600"),
        ("DEFAULT_ALLOWED_COUNTRY_CODES", "44"),
    ] {
        // SAFETY: set before the function starts, in a test binary of one test.
        unsafe { std::env::set_var(name, value) };
    }
    let function = additional_factors::lambda::run::<
        additional_factors::handlers::list_factors::ListFactors,
    >();
    let checks = async move {
        let mut status = async |token: String| {
            feed.send(event(&token)).unwrap();
            let answer = tokio::time::timeout(std::time::Duration::from_secs(20), responses.recv())
                .await
                .expect("the function answers")
                .expect("the runtime API is up");
            answer["statusCode"].as_u64().unwrap()
        };
        assert_eq!(status(token(&first).await).await, 200, "the JWKS's key");
        assert_eq!(
            identity.fetches.load(Ordering::SeqCst),
            1,
            "fetched at init"
        );
        // The identity service adds a key and signs with it: verified at once, by one fetch.
        *identity.document.lock().unwrap() = keys_of(&[&first, &added]).await;
        assert_eq!(status(token(&added).await).await, 200, "the added key");
        assert_eq!(identity.fetches.load(Ordering::SeqCst), 2);
        // A kid it does not hold: 401, and within the minute no further fetch.
        assert_eq!(status(token(&never).await).await, 401);
        assert_eq!(status(token(&never).await).await, 401);
        assert_eq!(identity.fetches.load(Ordering::SeqCst), 2, "throttled");
        // An HS256 token: no HS256 key exists here.
        let hs256 = additional_factors::auth::mint_hs256(
            b"any-key-at-least-32-bytes-long!!!!!!!",
            &json!({"iss": "https://identity.local", "aud": "additional-factors", "sub": "u1",
                    "programme_id": "jwks-sandbox", "exp": 4_102_444_800u64}),
        )
        .unwrap();
        assert_eq!(status(hs256).await, 401);
    };
    tokio::select! {
        stopped = function => panic!("the function stopped: {stopped:?}"),
        () = checks => {}
    }
}
