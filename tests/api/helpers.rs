//! The test harness: an `App` on the memory store with recording fakes and a pinned clock,
//! requests built as API Gateway hands them to the functions, and log capture.
//!
//! Every `TestApp` captures the logs of every request it handles and, when dropped, fails
//! the test if any line holds an api key, a token, a full phone number or a code the test
//! used: so every test in the suite is also a log-leak test.

use std::sync::{Arc, Mutex};

use additional_factors::{
    app::{App, AuthySignatureKey},
    auth::mint_hs256,
    clock::FixedClock,
    domain::{
        channel::Channel,
        crypto::api_key_hash,
        factor::{FactorRecord, FactorStatus},
        programme::Programme,
    },
    events::RecordingEvents,
    http::dispatch,
    push::{fake::FakePushProvider, PushProvider},
    sms::{recording::RecordingSmsSender, sns::SnsSmsSender, SmsSender},
    store::{dynamodb::DynamoStore, memory::MemoryStore, Store, UserKey},
};
use lambda_http::{http::HeaderMap, Body};
use serde_json::{json, Value};
use tracing::instrument::WithSubscriber;

pub const JWT_SECRET: &str = "test-secret-for-the-identity-service-0123";
pub const ISSUER: &str = "https://identity.test";
pub const AUDIENCE: &str = "additional-factors";
pub const OTP_SECRET: &str = "test-otp-hmac-secret-0123456789abcdef";

/// The Authy application key the test apps verify callbacks with, and their callback URL.
pub const AUTHY_KEY: &str = "test-authy-api-key-0001";
pub const CALLBACK_URL: &str = "https://factors.test/webhooks/authy";
pub const CALLBACK: &str = "/webhooks/authy";

pub const LIVE_KEY: &str = "live-programme-api-key-0001";
pub const SANDBOX_KEY: &str = "sandbox-programme-api-key-0001";
pub const PHONE: &str = "+447700900123";
pub const OTHER_PHONE: &str = "+447700900456";

/// A fixed start: 2026-11-29 10:00:30 UTC (30 s into an hour window).
pub const T0: i64 = 1_795_946_430;

/// The `iss` of the test apps' payment proofs.
pub const PROOF_ISSUER: &str = "https://factors.test";

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

pub struct TestApp {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    memory: Option<Arc<MemoryStore>>,
    /// Set when the app runs on DynamoDB and SNS (a local AWS-compatible server).
    pub aws: Option<AwsParts>,
    pub sms: Arc<RecordingSmsSender>,
    /// Behind a fault proxy: the numbers of sends whose outcome the service could not know
    /// (a timeout, or cut by the request's deadline): SNS may have sent them.
    sms_unknown: Arc<Mutex<Vec<String>>>,
    pub push: Arc<FakePushProvider>,
    pub events: Arc<RecordingEvents>,
    pub clock: Arc<FixedClock>,
    logs: LogBuffer,
    dispatch: tracing::Dispatch,
    secrets: Mutex<Vec<String>>,
}

impl TestApp {
    /// Two programmes with default settings: `live` (`LIVE_KEY`) and `sbx` (`SANDBOX_KEY`).
    pub async fn new() -> Self {
        Self::with_sms(None).await
    }

    /// The same, with another SMS sender in front of the recording one.
    pub async fn with_sms(sms: Option<Arc<dyn SmsSender>>) -> Self {
        let memory = Arc::new(MemoryStore::new());
        Self::build(memory.clone(), Some(memory), None, sms, false, true, None).await
    }

    /// The app with this push provider (the Authy adapter, pointed at a fake Authy).
    pub async fn with_push_provider(provider: Arc<dyn PushProvider>) -> Self {
        let memory = Arc::new(MemoryStore::new());
        Self::build(
            memory.clone(),
            Some(memory),
            None,
            None,
            false,
            true,
            Some(provider),
        )
        .await
    }

