//! The Lambda entry point every function binary calls: build the state once per cold start,
//! then serve one route.
//!
//! Each binary names its function (`run::<ListFactors>()`), and the function says, as
//! constants, what it calls besides DynamoDB. The state is built from those constants, so a
//! binary holds code only for the clients its route uses: the linker leaves the SNS client
//! out of `list-factors` and `enrol-push`, and the Authy client out of every function but
//! the two push routes (BENCHMARKS.md has the sizes).

use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::{
    app::{Adapters, App},
    clock::SystemClock,
    config::{Config, ConfigError, Mode},
    domain::otp::SystemRandom,
    events::EventPublisher,
    http::{handle, router::Route},
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
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let app = Arc::new(build::<F>(&config).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&app, F::ROUTE, request).await) }
    }))
    .await
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
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let app = Arc::new(build::<F>(&config).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        let route = if request.uri().path().ends_with("/reject") {
            reject
        } else {
            F::ROUTE
        };
        async move { Ok::<_, std::convert::Infallible>(handle(&app, route, request).await) }
    }))
    .await
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
    .with_policy(config.policy.clone());
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
