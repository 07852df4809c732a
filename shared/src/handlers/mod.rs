//! One module per route, named after what it does (`verify_sms_otp`: verify an SMS code).
//!
//! Each route's handler declares, next to what it does, what it takes and what it reaches:
//! its input (`input`, parsed at the edge), its ports (`ports!`: the store roles and
//! adapters it is handed, and nothing else), whether it is a sandbox-only simulator, and
//! whether it needs a stepped-up token. The pipeline (`http`) authenticates, parses,
//! applies the step-up rule and idempotency, then calls it.

pub mod authy_callback;
pub mod claim;
pub mod enrol_push;
pub mod enrol_sms_otp;
pub mod get_payment_challenge;
pub mod get_step_up_challenge;
pub mod input;
pub mod jwks;
pub mod list_factors;
pub mod payment_body;
pub mod payment_push;
pub mod payment_sms;
pub mod ports;
pub mod reply;
pub mod sandbox_jwks;
pub mod simulate_payment;
pub mod simulate_push;
pub mod simulate_step_up;
pub mod step_up_push;
pub mod step_up_sms;
pub mod unlink_push;
pub mod verify_payment_sms;
pub mod verify_sms_otp;
pub mod verify_step_up_sms;

use std::sync::Arc;

use async_trait::async_trait;

use self::{
    input::Input,
    ports::Ports,
    reply::{ApiError, ErrorCode, Reply},
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        ids::ChallengeId,
        otp::VerificationCode,
        payment::PaymentChallenge,
        phone::{HashedPhone, TokenPhone},
        programme::Programme,
        send_limits::LimitCounter,
        step_up::{ChallengeStatus, PushChallenge, SessionId},
    },
    events::{Change, Event, EventPublisher, FactorEvent, PaymentEvent, StepUpEvent},
    metrics::Metric,
    proof::ProofSigner,
    push::{Approval, PushProvider},
    sms::SmsSender,
    store::{
        AttemptOutcome, ChallengeSlot, ClaimOutcome, ClaimRecord, Codes, Counters, FactorReads,
        Payments, StepUps, UserKey,
    },
};

/// The authenticated caller of one request.
pub struct Caller {
    pub programme: Arc<Programme>,
    pub user: UserKey,
    /// The token's phone, hashed once for the request.
    pub phone: TokenPhone,
    pub stepped_up: bool,
    /// The token's session (what a step-up challenge steps up) and its `exp`.
    pub session: SessionId,
    pub token_exp: i64,
    /// The request's clock, read once.
    pub now: i64,
    /// The `idempotency-ref` claim this request's own write carries, when its route lets the
    /// claim ride (`Handler::CLAIM_RIDES`) and the request has a reference.
    pub claim: Option<claim::Claim>,
}

impl Caller {
    /// The in-progress record a write carries, if the claim rides (see `claim`).
    pub fn claim_in_progress(&self) -> Option<&ClaimRecord> {
        self.claim.as_ref().map(claim::Claim::in_progress)
    }

    /// The record with `answer`, for a write after which nothing can fail.
    pub fn claim_with_answer(&self, answer: &Reply) -> Option<ClaimRecord> {
        self.claim.as_ref().map(|c| c.with_answer(answer))
    }

    /// A write that carried the claim (if any) committed.
    pub fn claim_taken(&self, answered: bool) {
        if let Some(claim) = &self.claim {
            claim.taken(answered);
        }
    }

    /// A write was refused for its claim: the answer the live record gives.
    pub fn claim_refused(&self, outcome: ClaimOutcome) -> Result<Reply, ApiError> {
        match &self.claim {
            Some(claim) => claim.refused(outcome),
            None => claim::answer(outcome).unwrap_or_else(|| {
                Err(ApiError::Internal(
                    "a write without a claim was refused for one".into(),
                ))
            }),
        }
    }
}

/// When a route needs a stepped-up token (a fresh `mfa`, or a session stepped up by a
/// step-up challenge): adding a push factor while any factor is listed `ACTIVE`, removing
/// one listed `ACTIVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    Never,
    IfAnyFactorActive,
    IfActive(Channel),
}

