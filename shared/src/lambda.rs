//! The Lambda entry point every function binary calls: build the state once per cold start,
//! then serve one route.
//!
//! Each binary names its function (`run::<ListFactors>()`), and the function says, as
//! constants, what it calls besides DynamoDB. The state is built from those constants, so a
//! binary holds code only for the clients its route uses: the linker leaves the SNS client
//! out of `list-factors` and `enrol-push`, and the Authy client out of every function but
//! the two push routes (BENCHMARKS.md has the sizes).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use lambda_http::{lambda_runtime::LambdaInvocation, service_fn, Request};

use crate::{
    app::{Adapters, App},
    clock::SystemClock,
    config::{Config, ConfigError, Mode},
    domain::random::SystemRandom,
    events::EventPublisher,
    handlers::reply::ApiError,
    http::{handle, reject_unrouted, router::Route},
    push::{unconfigured::UnconfiguredPushProvider, PushProvider},
    secrets::{SecretIds, SecretValues, SecretsManagerSource},
    sms::{sns::SnsSmsSender, NoSmsSender, SmsSender},
    store::dynamodb::DynamoStore,
};

/// One function binary: its route and what it calls besides DynamoDB.
pub trait Function {
    const ROUTE: Route;
    /// SMS through SNS.
    const SENDS_SMS: bool = false;
    /// The push provider (Authy) over HTTPS.
    const CALLS_PUSH_PROVIDER: bool = false;
    /// Lifecycle events to the SNS topic.
    const PUBLISHES_EVENTS: bool = false;
    /// Payment proofs: signs them with KMS (or reads the public keys, for the JWKS).
    const SIGNS_PROOFS: bool = false;
    /// Takes a user's token, and hashes phone numbers and codes: needs the token key and
    /// the HMAC key (`JWT_HS256_SECRET_ID`, `OTP_HMAC_SECRET_ID`).
    const AUTHENTICATES_USERS: bool = true;
    /// Needs the Authy API key (`AUTHY_API_KEY_SECRET_ID`): to call Authy, or to check its
    /// signature.
    const USES_AUTHY_KEY: bool = Self::CALLS_PUSH_PROVIDER;
    /// Reads the table (every route but the JWKS): its connection is opened at init.
    const READS_TABLE: bool = true;
}

pub struct ListFactors;
impl Function for ListFactors {
    const ROUTE: Route = Route::ListFactors;
}

pub struct EnrolSmsOtp;
impl Function for EnrolSmsOtp {
    const ROUTE: Route = Route::EnrolSmsOtp;
    const SENDS_SMS: bool = true;
}

pub struct VerifySmsOtp;
impl Function for VerifySmsOtp {
    const ROUTE: Route = Route::VerifySmsOtp;
    const PUBLISHES_EVENTS: bool = true;
}

pub struct EnrolPush;
impl Function for EnrolPush {
    const ROUTE: Route = Route::EnrolPush;
    const CALLS_PUSH_PROVIDER: bool = true;
}

pub struct UnlinkPush;
impl Function for UnlinkPush {
    const ROUTE: Route = Route::UnlinkPush;
    const CALLS_PUSH_PROVIDER: bool = true;
    const PUBLISHES_EVENTS: bool = true;
}

/// Serves `.../accept` and `.../reject` (see `run_simulator`).
pub struct SimulatePush;
impl Function for SimulatePush {
    const ROUTE: Route = Route::SimulatePushAccept;
    const PUBLISHES_EVENTS: bool = true;
}

/// Checks Authy's signature with the API key: no call to Authy. Signs the proof of an
/// approved push payment.
pub struct AuthyCallback;
impl Function for AuthyCallback {
    const ROUTE: Route = Route::AuthyCallback;
    const PUBLISHES_EVENTS: bool = true;
    const SIGNS_PROOFS: bool = true;
    const AUTHENTICATES_USERS: bool = false;
    const USES_AUTHY_KEY: bool = true;
}