    /// A deployment without Authy: its callback route answers 404.
    pub async fn without_authy() -> Self {
        let memory = Arc::new(MemoryStore::new());
        Self::build(memory.clone(), Some(memory), None, None, false, false, None).await
    }

    /// The same programmes, on DynamoDB (a fresh table) and SNS at the local AWS-compatible
    /// server that `scripts/test` starts (`TEST_AWS_ENDPOINT`).
    pub async fn on_aws() -> Self {
        Self::on_aws_with_sns(None).await
    }

    /// On DynamoDB and SNS, both reached through `endpoint` (a fault proxy in front of the
    /// local server); the table is created directly.
    pub async fn on_aws_behind(endpoint: &str) -> Self {
        Self::on_aws_at(
            aws_endpoint(),
            Some(endpoint.to_owned()),
            Some(endpoint),
            None,
        )
        .await
    }

    /// On DynamoDB reached through `endpoint` (a fault proxy), with `sms` sending the codes.
    pub async fn on_aws_behind_with_sms(endpoint: &str, sms: Arc<dyn SmsSender>) -> Self {
        Self::on_aws_at(aws_endpoint(), Some(endpoint.to_owned()), None, Some(sms)).await
    }

    /// On DynamoDB; SMS through SNS at `sns_endpoint` (default: the same local server).
    pub async fn on_aws_with_sns(sns_endpoint: Option<&str>) -> Self {
        Self::on_aws_at(aws_endpoint(), None, sns_endpoint, None).await
    }

    async fn on_aws_at(
        endpoint: String,
        dynamodb_via: Option<String>,
        sns_endpoint: Option<&str>,
        sms: Option<Arc<dyn SmsSender>>,
    ) -> Self {
        // The emulator serves every test at once; under that load the production timeouts
        // (2 s a try) would turn slow answers into 503s. Only the fault tests, which check
        // those timeouts, use them (through `dynamodb_via`).
        let config = patient(additional_factors::aws::sdk_config(Some(&endpoint)).await);
        let table = format!("factors-test-{}", unique());
        let direct = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
        assert!(direct.create_table_if_missing().await.unwrap());
        // Behind a fault proxy, what SNS accepted is recorded too (`last_code`, `texts_to`).
        let record_sent = dynamodb_via.is_some();
        let dynamo = match dynamodb_via {
            Some(via) => {
                let config = additional_factors::aws::sdk_config(Some(&via)).await;
                Arc::new(DynamoStore::new(
                    aws_sdk_dynamodb::Client::new(&config),
                    &table,
                ))
            }
            None => Arc::new(direct),
        };
        let sns_config = match sns_endpoint {
            // Behind the fault proxy with DynamoDB (the storm), SNS waits for the emulator: a
            // Publish it accepted after the SDK's 2 s attempt timeout (the emulator is the
            // bottleneck there, not SNS) would be retried by the SDK and sent twice, unseen by
            // the service (SNS has no idempotency key: SECURITY.md). The storm checks how the
            // service handles faults; the production SNS timeouts have their own test
            // (faults::sms_enrolment_answers_503_under_every_sns_fault...).
            Some(other) if record_sent => {
                patient(additional_factors::aws::sdk_config(Some(other)).await)
            }
            Some(other) => additional_factors::aws::sdk_config(Some(other)).await,
            None => config,
        };
        let sns = Arc::new(SnsSmsSender::new(aws_sdk_sns::Client::new(&sns_config)));
        let aws = AwsParts {
            endpoint,
            dynamo: dynamo.clone(),
            sns: sns.clone(),
        };
        let sms = sms.unwrap_or(sns);
        Self::build(dynamo, None, Some(aws), Some(sms), record_sent, true, None).await
    }