/// A route called by a programme's app: api key and token first (the pipeline), then this.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    type Input: Input;
    type Ports<'a>: Ports<'a>;
    /// A `GET`: no `idempotency-ref`, no body.
    const IS_GET: bool = false;
    /// A simulator: sandbox programmes only (404 for live ones).
    const SANDBOX_ONLY: bool = false;
    /// The `idempotency-ref` claim rides in the handler's own write (`claim`): no separate
    /// claim before it runs. The handler must then pass `Caller::claim_in_progress` (or
    /// `claim_with_answer`) to the write that changes state, and report what became of it.
    const CLAIM_RIDES: bool = false;

    /// The step-up rule for this input.
    fn step_up(_input: &Self::Input) -> StepUp {
        StepUp::Never
    }

    async fn handle(
        ports: Self::Ports<'_>,
        cx: &Context,
        caller: &Caller,
        input: Self::Input,
    ) -> Result<Reply, ApiError>;

    /// The request reused its `idempotency-ref` with another body and is answered 400
    /// without running. On a route that compares a code it still uses one attempt of the
    /// pending challenge (counted, never compared): a code is never compared uncounted, and
    /// a reference is no way around the wrong-code ladder. Other routes change nothing.
    async fn mismatched(
        _ports: Self::Ports<'_>,
        _cx: &Context,
        _caller: &Caller,
        _input: Self::Input,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// A route no programme's app calls: no api key, no token (Authy's signed callback, the
/// proofs' public keys).
#[async_trait]
pub trait PublicHandler: Send + Sync + 'static {
    type Ports<'a>: Ports<'a>;

    async fn handle(
        ports: Self::Ports<'_>,
        cx: &Context,
        request: &lambda_http::Request,
        now: i64,
    ) -> Result<Reply, ApiError>;
}

/// The phone a new factor is enrolled on: the token's, if the programme allows the channel
/// and the number's country. The 409s of both enrolment routes, in the contract's order.
fn enrolment_phone<'c>(
    cx: &Context,
    caller: &'c Caller,
    channel: Channel,
) -> Result<&'c HashedPhone, ApiError> {
    if !caller.programme.channel_enabled(channel) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    match &caller.phone {
        TokenPhone::Absent => Err(ApiError::Conflict(ErrorCode::MobileNumberNotAvailable)),
        TokenPhone::Invalid => Err(ApiError::Conflict(ErrorCode::MobileNumberInvalid)),
        TokenPhone::Valid(phone)
            if !caller
                .programme
                .country_allowed(phone.number.allow_list_code(), &cx.policy.default_countries) =>
        {
            Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported))
        }
        TokenPhone::Valid(phone) => Ok(phone),
    }
}

/// A fresh random id (a challenge's, an attempt's, a lease's, a sandbox's provider request);
/// a failing generator is a 500.
pub fn new_id(cx: &Context) -> Result<String, ApiError> {
    crate::domain::random::random_id(cx.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))
}

/// A random number for picking a counter shard.
fn shard_pick(cx: &Context) -> u32 {
    let mut buf = [0u8; 4];
    let _ = cx.random.fill(&mut buf);
    u32::from_le_bytes(buf)
}

/// An SMS code about to be stored and sent: the code (`123456` in a sandbox, else uniform
/// from the CSPRNG), the challenge that stores its hash (live for `CODE_TTL_SECS`), and the
/// send-limit counters its SMS consumes. What every SMS route stores in its start's atomic
/// write, then sends.
struct SmsCode<'a> {
    phone: &'a HashedPhone,
    code: VerificationCode,
    challenge: crate::store::NewChallenge,
    counters: Vec<LimitCounter>,
}

