//! `POST /authentication_factors/push/BIOMETRIC/challenges/{id}`: the BIOMETRIC device answers
//! a step-up or payment challenge — `APPROVE` or `DECLINE`, signed by its key over the
//! challenge's signing input and the decision. 204: the challenge is `VERIFIED` (a step-up
//! steps up the session that *started* it; a payment gets its proof, with the device's key
//! and signature in it) or `DECLINED`.
//!
//! The attempt is counted before the signature is checked, on the wrong-code ladder
//! (`VERIFICATION_CODE_INVALID`, `ONE_CHALLENGE_LIMIT_REMAINING`, `CHALLENGE_LIMIT_EXCEEDED`,
//! and then the challenge is `DECLINED`); a `DECLINE` needs a valid signature too: nobody but
//! the device ends a challenge. Unknown id, another user's, or not a BIOMETRIC challenge:
//! 404; not pending: 409 `STATE_INVALID`; past its time: 409 `VERIFICATION_CODE_EXPIRED`.

use async_trait::async_trait;

use super::{
    device_signed_input::DeviceAnswer,
    reply::{ApiError, ErrorCode, Reply},
    settle_payment, settle_step_up, Caller, Handler, PaymentSettlement, PushAnswer,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        device::{Decision, Device, DevicePurpose},
        factor::FactorStatus,
        ids::{ChallengeId, PhoneHash},
        step_up::ChallengeStatus,
    },
    events::EventPublisher,
    ports,
    proof::{DeviceApproval, ProofKeys},
    store::{ChallengeSlot, Codes, FactorReads, Payments, StepUps},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        codes: dyn Codes,
        step_ups: dyn StepUps,
        payments: dyn Payments,
        signer: ProofKeys,
        events: dyn EventPublisher,
    }
}

pub struct AnswerDeviceChallenge;

/// The device of the user's `ACTIVE` BIOMETRIC factor.
async fn active_device(
    factors: &dyn FactorReads,
    caller: &Caller,
) -> Result<Option<Device>, ApiError> {
    Ok(factors
        .get_factor(&caller.user, Channel::Biometric)
        .await?
        .filter(|f| f.status == FactorStatus::Active)
        .and_then(|f| f.device))
}

/// Why a challenge has nothing for this device to answer: 404 when the user has no
/// BIOMETRIC challenge of that id, else what its status says.
async fn unanswerable(ports: &Ports<'_>, caller: &Caller, id: &ChallengeId) -> ApiError {
    let seen = match ports.step_ups.get_push_challenge(&caller.user, id).await {
        Ok(Some(c)) if c.channel == Channel::Biometric => Some((c.status, c.expires_at)),
        Ok(_) => match ports.payments.get_payment(&caller.user, id).await {
            Ok(Some(c)) if c.channel == Channel::Biometric => Some((c.status, c.expires_at)),
            Ok(_) => None,
            Err(error) => return error.into(),
        },
        Err(error) => return error.into(),
    };
    match seen {
        None => ApiError::NotFound,
        Some((ChallengeStatus::Pending, expires_at)) if caller.now >= expires_at => {
            ApiError::Conflict(ErrorCode::VerificationCodeExpired)
        }
        Some(_) => ApiError::Conflict(ErrorCode::StateInvalid),
    }
}

/// Counts one attempt of this device on the challenge's answer.
async fn count(
    ports: &Ports<'_>,
    caller: &Caller,
    device: &Device,
    answer: &DeviceAnswer,
) -> Result<crate::store::AttemptOutcome, ApiError> {
    Ok(ports
        .codes
        .count_attempt(
            &caller.user,
            &ChallengeSlot::DeviceAnswer(answer.id.clone()),
            &PhoneHash::from(device.key.thumbprint().as_str()),
            &answer.attempt,
            caller.now,
        )
        .await?)
}

