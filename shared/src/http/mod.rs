//! The pipeline every route goes through, in the contract's order — body cap (413), api key
//! (400/401), token (401), validation (400), step-up (403), idempotency, then the route's
//! own handler (409/429/2xx) — and the router table (`router`) that names each route's
//! handler. Expected failures are responses, never `Err`.

pub mod idempotency;
pub mod router;

use lambda_http::{http::HeaderValue, Body, Request, RequestExt, Response};
use tracing::Instrument;

use self::router::Route;
use crate::{
    app::App,
    domain::{
        factor::{has_active_factor, FactorStatus},
        idempotency::{fingerprint, IdempotencyRef, IdempotencyRefError},
        ids::{AttemptId, LeaseId},
        phone::HashedPhone,
        random::random_id,
    },
    handlers::{
        claim::Claim,
        input::{Edge, Input},
        ports::Ports,
        reply::{ApiError, FieldError, FieldErrorKind, Reply},
        Caller, Handler, PublicHandler, StepUp,
    },
    logging::redacted_chain,
    store::UserKey,
};

/// Whether this environment has served a request before (`cold_start` on each log line).
static SERVED_BEFORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Which handlers a server runs: every route's (`AllRoutes`, the router table: the local
/// server and the tests), or its own route's only (`Only`, `OnlyPublic`, `Pair`: a Lambda
/// function, which then links no other route's code).
pub trait Serve {
    fn serve<'a>(
        app: &'a App,
        route: Route,
        request: &'a Request,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Reply, ApiError>> + Send + 'a;
}

/// Every route, by the router table.
pub struct AllRoutes;

impl Serve for AllRoutes {
    fn serve<'a>(
        app: &'a App,
        route: Route,
        request: &'a Request,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Reply, ApiError>> + Send + 'a {
        router::serve(app, route, request, deadline)
    }
}

/// One route a programme's app calls.
pub struct Only<H>(std::marker::PhantomData<H>);

impl<H: Handler> Serve for Only<H> {
    fn serve<'a>(
        app: &'a App,
        route: Route,
        request: &'a Request,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Reply, ApiError>> + Send + 'a {
        user::<H>(app, route, request, deadline)
    }
}

/// One route without credentials.
pub struct OnlyPublic<H>(std::marker::PhantomData<H>);

impl<H: PublicHandler> Serve for OnlyPublic<H> {
    fn serve<'a>(
        app: &'a App,
        route: Route,
        request: &'a Request,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Reply, ApiError>> + Send + 'a {
        public::<H>(app, route, request, deadline)
    }
}

/// A simulator's two routes: `Reject`'s route runs `Reject`, any other `Accept`.
pub struct Pair<Accept, Reject>(std::marker::PhantomData<(Accept, Reject)>);

impl<Accept: Handler, Reject: Handler + router::Routed> Serve for Pair<Accept, Reject> {
    async fn serve<'a>(
        app: &'a App,
        route: Route,
        request: &'a Request,
        deadline: tokio::time::Instant,
    ) -> Result<Reply, ApiError> {
        if route == Reject::ROUTE {
            user::<Reject>(app, route, request, deadline).await
        } else {
            user::<Accept>(app, route, request, deadline).await
        }
    }
}

/// Handles one request on a known route, on every route's handler (the router table).
pub async fn handle(app: &App, route: Route, request: Request) -> Response<Body> {
    handle_on::<AllRoutes>(app, route, request).await
}