impl<'a> SmsCode<'a> {
    fn new(cx: &Context, caller: &Caller, phone: &'a HashedPhone) -> Result<Self, ApiError> {
        use crate::domain::{
            otp::{generate_code, SANDBOX_CODE},
            send_limits::{sms_counters, Destination, Sender},
        };
        let programme = &caller.programme;
        // The allow-list holds whenever an SMS is about to be sent, not only at enrolment:
        // cutting a country stops step-up and payment codes to numbers enrolled there.
        if !programme.country_allowed(phone.number.allow_list_code(), &cx.policy.default_countries)
        {
            return Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported));
        }
        let code = if programme.sandbox {
            VerificationCode::parse(SANDBOX_CODE).map_err(|e| ApiError::Internal(e.into()))?
        } else {
            generate_code(cx.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?
        };
        let challenge_id = ChallengeId::new(new_id(cx)?);
        let challenge = crate::store::NewChallenge {
            code_hash: cx.hasher.code_hash(challenge_id.as_str(), &code),
            challenge_id,
            phone_hash: phone.hash.clone(),
            wrong_code_limit: programme.wrong_code_limit,
            expires_at: caller.now + crate::domain::challenge::CODE_TTL_SECS,
        };
        // Enrolment, step-up and payment codes share the same counters.
        let counters = sms_counters(
            &programme.send_limits,
            &cx.policy.sms_budget,
            &Sender {
                programme_id: &programme.id,
                credential_id: &caller.user.credential_id,
                sandbox: programme.sandbox,
            },
            &Destination {
                phone_hash: phone.hash.as_str(),
                country_code: phone.number.country_code(),
            },
            caller.now,
            shard_pick(cx),
        );
        Ok(Self {
            phone,
            code,
            challenge,
            counters,
        })
    }

    /// The 429 of a code refused by its send limits: `full` are the indices of the full
    /// counters (counted by the limit that was full).
    fn refused(&self, cx: &Context, caller: &Caller, full: &[usize]) -> ApiError {
        let hit: Vec<_> = full.iter().filter_map(|&i| self.counters.get(i)).collect();
        tracing::info!(to = %self.phone.number, "SMS send limit reached");
        for counter in &hit {
            cx.metrics.count(
                Metric::SmsRefused,
                &[
                    ("programme", &caller.programme.id),
                    ("limit", counter.kind().name()),
                ],
                caller.now,
            );
        }
        match crate::domain::send_limits::rate_limited(&self.counters, &hit, caller.now) {
            Some(limited) => ApiError::RateLimited(limited),
            None => ApiError::Internal("limited without a full counter".into()),
        }
    }

    /// Sends the stored code, its text written by `text` from the code (a sandbox sends
    /// nothing). If the send fails, what was stored for it is removed (`unsent`), the counters
    /// are given back when SNS definitely sent nothing (an SMS that may have left still
    /// counts), and the caller gets a 503 whose retry works.
    async fn send(
        self,
        sms: &dyn SmsSender,
        cx: &Context,
        caller: &Caller,
        text: impl FnOnce(&str) -> String,
        unsent: Unsent<'_>,
    ) -> Result<(), ApiError> {
        use crate::sms::{Delivery, SmsMessage};
        let programme = &caller.programme;
        let phone = &self.phone.number;
        if programme.sandbox {
            tracing::info!(to = %phone, "sandbox programme: challenge stored, no SMS sent");
            return Ok(());
        }
        let message = SmsMessage {
            to: phone.clone(),
            text: text(self.code.expose()),
            code: self.code,
            sender_id: programme.sms_sender_id.clone(),
        };
        let Err(error) = sms.send(&message).await else {
            tracing::info!(to = %phone, "SMS code sent");
            let country = phone.country_code().to_string();
            cx.metrics.count(
                Metric::SmsSent,
                &[("programme", &programme.id), ("country", &country)],
                caller.now,
            );
            return Ok(());
        };
        let refund: &[_] = match error.delivery {
            Delivery::NotSent => &self.counters,
            Delivery::Unknown => &[],
        };
        let delivery = match error.delivery {
            Delivery::NotSent => "not_sent",
            Delivery::Unknown => "unknown",
        };
        tracing::info!(delivery, refunded = !refund.is_empty(), "SMS not sent");
        let id = &self.challenge.challenge_id;
        let abandoned = match unsent {
            Unsent::Challenge(codes, slot) => {
                codes
                    .abandon_challenge(&caller.user, &slot, id, refund)
                    .await
            }
            Unsent::Payment(payments, challenge) => {
                payments
                    .abandon_payment(&caller.user, challenge, id, refund)
                    .await
            }
        };
        if let Err(cleanup) = abandoned {
            tracing::warn!(error = %crate::logging::redacted_chain(&cleanup), "the unsent challenge could not be removed");
        }
        Err(ApiError::Unavailable(error.into()))
    }
}