/// Sends a payment challenge's code by SMS.
pub struct PaymentSms;
impl Function for PaymentSms {
    const ROUTE: Route = Route::PaymentSms;
    const SENDS_SMS: bool = true;
}

/// Checks a payment code; signs its proof; publishes the outcome.
pub struct VerifyPaymentSms;
impl Function for VerifyPaymentSms {
    const ROUTE: Route = Route::VerifyPaymentSms;
    const PUBLISHES_EVENTS: bool = true;
    const SIGNS_PROOFS: bool = true;
}

/// Pushes a payment approval request to Authy.
pub struct PaymentPush;
impl Function for PaymentPush {
    const ROUTE: Route = Route::PaymentPush;
    const CALLS_PUSH_PROVIDER: bool = true;
}

/// Reads a payment challenge (and its stored proof).
pub struct GetPaymentChallenge;
impl Function for GetPaymentChallenge {
    const ROUTE: Route = Route::GetPaymentChallenge;
}

/// Serves the proofs' public keys.
pub struct Jwks;
impl Function for Jwks {
    const ROUTE: Route = Route::Jwks;
    const SIGNS_PROOFS: bool = true;
    const AUTHENTICATES_USERS: bool = false;
    const READS_TABLE: bool = false;
}

/// Serves the sandbox payment simulator's `.../accept` and `.../reject`; signs proofs.
pub struct SimulatePayment;
impl Function for SimulatePayment {
    const ROUTE: Route = Route::SimulatePaymentAccept;
    const PUBLISHES_EVENTS: bool = true;
    const SIGNS_PROOFS: bool = true;
}

/// Sends a step-up code by SMS.
pub struct StepUpSms;
impl Function for StepUpSms {
    const ROUTE: Route = Route::StepUpSms;
    const SENDS_SMS: bool = true;
}

/// Checks a step-up code; publishes the challenge's outcome.
pub struct VerifyStepUpSms;
impl Function for VerifyStepUpSms {
    const ROUTE: Route = Route::VerifyStepUpSms;
    const PUBLISHES_EVENTS: bool = true;
}

/// Pushes a step-up approval request to Authy.
pub struct StepUpPush;
impl Function for StepUpPush {
    const ROUTE: Route = Route::StepUpPush;
    const CALLS_PUSH_PROVIDER: bool = true;
}

/// Reads a push step-up challenge; publishes `EXPIRED` when it finds one.
pub struct GetStepUpChallenge;
impl Function for GetStepUpChallenge {
    const ROUTE: Route = Route::GetStepUpChallenge;
    const PUBLISHES_EVENTS: bool = true;
}

/// Serves the sandbox step-up simulator's `.../accept` and `.../reject`.
pub struct SimulateStepUp;
impl Function for SimulateStepUp {
    const ROUTE: Route = Route::SimulateStepUpAccept;
    const PUBLISHES_EVENTS: bool = true;
}

/// Runs the function `F` until the Lambda runtime stops it.
pub async fn run<F: Function>() -> Result<(), lambda_http::Error> {
    serve::<F>(|_| F::ROUTE).await
}

/// Runs the sandbox push simulator: one function for `.../accept` and `.../reject`.
pub async fn run_simulator() -> Result<(), lambda_http::Error> {
    run_accept_reject::<SimulatePush>(Route::SimulatePushReject).await
}

/// Runs the sandbox step-up simulator: one function for `.../accept` and `.../reject`.
pub async fn run_step_up_simulator() -> Result<(), lambda_http::Error> {
    run_accept_reject::<SimulateStepUp>(Route::SimulateStepUpReject).await
}

/// Runs the sandbox payment simulator: one function for `.../accept` and `.../reject`.
pub async fn run_payment_simulator() -> Result<(), lambda_http::Error> {
    run_accept_reject::<SimulatePayment>(Route::SimulatePaymentReject).await
}

/// One function for a simulator's two paths: `F::ROUTE` accepts, `reject` rejects.
async fn run_accept_reject<F: Function>(reject: Route) -> Result<(), lambda_http::Error> {
    serve::<F>(move |request| {
        if request.uri().path().ends_with("/reject") {
            reject
        } else {
            F::ROUTE
        }
    })
    .await
}