    async fn build(
        store: Arc<dyn Store>,
        memory: Option<Arc<MemoryStore>>,
        aws: Option<AwsParts>,
        sms: Option<Arc<dyn SmsSender>>,
        record_sent: bool,
        authy: bool,
        provider: Option<Arc<dyn PushProvider>>,
    ) -> Self {
        let recording = Arc::new(RecordingSmsSender::new());
        let sms_unknown = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(RecordingEvents::default());
        let push = Arc::new(FakePushProvider::new());
        let clock = Arc::new(FixedClock::new(T0));
        let signer = Arc::new(additional_factors::proof::local::LocalSigner::generate().unwrap());
        let tokens = additional_factors::auth::TokenVerifier::new(
            Some(JWT_SECRET.as_bytes()),
            None,
            ISSUER,
            AUDIENCE,
        )
        .unwrap();
        let sms: Arc<dyn SmsSender> = match sms {
            Some(inner) if record_sent => Arc::new(Recorded {
                inner,
                record: recording.clone(),
                unknown: sms_unknown.clone(),
            }),
            Some(sender) => sender,
            None => recording.clone(),
        };
        let app = Arc::new(
            App::builder(store.clone())
                .sms(sms)
                .push(provider.unwrap_or_else(|| push.clone()))
                .clock(clock.clone())
                .events(events.clone())
                .tokens(tokens)
                .otp_secret(OTP_SECRET.as_bytes())
                .signer(signer.clone(), PROOF_ISSUER)
                .metrics(additional_factors::metrics::Metrics::recording())
                .authy_key(authy.then(|| AuthySignatureKey {
                    api_key: AUTHY_KEY.into(),
                    url: CALLBACK_URL.into(),
                }))
                .build()
                .unwrap(),
        );
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .finish();
        let test = Self {
            app,
            store,
            memory,
            aws,
            sms: recording,
            sms_unknown,
            push,
            events,
            clock,
            logs,
            dispatch: tracing::Dispatch::new(subscriber),
            secrets: Mutex::new(vec![JWT_SECRET.into(), OTP_SECRET.into()]),
        };
        test.add_programme(LIVE_KEY, Programme::new("live", false))
            .await;
        test.add_programme(SANDBOX_KEY, Programme::new("sbx", true))
            .await;
        test
    }

    /// Sets the deployment's policy (country allow-list, SMS budget) before any request.
    pub fn set_policy(&mut self, policy: additional_factors::app::DeploymentPolicy) {
        Arc::get_mut(&mut self.app)
            .expect("the policy is set before the app is shared")
            .context
            .policy = policy;
    }

    /// The memory store (tests that inject faults or look inside it).
    pub fn memory(&self) -> &MemoryStore {
        self.memory
            .as_deref()
            .expect("this test runs on the memory store")
    }

    pub async fn add_programme(&self, api_key: &str, programme: Programme) {
        self.secret(api_key);
        self.store
            .put_programme(&api_key_hash(api_key), &programme)
            .await
            .unwrap();
    }

