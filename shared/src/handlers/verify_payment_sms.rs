//! `POST /challenges/{scaChallengeId}/otp/SMS/verify`: the code approves the payment and
//! yields its proof, 200 `{"proof": "<compact JWS>"}`.
//!
//! The attempt is counted before the code is compared (as in enrolment). A right code's
//! proof is signed *first*, then stored with the challenge's `VERIFIED` status and the code's
//! consumption in one transaction: no challenge is consumed without its proof being returned
//! (or, after a lost answer, recoverable by `GET` and by the same request retried), and one
//! challenge never has two proofs. Signing failures (KMS) are 503s that consume nothing.

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::PaymentCode,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{
        challenge::{wrong_code, WrongCode},
        channel::Channel,
        payment::PaymentChallenge,
        phone::TokenPhone,
        step_up::ChallengeStatus,
    },
    events::EventPublisher,
    ports,
    proof::{proof_claims, sign_proof, ProofKeys},
    store::{ChallengeSlot, Codes, CountedAttempt, PaymentOutcome, PaymentProof, Payments},
};

ports! {
    pub struct Ports {
        payments: dyn Payments,
        codes: dyn Codes,
        // A live programme's proofs by the live key, a sandbox's by the sandbox key.
        signer: ProofKeys,
        events: dyn EventPublisher,
    }
}

pub struct VerifyPaymentSms;

#[async_trait]
impl Handler for VerifyPaymentSms {
    type Input = PaymentCode;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        PaymentCode { id, typed }: PaymentCode,
    ) -> Result<Reply, ApiError> {
        let Some(challenge) = ports.payments.get_payment(&caller.user, &id).await? else {
            return Err(ApiError::NotFound);
        };
        let attempt_id = &typed.attempt;
        match challenge.status_at(caller.now) {
            ChallengeStatus::Verified => {
                // This same request (same reference and body) verified it; its answer was
                // lost.
                if let (Some(proof), Some(by)) = (&challenge.proof, &challenge.verified_by) {
                    if by == attempt_id.as_str() {
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
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        };
        let slot = ChallengeSlot::Payment(id.clone());
        let outcome = ports
            .codes
            .count_attempt(&caller.user, &slot, &phone.hash, attempt_id, caller.now)
            .await?;
        let Some(attempt) = super::counted(outcome)? else {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        };
        if super::code_is_right(
            cx,
            caller,
            &attempt.challenge_id,
            &typed.code,
            &attempt.code_hash,
        ) {
            let sandbox = caller.programme.sandbox;
            let claims = proof_claims(
                &cx.proof_issuer,
                &caller.user,
                &challenge,
                None,
                sandbox,
                caller.now,
            );
            let proof = sign_proof(ports.signer.for_programme(sandbox), &claims)
                .await
                .map_err(|e| ApiError::Unavailable(e.into()))?;
            let outcome = PaymentOutcome {
                verified: Some(PaymentProof {
                    proof: proof.clone(),
                    verified_by: attempt_id.as_str().to_owned(),
                }),
                consume_code: Some((
                    ChallengeSlot::Payment(id.clone()),
                    attempt.challenge_id.clone(),
                )),
                require_factor: None,
            };
            if ports
                .payments
                .finish_payment(&caller.user, &id, &outcome, caller.now)
                .await?
            {
                tracing::info!(challenge = %id, attempts = attempt.attempts, "payment approved by SMS");
                super::announce_payment(
                    ports.events,
                    &caller.user,
                    &challenge,
                    ChallengeStatus::Verified,
                    caller.now,
                )
                .await;
                return Ok(Reply::json(200, &json!({ "proof": proof })));
            }
            // Finished meanwhile: by this same attempt (its answer lost), or by another.
            let stored = ports.payments.get_payment(&caller.user, &id).await?;
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
        Err(ApiError::Conflict(
            wrong_code_spent(&ports, cx, caller, &challenge, &attempt).await?,
        ))
    }

    async fn mismatched(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        PaymentCode { id, typed }: PaymentCode,
    ) -> Result<(), ApiError> {
        let Some(challenge) = ports.payments.get_payment(&caller.user, &id).await? else {
            return Ok(());
        };
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Ok(());
        };
        if challenge.channel != Channel::Sms
            || challenge.status_at(caller.now) != ChallengeStatus::Pending
        {
            return Ok(());
        }
        let slot = ChallengeSlot::Payment(id);
        let outcome = ports
            .codes
            .count_attempt(&caller.user, &slot, &phone.hash, &typed.attempt, caller.now)
            .await?;
        if let Ok(Some(attempt)) = super::counted(outcome) {
            tracing::info!(
                attempts = attempt.attempts,
                limit = attempt.limit,
                "payment attempt used by a reused idempotency-ref"
            );
            wrong_code_spent(&ports, cx, caller, &challenge, &attempt).await?;
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
    challenge: &PaymentChallenge,
    attempt: &CountedAttempt,
) -> Result<ErrorCode, ApiError> {
    if wrong_code(attempt.attempts, attempt.limit) == WrongCode::LimitExceeded {
        let declined = PaymentOutcome {
            verified: None,
            consume_code: None,
            require_factor: None,
        };
        if ports
            .payments
            .finish_payment(&caller.user, &challenge.id, &declined, caller.now)
            .await?
        {
            super::announce_payment(
                ports.events,
                &caller.user,
                challenge,
                ChallengeStatus::Declined,
                caller.now,
            )
            .await;
        }
    }
    Ok(super::wrong_code_answer(
        cx,
        caller,
        attempt.attempts,
        attempt.limit,
    ))
}