/// Handles one request on a known route with the handlers `S` serves. Never fails: every
/// outcome is a response, with a fresh `request-ref` that every log line of the request
/// also carries.
pub async fn handle_on<S: Serve>(app: &App, route: Route, request: Request) -> Response<Body> {
    let request_ref = new_request_ref(app);
    let cold_start = !SERVED_BEFORE.swap(true, std::sync::atomic::Ordering::Relaxed);
    let span = tracing::info_span!(
        "request",
        request_ref = %request_ref,
        route = route.name(),
        programme = tracing::field::Empty,
        cold_start,
    );
    async {
        // The work is cut at the deadline (see `process`); recording an idempotent answer
        // then has its own budget, so the backstop here is their sum.
        let deadline = tokio::time::Instant::now() + crate::aws::REQUEST_DEADLINE;
        let processed = tokio::time::timeout_at(
            deadline + crate::aws::RECORDING_BUDGET,
            process::<S>(app, route, &request, deadline),
        );
        // A panic anywhere below is this request's 500 (with its `request-ref`), not the
        // end of the function: the environment goes on serving.
        let outcome = match CatchPanic(Box::pin(processed)).await {
            Some(within_time) => within_time.unwrap_or_else(|_| Err(out_of_time())),
            None => Err(ApiError::Internal("the request panicked".into())),
        };
        let reply = match outcome {
            Ok(reply) => reply,
            Err(error) => {
                log_failure(&error);
                error.to_reply()
            }
        };
        tracing::info!(status = reply.status, "answered");
        count_answer(app, route, &reply, cold_start);
        with_request_ref(reply.into_response(), &request_ref)
    }
    .instrument(span)
    .await
}

/// Routes a request by method and path, as API Gateway does in front of the functions, and
/// handles it: what the local server and the tests run.
pub async fn dispatch(app: &App, request: Request) -> Response<Body> {
    match router::match_route(request.method().as_str(), request.uri().path()) {
        Err(error) => reject_unrouted(app, &error),
        Ok(matched) => {
            let params: std::collections::HashMap<String, String> = matched
                .route
                .path_parameters()
                .into_iter()
                .map(str::to_owned)
                .zip(matched.parameters)
                .collect();
            handle(app, matched.route, request.with_path_parameters(params)).await
        }
    }
}

/// Answers a request refused before any route ran: one that matched no route (404/405), or
/// whose body is over every cap (413), with its own `request-ref`.
pub fn reject_unrouted(app: &App, error: &ApiError) -> Response<Body> {
    let request_ref = new_request_ref(app);
    let reply = error.to_reply();
    tracing::info!(request_ref = %request_ref, status = reply.status, "refused before routing");
    with_request_ref(reply.into_response(), &request_ref)
}

fn new_request_ref(app: &App) -> String {
    random_id(app.context.random.as_ref()).unwrap_or_else(|_| format!("{:x}", app.clock.now()))
}

fn with_request_ref(mut response: Response<Body>, request_ref: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_ref) {
        response.headers_mut().insert("request-ref", value);
    }
    response
}

fn log_failure(error: &ApiError) {
    match error {
        ApiError::Unavailable(cause) => {
            tracing::warn!(error = %redacted_chain(cause.as_ref()), "a dependency failed");
        }
        ApiError::Internal(cause) => {
            tracing::error!(error = %redacted_chain(cause.as_ref()), "internal error");
        }
        _ => {}
    }
}

/// The pipeline's own metrics: cold starts, 503s, replays, and the Authy callbacks by status.
fn count_answer(app: &App, route: Route, reply: &Reply, cold_start: bool) {
    use crate::metrics::Metric;
    let now = app.clock.now();
    let by_route = [("route", route.name())];
    if cold_start {
        app.context
            .metrics
            .count(Metric::ColdStarts, &by_route, now);
    }
    if reply.status == 503 {
        app.context
            .metrics
            .count(Metric::DependencyFailures, &by_route, now);
    }
    if reply.is_replay() {
        app.context.metrics.count(Metric::Replays, &by_route, now);
    }
    if route == Route::AuthyCallback {
        let status = reply.status.to_string();
        app.context
            .metrics
            .count(Metric::Callbacks, &[("status", status.as_str())], now);
    }
}

/// A future that ends with `None` where the future it runs panics (the release profile
/// unwinds: Cargo.toml).
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchPanic<F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Some(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}

fn out_of_time() -> ApiError {
    ApiError::Unavailable("the request ran out of time".into())
}

/// Runs `work` until `deadline`; past it, the work is cut and the answer is a 503.
async fn until<T>(
    deadline: tokio::time::Instant,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(out_of_time()))
}