/// Serves each invocation on the route `route_of` picks; an event too large for it is
/// answered 413 unparsed (`RefuseOversizedEvents`).
async fn serve<F: Function>(
    route_of: impl Fn(&Request) -> Route + Send + Sync + 'static,
) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let served = Arc::new(Served::<F>::start(config).await?);
    let oversized = Arc::new(AtomicBool::new(false));
    let refuse = RefuseOversizedEvents {
        cap: event_cap(F::ROUTE),
        oversized: oversized.clone(),
    };
    let handler = service_fn(move |request: Request| {
        let served = served.clone();
        let too_large = oversized.swap(false, Ordering::SeqCst);
        let route = route_of(&request);
        async move {
            let (app, ready) = served.app().await;
            Ok::<_, std::convert::Infallible>(match (too_large, ready) {
                (true, _) => reject_unrouted(&app, &ApiError::PayloadTooLarge),
                (false, false) => reject_unrouted(
                    &app,
                    &ApiError::Unavailable("the function's secrets could not be fetched".into()),
                ),
                (false, true) => handle(&app, route, request).await,
            })
        }
    });
    lambda_http::lambda_runtime::Runtime::new(lambda_http::Adapter::from(handler))
        .layer(refuse)
        // Outermost, so the refusal is logged within the invocation's span.
        .layer(lambda_http::lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

/// The largest event a route's function parses: its body cap twice over (a body may come
/// base64-encoded) and 64 KB for the headers and request context (API Gateway allows 10 KB
/// of headers).
pub fn event_cap(route: Route) -> usize {
    route.max_body_bytes() * 2 + 64 * 1024
}

/// A stand-in for an event over the cap: the smallest event of an API Gateway HTTP API
/// (payload 2.0, as the template deploys) that lambda_http reads, so the 413 is shaped as
/// that API expects. The handler never looks at it (`oversized` says to answer 413).
pub const STAND_IN_EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"","headers":{},"requestContext":{"accountId":"","apiId":"","domainName":"localhost","domainPrefix":"localhost","http":{"method":"POST","path":"/","protocol":"HTTP/1.1","sourceIp":"","userAgent":""},"requestId":"","routeKey":"$default","stage":"$default","time":"","timeEpoch":0},"isBase64Encoded":false}"#;

/// Refuses an event larger than any request the function accepts before it is parsed.
///
/// The runtime has read the event whole by then; what this saves is every copy after it:
/// lambda_http deserialises the event (the body becomes a second string as large as the
/// event) and builds the request from it. Swapped for `STAND_IN_EVENT`, the large event is
/// freed at once, and the handler, told through `oversized`, answers 413. (One event at a
/// time runs in a Lambda environment, so one flag serves.)
#[derive(Clone)]
pub struct RefuseOversizedEvents {
    pub cap: usize,
    pub oversized: Arc<AtomicBool>,
}

impl<S> lambda_http::tower::Layer<S> for RefuseOversizedEvents {
    type Service = RefuseOversized<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseOversized {
            inner,
            refuse: self.clone(),
        }
    }
}

pub struct RefuseOversized<S> {
    inner: S,
    refuse: RefuseOversizedEvents,
}

impl<S> lambda_http::Service<LambdaInvocation> for RefuseOversized<S>
where
    S: lambda_http::Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        if invocation.body.len() > self.refuse.cap {
            tracing::info!(
                bytes = invocation.body.len(),
                cap = self.refuse.cap,
                "event too large: refused unparsed"
            );
            invocation.body = STAND_IN_EVENT.as_bytes().into();
            self.refuse.oversized.store(true, Ordering::SeqCst);
        }
        self.inner.call(invocation)
    }
}

