//! The Lambda entry point every function binary calls: build the state once per cold start,
//! then serve one route.

use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::{
    app::{Adapters, App},
    clock::SystemClock,
    config::{Config, ConfigError, Mode},
    domain::otp::SystemRandom,
    http::{handle, router::Route},
    sms::sns::SnsSmsSender,
    store::dynamodb::DynamoStore,
};

/// Runs the function for `route` until the Lambda runtime stops it.
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let app = Arc::new(build(&config).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&app, route, request).await) }
    }))
    .await
}

/// Runs the sandbox push simulator: one function for `.../accept` and `.../reject`.
pub async fn run_simulator() -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let app = Arc::new(build(&config).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        let route = if request.uri().path().ends_with("/reject") {
            Route::SimulatePushReject
        } else {
            Route::SimulatePushAccept
        };
        async move { Ok::<_, std::convert::Infallible>(handle(&app, route, request).await) }
    }))
    .await
}

/// The production state: DynamoDB, SNS, SDK clients built once per cold start.
async fn build(config: &Config) -> Result<App, lambda_http::Error> {
    let table = config
        .table_name
        .clone()
        .ok_or(ConfigError::Missing("TABLE_NAME"))?;
    let started = std::time::Instant::now();
    let sdk = crate::aws::sdk_config(config.dynamodb_endpoint.as_deref()).await;
    let sdk_loaded = started.elapsed();
    let sns = match &config.sns_endpoint {
        Some(endpoint) if config.dynamodb_endpoint.as_ref() != Some(endpoint) => {
            crate::aws::sdk_config(Some(endpoint)).await
        }
        _ => sdk.clone(),
    };
    // Clients are built on first use: a function pays only for the services it calls.
    let sns_client = crate::aws::lazy(move || aws_sdk_sns::Client::new(&sns));
    let dynamodb = crate::aws::lazy(move || aws_sdk_dynamodb::Client::new(&sdk));
    let clients_built = started.elapsed();
    let (push, callback) = crate::app::push_provider(config)?;
    tracing::debug!(
        sdk_config_us = sdk_loaded.as_micros() as u64,
        clients_us = clients_built.as_micros() as u64,
        push_provider_us = started.elapsed().as_micros() as u64,
        "cold start: state built"
    );
    let app = App::new(
        Adapters {
            store: Arc::new(DynamoStore::with_lazy_client(dynamodb, table)),
            sms: Arc::new(SnsSmsSender::with_lazy_client(sns_client.clone())),
            push,
            events: crate::app::event_publisher(config, &sns_client),
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::default()),
        },
        config.tokens.verifier()?,
        config.otp_secret.as_bytes(),
    );
    Ok(match callback {
        Some(callback) => app.with_authy_callback(callback),
        None => app,
    })
}