/// Everything a request does runs until `deadline`, but for recording an idempotent
/// request's answer (`idempotency::finish_once`).
async fn process<S: Serve>(
    app: &App,
    route: Route,
    request: &Request,
    deadline: tokio::time::Instant,
) -> Result<Reply, ApiError> {
    // Before anything reads it: a body over the route's cap is never parsed or copied.
    if request.body().len() > route.max_body_bytes() {
        tracing::info!(
            bytes = request.body().len(),
            cap = route.max_body_bytes(),
            "body too large"
        );
        return Err(ApiError::PayloadTooLarge);
    }
    S::serve(app, route, request, deadline).await
}

/// A route with no api key or token (Authy's callback, the JWKS).
async fn public<H: PublicHandler>(
    app: &App,
    _route: Route,
    request: &Request,
    deadline: tokio::time::Instant,
) -> Result<Reply, ApiError> {
    let now = app.clock.now();
    until(
        deadline,
        H::handle(H::Ports::reach(app), &app.context, request, now),
    )
    .await
}

/// A route called by a programme's app, in the contract's order: api key and token (401),
/// the sandbox-only simulators (404), validation (400), step-up (403), idempotency, then
/// the handler (409/429/2xx).
async fn user<H: Handler>(
    app: &App,
    route: Route,
    request: &Request,
    deadline: tokio::time::Instant,
) -> Result<Reply, ApiError> {
    let now = app.clock.now();
    let mut caller = until(deadline, authenticate(app, request, now)).await?;
    tracing::Span::current().record("programme", caller.programme.id.as_str());
    let params = request.path_parameters();
    let channel = params.first("channel").unwrap_or_default();
    let id = params
        .first("id")
        .or_else(|| params.first("scaChallengeId"))
        .unwrap_or_default();
    let body: &[u8] = request.body().as_ref();
    if H::IS_GET {
        let edge = Edge {
            channel,
            id,
            body,
            attempt: &AttemptId::new(String::new()),
        };
        let input = H::Input::parse(&edge)?;
        return until(
            deadline,
            H::handle(H::Ports::reach(app), &app.context, &caller, input),
        )
        .await;
    }
    if H::SANDBOX_ONLY && !caller.programme.sandbox {
        return Err(ApiError::NotFound);
    }
    let mut fields = Vec::new();
    let reference = match request.headers().get("idempotency-ref") {
        None => None,
        Some(raw) => match IdempotencyRef::parse(raw.as_bytes()) {
            Ok(reference) => Some(reference),
            Err(IdempotencyRefError::Size) => {
                fields.push(FieldError::new(
                    "idempotency-ref",
                    FieldErrorKind::Size,
                    &["1", "255"],
                ));
                None
            }
            Err(IdempotencyRefError::Regex) => {
                fields.push(FieldError::new(
                    "idempotency-ref",
                    FieldErrorKind::Regex,
                    &["^[\\x21-\\x7E]{1,255}$"],
                ));
                None
            }
        },
    };
    // Only a request with a reference needs its fingerprint (a second parse of the body).
    // A reference names an operation on a target: the path's id, and on the step-up routes
    // the session the step-up is for, belong to it.
    let fingerprint = match &reference {
        Some(_) => {
            // Appended only when present: a route without a target fingerprints as before.
            let mut operation = format!("{} {} {}", route.method(), route.name(), channel);
            if !id.is_empty() {
                operation.push_str(" id:");
                operation.push_str(id);
            }
            if route.path_template().starts_with("/stepup/") {
                operation.push_str(" session:");
                operation.push_str(caller.session.as_str());
            }
            fingerprint(&operation, body)
        }
        None => String::new(),
    };
    // A retry of the same request (same reference, same body) is the same verification
    // attempt (see `Codes::count_attempt`); another body, or no reference, another one.
    let attempt = match &reference {
        Some(reference) => AttemptId::new(reference.attempt_id(&fingerprint)),
        None => AttemptId::new(crate::handlers::new_id(&app.context)?),
    };
    let input = H::Input::parse(&Edge {
        channel,
        id,
        body,
        attempt: &attempt,
    });
    if !fields.is_empty() {
        if let Err(ApiError::InvalidFields(more)) = input {
            fields.extend(more);
        }
        return Err(ApiError::InvalidFields(fields));
    }
    if let Ok(input) = &input {
        until(deadline, require_step_up(app, H::step_up(input), &caller)).await?;
    }
    let reference = match reference {
        Some(reference) if H::CLAIM_RIDES => {
            let lease = LeaseId::new(crate::handlers::new_id(&app.context)?);
            caller.claim = Some(Claim::new(reference, fingerprint.clone(), lease));
            None
        }
        other => other,
    };
    let caller = &caller;
    if let Some(claim) = &caller.claim {
        let work = async {
            match input {
                Ok(input) => {
                    H::handle_riding(H::Ports::reach(app), &app.context, caller, input).await
                }
                Err(error) => crate::handlers::claim::Ridden::unwritten(Err(error)),
            }
        };
        return idempotency::run_riding(app, caller, claim, deadline, work).await;
    }
    let claim =
        match idempotency::claim_once(app, caller, reference, &fingerprint, deadline).await? {
            idempotency::Once::Run(claim) => claim,
            idempotency::Once::Answered(answer) => return answer,
            idempotency::Once::Mismatch => {
                if let Ok(input) = input {
                    until(
                        deadline,
                        H::mismatched(H::Ports::reach(app), &app.context, caller, input),
                    )
                    .await?;
                }
                return Err(ApiError::IdempotencyMismatch);
            }
        };
    let work = async { H::handle(H::Ports::reach(app), &app.context, caller, input?).await };
    let result = until(deadline, work).await;
    idempotency::finish_once(app, caller, claim, &result).await;
    result
}