/// What a function's state is built from that no secret changes: the adapters (SDK clients
/// built on first use), the proof signer, and where its secrets are fetched from.
struct Parts {
    store: Arc<dyn crate::store::Store>,
    /// The same store, to open its connection at init (`DynamoStore::warm_up`).
    table: Arc<DynamoStore>,
    sms: Arc<dyn SmsSender>,
    events: Arc<dyn EventPublisher>,
    signer: Option<Arc<dyn crate::proof::ProofSigner>>,
    secrets: Option<SecretsManagerSource>,
}

impl Parts {
    /// DynamoDB, and SNS, KMS and Secrets Manager where `F` uses them.
    async fn build<F: Function>(config: &Config) -> Result<Self, lambda_http::Error> {
        let table = config
            .table_name
            .clone()
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let started = std::time::Instant::now();
        let sdk = crate::aws::sdk_config(config.dynamodb_endpoint.as_deref()).await;
        let sdk_loaded = started.elapsed();
        let same_endpoint =
            |endpoint: &Option<String>| endpoint.is_none() || *endpoint == config.dynamodb_endpoint;
        let mut sms: Arc<dyn SmsSender> = Arc::new(NoSmsSender);
        let mut events: Arc<dyn EventPublisher> = Arc::new(crate::events::NoEvents);
        if F::SENDS_SMS || F::PUBLISHES_EVENTS {
            let sns = match &config.sns_endpoint {
                Some(endpoint) if !same_endpoint(&config.sns_endpoint) => {
                    crate::aws::sdk_config(Some(endpoint)).await
                }
                _ => sdk.clone(),
            };
            let sns_client = crate::aws::lazy(move || aws_sdk_sns::Client::new(&sns));
            if F::SENDS_SMS {
                sms = Arc::new(SnsSmsSender::with_lazy_client(sns_client.clone()));
            }
            if F::PUBLISHES_EVENTS {
                events = crate::config::event_publisher(config, &sns_client);
            }
        }
        let ids = used_secret_ids::<F>(config);
        let secrets = if ids.is_empty() {
            None
        } else {
            let secrets_sdk = match &config.secrets_endpoint {
                Some(endpoint) if !same_endpoint(&config.secrets_endpoint) => {
                    crate::aws::sdk_config(Some(endpoint)).await
                }
                _ => sdk.clone(),
            };
            let client =
                crate::aws::lazy(move || aws_sdk_secretsmanager::Client::new(&secrets_sdk));
            Some(SecretsManagerSource::new(client, ids))
        };
        // Clients are built on first use: a function pays only for the calls it makes.
        let dynamodb = crate::aws::lazy(move || aws_sdk_dynamodb::Client::new(&sdk));
        let signer = match F::SIGNS_PROOFS {
            true => Some(proof_signer(config).await),
            false => None,
        };
        tracing::debug!(
            sdk_config_us = sdk_loaded.as_micros() as u64,
            parts_us = started.elapsed().as_micros() as u64,
            "cold start: clients prepared"
        );
        let table = Arc::new(DynamoStore::with_lazy_client(dynamodb, table));
        Ok(Self {
            store: table.clone(),
            table,
            sms,
            events,
            signer,
            secrets,
        })
    }
}

impl Parts {
    /// The adapters of a state built from these parts, with its push provider.
    fn adapters(&self, push: Arc<dyn PushProvider>) -> Adapters {
        Adapters {
            store: self.store.clone(),
            sms: self.sms.clone(),
            push,
            events: self.events.clone(),
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::default()),
        }
    }
}

/// The secrets (and JWKS URL) `F`'s route uses, of those the environment names.
fn used_secret_ids<F: Function>(config: &Config) -> SecretIds {
    let ids = &config.secret_ids;
    SecretIds {
        token: ids.token.clone().filter(|_| F::AUTHENTICATES_USERS),
        otp: ids.otp.clone().filter(|_| F::AUTHENTICATES_USERS),
        authy: ids.authy.clone().filter(|_| F::USES_AUTHY_KEY),
        jwks_url: ids.jwks_url.clone().filter(|_| F::AUTHENTICATES_USERS),
    }
}