/// Settles the challenge as the device said (or, at the ladder's end, `DECLINED`); `false`
/// when it was settled, expired or unlinked meanwhile.
async fn settle(
    ports: &Ports<'_>,
    cx: &Context,
    caller: &Caller,
    id: &ChallengeId,
    purpose: DevicePurpose,
    answer: PushAnswer,
) -> Result<bool, ApiError> {
    let user = &caller.user;
    match purpose {
        DevicePurpose::StepUp => {
            let Some(challenge) = ports.step_ups.get_push_challenge(user, id).await? else {
                return Ok(false);
            };
            let approved = matches!(answer, PushAnswer::ByDevice(..));
            settle_step_up(
                ports.step_ups,
                ports.events,
                user,
                &challenge,
                approved,
                caller.now,
            )
            .await
        }
        DevicePurpose::Payment => {
            let Some(challenge) = ports.payments.get_payment(user, id).await? else {
                return Ok(false);
            };
            let sandbox = caller.programme.sandbox;
            let settlement = PaymentSettlement {
                payments: ports.payments,
                signer: ports.signer.for_programme(sandbox),
                sandbox,
                events: ports.events,
            };
            settle_payment(settlement, cx, user, &challenge, answer, caller.now).await
        }
    }
}

#[async_trait]
impl Handler for AnswerDeviceChallenge {
    type Input = DeviceAnswer;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        answer: DeviceAnswer,
    ) -> Result<Reply, ApiError> {
        let Some(device) = active_device(ports.factors, caller).await? else {
            return Err(unanswerable(&ports, caller, &answer.id).await);
        };
        let outcome = count(&ports, caller, &device, &answer).await?;
        let Some(attempt) = super::counted(outcome)? else {
            return Err(unanswerable(&ports, caller, &answer.id).await);
        };
        // The stored signing input, exactly as the device received it.
        let signing_input = attempt.code_hash;
        let purpose = DevicePurpose::of_signing_input(&signing_input)
            .ok_or_else(|| ApiError::Internal("a stored signing input without its type".into()))?;
        let message = answer.decision.message(&signing_input);
        let right = super::signature_is_right(cx, caller, &device.key, &message, &answer.signature);
        if !right {
            tracing::info!(
                attempts = attempt.attempts,
                limit = attempt.limit,
                "wrong device signature on a challenge"
            );
            let refused = super::wrong_code_answer(cx, caller, attempt.attempts, attempt.limit);
            if attempt.attempts >= attempt.limit {
                // The ladder's end: the challenge is declined, as a device's DECLINE would.
                settle(
                    &ports,
                    cx,
                    caller,
                    &answer.id,
                    purpose,
                    PushAnswer::Said(false),
                )
                .await?;
            }
            return Err(ApiError::Conflict(refused));
        }
        let said = match answer.decision {
            Decision::Approve => PushAnswer::ByDevice(
                DeviceApproval {
                    key: device.key.clone(),
                    signing_input,
                    signature: answer.signature.clone(),
                },
                answer.attempt.as_str().to_owned(),
            ),
            _ => PushAnswer::Said(false),
        };
        if !settle(&ports, cx, caller, &answer.id, purpose, said).await? {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        tracing::info!(
            challenge = %answer.id,
            decision = answer.decision.as_str(),
            purpose = purpose.as_str(),
            "device answered a challenge"
        );
        Ok(Reply::no_content())
    }

    async fn mismatched(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        answer: DeviceAnswer,
    ) -> Result<(), ApiError> {
        // A reused reference with another body still uses an attempt (never checked); the
        // ladder's last one declines the challenge.
        let Some(device) = active_device(ports.factors, caller).await? else {
            return Ok(());
        };
        if let crate::store::AttemptOutcome::Counted(attempt) =
            count(&ports, caller, &device, &answer).await?
        {
            if attempt.attempts >= attempt.limit {
                if let Some(purpose) = DevicePurpose::of_signing_input(&attempt.code_hash) {
                    settle(
                        &ports,
                        cx,
                        caller,
                        &answer.id,
                        purpose,
                        PushAnswer::Said(false),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}