async fn authenticate(app: &App, request: &Request, now: i64) -> Result<Caller, ApiError> {
    let api_key = request
        .headers()
        .get("api-key")
        .map(|v| v.to_str().unwrap_or("\u{0}").trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::InvalidFields(vec![FieldError::new(
                "api-key",
                FieldErrorKind::Required,
                &[],
            )])
        })?;
    let programme = app
        .programme_for_key(api_key, now)
        .await?
        .filter(|p| !p.disabled);
    // The token is verified whatever the key lookup found, so an unknown key costs what a
    // known key with a bad token costs: the time of a 401 tells nothing about the key.
    let authorization = request
        .headers()
        .get("authorization")
        .map(HeaderValue::as_bytes);
    let user = app.tokens.verify(authorization, now);
    let Some(programme) = programme else {
        tracing::info!(reason = "unknown or disabled api key", "unauthorized");
        return Err(ApiError::Unauthorized);
    };
    let user = user.map_err(|reason| {
        tracing::info!(reason = %reason, "unauthorized");
        ApiError::Unauthorized
    })?;
    if user.programme_id != programme.id {
        tracing::info!(reason = "token of another programme", "unauthorized");
        return Err(ApiError::Unauthorized);
    }
    // The one place a request's phone is hashed.
    let hasher = &app.context.hasher;
    let phone = user.phone.map(|number| HashedPhone {
        hash: hasher.phone_hash(number.expose_e164()),
        number,
    });
    Ok(Caller {
        stepped_up: programme.mfa_is_fresh(user.mfa_at, now),
        user: UserKey {
            programme_id: programme.id.clone(),
            credential_id: user.credential_id,
        },
        programme,
        phone,
        session: user.session,
        token_exp: user.exp,
        now,
        claim: None,
    })
}

/// Whether the route's step-up rule holds for this caller: a fresh `mfa`, or (one read, only
/// when the rule applies and `mfa` does not give it) a session stepped up by a step-up
/// challenge.
async fn require_step_up(app: &App, rule: StepUp, caller: &Caller) -> Result<(), ApiError> {
    if caller.stepped_up {
        return Ok(());
    }
    let needed = match rule {
        StepUp::Never => false,
        StepUp::IfAnyFactorActive => {
            has_active_factor(&app.store.list_factors(&caller.user).await?, &caller.phone)
        }
        StepUp::IfActive(channel) => app
            .store
            .get_factor(&caller.user, channel)
            .await?
            .is_some_and(|f| f.listed_status(&caller.phone) == FactorStatus::Active),
    };
    if !needed
        || app
            .store
            .step_up_grant(&caller.user, &caller.session)
            .await?
            .is_some_and(|grant| grant.until > caller.now)
    {
        Ok(())
    } else {
        Err(ApiError::StepUpRequired)
    }
}