/// The state of a function: built from `Parts` and the configuration with its secrets, and
/// built again when a refresh finds them changed (a rotation).
fn assemble<F: Function>(config: &Config, parts: &Parts) -> Result<App, lambda_http::Error> {
    let (tokens, otp_secret) = if F::AUTHENTICATES_USERS {
        if config.otp_secret.is_empty() {
            return Err(ConfigError::Missing("OTP_HMAC_SECRET (or OTP_HMAC_SECRET_ID)").into());
        }
        (
            config.tokens.verifier()?,
            config.otp_secret.as_bytes().to_vec(),
        )
    } else {
        // No user token reaches this route, and nothing is hashed.
        keyless(config)?
    };
    let (push, callback) = if F::CALLS_PUSH_PROVIDER {
        crate::config::push_provider(config)?
    } else {
        let push: Arc<dyn PushProvider> = Arc::new(UnconfiguredPushProvider);
        (push, crate::config::authy_callback(config))
    };
    let app = App::new(parts.adapters(push), tokens, &otp_secret)
        .with_policy(config.policy.clone())
        // EMF lines on stdout: CloudWatch Logs makes them metrics (crate::metrics).
        .with_metrics(crate::metrics::Metrics::emf(
            std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "additional-factors".into()),
        ));
    let app = match &parts.signer {
        Some(signer) => app.with_signer(signer.clone(), config.proof.issuer.clone()),
        None => app,
    };
    Ok(match callback {
        Some(callback) => app.with_authy_callback(callback),
        None => app,
    })
}

/// How long init may spend opening the table's connection.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// A function's state, and its secrets kept fresh (crate::secrets).
struct Served<F> {
    config: Config,
    parts: Parts,
    refresh: std::time::Duration,
    current: std::sync::Mutex<Current>,
    function: std::marker::PhantomData<fn() -> F>,
}

struct Current {
    app: Arc<App>,
    /// False until the secrets have been fetched once: every request is then a 503.
    ready: bool,
    values: SecretValues,
    next_fetch: std::time::Instant,
}

impl<F: Function> Served<F> {
    /// Builds the state at init (full CPU), fetching the secrets (or on the first request,
    /// with `SECRETS_FETCH=first-request`). A fetch that fails does not fail init: requests
    /// answer 503 (`Retry-After`) and each tries the fetch again.
    async fn start(config: Config) -> Result<Self, lambda_http::Error> {
        let parts = Parts::build::<F>(&config).await?;
        let refresh = crate::secrets::refresh_interval();
        let placeholder = Current {
            app: Arc::new(unready_app(&config, &parts)?),
            ready: false,
            values: SecretValues::default(),
            next_fetch: std::time::Instant::now(),
        };
        let served = Self {
            config,
            parts,
            refresh,
            current: std::sync::Mutex::new(placeholder),
            function: std::marker::PhantomData,
        };
        if served.parts.secrets.is_none() {
            let app = assemble::<F>(&served.config, &served.parts)?;
            served.set(Current {
                app: Arc::new(app),
                ready: true,
                values: SecretValues::default(),
                next_fetch: std::time::Instant::now()
                    + std::time::Duration::from_secs(u32::MAX.into()),
            });
        } else if crate::secrets::fetch_at_init() {
            // Both at full CPU, at once: the secrets, and the table's client and connection
            // (what the first request would otherwise pay at the memory size's CPU share).
            tokio::join!(served.app(), served.warm_up());
            return Ok(served);
        }
        served.warm_up().await;
        Ok(served)
    }

    /// Builds the DynamoDB client and opens its connection (one `GetItem` of a key that is
    /// never written), within `WARM_UP_BUDGET`; a failure only leaves it to the first request.
    async fn warm_up(&self) {
        if !F::READS_TABLE {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(WARM_UP_BUDGET, self.parts.table.warm_up()).await;
        tracing::debug!(
            warm_up_us = started.elapsed().as_micros() as u64,
            ok = matches!(outcome, Ok(Ok(()))),
            "cold start: table connection opened"
        );
    }

    fn set(&self, current: Current) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = current;
    }