    /// Remembers a value that must never appear in a log line.
    pub fn secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_owned());
    }

    pub fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    /// Signs any claims with the identity service's secret.
    pub fn sign(&self, claims: &Value) -> String {
        let token = mint_hs256(JWT_SECRET.as_bytes(), claims).unwrap();
        self.secret(&token);
        token
    }

    /// A valid token for `user` of `programme`, with `PHONE`, not stepped up.
    pub fn claims(&self, programme: &str, user: &str) -> Value {
        json!({
            "sub": user, "programme_id": programme, "phone_number": PHONE,
            "iss": ISSUER, "aud": AUDIENCE, "iat": self.now(), "exp": self.now() + 3600,
        })
    }

    pub fn token(&self, programme: &str, user: &str) -> String {
        self.sign(&self.claims(programme, user))
    }

    pub fn token_with(&self, programme: &str, user: &str, changes: Value) -> String {
        let mut claims = self.claims(programme, user);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        self.sign(&claims)
    }

    /// Sends a request through the same routing and handlers as the local server.
    pub async fn send(&self, req: Req) -> Resp {
        let mut builder = lambda_http::http::Request::builder()
            .method(req.method)
            .uri(req.path.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let body = match req.body {
            Some(bytes) if !bytes.is_empty() => Body::Binary(bytes),
            _ => Body::Empty,
        };
        let request = builder.body(body).unwrap();
        let response = dispatch(&self.app, request)
            .with_subscriber(self.dispatch.clone())
            .await;
        Resp::from(response)
    }

    /// A callback as Authy would send it, signed now (the nonce is the clock).
    pub fn authy_callback(&self, body: &Value) -> Req {
        let nonce = self.now().to_string();
        let signature = additional_factors::push::authy_signature::sign(
            AUTHY_KEY,
            &nonce,
            "POST",
            CALLBACK_URL,
            body,
        );
        Req::post(CALLBACK)
            .header("x-authy-signature", signature)
            .header("x-authy-signature-nonce", nonce)
            .json(body.clone())
    }

    /// The SMS texts sent so far, to a number.
    pub fn texts_to(&self, phone: &str) -> Vec<String> {
        self.sms
            .sent()
            .into_iter()
            .filter(|s| s.to == phone)
            .map(|s| s.text)
            .collect()
    }

    /// How many sends to a number had an outcome the service could not know (behind a fault
    /// proxy only): SNS may or may not have sent each.
    pub fn unknown_sends_to(&self, phone: &str) -> usize {
        self.sms_unknown
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == phone)
            .count()
    }

    /// The metrics counted so far, each as "Name dimension=value ...".
    pub fn counted(&self) -> Vec<String> {
        self.app
            .context
            .metrics
            .counted()
            .iter()
            .map(|c| {
                let mut line = c.metric.name().to_owned();
                for (k, v) in &c.dimensions {
                    line.push_str(&format!(" {k}={v}"));
                }
                line
            })
            .collect()
    }

    /// The code in the last SMS sent to a number.
    pub fn last_code(&self, phone: &str) -> String {
        let text = self.texts_to(phone).pop().expect("no SMS was sent");
        extract_code(&text).expect("no code in the SMS")
    }

    pub fn user(&self, programme: &str, user: &str) -> UserKey {
        UserKey {
            programme_id: programme.into(),
            credential_id: user.into(),
        }
    }

    /// Stores a factor directly (mobile-SDK biometric factors have no public enrol route).
    pub async fn put_factor(
        &self,
        programme: &str,
        user: &str,
        channel: Channel,
        status: FactorStatus,
    ) {
        let factor = FactorRecord {
            channel,
            status,
            phone_hash: None,
            authy_id: None,
            pending_request: None,
            verified_by: None,
            updated_at: self.now(),
        };
        self.store
            .put_factor(&self.user(programme, user), &factor)
            .await
            .unwrap();
    }

    /// Writes one line to this app's captured log (to prove the leak check can fail).
    pub fn log_line(&self, text: &str) {
        tracing::dispatcher::with_default(&self.dispatch, || tracing::info!(text, "planted"));
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.0.lock().unwrap()).into_owned()
    }

    /// Fails if any log line holds a secret, code or full phone number used by the test.
    pub fn assert_logs_clean(&self) {
        let logs = self.log_text();
        // Deduplicated: every secret is one scan of the whole log.
        let mut secrets: std::collections::BTreeSet<String> =
            self.secrets.lock().unwrap().iter().cloned().collect();
        for sent in self.sms.sent() {
            secrets.insert(sent.to.trim_start_matches('+').to_owned());
            secrets.extend(extract_code(&sent.text));
        }
        for phone in [PHONE, OTHER_PHONE] {
            secrets.insert(phone.trim_start_matches('+').to_owned());
        }
        // A code or phone number is a leak as a number of its own, not as digits inside a
        // longer one (a timestamp holds many six-digit runs), nor inside an id (request refs
        // and challenge ids are long hex runs: they may hold any six digits).
        let without_ids = strip_hex_runs(&logs);
        let numbers: std::collections::HashSet<&str> = without_ids
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| !run.is_empty())
            .collect();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let leaked = if secret.bytes().all(|b| b.is_ascii_digit()) {
                numbers.contains(secret.as_str())
            } else {
                logs.contains(secret.as_str())
            };
            if leaked {
                // Where, with the secret starred: enough to find the line that leaked.
                let at = logs.find(secret.as_str()).unwrap_or(0);
                let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
                let line = logs[line_start..line_end].replace(secret.as_str(), "<SECRET>");
                panic!("a log line holds a secret ({} chars): {line}", secret.len());
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_logs_clean();
        }
    }
}

