//! `POST /authentication_factors/otp/SMS/verify`: step two — check the code the user typed.
//!
//! The attempt is counted (atomically, only while the challenge is live and was sent to the
//! token's phone) *before* the code is compared: see `domain::challenge`. A right code then
//! consumes the challenge and activates the factor in one conditional write, so it works once.

use crate::{
    app::App,
    auth::PhoneClaim,
    domain::{
        channel::Channel, factor::FactorStatus, otp::VerificationCode, phone::PhoneNumber,
        random::random_id,
    },
    events::Change,
    handlers::reply::{ApiError, ErrorCode, Reply},
    handlers::Caller,
    store::AttemptOutcome,
};

pub async fn verify_sms_otp(
    app: &App,
    caller: &Caller,
    code: &VerificationCode,
    attempt_id: Option<String>,
) -> Result<Reply, ApiError> {
    // A challenge belongs to the phone it was sent to: no phone, no challenge.
    let PhoneClaim::Valid(phone) = &caller.phone else {
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    };
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    // Without an idempotency-ref every request is a new attempt.
    let attempt_id = match attempt_id {
        Some(id) => id,
        None => random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?,
    };
    let attempt = match app
        .store
        .count_sms_attempt(&caller.user, &phone_hash, &attempt_id, caller.now)
        .await?
    {
        AttemptOutcome::Counted(attempt) => attempt,
        AttemptOutcome::Dead => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        AttemptOutcome::Expired => {
            return Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired))
        }
        AttemptOutcome::NoChallenge => {
            let factor = app.store.get_factor(&caller.user, Channel::Sms).await?;
            let registered = factor.as_ref().is_some_and(|f| {
                f.status == FactorStatus::Active
                    && f.phone_hash.as_deref() == Some(phone_hash.as_str())
            });
            if registered
                && factor
                    .as_ref()
                    .is_some_and(|f| f.is_verified_by(&attempt_id))
            {
                // This same request (same idempotency-ref and body) verified it already, on
                // this phone; the answer was lost before it could be kept. Its first try
                // announced the factor: not again.
                tracing::info!(to = %phone, "SMS factor verified by this request's first try");
                return Ok(Reply::no_content());
            }
            return Err(ApiError::Conflict(if registered {
                ErrorCode::ChannelAlreadyRegistered
            } else {
                ErrorCode::StateInvalid
            }));
        }
    };
    if super::code_is_right(app, caller, &attempt.challenge_id, code, &attempt.code_hash) {
        if app
            .store
            .activate_sms_factor(
                &caller.user,
                &attempt.challenge_id,
                &phone_hash,
                &attempt_id,
                caller.now,
            )
            .await?
        {
            return verified(app, caller, phone, attempt.attempts).await;
        }
        // Consumed or replaced by a concurrent request between the count and now.
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    }
    tracing::info!(
        attempts = attempt.attempts,
        limit = attempt.limit,
        "wrong verification code"
    );
    Err(ApiError::Conflict(super::wrong_code_answer(
        app,
        caller,
        attempt.attempts,
        attempt.limit,
    )))
}

/// The factor is `ACTIVE`: logged and announced.
async fn verified(
    app: &App,
    caller: &Caller,
    phone: &PhoneNumber,
    attempts: u32,
) -> Result<Reply, ApiError> {
    tracing::info!(to = %phone, attempts, "SMS factor verified");
    app.announce(&caller.user, Channel::Sms, Change::Active)
        .await;
    Ok(Reply::no_content())
}