    /// The state to serve this request with, fetching the secrets again when due.
    async fn app(&self) -> (Arc<App>, bool) {
        let now = std::time::Instant::now();
        let (app, ready, values) = {
            let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if now < current.next_fetch {
                return (current.app.clone(), current.ready);
            }
            (current.app.clone(), current.ready, current.values.clone())
        };
        let Some(source) = &self.parts.secrets else {
            return (app, ready);
        };
        let started = std::time::Instant::now();
        // Bounded: a refresh runs before the request's own work, inside its 10 s timeout.
        let fetched = match tokio::time::timeout(crate::secrets::FETCH_BUDGET, source.fetch()).await
        {
            Ok(fetched) => fetched,
            Err(_) => Err(crate::secrets::SecretsError::TimedOut(
                crate::secrets::FETCH_BUDGET,
            )),
        };
        let fetch_ms = started.elapsed().as_millis() as u64;
        let next = |after| Current {
            app: app.clone(),
            ready,
            values: values.clone(),
            next_fetch: std::time::Instant::now() + after,
        };
        match fetched {
            Err(error) => {
                tracing::error!(error = %crate::logging::redacted_chain(&error), fetch_ms, "secrets not fetched: serving on with the last ones");
                self.set(next(crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh)));
            }
            Ok(fresh) if ready && fresh == values => {
                tracing::debug!(fetch_ms, "secrets unchanged");
                self.set(next(self.refresh));
            }
            Ok(fresh) => match self
                .config
                .with_secrets(&fresh)
                .map_err(lambda_http::Error::from)
                .and_then(|config| assemble::<F>(&config, &self.parts))
            {
                Ok(rebuilt) => {
                    tracing::info!(fetch_ms, rotated = ready, "secrets fetched");
                    self.set(Current {
                        app: Arc::new(rebuilt),
                        ready: true,
                        values: fresh,
                        next_fetch: std::time::Instant::now() + self.refresh,
                    });
                }
                Err(error) => {
                    tracing::error!(error = %error, "fetched secrets refused: serving on with the last ones");
                    self.set(next(crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh)));
                }
            },
        }
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (current.app.clone(), current.ready)
    }
}

/// The state before the secrets are known: it only answers 503s and 413s.
fn unready_app(config: &Config, parts: &Parts) -> Result<App, lambda_http::Error> {
    let (tokens, key) = keyless(config)?;
    Ok(App::new(
        parts.adapters(Arc::new(UnconfiguredPushProvider)),
        tokens,
        &key,
    ))
}

/// A verifier that refuses every token and an HMAC key no one knows: for a route that takes
/// no user token, and for the state before the secrets are known.
fn keyless(config: &Config) -> Result<(crate::auth::TokenVerifier, Vec<u8>), lambda_http::Error> {
    use crate::domain::random::RandomSource;
    let mut key = vec![0u8; 32];
    SystemRandom::default().fill(&mut key)?;
    let tokens = crate::auth::TokenVerifier::refusing(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
    );
    Ok((tokens, key))
}

/// The KMS key that signs payment proofs (`PROOF_KMS_KEY_ID`); without one, signing
/// answers 503 and the JWKS is empty.
async fn proof_signer(config: &Config) -> Arc<dyn crate::proof::ProofSigner> {
    let Some(key_id) = config.proof.kms_key_id.clone() else {
        tracing::warn!("PROOF_KMS_KEY_ID is not set: payment proofs cannot be signed");
        return Arc::new(crate::proof::UnconfiguredSigner);
    };
    let sdk = crate::aws::sdk_config(config.proof.kms_endpoint.as_deref()).await;
    let client = crate::aws::lazy(move || aws_sdk_kms::Client::new(&sdk));
    Arc::new(crate::proof::kms::KmsSigner::with_lazy_client(
        client,
        key_id,
        config.proof.previous_kms_key_id.clone(),
    ))
}