/// The SDK configuration with long timeouts, for tests that load the emulator.
pub fn patient(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build();
    config.into_builder().timeout_config(timeouts).build()
}

/// The DynamoDB and SNS adapters of an app running on the local AWS-compatible server.
pub struct AwsParts {
    pub endpoint: String,
    pub dynamo: Arc<DynamoStore>,
    pub sns: Arc<SnsSmsSender>,
}

impl TestApp {
    fn aws(&self) -> &AwsParts {
        self.aws
            .as_ref()
            .expect("this test runs on DynamoDB and SNS")
    }

    /// DynamoDB requests made so far.
    pub fn dynamodb_requests(&self) -> u64 {
        self.aws().dynamo.requests()
    }

    /// SNS requests made so far.
    pub fn sns_requests(&self) -> u64 {
        self.aws().sns.requests()
    }

    /// The SMS texts the SNS-compatible server received for a number (all tests share the
    /// server: give each test its own numbers).
    pub async fn published_to(&self, phone: &str) -> Vec<String> {
        let data = moto_data(&self.aws().endpoint).await;
        let texts: Vec<String> = data["sns"]["SMS"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|sms| sms["phone_number"] == phone)
            .map(|sms| sms["message"].as_str().unwrap().to_owned())
            .collect();
        for text in &texts {
            self.secret(&extract_code(text).unwrap_or_default());
        }
        texts
    }

    /// The code of the last SMS published to a number.
    pub async fn last_published_code(&self, phone: &str) -> String {
        let text = self
            .published_to(phone)
            .await
            .pop()
            .expect("no SMS was published");
        extract_code(&text).unwrap()
    }
}

/// The local AWS-compatible server (moto) that `scripts/test` starts, reached through a
/// proxy that hands it one request at a time.
///
/// moto handles concurrent requests on several threads without a lock around an item's
/// condition check and update, so two conditional updates can both pass (seen: 6 attempts
/// counted against a limit of 5 under 1,000 parallel requests). DynamoDB applies each write
/// atomically; serialising moto's requests gives it the same guarantee, so the concurrency
/// tests test this code, not the emulator's race.
pub fn aws_endpoint() -> String {
    static SERIALIZED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERIALIZED
        .get_or_init(|| {
            let upstream = std::env::var("TEST_AWS_ENDPOINT").expect(
                "TEST_AWS_ENDPOINT is not set: run scripts/test, which starts a local DynamoDB/SNS-compatible server",
            );
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    serialize_requests(listener, upstream).await
                });
            });
            url
        })
        .clone()
}

