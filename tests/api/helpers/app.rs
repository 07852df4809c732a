//! `TestApp`: the API's `App` built as an entry point builds it (`App::builder`), on the
//! memory store or on the local AWS-compatible server, with recording fakes and a pinned
//! clock; requests go through the same routing as the local server.

use std::sync::{Arc, Mutex};

use additional_factors::{
    app::{App, CallbackSignatureKey},
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
use serde_json::{json, Value};
use tracing::instrument::WithSubscriber;

use super::{logs::LogBuffer, *};

pub struct TestApp {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    pub(super) memory: Option<Arc<MemoryStore>>,
    /// Set when the app runs on DynamoDB and SNS (a local AWS-compatible server).
    pub aws: Option<AwsParts>,
    pub sms: Arc<RecordingSmsSender>,
    /// Behind a fault proxy: the numbers of sends whose outcome the service could not know
    /// (a timeout, or cut by the request's deadline): SNS may have sent them.
    pub(super) sms_unknown: Arc<Mutex<Vec<String>>>,
    pub push: Arc<FakePushProvider>,
    /// BIOMETRIC devices' pushes, as the local server's outbox keeps them.
    pub devices: Arc<additional_factors::push::device_outbox::OutboxDevicePush>,
    pub events: Arc<RecordingEvents>,
    pub clock: Arc<FixedClock>,
    pub(super) logs: LogBuffer,
    pub(super) dispatch: tracing::Dispatch,
    pub(super) secrets: Mutex<Vec<String>>,
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
        let devices =
            Arc::new(additional_factors::push::device_outbox::OutboxDevicePush::new(None));
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
                .device_push(devices.clone())
                .tokens(tokens)
                .otp_secret(OTP_SECRET.as_bytes())
                .signer(signer.clone(), PROOF_ISSUER)
                .sandbox_signer(Arc::new(
                    additional_factors::proof::local::LocalSigner::generate().unwrap(),
                ))
                .metrics(additional_factors::metrics::Metrics::recording())
                .callback_key(authy.then(|| CallbackSignatureKey {
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
            devices,
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

    /// Pushes to devices through `push` instead of the outbox (SNS at the local server, or an
    /// unreachable one), before any request.
    pub fn set_device_push(&mut self, push: Arc<dyn additional_factors::push::device::DevicePush>) {
        Arc::get_mut(&mut self.app)
            .expect("the device push is set before the app is shared")
            .device_push = push;
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
            Some(bytes) if !bytes.is_empty() => lambda_http::Body::Binary(bytes),
            _ => lambda_http::Body::Empty,
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
            provider_ref: None,
            pending_request: None,
            verified_by: None,
            updated_at: self.now(),
            device: None,
        };
        self.store
            .put_factor(&self.user(programme, user), &factor)
            .await
            .unwrap();
    }
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
pub trait ClockExt {
    fn now_secs(&self) -> i64;
}

impl ClockExt for FixedClock {
    fn now_secs(&self) -> i64 {
        additional_factors::clock::Clock::now(self)
    }
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
