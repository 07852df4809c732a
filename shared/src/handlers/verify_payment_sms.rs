//! `POST /challenges/{scaChallengeId}/otp/SMS/verify`: the code approves the payment and
//! yields its proof, 200 `{"proof": "<compact JWS>"}`.
//!
//! The attempt is counted before the code is compared (as in enrolment). A right code's
//! proof is signed *first*, then stored with the challenge's `VERIFIED` status and the code's
//! consumption in one transaction: no challenge is consumed without its proof being returned
//! (or, after a lost answer, recoverable by `GET` and by the same request retried), and one
//! challenge never has two proofs. Signing failures (KMS) are 503s that consume nothing.

use serde_json::json;

use crate::{
    app::App,
    auth::PhoneClaim,
    domain::{
        challenge::{wrong_code, WrongCode},
        channel::Channel,
        otp::VerificationCode,
        random::random_id,
        step_up::ChallengeStatus,
    },
    handlers::reply::{ApiError, ErrorCode, Reply},
    handlers::Caller,
    proof::{proof_claims, sign_proof},
    store::{AttemptOutcome, ChallengeSlot, PaymentOutcome, PaymentProof},
};

pub async fn verify_payment_sms(
    app: &App,
    caller: &Caller,
    id: &str,
    code: &VerificationCode,
    attempt_id: Option<String>,
) -> Result<Reply, ApiError> {
    let Some(challenge) = app.store.get_payment(&caller.user, id).await? else {
        return Err(ApiError::NotFound);
    };
    let attempt_id = match attempt_id {
        Some(id) => id,
        None => random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?,
    };
    match challenge.status_at(caller.now) {
        ChallengeStatus::Verified => {
            // This same request (same reference and body) verified it; its answer was lost.
            if let (Some(proof), Some(by)) = (&challenge.proof, &challenge.verified_by) {
                if *by == attempt_id {
                    return Ok(Reply::json(200, &json!({ "proof": proof })));
                }
            }
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        ChallengeStatus::Declined => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        ChallengeStatus::Expired => {
            return Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired))
        }
        ChallengeStatus::Pending => {}
    }
    if challenge.channel != Channel::Sms {
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    }
    let PhoneClaim::Valid(phone) = &caller.phone else {
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    };
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    let slot = ChallengeSlot::Payment(id.to_owned());
    let attempt = match app
        .store
        .count_attempt(&caller.user, &slot, &phone_hash, &attempt_id, caller.now)
        .await?
    {
        AttemptOutcome::Counted(attempt) => attempt,
        AttemptOutcome::Dead | AttemptOutcome::NoChallenge => {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid))
        }
        AttemptOutcome::Expired => {
            return Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired))
        }
    };
    if super::code_is_right(app, caller, &attempt.challenge_id, code, &attempt.code_hash) {
        let claims = proof_claims(&app.proof_issuer, &caller.user, &challenge, caller.now);
        let proof = sign_proof(app.signer.as_ref(), &claims)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        let outcome = PaymentOutcome {
            verified: Some(PaymentProof {
                proof: proof.clone(),
                verified_by: attempt_id.clone(),
            }),
            consume_code: Some(attempt.challenge_id.clone()),
            require_authy: false,
        };
        if app
            .store
            .finish_payment(&caller.user, id, &outcome, caller.now)
            .await?
        {
            tracing::info!(challenge = %id, attempts = attempt.attempts, "payment approved by SMS");
            app.announce_payment(&caller.user, &challenge, ChallengeStatus::Verified)
                .await;
            return Ok(Reply::json(200, &json!({ "proof": proof })));
        }
        // Finished meanwhile: by this same attempt (its answer lost), or by another.
        let stored = app.store.get_payment(&caller.user, id).await?;
        return match stored {
            Some(stored) if stored.verified_by.as_deref() == Some(attempt_id.as_str()) => Ok(
                Reply::json(200, &json!({ "proof": stored.proof.unwrap_or_default() })),
            ),
            _ => Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        };
    }
    tracing::info!(
        attempts = attempt.attempts,
        limit = attempt.limit,
        "wrong payment code"
    );
    if wrong_code(attempt.attempts, attempt.limit) == WrongCode::LimitExceeded {
        let declined = PaymentOutcome {
            verified: None,
            consume_code: None,
            require_authy: false,
        };
        if app
            .store
            .finish_payment(&caller.user, id, &declined, caller.now)
            .await?
        {
            app.announce_payment(&caller.user, &challenge, ChallengeStatus::Declined)
                .await;
        }
    }
    Err(ApiError::Conflict(super::wrong_code_answer(
        app,
        caller,
        attempt.attempts,
        attempt.limit,
    )))
}