async fn serialize_requests(listener: tokio::net::TcpListener, upstream: String) {
    use tokio::io::AsyncWriteExt;
    let upstream = upstream.trim_start_matches("http://").to_owned();
    // One lock per table (atomicity is per item; tests on other tables run in parallel).
    type Turns = Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>;
    let turns: Arc<Turns> = Arc::new(Mutex::new(std::collections::HashMap::new()));
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let (upstream, turns) = (upstream.clone(), turns.clone());
        tokio::spawn(async move {
            while let Some(request) = read_http_message(&mut client).await {
                let table = String::from_utf8_lossy(&request)
                    .split("\"TableName\":\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .to_owned();
                let turn = turns.lock().unwrap().entry(table).or_default().clone();
                let answer = {
                    let _turn = turn.lock().await;
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if server.write_all(&request).await.is_err() {
                        return;
                    }
                    read_http_message(&mut server).await
                };
                let Some(answer) = answer else { return };
                if client.write_all(&answer).await.is_err() {
                    return;
                }
                // The server closes after each answer (moto does): so does the proxy, or a
                // client reading to the end of the stream would wait forever.
                let head_end = answer
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(answer.len());
                if String::from_utf8_lossy(&answer[..head_end])
                    .to_ascii_lowercase()
                    .contains("connection: close")
                {
                    return;
                }
            }
        });
    }
}

/// One HTTP/1.1 message (head and Content-Length body), or None at the end of the stream.
/// Scans each byte once: emulator answers can be megabytes.
pub async fn read_http_message(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut scanned: usize = 0;
    let mut expected: Option<usize> = None;
    loop {
        if expected.is_none() {
            let from = scanned.saturating_sub(3);
            if let Some(at) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                let end = from + at;
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                expected = Some(end + 4 + length);
            }
            scanned = buf.len();
        }
        if let Some(total) = expected {
            if buf.len() >= total {
                buf.truncate(total);
                return Some(buf);
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A value unique in this test run (table names, phone numbers).
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Distinct across processes and runs sharing one long-lived server (8 digits at most).
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        ((u64::from(std::process::id()) ^ (nanos / 1_000)) % 9_000 + 1_000) * 10_000
    });
    base + NEXT.fetch_add(1, Ordering::SeqCst) % 10_000
}

/// A phone number no other test uses: `+4477` and 8 digits.
pub fn unique_phone() -> String {
    format!("+4477{:08}", unique())
}

/// A plain HTTP/1.0 GET (for the emulator's own API).
/// The emulator's record of everything (`/moto-api/data.json`). It serialises its state while
/// other tests change it and then, now and then, answers an HTML 500: asked again, it answers.
pub async fn moto_data(endpoint: &str) -> Value {
    let url = format!("{endpoint}/moto-api/data.json");
    let mut last = String::new();
    for _ in 0..20 {
        last = http_get(&url).await;
        if let Ok(data) = serde_json::from_str::<Value>(&last) {
            return data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the emulator's data.json is not JSON: {}",
        last.chars().take(300).collect::<String>()
    )
}

pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

fn strip_hex_runs(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() < 16 {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    if run.len() < 16 {
        out.push_str(&run);
    }
    out
}

/// The first run of exactly six digits in a text.
pub fn extract_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

pub trait ClockExt {
    fn now_secs(&self) -> i64;
}

impl ClockExt for FixedClock {
    fn now_secs(&self) -> i64 {
        additional_factors::clock::Clock::now(self)
    }
}

/// A request under construction.
pub struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
    pub fn key(self, api_key: &str) -> Self {
        self.header("api-key", api_key)
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    /// Both credentials.
    pub fn auth(self, api_key: &str, token: &str) -> Self {
        self.key(api_key).bearer(token)
    }
    pub fn idem(self, reference: &str) -> Self {
        self.header("idempotency-ref", reference)
    }
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }
    pub fn json(self, value: Value) -> Self {
        self.body(value.to_string())
    }
}

/// A response, its body parsed (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl From<lambda_http::Response<Body>> for Resp {
    fn from(response: lambda_http::Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let raw = String::from_utf8_lossy(body.as_ref()).into_owned();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).expect("body is JSON")
        };
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            raw,
        }
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error_code(&self) -> &str {
        self.body["errorCode"].as_str().unwrap_or("")
    }
    /// `(fieldName, error, params)` of every invalid field.
    pub fn fields(&self) -> Vec<(String, String, Vec<String>)> {
        self.body["syntaxErrors"]["invalidFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        let params = f["params"]
                            .as_array()
                            .map(|p| p.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                            .unwrap_or_default();
                        (
                            f["fieldName"].as_str().unwrap().to_owned(),
                            f["error"].as_str().unwrap().to_owned(),
                            params,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.raw);
        assert!(
            self.header("request-ref").is_some_and(|r| !r.is_empty()),
            "no request-ref"
        );
        if self.raw.is_empty() {
            assert!(self.header("content-type").is_none());
        } else {
            assert_eq!(self.header("content-type"), Some("application/json"));
        }
        self
    }
    #[track_caller]
    pub fn assert_conflict(&self, code: &str) -> &Self {
        self.assert(409);
        assert_eq!(self.body, json!({ "errorCode": code }));
        self
    }
    #[track_caller]
    pub fn assert_field(&self, field: &str, error: &str, params: &[&str]) -> &Self {
        self.assert(400);
        let expected = (
            field.to_owned(),
            error.to_owned(),
            params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        );
        assert!(
            self.fields().contains(&expected),
            "{expected:?} not in {}",
            self.raw
        );
        assert!(self.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty() && m.len() <= 255));
        self
    }
}

