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

mod served;

use self::served::{refusing, Served};

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
    /// Asks which platforms SNS mobile push is configured for (no call to SNS).
    const KNOWS_DEVICE_PLATFORMS: bool =
        Self::PUSHES_TO_DEVICES || uses(Self::USES, Port::DevicePlatforms);
    /// Live payment proofs: signs them with KMS (or reads the public keys, for the JWKS).
    const SIGNS_PROOFS: bool =
        uses(Self::USES, Port::ProofSigner) || uses(Self::USES, Port::ProofKeys);
    /// Sandbox payment proofs: the sandbox key (the simulators, the sandbox JWKS).
    const SIGNS_SANDBOX_PROOFS: bool =
        uses(Self::USES, Port::SandboxProofSigner) || uses(Self::USES, Port::ProofKeys);
    /// Needs the Authy API key (`AUTHY_API_KEY_SECRET_ID`): to call Authy, or to check its
    /// signature.
    const USES_CALLBACK_KEY: bool =
        Self::CALLS_PUSH_PROVIDER || uses(Self::USES, Port::CallbackSignatureKey);
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
            if ready && served.fetch_previous_key(&app, &request).await {
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
/// (payload 2.0) that lambda_http reads, so the 413 is shaped as that API expects. The
/// handler never looks at it (`oversized` says to answer 413).
pub const STAND_IN_EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"","headers":{},"requestContext":{"accountId":"","apiId":"","domainName":"localhost","domainPrefix":"localhost","http":{"method":"POST","path":"/","protocol":"HTTP/1.1","sourceIp":"","userAgent":""},"requestId":"","routeKey":"$default","stage":"$default","time":"","timeEpoch":0},"isBase64Encoded":false}"#;

/// The same for an API Gateway REST API (payload 1.0, as the template deploys): its answer
/// must be a REST API's proxy response (no `cookies` member).
pub const STAND_IN_REST_EVENT: &str = r#"{"resource":"/","path":"/","httpMethod":"POST","headers":{},"multiValueHeaders":{},"queryStringParameters":null,"multiValueQueryStringParameters":null,"pathParameters":null,"stageVariables":null,"requestContext":{"resourcePath":"/","httpMethod":"POST","path":"/","requestId":"","identity":{"sourceIp":""}},"body":null,"isBase64Encoded":false}"#;

/// The stand-in in the shape of `event`: an HTTP API's events say `"version": "2.0"`, a
/// REST API's carry no version. Read without keeping anything (every other member, the large
/// body too, is skipped unallocated).
pub fn stand_in_for(event: &[u8]) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Version {
        version: Option<String>,
    }
    match serde_json::from_slice::<Version>(event) {
        Ok(Version { version: Some(v) }) if v == "2.0" => STAND_IN_EVENT,
        // No version, or not even JSON: the shape the template deploys.
        _ => STAND_IN_REST_EVENT,
    }
}

/// Refuses an event larger than any request the function accepts before it is parsed.
///
/// The runtime has read the event whole by then; what this saves is every copy after it:
/// lambda_http deserialises the event (the body becomes a second string as large as the
/// event) and builds the request from it. Swapped for a stand-in of its API's shape, the large event is
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
            invocation.body = stand_in_for(&invocation.body).as_bytes().into();
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
    /// The programmes read, shared by every state the function builds; filled at init.
    programmes: Arc<crate::app::ProgrammeCache>,
    /// The SNS client, where the route's success path reaches SNS: its connection is opened
    /// at init.
    sns: Option<crate::aws::Lazy<aws_sdk_sns::Client>>,
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
        let mut sns_on_path = None;
        if F::SENDS_SMS || F::PUBLISHES_EVENTS || F::KNOWS_DEVICE_PLATFORMS {
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
            if F::KNOWS_DEVICE_PLATFORMS {
                device_push = crate::config::device_push(config, &sns_client);
            }
            // SNS is on the route's success path: its connection is opened at init.
            if F::SENDS_SMS
                || (F::PUBLISHES_EVENTS && config.events_topic_arn.is_some())
                || (F::PUSHES_TO_DEVICES && !config.platform_applications.is_empty())
            {
                sns_on_path = Some(sns_client);
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
        // One KMS client for both keys: one connection.
        let kms = if F::SIGNS_PROOFS || F::SIGNS_SANDBOX_PROOFS {
            let sdk = crate::aws::sdk_config(config.proof.kms_endpoint.as_deref()).await;
            Some(crate::aws::lazy(move || aws_sdk_kms::Client::new(&sdk)))
        } else {
            None
        };
        let signer = match (&kms, F::SIGNS_PROOFS) {
            (Some(kms), true) => Some(proof_signer(kms, &config.proof.kms, "PROOF_KMS_KEY_ID")),
            _ => None,
        };
        let sandbox_signer = match (&kms, F::SIGNS_SANDBOX_PROOFS) {
            (Some(kms), true) => Some(proof_signer(
                kms,
                &config.proof.sandbox_kms,
                "SANDBOX_PROOF_KMS_KEY_ID",
            )),
            _ => None,
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
            programmes: Arc::default(),
            sns: sns_on_path,
        })
    }
}

impl Parts {
    /// A state on these parts: the store, SMS and events, and the proof signer where the
    /// function has one (every other port at its null adapter).
    fn app(&self) -> crate::app::AppBuilder {
        let app = App::builder(self.store.clone())
            .programmes(self.programmes.clone())
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
        authy: ids.authy.clone().filter(|_| F::USES_CALLBACK_KEY),
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
        app = app.push(push).callback_key(key);
    } else if F::USES_CALLBACK_KEY {
        app = app.callback_key(crate::config::authy_signature_key(config));
    }
    Ok(app.build()?)
}

/// A KMS key that signs payment proofs (live: `PROOF_KMS_KEY_ID`; sandbox:
/// `SANDBOX_PROOF_KMS_KEY_ID`); without one, signing answers 503 and its JWKS is empty.
fn proof_signer(
    client: &crate::aws::Lazy<aws_sdk_kms::Client>,
    keys: &crate::config::KmsKeys,
    variable: &str,
) -> Arc<dyn crate::proof::ProofSigner> {
    let Some(key_id) = keys.key_id.clone() else {
        tracing::warn!("{variable} is not set: these payment proofs cannot be signed");
        return Arc::new(crate::proof::UnconfiguredSigner);
    };
    Arc::new(crate::proof::kms::KmsSigner::with_lazy_client(
        client.clone(),
        key_id,
        keys.previous_key_id.clone(),
    ))
}
