//! `POST /authentication_factors/push/BIOMETRIC/verify`: step two of a BIOMETRIC enrolment —
//! the device's signature over its signing input and `ENROL` proves it holds the key; the
//! factor becomes `ACTIVE` and the device's SNS platform endpoint is made.
//!
//! The attempt is counted before the signature is checked, with the wrong-code ladder of an
//! SMS code (`VERIFICATION_CODE_INVALID`, `ONE_CHALLENGE_LIMIT_REMAINING`,
//! `CHALLENGE_LIMIT_EXCEEDED`, then `STATE_INVALID`); past `expiresAt`,
//! `VERIFICATION_CODE_EXPIRED`. SNS failing is a 503 that activates nothing.

use async_trait::async_trait;

use super::{
    device_signed_input::SignedByDevice,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        device::{Decision, Device},
        factor::FactorStatus,
        ids::PhoneHash,
    },
    events::{Change, EventPublisher},
    ports,
    push::device::DevicePush,
    store::{ChallengeSlot, Codes, Devices, FactorReads},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        codes: dyn Codes,
        devices: dyn Devices,
        device_push: dyn DevicePush,
        events: dyn EventPublisher,
    }
}

pub struct VerifyBiometric;

/// The pending device of the user's BIOMETRIC factor.
async fn pending_device(factors: &dyn FactorReads, caller: &Caller) -> Result<Device, ApiError> {
    factors
        .get_factor(&caller.user, Channel::Biometric)
        .await?
        .filter(|f| f.status == FactorStatus::PendingVerification)
        .and_then(|f| f.device)
        .ok_or(ApiError::Conflict(ErrorCode::StateInvalid))
}

#[async_trait]
impl Handler for VerifyBiometric {
    type Input = SignedByDevice;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        signed: SignedByDevice,
    ) -> Result<Reply, ApiError> {
        let device = pending_device(ports.factors, caller).await?;
        let thumbprint = device.key.thumbprint();
        let outcome = ports
            .codes
            .count_attempt(
                &caller.user,
                &ChallengeSlot::DeviceEnrolment,
                &PhoneHash::from(thumbprint.as_str()),
                &signed.attempt,
                caller.now,
            )
            .await?;
        let Some(attempt) = super::counted(outcome)? else {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        };
        // The stored signing input, exactly as the device received it.
        let message = Decision::Enrol.message(&attempt.code_hash);
        let right = super::signature_is_right(cx, caller, &device.key, &message, &signed.signature);
        if !right {
            tracing::info!(
                attempts = attempt.attempts,
                limit = attempt.limit,
                "wrong device signature"
            );
            return Err(ApiError::Conflict(super::wrong_code_answer(
                cx,
                caller,
                attempt.attempts,
                attempt.limit,
            )));
        }
        // A sandbox calls no provider: its device is answered by listing (and the simulators).
        let endpoint = if caller.programme.sandbox {
            format!("sandbox:{}", device.platform.as_str())
        } else {
            ports
                .device_push
                .create_endpoint(device.platform, &device.push_token)
                .await
                .map_err(|e| ApiError::Unavailable(e.into()))?
        };
        if !ports
            .devices
            .activate_device(
                &caller.user,
                &attempt.challenge_id,
                &thumbprint,
                &endpoint,
                caller.now,
            )
            .await?
        {
            // Replaced, consumed, or the key registered meanwhile: the endpoint is nobody's.
            if !caller.programme.sandbox {
                if let Err(error) = ports.device_push.delete_endpoint(&endpoint).await {
                    tracing::warn!(error = %crate::logging::redacted_chain(&error), "an unused endpoint could not be deleted");
                }
            }
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        tracing::info!(device = %thumbprint, "BIOMETRIC factor verified");
        super::announce(
            ports.events,
            &caller.user,
            Channel::Biometric,
            Change::Active,
            caller.now,
        )
        .await;
        Ok(Reply::no_content())
    }

    async fn mismatched(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        signed: SignedByDevice,
    ) -> Result<(), ApiError> {
        // A reused reference with another signature still uses an attempt (never checked).
        let Ok(device) = pending_device(ports.factors, caller).await else {
            return Ok(());
        };
        ports
            .codes
            .count_attempt(
                &caller.user,
                &ChallengeSlot::DeviceEnrolment,
                &PhoneHash::from(device.key.thumbprint().as_str()),
                &signed.attempt,
                caller.now,
            )
            .await?;
        Ok(())
    }
}