// Paths of the API.
pub const LIST: &str = "/authentication_factors";
pub const SMS: &str = "/authentication_factors/otp/SMS";
pub const VERIFY: &str = "/authentication_factors/otp/SMS/verify";
pub const AUTHY: &str = "/authentication_factors/push/AUTHY";
pub const BIOMETRIC: &str = "/authentication_factors/push/BIOMETRIC";
pub const ACCEPT: &str = "/simulate/authentication_factors/push/AUTHY/accept";
pub const REJECT: &str = "/simulate/authentication_factors/push/AUTHY/reject";
pub const STEP_UP_SMS: &str = "/stepup/challenges/otp/SMS";
pub const STEP_UP_VERIFY: &str = "/stepup/challenges/otp/SMS/verify";
pub const STEP_UP_PUSH: &str = "/stepup/challenges/push/AUTHY";

pub fn code_body(code: &str) -> Value {
    json!({ "verificationCode": code })
}

/// A code that is not `code`.
pub fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// The statuses of a user's factors, as listed for a token.
pub async fn listed(t: &TestApp, api_key: &str, token: &str) -> Vec<(String, String, String)> {
    let r = t.send(Req::get(LIST).auth(api_key, token)).await;
    r.assert(200);
    r.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["channel"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn row(t: &str, c: &str, s: &str) -> (String, String, String) {
    (t.into(), c.into(), s.into())
}

/// A fresh verification-attempt id (each one counts).
pub fn attempt_id() -> additional_factors::domain::ids::AttemptId {
    additional_factors::domain::ids::AttemptId::new(format!("attempt-{}", unique()))
}

/// An SMS sender that records each message the sender behind it accepted, and the number
/// of each send whose outcome stayed unknown (an error that may hide a sent SMS, or a send
/// cut before its answer).
struct Recorded {
    inner: Arc<dyn SmsSender>,
    record: Arc<RecordingSmsSender>,
    unknown: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl SmsSender for Recorded {
    async fn send(
        &self,
        message: &additional_factors::sms::SmsMessage,
    ) -> Result<(), additional_factors::sms::SmsError> {
        let to = message.to.expose_e164().to_owned();
        // Unknown until the answer says otherwise (a send cut mid-way stays unknown).
        self.unknown.lock().unwrap().push(to.clone());
        let result = self.inner.send(message).await;
        let known = match &result {
            Ok(()) => true,
            Err(e) => e.delivery == additional_factors::sms::Delivery::NotSent,
        };
        if known {
            let mut unknown = self.unknown.lock().unwrap();
            if let Some(at) = unknown.iter().position(|p| *p == to) {
                unknown.remove(at);
            }
        }
        result?;
        self.record.send(message).await
    }
}
