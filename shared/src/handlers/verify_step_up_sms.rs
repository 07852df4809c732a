//! `POST /stepup/challenges/otp/SMS/verify`: the code the user typed steps the session up.
//!
//! As in enrolment, the attempt is counted (atomically, only while the session's challenge
//! is live and was sent to the token's phone) *before* the code is compared; a right code
//! then consumes the challenge and grants the step-up in one transaction, so it works once.
//! The grant lasts until the earlier of the token's `exp` and `stepUpLifetimeSeconds`.

use crate::{
    app::App,
    auth::PhoneClaim,
    domain::{
        challenge::{wrong_code, WrongCode},
        channel::Channel,
        otp::VerificationCode,
        random::random_id,
        step_up::{stepped_up_until, ChallengeStatus},
    },
    handlers::reply::{ApiError, ErrorCode, Reply},
    handlers::Caller,
    store::{AttemptOutcome, ChallengeSlot, StepUpGrant},
};

pub async fn verify_step_up_sms(
    app: &App,
    caller: &Caller,
    code: &VerificationCode,
    attempt_id: Option<String>,
) -> Result<Reply, ApiError> {
    let PhoneClaim::Valid(phone) = &caller.phone else {
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    };
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    let attempt_id = match attempt_id {
        Some(id) => id,
        None => random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?,
    };
    let slot = ChallengeSlot::StepUp(caller.session.clone());
    let attempt = match app
        .store
        .count_attempt(&caller.user, &slot, &phone_hash, &attempt_id, caller.now)
        .await?
    {
        AttemptOutcome::Counted(attempt) => attempt,
        AttemptOutcome::Dead => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        AttemptOutcome::Expired => {
            return Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired))
        }
        AttemptOutcome::NoChallenge => {
            // This same request (same reference and body) may have stepped the session up
            // already, its answer lost: it finds its own grant.
            let grant = app
                .store
                .step_up_grant(&caller.user, &caller.session)
                .await?;
            if grant.is_some_and(|g| g.verified_by == attempt_id && g.until > caller.now) {
                tracing::info!("step-up verified by this request's first try");
                return Ok(Reply::no_content());
            }
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
    };
    if super::code_is_right(app, caller, &attempt.challenge_id, code, &attempt.code_hash) {
        let grant = StepUpGrant {
            until: stepped_up_until(
                caller.now,
                caller.programme.step_up_lifetime_seconds,
                caller.token_exp,
            ),
            challenge_id: attempt.challenge_id.clone(),
            verified_by: attempt_id,
        };
        if !app
            .store
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
        app.announce_step_up(
            &caller.user,
            &attempt.challenge_id,
            Channel::Sms,
            ChallengeStatus::Verified,
        )
        .await;
        return Ok(Reply::no_content());
    }
    tracing::info!(
        attempts = attempt.attempts,
        limit = attempt.limit,
        "wrong step-up code"
    );
    if wrong_code(attempt.attempts, attempt.limit) == WrongCode::LimitExceeded {
        // The ladder killed the challenge: it ends DECLINED.
        app.announce_step_up(
            &caller.user,
            &attempt.challenge_id,
            Channel::Sms,
            ChallengeStatus::Declined,
        )
        .await;
    }
    Err(ApiError::Conflict(super::wrong_code_answer(
        app,
        caller,
        attempt.attempts,
        attempt.limit,
    )))
}
