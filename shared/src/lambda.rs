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
    app::App,
    config::{Config, ConfigError, Mode},
    events::EventPublisher,
    handlers::{
        ports::{uses, Port, Ports},
        reply::ApiError,
        Handler, PublicHandler,
    },
    http::{
        handle_on, reject_unrouted,
        router::{Route, Routed},
        Only, OnlyPublic, Pair, Serve,
    },
    secrets::{SecretIds, SecretValues, SecretsManagerSource},
    sms::{sns::SnsSmsSender, NoSmsSender, SmsSender},
    store::dynamodb::DynamoStore,
};

/// One function binary: its route, and what it reaches, from its handler's declaration
/// (`handlers::ports`). The clients a binary builds (and so links) follow from these
/// constants: the linker leaves the SNS client out of `list-factors`, the Authy client out
/// of every function but the push routes (BENCHMARKS.md has the sizes).
pub trait Function {
    const ROUTE: Route;
    /// The handlers it runs: its own route's only.
    type Serve: Serve;
    /// The ports its handler declares.
    const USES: &'static [Port];
    /// Takes a user's token, and hashes phone numbers and codes: needs the token key and
    /// the HMAC key (`JWT_HS256_SECRET_ID`, `OTP_HMAC_SECRET_ID`).
    const AUTHENTICATES_USERS: bool;

    /// SMS through SNS.
    const SENDS_SMS: bool = uses(Self::USES, Port::Sms);
    /// The push provider (Authy) over HTTPS.
    const CALLS_PUSH_PROVIDER: bool = uses(Self::USES, Port::PushProvider);
    /// Lifecycle events to the SNS topic.
    const PUBLISHES_EVENTS: bool = uses(Self::USES, Port::Events);
    /// BIOMETRIC devices through SNS mobile push.
    const PUSHES_TO_DEVICES: bool = uses(Self::USES, Port::DevicePush);
    /// Live payment proofs: signs them with KMS (or reads the public keys, for the JWKS).
    const SIGNS_PROOFS: bool =
        uses(Self::USES, Port::ProofSigner) || uses(Self::USES, Port::ProofKeys);
    /// Sandbox payment proofs: the sandbox key (the simulators, the sandbox JWKS).
    const SIGNS_SANDBOX_PROOFS: bool =
        uses(Self::USES, Port::SandboxProofSigner) || uses(Self::USES, Port::ProofKeys);
    /// Needs the Authy API key (`AUTHY_API_KEY_SECRET_ID`): to call Authy, or to check its
    /// signature.
    const USES_AUTHY_KEY: bool =
        Self::CALLS_PUSH_PROVIDER || uses(Self::USES, Port::AuthySignatureKey);
    /// Reads the table (every route but the JWKS): its connection is opened at init.
    const READS_TABLE: bool = Self::AUTHENTICATES_USERS || uses(Self::USES, Port::Table);
}

/// The function of a route a programme's app calls.
pub struct User<H>(std::marker::PhantomData<H>);

impl<H: Handler + Routed> Function for User<H> {
    const ROUTE: Route = H::ROUTE;
    type Serve = Only<H>;
    const USES: &'static [Port] = <H::Ports<'static> as Ports<'static>>::USES;
    const AUTHENTICATES_USERS: bool = true;
}

/// The function of a route without credentials (Authy's callback, the JWKS).
pub struct Public<H>(std::marker::PhantomData<H>);

impl<H: PublicHandler + Routed> Function for Public<H> {
    const ROUTE: Route = H::ROUTE;
    type Serve = OnlyPublic<H>;
    const USES: &'static [Port] = <H::Ports<'static> as Ports<'static>>::USES;
    const AUTHENTICATES_USERS: bool = false;
}

/// The function of a simulator's two routes (`Accept`'s ports: the two share them).
pub struct Simulator<Accept, Reject>(std::marker::PhantomData<(Accept, Reject)>);

