//! Step one of a BIOMETRIC enrolment (`POST /authentication_factors/push/BIOMETRIC`): the
//! device's key, push token, platform and name are kept with the factor, pending, and the
//! answer is the signing input the device must sign (`ENROL`) to prove it holds the key.
//!
//! The contract's 409s, in order: the channel disabled or the platform without an SNS
//! platform application (`CHANNEL_NOT_SUPPORTED`), the user's push requests for this hour
//! used (`CHALLENGE_LIMIT_EXCEEDED`: a guard against push-bombing, as for Authy), an `ACTIVE`
//! BIOMETRIC factor (`CHANNEL_ALREADY_REGISTERED`), the key registered to any factor
//! (`STATE_INVALID`). A refused enrolment gives its push request back.

use serde_json::json;

use super::{
    device_input::DeviceEnrolment,
    new_id,
    reply::{ApiError, ErrorCode, Reply},
    Caller,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        device::{signing_input, Device, SIGNING_INPUT_TTL_SECS},
        factor::{FactorRecord, FactorStatus},
        ids::{ChallengeId, PhoneHash},
    },
    push::device::DevicePlatforms,
    store::{Counters, DeviceStart, Devices, NewChallenge},
};

/// What step one reaches (the enrol-push route's ports).
pub(super) struct Reach<'a> {
    pub(super) devices: &'a dyn Devices,
    pub(super) platforms: &'a dyn DevicePlatforms,
    pub(super) counters: &'a dyn Counters,
}

/// A fresh nonce for a signing input: 32 bytes from the CSPRNG.
pub(super) fn nonce(cx: &Context) -> Result<[u8; 32], ApiError> {
    let mut nonce = [0u8; 32];
    cx.random
        .fill(&mut nonce)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(nonce)
}

pub(super) async fn start(
    ports: Reach<'_>,
    cx: &Context,
    caller: &Caller,
    enrolment: DeviceEnrolment,
) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Biometric)
        || !ports.platforms.supports(enrolment.platform)
    {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    // The user's push requests per hour, as for every push.
    let hourly = super::take_hourly_push(ports.counters, caller).await?;
    let challenge_id = ChallengeId::new(new_id(cx)?);
    let expires_at = caller.now + SIGNING_INPUT_TTL_SECS;
    let mut fields = serde_json::Map::new();
    fields.insert("type".into(), json!("enrol"));
    fields.insert("id".into(), json!(challenge_id.as_str()));
    fields.insert("programmeId".into(), json!(programme.id));
    fields.insert("deviceName".into(), json!(enrolment.name));
    fields.insert(
        "message".into(),
        json!(format!(
            "{}: add this device as a security factor",
            programme.display_name()
        )),
    );
    let input = signing_input(fields, &nonce(cx)?, expires_at);
    let thumbprint = enrolment.key.thumbprint();
    let factor = FactorRecord {
        channel: Channel::Biometric,
        status: FactorStatus::PendingVerification,
        phone_hash: None,
        provider_ref: None,
        pending_request: None,
        verified_by: None,
        updated_at: caller.now,
        device: Some(Device {
            key: enrolment.key,
            platform: enrolment.platform,
            push_token: enrolment.push_token,
            name: enrolment.name,
            endpoint: None,
        }),
    };
    // The challenge's "code" is the signing input; its "phone", the device key: it counts
    // only for this device, as an SMS code only for its phone.
    let challenge = NewChallenge {
        challenge_id,
        code_hash: input.clone(),
        phone_hash: PhoneHash::from(thumbprint.as_str()),
        wrong_code_limit: programme.wrong_code_limit,
        expires_at,
    };
    let refused = match ports
        .devices
        .start_device_enrolment(&caller.user, &factor, &challenge, caller.now)
        .await?
    {
        DeviceStart::Started => {
            tracing::info!(device = %thumbprint, "BIOMETRIC enrolment started");
            return Ok(Reply::json(200, &json!({ "signingInput": input })));
        }
        DeviceStart::AlreadyRegistered => ErrorCode::ChannelAlreadyRegistered,
        DeviceStart::KeyTaken => ErrorCode::StateInvalid,
    };
    if let Err(refund) = ports.counters.refund_counters(&hourly).await {
        tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
    }
    Err(ApiError::Conflict(refused))
}
