//! The HTTP edge: one pipeline every route goes through, in the contract's order —
//! api key (400/401), token (401), validation (400), step-up (403), idempotency, then the
//! route's own handler (409/429/2xx). Expected failures are responses, never `Err`.

pub mod idempotency;
pub mod payment_body;
pub mod router;

use lambda_http::{http::HeaderValue, Body, Request, RequestExt, Response};
use tracing::Instrument;

use self::router::Route;
use crate::{
    app::App,
    domain::{
        channel::Channel,
        factor::{has_active_factor, FactorStatus},
        idempotency::{fingerprint, IdempotencyRef, IdempotencyRefError},
        otp::{VerificationCode, VerificationCodeError},
        random::random_id,
    },
    handlers,
    handlers::{
        reply::{ApiError, FieldError, FieldErrorKind, Reply},
        Caller,
    },
    logging::redacted_chain,
    store::UserKey,
};

/// What a mutating route takes, once validated.
#[derive(Debug)]
pub struct Input {
    /// The `{channel}` (routes without one: none).
    pub channel: Option<Channel>,
    /// The `verificationCode` (verify routes only).
    pub code: Option<VerificationCode>,
    /// The payment a payment challenge approves (its start routes only).
    pub payment: Option<crate::domain::payment::Payment>,
}