/// What a failed send leaves behind to remove, besides the code.
enum Unsent<'a> {
    /// An enrolment or step-up code: the slot's challenge.
    Challenge(&'a dyn Codes, ChallengeSlot),
    /// A payment challenge, and its hold on the reference.
    Payment(&'a dyn Payments, &'a PaymentChallenge),
}

/// A push sent to the user's device through Authy.
fn count_push(cx: &Context, caller: &Caller) {
    cx.metrics.count(
        Metric::PushRequests,
        &[("programme", &caller.programme.id)],
        caller.now,
    );
}

/// Compares a code with the challenge's stored hash (and counts the comparison).
fn code_is_right(
    cx: &Context,
    caller: &Caller,
    challenge_id: &ChallengeId,
    code: &VerificationCode,
    code_hash: &str,
) -> bool {
    use std::sync::atomic::Ordering;
    cx.metrics.codes_compared.fetch_add(1, Ordering::SeqCst);
    let right = cx
        .hasher
        .code_matches(challenge_id.as_str(), code, code_hash);
    cx.metrics.count(
        Metric::CodesCompared,
        &[
            ("programme", &caller.programme.id),
            ("result", if right { "right" } else { "wrong" }),
        ],
        caller.now,
    );
    right
}

/// What a wrong code is told, by the attempts counted so far.
fn wrong_code_answer(cx: &Context, caller: &Caller, attempts: u32, limit: u32) -> ErrorCode {
    use crate::domain::challenge::{wrong_code, WrongCode};
    match wrong_code(attempts, limit) {
        WrongCode::Invalid => ErrorCode::VerificationCodeInvalid,
        WrongCode::OneRemaining => ErrorCode::OneChallengeLimitRemaining,
        WrongCode::LimitExceeded => {
            cx.metrics.count(
                Metric::ChallengeLimitReached,
                &[("programme", &caller.programme.id)],
                caller.now,
            );
            ErrorCode::ChallengeLimitExceeded
        }
    }
}

/// What a verification attempt's count leaves to compare: the counted attempt, or `None`
/// when there is no challenge for this phone (each route says what that means). A dead
/// challenge (every attempt used) is 409 `STATE_INVALID`; an expired one, 409
/// `VERIFICATION_CODE_EXPIRED`.
fn counted(outcome: AttemptOutcome) -> Result<Option<crate::store::CountedAttempt>, ApiError> {
    match outcome {
        AttemptOutcome::Counted(attempt) => Ok(Some(attempt)),
        AttemptOutcome::NoChallenge => Ok(None),
        AttemptOutcome::Dead => Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        AttemptOutcome::Expired => Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired)),
    }
}

/// Settles a pending push step-up (the device's answer, from Authy's callback or the
/// simulator): approved → `VERIFIED` and the session stepped up, denied → `DECLINED`.
/// `false` when it was not pending, had expired, or its Authy factor is gone.
async fn settle_step_up(
    step_ups: &dyn StepUps,
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge: &PushChallenge,
    approved: bool,
    now: i64,
) -> Result<bool, ApiError> {
    use crate::domain::step_up::stepped_up_until;
    let grant = approved.then(|| crate::store::StepUpGrant {
        until: stepped_up_until(now, challenge.lifetime_secs, challenge.token_exp),
        challenge_id: challenge.id.clone(),
        verified_by: challenge.request_id.clone(),
    });
    if !step_ups
        .settle_push_challenge(user, challenge, grant.as_ref(), now)
        .await?
    {
        return Ok(false);
    }
    let status = if approved {
        ChallengeStatus::Verified
    } else {
        ChallengeStatus::Declined
    };
    announce_step_up(events, user, &challenge.id, Channel::Authy, status, now).await;
    Ok(true)
}

