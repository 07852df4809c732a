//! `POST /stepup/challenges/otp/SMS/verify`: the code the user typed steps the session up.
//!
//! As in enrolment, the attempt is counted (atomically, only while the session's challenge
//! is live and was sent to the token's phone) *before* the code is compared; a right code
//! then consumes the challenge and grants the step-up in one transaction, so it works once.
//! The grant lasts until the earlier of the token's `exp` and `stepUpLifetimeSeconds`.

use async_trait::async_trait;

use super::{
    input::TypedCode,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{
        challenge::{wrong_code, WrongCode},
        channel::Channel,
        phone::TokenPhone,
        step_up::{stepped_up_until, ChallengeStatus},
    },
    events::EventPublisher,
    ports,
    store::{ChallengeSlot, Codes, CountedAttempt, StepUpGrant, StepUps},
};

ports! {
    pub struct Ports {
        codes: dyn Codes,
        step_ups: dyn StepUps,
        events: dyn EventPublisher,
    }
}

pub struct VerifyStepUpSms;

#[async_trait]
impl Handler for VerifyStepUpSms {
    type Input = TypedCode;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        typed: TypedCode,
    ) -> Result<Reply, ApiError> {
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        };
        let attempt_id = &typed.attempt;
        let slot = ChallengeSlot::StepUp(caller.session.clone());
        let outcome = ports
            .codes
            .count_attempt(&caller.user, &slot, &phone.hash, attempt_id, caller.now)
            .await?;
        let attempt = match super::counted(outcome)? {
            Some(attempt) => attempt,
            None => {
                // This same request (same reference and body) may have stepped the session
                // up already, its answer lost: it finds its own grant.
                let grant = ports
                    .step_ups
                    .step_up_grant(&caller.user, &caller.session)
                    .await?;
                if grant
                    .is_some_and(|g| g.verified_by == attempt_id.as_str() && g.until > caller.now)
                {
                    tracing::info!("step-up verified by this request's first try");
                    return Ok(Reply::no_content());
                }
                return Err(ApiError::Conflict(ErrorCode::StateInvalid));
            }
        };
        if super::code_is_right(
            cx,
            caller,
            &attempt.challenge_id,
            &typed.code,
            &attempt.code_hash,
        ) {
            let grant = StepUpGrant {
                until: stepped_up_until(
                    caller.now,
                    caller.programme.step_up_lifetime_seconds,
                    caller.token_exp,
                ),
                challenge_id: attempt.challenge_id.clone(),
                verified_by: attempt_id.as_str().to_owned(),
            };
            if !ports
                .step_ups
                .complete_step_up_sms(&caller.user, &caller.session, &attempt.challenge_id, &grant)
                .await?
            {
                // Consumed or replaced by a concurrent request between the count and now.
                return Err(ApiError::Conflict(ErrorCode::StateInvalid));
            }
            tracing::info!(
                attempts = attempt.attempts,
                until = grant.until,
                "session stepped up by SMS"
            );
            super::announce_step_up(
                ports.events,
                &caller.user,
                &attempt.challenge_id,
                Channel::Sms,
                ChallengeStatus::Verified,
                caller.now,
            )
            .await;
            return Ok(Reply::no_content());
        }
        tracing::info!(
            attempts = attempt.attempts,
            limit = attempt.limit,
            "wrong step-up code"
        );
        Err(ApiError::Conflict(
            wrong_code_spent(&ports, cx, caller, &attempt).await,
        ))
    }

    async fn mismatched(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        typed: TypedCode,
    ) -> Result<(), ApiError> {
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Ok(());
        };
        let slot = ChallengeSlot::StepUp(caller.session.clone());
        let outcome = ports
            .codes
            .count_attempt(&caller.user, &slot, &phone.hash, &typed.attempt, caller.now)
            .await?;
        if let Ok(Some(attempt)) = super::counted(outcome) {
            tracing::info!(
                attempts = attempt.attempts,
                limit = attempt.limit,
                "step-up attempt used by a reused idempotency-ref"
            );
            wrong_code_spent(&ports, cx, caller, &attempt).await;
        }
        Ok(())
    }
}

/// An attempt that did not verify: its rung of the ladder; at the last one the challenge
/// ends `DECLINED`.
async fn wrong_code_spent(
    ports: &Ports<'_>,
    cx: &Context,
    caller: &Caller,
    attempt: &CountedAttempt,
) -> ErrorCode {
    if wrong_code(attempt.attempts, attempt.limit) == WrongCode::LimitExceeded {
        super::announce_step_up(
            ports.events,
            &caller.user,
            &attempt.challenge_id,
            Channel::Sms,
            ChallengeStatus::Declined,
            caller.now,
        )
        .await;
    }
    super::wrong_code_answer(cx, caller, attempt.attempts, attempt.limit)
}