/// Whether this environment has served a request before (`cold_start` on each log line).
static SERVED_BEFORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Handles one request on a known route. Never fails: every outcome is a response, with a
/// fresh `request-ref` that every log line of the request also carries.
pub async fn handle(app: &App, route: Route, request: Request) -> Response<Body> {
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
            process(app, route, &request, deadline),
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
    random_id(app.random.as_ref()).unwrap_or_else(|_| format!("{:x}", app.clock.now()))
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
        app.metrics.count(Metric::ColdStarts, &by_route, now);
    }
    if reply.status == 503 {
        app.metrics
            .count(Metric::DependencyFailures, &by_route, now);
    }
    if reply.is_replay() {
        app.metrics.count(Metric::Replays, &by_route, now);
    }
    if route == Route::AuthyCallback {
        let status = reply.status.to_string();
        app.metrics
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
/// request's answer (`idempotency::run_once`).
async fn process(
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
    let now = app.clock.now();
    match route {
        Route::AuthyCallback => {
            return until(
                deadline,
                handlers::authy_callback::authy_callback(app, request, now),
            )
            .await
        }
        // Public keys: no credentials, cacheable.
        Route::Jwks => return until(deadline, handlers::jwks::jwks(app)).await,
        _ => {}
    }
    let caller = until(deadline, authenticate(app, request, now)).await?;
    tracing::Span::current().record("programme", caller.programme.id.as_str());
    let param = |name: &str| {
        request
            .path_parameters()
            .first(name)
            .unwrap_or_default()
            .to_owned()
    };
    match route {
        Route::ListFactors => {
            until(deadline, handlers::list_factors::list_factors(app, &caller)).await
        }
        Route::GetStepUpChallenge => {
            until(
                deadline,
                handlers::get_step_up_challenge::get_step_up_challenge(app, &caller, &param("id")),
            )
            .await
        }
        Route::GetPaymentChallenge => {
            until(
                deadline,
                handlers::get_payment_challenge::get_payment_challenge(
                    app,
                    &caller,
                    &param("scaChallengeId"),
                ),
            )
            .await
        }
        _ => mutate(app, route, &caller, request, deadline).await,
    }
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
    Ok(Caller {
        stepped_up: programme.mfa_is_fresh(user.mfa_at, now),
        user: UserKey {
            programme_id: programme.id.clone(),
            credential_id: user.credential_id,
        },
        programme,
        phone: user.phone,
        session: user.session,
        token_exp: user.exp,
        now,
    })
}

async fn mutate(
    app: &App,
    route: Route,
    caller: &Caller,
    request: &Request,
    deadline: tokio::time::Instant,
) -> Result<Reply, ApiError> {
    if matches!(
        route,
        Route::SimulatePushAccept
            | Route::SimulatePushReject
            | Route::SimulateStepUpAccept
            | Route::SimulateStepUpReject
            | Route::SimulatePaymentAccept
            | Route::SimulatePaymentReject
    ) && !caller.programme.sandbox
    {
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
    let params = request.path_parameters();
    let channel = params.first("channel").unwrap_or_default();
    let id = params
        .first("id")
        .or_else(|| params.first("scaChallengeId"))
        .unwrap_or_default()
        .to_owned();
    let body: &[u8] = request.body().as_ref();
    let input = parse_input(route, channel, body);
    if !fields.is_empty() {
        if let Err(ApiError::InvalidFields(more)) = input {
            fields.extend(more);
        }
        return Err(ApiError::InvalidFields(fields));
    }
    if let Ok(input) = &input {
        until(deadline, require_step_up(app, route, caller, input.channel)).await?;
    }
    let channel_of = |input: &Input| {
        input
            .channel
            .ok_or_else(|| ApiError::Internal("a channel route without a channel".into()))
    };
    // Only a request with a reference needs its fingerprint (a second parse of the body).
    let fingerprint = match &reference {
        Some(_) => fingerprint(
            &format!("{} {} {}", route.method(), route.name(), channel),
            body,
        ),
        None => String::new(),
    };
    // A retry of the same request (same reference, same body) counts the same attempt (see
    // `count_sms_attempt`); another body is another attempt.
    let attempt_id = reference.as_ref().map(|r| r.attempt_id(&fingerprint));
    idempotency::run_once(app, caller, reference, &fingerprint, deadline, async {
        let input = input?;
        match route {
            Route::EnrolSmsOtp => handlers::enrol_sms_otp::enrol_sms_otp(app, caller).await,
            Route::VerifySmsOtp => match input.code {
                Some(code) => {
                    handlers::verify_sms_otp::verify_sms_otp(app, caller, &code, attempt_id).await
                }
                None => Err(ApiError::Internal("verify without a code".into())),
            },
            Route::EnrolPush => handlers::enrol_push::enrol_push(app, caller).await,
            Route::UnlinkPush => {
                handlers::unlink_push::unlink_push(app, caller, channel_of(&input)?).await
            }
            Route::StepUpSms => handlers::step_up_sms::step_up_sms(app, caller).await,
            Route::VerifyStepUpSms => match input.code {
                Some(code) => {
                    handlers::verify_step_up_sms::verify_step_up_sms(app, caller, &code, attempt_id)
                        .await
                }
                None => Err(ApiError::Internal("verify without a code".into())),
            },
            Route::StepUpPush => handlers::step_up_push::step_up_push(app, caller).await,
            Route::SimulateStepUpAccept => {
                handlers::simulate_step_up::simulate_step_up(app, caller, &id, true).await
            }
            Route::SimulateStepUpReject => {
                handlers::simulate_step_up::simulate_step_up(app, caller, &id, false).await
            }
            Route::PaymentSms | Route::PaymentPush => match input.payment {
                Some(payment) if route == Route::PaymentSms => {
                    handlers::payment_sms::payment_sms(app, caller, payment).await
                }
                Some(payment) => handlers::payment_push::payment_push(app, caller, payment).await,
                None => Err(ApiError::Internal(
                    "a payment route without a payment".into(),
                )),
            },
            Route::VerifyPaymentSms => match input.code {
                Some(code) => {
                    handlers::verify_payment_sms::verify_payment_sms(
                        app, caller, &id, &code, attempt_id,
                    )
                    .await
                }
                None => Err(ApiError::Internal("verify without a code".into())),
            },
            Route::SimulatePaymentAccept => {
                handlers::simulate_payment::simulate_payment(app, caller, &id, true).await
            }
            Route::SimulatePaymentReject => {
                handlers::simulate_payment::simulate_payment(app, caller, &id, false).await
            }
            Route::SimulatePushAccept => {
                handlers::simulate_push::simulate_push(app, caller, true).await
            }
            Route::SimulatePushReject => {
                handlers::simulate_push::simulate_push(app, caller, false).await
            }
            Route::ListFactors
            | Route::AuthyCallback
            | Route::GetStepUpChallenge
            | Route::GetPaymentChallenge
            | Route::Jwks => Err(ApiError::Internal("not a user mutation".into())),
        }
    })
    .await
}

/// The channels each route's `{channel}` accepts.
fn allowed_channels(route: Route) -> &'static [Channel] {
    match route {
        Route::EnrolSmsOtp
        | Route::VerifySmsOtp
        | Route::StepUpSms
        | Route::VerifyStepUpSms
        | Route::PaymentSms
        | Route::VerifyPaymentSms => &[Channel::Sms],
        Route::EnrolPush
        | Route::SimulatePushAccept
        | Route::SimulatePushReject
        | Route::StepUpPush
        | Route::PaymentPush => &[Channel::Authy],
        Route::UnlinkPush => &[Channel::Authy, Channel::Biometric],
        Route::ListFactors
        | Route::AuthyCallback
        | Route::GetStepUpChallenge
        | Route::SimulateStepUpAccept
        | Route::SimulateStepUpReject
        | Route::GetPaymentChallenge
        | Route::Jwks
        | Route::SimulatePaymentAccept
        | Route::SimulatePaymentReject => &[],
    }
}

/// Validates the path and body of a mutating route.
fn parse_input(route: Route, channel: &str, body: &[u8]) -> Result<Input, ApiError> {
    let allowed = allowed_channels(route);
    let mut fields = Vec::new();
    let parsed_channel = Channel::parse_among(channel, allowed);
    if parsed_channel.is_none() && !allowed.is_empty() {
        let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
        fields.push(FieldError::new("channel", FieldErrorKind::In, &names));
    }
    let payment = if matches!(route, Route::PaymentSms | Route::PaymentPush) {
        match payment_body::parse_payment(body) {
            Ok(payment) => Some(payment),
            Err(ApiError::InvalidFields(more)) => {
                fields.extend(more);
                None
            }
            Err(error) if fields.is_empty() => return Err(error),
            Err(_) => None,
        }
    } else {
        None
    };
    let code = if matches!(
        route,
        Route::VerifySmsOtp | Route::VerifyStepUpSms | Route::VerifyPaymentSms
    ) {
        match parse_verification_body(body) {
            Ok(code) => Some(code),
            Err(BodyError::Field(field)) => {
                fields.push(field);
                None
            }
            Err(BodyError::Malformed(message)) if fields.is_empty() => {
                return Err(ApiError::MalformedBody(message))
            }
            Err(BodyError::Malformed(_)) => None,
        }
    } else {
        None
    };
    if fields.is_empty() {
        Ok(Input {
            channel: parsed_channel,
            code,
            payment,
        })
    } else {
        Err(ApiError::InvalidFields(fields))
    }
}

enum BodyError {
    Field(FieldError),
    Malformed(&'static str),
}

/// `{"verificationCode": "123456"}`; an empty body counts as `{}`.
/// The verify body's one field. Deserialising into a struct (not a map) makes a repeated
/// `verificationCode` an error instead of "the last one wins": a body whose meaning depends
/// on the parser is refused. Other fields are ignored.
#[derive(serde::Deserialize)]
struct VerifyBody {
    #[serde(rename = "verificationCode", default)]
    verification_code: Option<serde_json::Value>,
}

fn parse_verification_body(body: &[u8]) -> Result<VerificationCode, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let code = match first {
        None => None,
        // serde would also read a struct from an array: only an object is a body.
        Some(b'{') => {
            serde_json::from_slice::<VerifyBody>(body)
                .map_err(|_| {
                    BodyError::Malformed("The request body is not valid JSON, or repeats a field.")
                })?
                .verification_code
        }
        Some(_) => {
            return Err(BodyError::Malformed(
                "The request body must be a JSON object.",
            ))
        }
    };
    match code.as_ref() {
        None | Some(serde_json::Value::Null) => Err(BodyError::Field(FieldError::new(
            "verificationCode",
            FieldErrorKind::Required,
            &[],
        ))),
        Some(serde_json::Value::String(raw)) => VerificationCode::parse(raw).map_err(|e| {
            BodyError::Field(match e {
                VerificationCodeError::Size => {
                    FieldError::new("verificationCode", FieldErrorKind::Size, &["6", "6"])
                }
                VerificationCodeError::Regex => {
                    FieldError::new("verificationCode", FieldErrorKind::Regex, &["^[0-9]*$"])
                }
            })
        }),
        Some(_) => Err(BodyError::Malformed("verificationCode must be a string.")),
    }
}

/// Adding a push factor while any factor is listed `ACTIVE`, or removing one listed
/// `ACTIVE`, needs a stepped-up token: a fresh `mfa` in `amr`, or a session stepped up by a
/// step-up challenge (one read, only when step-up is needed and `mfa` does not give it).
async fn require_step_up(
    app: &App,
    route: Route,
    caller: &Caller,
    channel: Option<Channel>,
) -> Result<(), ApiError> {
    if caller.stepped_up {
        return Ok(());
    }
    let token_phone = caller.token_phone(app);
    let needed = match route {
        Route::EnrolPush => {
            has_active_factor(&app.store.list_factors(&caller.user).await?, &token_phone)
        }
        Route::UnlinkPush => match channel {
            Some(channel) => app
                .store
                .get_factor(&caller.user, channel)
                .await?
                .is_some_and(|f| f.listed_status(&token_phone) == FactorStatus::Active),
            None => false,
        },
        _ => false,
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