/// A push step-up's status as a reader sees it: a pending one past its time, or whose Authy
/// factor is no longer `ACTIVE`, is `EXPIRED` (stored and announced once).
async fn step_up_status(
    factors: &dyn FactorReads,
    step_ups: &dyn StepUps,
    events: &dyn EventPublisher,
    caller: &Caller,
    challenge: &PushChallenge,
) -> Result<ChallengeStatus, ApiError> {
    use crate::domain::factor::FactorStatus;
    let status = challenge.status_at(caller.now);
    let expired = match status {
        ChallengeStatus::Expired if challenge.status == ChallengeStatus::Pending => true,
        ChallengeStatus::Pending => !factors
            .get_factor(&caller.user, Channel::Authy)
            .await?
            .is_some_and(|f| f.status == FactorStatus::Active),
        _ => false,
    };
    if !expired {
        return Ok(status);
    }
    if !step_ups
        .expire_push_challenge(&caller.user, &challenge.id)
        .await?
    {
        // Settled (or expired) by another request meanwhile: what it left stands.
        return Ok(step_ups
            .get_push_challenge(&caller.user, &challenge.id)
            .await?
            .map_or(ChallengeStatus::Expired, |c| c.status_at(caller.now)));
    }
    announce_step_up(
        events,
        &caller.user,
        &challenge.id,
        Channel::Authy,
        ChallengeStatus::Expired,
        caller.now,
    )
    .await;
    Ok(ChallengeStatus::Expired)
}

/// Whether a payment reference may start a new challenge: free, or held by a declined or
/// expired one (returned, to be replaced). A pending or verified one holds it
/// (`STATE_INVALID`, which answers before the wait); a new SMS for a reference whose last
/// SMS is under 15 s old waits (`RETRY_IN_15SEC`).
async fn payment_reference_free(
    payments: &dyn Payments,
    caller: &Caller,
    reference: &str,
    sms: bool,
) -> Result<Option<ChallengeId>, ApiError> {
    use crate::domain::step_up::RETRY_WAIT_SECS;
    let Some(current) = payments
        .payment_by_reference(&caller.user, reference)
        .await?
    else {
        return Ok(None);
    };
    match current.status_at(caller.now) {
        ChallengeStatus::Pending | ChallengeStatus::Verified => {
            Err(ApiError::Conflict(ErrorCode::StateInvalid))
        }
        ChallengeStatus::Declined | ChallengeStatus::Expired
            if sms
                && current.channel == Channel::Sms
                && current.created_at > caller.now - RETRY_WAIT_SECS =>
        {
            Err(ApiError::Conflict(ErrorCode::RetryIn15Sec))
        }
        ChallengeStatus::Declined | ChallengeStatus::Expired => Ok(Some(current.id)),
    }
}

/// What settling a push payment reaches: the challenge, the key that signs its proof, and
/// the events its outcome is announced on.
struct PaymentSettlement<'a> {
    payments: &'a dyn Payments,
    signer: &'a dyn ProofSigner,
    /// The signer is the sandbox key (its proofs say `"sandbox": true`).
    sandbox: bool,
    events: &'a dyn EventPublisher,
}

/// Settles a pending push payment challenge (the device's answer, from Authy's callback or
/// the simulator): approved → signed, then `VERIFIED` with its proof; denied → `DECLINED`.
/// `false` when it was not pending, had expired, or its Authy factor is gone.
async fn settle_payment(
    ports: PaymentSettlement<'_>,
    cx: &Context,
    user: &UserKey,
    challenge: &PaymentChallenge,
    approved: bool,
    now: i64,
) -> Result<bool, ApiError> {
    use crate::store::{PaymentOutcome, PaymentProof};
    if challenge.status_at(now) != ChallengeStatus::Pending {
        return Ok(false);
    }
    let verified = if approved {
        let claims =
            crate::proof::proof_claims(&cx.proof_issuer, user, challenge, ports.sandbox, now);
        let proof = crate::proof::sign_proof(ports.signer, &claims)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        Some(PaymentProof {
            proof,
            verified_by: challenge.request_id.clone().unwrap_or_default(),
        })
    } else {
        None
    };
    let outcome = PaymentOutcome {
        verified,
        consume_code: None,
        require_authy: true,
    };
    if !ports
        .payments
        .finish_payment(user, &challenge.id, &outcome, now)
        .await?
    {
        return Ok(false);
    }
    let status = if approved {
        ChallengeStatus::Verified
    } else {
        ChallengeStatus::Declined
    };
    announce_payment(ports.events, user, challenge, status, now).await;
    Ok(true)
}