impl<Accept: Handler + Routed, Reject: Handler + Routed> Function for Simulator<Accept, Reject> {
    const ROUTE: Route = Accept::ROUTE;
    type Serve = Pair<Accept, Reject>;
    const USES: &'static [Port] = <Accept::Ports<'static> as Ports<'static>>::USES;
    const AUTHENTICATES_USERS: bool = true;
}

/// Runs the function of `H`'s route until the Lambda runtime stops it.
pub async fn run<H: Handler + Routed>() -> Result<(), lambda_http::Error> {
    serve::<User<H>>(|_| H::ROUTE).await
}

/// Runs the function of a route without credentials.
pub async fn run_public<H: PublicHandler + Routed>() -> Result<(), lambda_http::Error> {
    serve::<Public<H>>(|_| H::ROUTE).await
}

/// One function for a simulator's two paths: `.../accept` runs `Accept`, `.../reject` runs
/// `Reject` (the same ports).
pub async fn run_simulator<Accept: Handler + Routed, Reject: Handler + Routed>(
) -> Result<(), lambda_http::Error> {
    serve::<Simulator<Accept, Reject>>(|request| {
        if request.uri().path().ends_with("/reject") {
            Reject::ROUTE
        } else {
            Accept::ROUTE
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
            let (mut app, mut ready) = served.app().await;
            if ready && served.refetch_for_unknown_kid(&app, &request) {
                (app, ready) = served.app().await;
            }
            Ok::<_, std::convert::Infallible>(match (too_large, ready) {
                (true, _) => reject_unrouted(&app, &ApiError::PayloadTooLarge),
                (false, false) => reject_unrouted(
                    &app,
                    &ApiError::Unavailable("the function's secrets could not be fetched".into()),
                ),
                (false, true) => handle_on::<F::Serve>(&app, route, request).await,
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
    device_push: Arc<dyn crate::push::device::DevicePush>,
    signer: Option<Arc<dyn crate::proof::ProofSigner>>,
    sandbox_signer: Option<Arc<dyn crate::proof::ProofSigner>>,
    /// The `iss` of the proofs it signs.
    proof_issuer: String,
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
        let mut device_push: Arc<dyn crate::push::device::DevicePush> =
            Arc::new(crate::push::device::NoDevicePush);
        if F::SENDS_SMS || F::PUBLISHES_EVENTS || F::PUSHES_TO_DEVICES {
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
            if F::PUSHES_TO_DEVICES {
                device_push = crate::config::device_push(config, &sns_client);
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
            true => Some(proof_signer(config, &config.proof.kms, "PROOF_KMS_KEY_ID").await),
            false => None,
        };
        let sandbox_signer = match F::SIGNS_SANDBOX_PROOFS {
            true => Some(
                proof_signer(
                    config,
                    &config.proof.sandbox_kms,
                    "SANDBOX_PROOF_KMS_KEY_ID",
                )
                .await,
            ),
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
            device_push,
            signer,
            sandbox_signer,
            proof_issuer: config.proof.issuer.clone(),
            secrets,
        })
    }
}

impl Parts {
    /// A state on these parts: the store, SMS and events, and the proof signer where the
    /// function has one (every other port at its null adapter).
    fn app(&self) -> crate::app::AppBuilder {
        let app = App::builder(self.store.clone())
            .sms(self.sms.clone())
            .events(self.events.clone())
            .device_push(self.device_push.clone());
        let app = match &self.signer {
            Some(signer) => app.signer(signer.clone(), self.proof_issuer.clone()),
            None => app,
        };
        match &self.sandbox_signer {
            Some(signer) => app.sandbox_signer(signer.clone()),
            None => app,
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
    let mut app = parts.app().policy(config.policy.clone()).metrics(
        // EMF lines on stdout: CloudWatch Logs makes them metrics (crate::metrics).
        crate::metrics::Metrics::emf(
            std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "additional-factors".into()),
        ),
    );
    if F::AUTHENTICATES_USERS {
        if config.otp_secret.is_empty() {
            return Err(ConfigError::Missing("OTP_HMAC_SECRET (or OTP_HMAC_SECRET_ID)").into());
        }
        app = app
            .tokens(config.tokens.verifier()?)
            .otp_secret(config.otp_secret.as_bytes());
    } else {
        // No user token reaches this route, and nothing is hashed.
        app = app.tokens(refusing(config));
    }
    if F::CALLS_PUSH_PROVIDER {
        let (push, key) = crate::config::push_provider(config)?;
        app = app.push(push).authy_key(key);
    } else if F::USES_AUTHY_KEY {
        app = app.authy_key(crate::config::authy_signature_key(config));
    }
    Ok(app.build()?)
}

/// How long init may spend opening the table's connection.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// A function's state, and its secrets kept fresh (crate::secrets).
struct Served<F> {
    config: Config,
    parts: Parts,
    refresh: std::time::Duration,
    current: std::sync::Mutex<Current>,
    /// When a token naming an unknown `kid` last made the JWKS be fetched early.
    kid_refetched_at: std::sync::Mutex<Option<std::time::Instant>>,
    function: std::marker::PhantomData<fn() -> F>,
}

struct Current {
    app: Arc<App>,
    /// False until the secrets have been fetched once: every request is then a 503.
    ready: bool,
    values: SecretValues,
    next_fetch: std::time::Instant,
    /// When the JWKS was last fetched: past `JWKS_STALE_INTERVALS` refresh intervals, its
    /// keys stop verifying.
    jwks_fetched_at: Option<std::time::Instant>,
}

/// At most one early JWKS fetch for a token naming an unknown `kid` in this time.
const KID_REFETCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A JWKS that could not be fetched for this many refresh intervals stops verifying tokens:
/// a key the identity service revoked meanwhile would otherwise verify forever.
const JWKS_STALE_INTERVALS: u32 = 3;

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
            jwks_fetched_at: None,
        };
        let served = Self {
            config,
            parts,
            refresh,
            current: std::sync::Mutex::new(placeholder),
            kid_refetched_at: std::sync::Mutex::new(None),
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
                jwks_fetched_at: None,
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

    /// A token naming a key the JWKS does not hold: the identity service may have added it
    /// since the last fetch, so the secrets are due at once instead of at the next refresh
    /// (at most once a minute: tokens with made-up `kid`s cannot make a function fetch on
    /// every request). `true` when a fetch is now due.
    fn refetch_for_unknown_kid(&self, app: &App, request: &Request) -> bool {
        let has_jwks = self
            .parts
            .secrets
            .as_ref()
            .is_some_and(SecretsManagerSource::fetches_jwks);
        let authorization = request.headers().get("authorization").map(|v| v.as_bytes());
        if !has_jwks || !app.tokens.names_unknown_kid(authorization) {
            return false;
        }
        let now = std::time::Instant::now();
        {
            let mut last = self
                .kid_refetched_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < KID_REFETCH_INTERVAL) {
                return false;
            }
            *last = Some(now);
        }
        tracing::info!("a token names a key the JWKS does not hold: fetching it again now");
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_fetch = now;
        true
    }

    fn set(&self, current: Current) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = current;
    }

    /// The state to serve this request with, fetching the secrets again when due. Each
    /// secret refreshes on its own: one that fails keeps its last value (and is tried again
    /// after `RETRY_AFTER_FAILURE`) while the others rotate.
    async fn app(&self) -> (Arc<App>, bool) {
        let now = std::time::Instant::now();
        let (app, ready, values, jwks_fetched_at) = {
            let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if now < current.next_fetch {
                return (current.app.clone(), current.ready);
            }
            (
                current.app.clone(),
                current.ready,
                current.values.clone(),
                current.jwks_fetched_at,
            )
        };
        let Some(source) = &self.parts.secrets else {
            return (app, ready);
        };
        let started = std::time::Instant::now();
        // Bounded: each fetch within FETCH_BUDGET, before the request's own work.
        let crate::secrets::Refreshed {
            values: mut fresh,
            failures,
            jwks_fetched,
        } = source.fetch(&values).await;
        let fetch_ms = started.elapsed().as_millis() as u64;
        let jwks_fetched_at = if jwks_fetched {
            Some(std::time::Instant::now())
        } else {
            jwks_fetched_at
        };
        let jwks_stale = fresh.jwks.is_some()
            && jwks_fetched_at.is_none_or(|at| at.elapsed() > self.refresh * JWKS_STALE_INTERVALS);
        if jwks_stale {
            tracing::error!("the JWKS has not been fetched for 3 refresh intervals: its keys no longer verify tokens");
            fresh.jwks = None;
        }
        for error in &failures {
            tracing::error!(error = %crate::logging::redacted_chain(error), fetch_ms, "a secret was not fetched: it keeps its last value");
        }
        if !failures.is_empty() {
            // The SecretsRefreshAlarm's metric: a rotation that is not taking effect pages.
            let namespace =
                std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "additional-factors".into());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            crate::metrics::Metrics::emf(namespace).count(
                crate::metrics::Metric::SecretsRefreshFailures,
                &[("route", F::ROUTE.name())],
                now,
            );
        }
        let after = if failures.is_empty() {
            self.refresh
        } else {
            crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh)
        };
        let next = |app: Arc<App>, ready: bool, values: SecretValues| Current {
            app,
            ready,
            values,
            next_fetch: std::time::Instant::now() + after,
            jwks_fetched_at,
        };
        if ready && fresh == values {
            tracing::debug!(fetch_ms, "secrets unchanged");
            self.set(next(app, ready, values));
        } else {
            match self
                .config
                .with_secrets(&fresh)
                .map_err(lambda_http::Error::from)
                .and_then(|config| assemble::<F>(&config, &self.parts))
            {
                Ok(rebuilt) => {
                    tracing::info!(fetch_ms, rotated = ready, "secrets fetched");
                    self.set(next(Arc::new(rebuilt), true, fresh));
                }
                // Without the stale JWKS no key is left: refuse to serve (503), never verify
                // with keys that may have been revoked.
                Err(error) if jwks_stale => {
                    tracing::error!(error = %error, "no token key left: answering 503");
                    match unready_app(&self.config, &self.parts) {
                        Ok(unready) => self.set(next(Arc::new(unready), false, fresh)),
                        Err(_) => self.set(next(app, ready, values)),
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, "fetched secrets refused: serving on with the last ones");
                    let retry = Current {
                        next_fetch: std::time::Instant::now()
                            + crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh),
                        ..next(app, ready, values)
                    };
                    self.set(retry);
                }
            }
        }
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (current.app.clone(), current.ready)
    }
}

