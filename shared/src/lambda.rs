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
    domain::otp::SystemRandom,
    events::EventPublisher,
    http::{handle, reject_unrouted, response::ApiError, router::Route},
    push::{unconfigured::UnconfiguredPushProvider, PushProvider},
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
    let app = Arc::new(build::<F>(&config).await?);
    let oversized = Arc::new(AtomicBool::new(false));
    let refuse = RefuseOversizedEvents {
        cap: event_cap(F::ROUTE),
        oversized: oversized.clone(),
    };
    let handler = service_fn(move |request: Request| {
        let app = app.clone();
        let too_large = oversized.swap(false, Ordering::SeqCst);
        let route = route_of(&request);
        async move {
            Ok::<_, std::convert::Infallible>(match too_large {
                true => reject_unrouted(&app, &ApiError::PayloadTooLarge),
                false => handle(&app, route, request).await,
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

/// The production state: DynamoDB, and SNS and Authy where `F` uses them; SDK clients built
/// on first use.
async fn build<F: Function>(config: &Config) -> Result<App, lambda_http::Error> {
    let table = config
        .table_name
        .clone()
        .ok_or(ConfigError::Missing("TABLE_NAME"))?;
    let started = std::time::Instant::now();
    let sdk = crate::aws::sdk_config(config.dynamodb_endpoint.as_deref()).await;
    let sdk_loaded = started.elapsed();
    let mut sms: Arc<dyn SmsSender> = Arc::new(NoSmsSender);
    let mut events: Arc<dyn EventPublisher> = Arc::new(crate::events::NoEvents);
    if F::SENDS_SMS || F::PUBLISHES_EVENTS {
        let sns = match &config.sns_endpoint {
            Some(endpoint) if config.dynamodb_endpoint.as_ref() != Some(endpoint) => {
                crate::aws::sdk_config(Some(endpoint)).await
            }
            _ => sdk.clone(),
        };
        let sns_client = crate::aws::lazy(move || aws_sdk_sns::Client::new(&sns));
        if F::SENDS_SMS {
            sms = Arc::new(SnsSmsSender::with_lazy_client(sns_client.clone()));
        }
        if F::PUBLISHES_EVENTS {
            events = crate::app::event_publisher(config, &sns_client);
        }
    }
    // Clients are built on first use: a function pays only for the calls it makes.
    let dynamodb = crate::aws::lazy(move || aws_sdk_dynamodb::Client::new(&sdk));
    let clients_built = started.elapsed();
    let (push, callback) = if F::CALLS_PUSH_PROVIDER {
        crate::app::push_provider(config)?
    } else {
        let push: Arc<dyn PushProvider> = Arc::new(UnconfiguredPushProvider);
        (push, crate::app::authy_callback(config))
    };
    tracing::debug!(
        sdk_config_us = sdk_loaded.as_micros() as u64,
        clients_us = clients_built.as_micros() as u64,
        push_provider_us = started.elapsed().as_micros() as u64,
        "cold start: state built"
    );
    let app = App::new(
        Adapters {
            store: Arc::new(DynamoStore::with_lazy_client(dynamodb, table)),
            sms,
            push,
            events,
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::default()),
        },
        config.tokens.verifier()?,
        config.otp_secret.as_bytes(),
    )
    .with_policy(config.policy.clone())
    // EMF lines on stdout: CloudWatch Logs makes them metrics (crate::metrics).
    .with_metrics(crate::metrics::Metrics::emf(
        std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "additional-factors".into()),
    ));
    let app = if F::SIGNS_PROOFS {
        app.with_signer(proof_signer(config).await, config.proof.issuer.clone())
    } else {
        app
    };
    Ok(match callback {
        Some(callback) => app.with_authy_callback(callback),
        None => app,
    })
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