/// The user's `ACTIVE` Authy factor a push challenge goes to: its provider id (none in a
/// sandbox, which calls no provider).
async fn active_authy_id(
    factors: &dyn FactorReads,
    caller: &Caller,
) -> Result<Option<String>, ApiError> {
    use crate::domain::factor::FactorStatus;
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Authy) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let factor = factors.get_factor(&caller.user, Channel::Authy).await?;
    let Some(factor) = factor.filter(|f| f.listed_status(&caller.phone) == FactorStatus::Active)
    else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    match (factor.authy_id, programme.sandbox) {
        (_, true) => Ok(None),
        (Some(id), false) => Ok(Some(id)),
        (None, false) => Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered)),
    }
}

/// Pushes a challenge's approval request: consumes the user's push request for this hour
/// (409 `CHALLENGE_LIMIT_EXCEEDED` when none is left: a guard against push-bombing), then
/// asks Authy (a sandbox gets a random request id). If Authy fails, the request is given back
/// and the caller gets a 503. Returns the provider's request id.
async fn push_approval(
    counters: &dyn Counters,
    push: &dyn PushProvider,
    cx: &Context,
    caller: &Caller,
    authy_id: Option<String>,
    approval: Approval,
) -> Result<String, ApiError> {
    use crate::domain::send_limits::{push_counters, Sender};
    let programme = &caller.programme;
    // The user's push requests per hour; the per-number limit is enrolment's.
    let hourly: Vec<_> = push_counters(
        &programme.send_limits,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        "",
        caller.now,
    )
    .into_iter()
    .take(1)
    .collect();
    if counters
        .consume_counters(&hourly, caller.now)
        .await?
        .is_err()
    {
        return Err(ApiError::Conflict(ErrorCode::ChallengeLimitExceeded));
    }
    let Some(authy_id) = authy_id else {
        return new_id(cx);
    };
    match push.request_approval(&authy_id, &approval).await {
        Ok(request_id) => {
            count_push(cx, caller);
            Ok(request_id)
        }
        Err(error) => {
            if let Err(refund) = counters.refund_counters(&hourly).await {
                tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
            }
            Err(ApiError::Unavailable(error.into()))
        }
    }
}

/// Publishes a lifecycle event; a failure is logged (as `what`), never answered.
async fn publish(events: &dyn EventPublisher, event: Event, what: &'static str) {
    if let Err(error) = events.publish(&event).await {
        tracing::warn!(error = %crate::logging::redacted_chain(&error), what, "event not published");
    }
}

/// Announces a factor's change.
async fn announce(
    events: &dyn EventPublisher,
    user: &UserKey,
    channel: Channel,
    change: Change,
    now: i64,
) {
    let event = FactorEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        channel,
        change,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::Factor(event), change.as_str()).await;
}

/// Announces a step-up challenge's outcome.
async fn announce_step_up(
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge_id: &ChallengeId,
    channel: Channel,
    status: ChallengeStatus,
    now: i64,
) {
    let event = StepUpEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        challenge_id: challenge_id.as_str().to_owned(),
        channel,
        status,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::StepUp(event), status.as_str()).await;
}

/// Announces a payment challenge's outcome.
async fn announce_payment(
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge: &PaymentChallenge,
    status: ChallengeStatus,
    now: i64,
) {
    let event = PaymentEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        sca_challenge_id: challenge.id.as_str().to_owned(),
        channel: challenge.channel,
        reference: challenge.payment.reference.clone(),
        status,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::Payment(event), status.as_str()).await;
}