/// The state before the secrets are known: it only answers 503s and 413s.
fn unready_app(config: &Config, parts: &Parts) -> Result<App, lambda_http::Error> {
    Ok(parts.app().tokens(refusing(config)).build()?)
}

/// A verifier that refuses every token: for a route that takes no user token, and for the
/// state before the secrets are known.
fn refusing(config: &Config) -> crate::auth::TokenVerifier {
    crate::auth::TokenVerifier::refusing(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
    )
}

/// A KMS key that signs payment proofs (live: `PROOF_KMS_KEY_ID`; sandbox:
/// `SANDBOX_PROOF_KMS_KEY_ID`); without one, signing answers 503 and its JWKS is empty.
async fn proof_signer(
    config: &Config,
    keys: &crate::config::KmsKeys,
    variable: &str,
) -> Arc<dyn crate::proof::ProofSigner> {
    let Some(key_id) = keys.key_id.clone() else {
        tracing::warn!("{variable} is not set: these payment proofs cannot be signed");
        return Arc::new(crate::proof::UnconfiguredSigner);
    };
    let sdk = crate::aws::sdk_config(config.proof.kms_endpoint.as_deref()).await;
    let client = crate::aws::lazy(move || aws_sdk_kms::Client::new(&sdk));
    Arc::new(crate::proof::kms::KmsSigner::with_lazy_client(
        client,
        key_id,
        keys.previous_key_id.clone(),
    ))
}
