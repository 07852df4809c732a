//! `POST /authentication_factors/otp/SMS/verify`: step two — check the code the user typed.
//!
//! The attempt is counted (atomically, only while the challenge is live and was sent to the
//! token's phone) *before* the code is compared: see `domain::challenge`. A right code then
//! consumes the challenge and activates the factor in one conditional write, so it works once.
//!
//! With an `idempotency-ref`, the attempt is counted before the reference is claimed (the
//! count must return the code's hash, which a transaction cannot): a retry of the same
//! request is the same attempt (`AttemptId`), never counted twice on a challenge, and its
//! kept answer is found when the answer is recorded; another body under the reference is a
//! 400 that still used its attempt (a code is never compared without being counted).

use async_trait::async_trait;

use super::{
    claim::{ClaimState, Ridden},
    input::TypedCode,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{channel::Channel, factor::FactorStatus, phone::TokenPhone},
    events::{Change, EventPublisher},
    ports,
    store::{Activation, Codes, FactorReads, SmsEnrolments},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        codes: dyn Codes,
        enrolments: dyn SmsEnrolments,
        events: dyn EventPublisher,
    }
}

pub struct VerifySmsOtp;

#[async_trait]
impl Handler for VerifySmsOtp {
    type Input = TypedCode;
    type Ports<'a> = Ports<'a>;
    /// A right code's record rides, with its answer, in the activation's transaction; any
    /// other answer is kept by one conditional put after it (`claim`).
    const CLAIM_RIDES: bool = true;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        typed: TypedCode,
    ) -> Result<Reply, ApiError> {
        Self::handle_riding(ports, cx, caller, typed).await.result
    }

    async fn handle_riding(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        typed: TypedCode,
    ) -> Ridden {
        let mut claim = ClaimState::Unwritten;
        let result = verify(ports, cx, caller, typed, &mut claim).await;
        Ridden { result, claim }
    }
}

/// Counts, compares, activates; `claim` says what became of the riding claim (written with
/// the answer in the activation, or refused for a live record).
async fn verify(
    ports: Ports<'_>,
    cx: &Context,
    caller: &Caller,
    typed: TypedCode,
    claim: &mut ClaimState,
) -> Result<Reply, ApiError> {
    {
        // A challenge belongs to the phone it was sent to: no phone, no challenge.
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        };
        let attempt_id = &typed.attempt;
        let outcome = ports
            .codes
            .count_sms_attempt(&caller.user, &phone.hash, attempt_id, caller.now)
            .await?;
        let attempt = match super::counted(outcome)? {
            // Counted before the reference is claimed, and it stays counted if the reference
            // turns out to hold another body: the code was compared.
            Some(attempt) => attempt,
            None => {
                let factor = ports.factors.get_factor(&caller.user, Channel::Sms).await?;
                let registered = factor.as_ref().is_some_and(|f| {
                    f.status == FactorStatus::Active
                        && f.phone_hash.as_deref() == Some(phone.hash.as_str())
                });
                if registered
                    && factor
                        .as_ref()
                        .is_some_and(|f| f.is_verified_by(attempt_id.as_str()))
                {
                    // This same request (same idempotency-ref and body) verified it already,
                    // on this phone; the answer was lost before it could be kept. Its first
                    // try announced the factor: not again.
                    tracing::info!(to = %phone.number, "SMS factor verified by this request's first try");
                    return Ok(Reply::no_content());
                }
                return Err(ApiError::Conflict(if registered {
                    ErrorCode::ChannelAlreadyRegistered
                } else {
                    ErrorCode::StateInvalid
                }));
            }
        };
        if super::code_is_right(
            cx,
            caller,
            &attempt.challenge_id,
            &typed.code,
            &attempt.code_hash,
        ) {
            let answer = Reply::no_content();
            match ports
                .enrolments
                .activate_sms_factor_claiming(
                    &caller.user,
                    &attempt.challenge_id,
                    &phone.hash,
                    attempt_id,
                    caller.claim_with_answer(&answer).as_ref(),
                    caller.now,
                )
                .await?
            {
                Activation::Activated => {
                    if caller.claim.is_some() {
                        *claim = ClaimState::Final;
                    }
                    tracing::info!(to = %phone.number, attempts = attempt.attempts, "SMS factor verified");
                    super::announce(
                        ports.events,
                        &caller.user,
                        Channel::Sms,
                        Change::Active,
                        caller.now,
                    )
                    .await;
                    return Ok(answer);
                }
                Activation::Unclaimed(outcome) => {
                    *claim = ClaimState::Refused;
                    return caller.claim_refused(outcome);
                }
                // Consumed or replaced by a concurrent request between the count and now.
                Activation::Refused => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
            }
        }
        tracing::info!(
            attempts = attempt.attempts,
            limit = attempt.limit,
            "wrong verification code"
        );
        Err(ApiError::Conflict(super::wrong_code_answer(
            cx,
            caller,
            attempt.attempts,
            attempt.limit,
        )))
    }
}
