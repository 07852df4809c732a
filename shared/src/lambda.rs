//! The Lambda entry point every function binary calls: build the state once per cold start,
//! then serve one route.

use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::{
    app::{Adapters, App},
    clock::SystemClock,
    config::{Config, Mode},
    domain::otp::SystemRandom,
    http::{handle, router::Route},
    push::fake::FakePushProvider,
    sms::console::ConsoleSmsSender,
    store::memory::MemoryStore,
};

/// Runs the function for `route` until the Lambda runtime stops it.
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    crate::logging::init();
    let config = Config::from_env(Mode::Lambda)?;
    let app = Arc::new(build(&config)?);
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
    let app = Arc::new(build(&config)?);
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

fn build(config: &Config) -> Result<App, lambda_http::Error> {
    let otp_secret = config.otp_secret.clone().unwrap_or_default();
    Ok(App::new(
        Adapters {
            store: Arc::new(MemoryStore::new()),
            sms: Arc::new(ConsoleSmsSender::new(None)),
            push: Arc::new(FakePushProvider::new()),
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::default()),
        },
        config.tokens.verifier()?,
        otp_secret.as_bytes(),
    ))
}
