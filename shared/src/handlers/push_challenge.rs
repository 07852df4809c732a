//! Pushing a challenge to the user's device: the push factor it goes to (Authy, or a
//! BIOMETRIC device of the programme's own app), the push-bombing guard (push requests per
//! hour), the push itself and its refund on failure, and what a BIOMETRIC device will sign.

use serde_json::{json, Map, Value};

use super::{
    device_enrolment::nonce,
    new_id,
    reply::{ApiError, ErrorCode},
    Caller,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        device::{signing_input, Device, DevicePurpose},
        ids::{ChallengeId, PhoneHash},
        send_limits::LimitCounter,
        step_up::PUSH_CHALLENGE_TTL_SECS,
    },
    metrics::Metric,
    push::{
        device::{token_tail, Delivery, DeviceMessage, DevicePush},
        Approval, PushProvider,
    },
    store::{Counters, FactorReads, NewChallenge},
};

/// A push sent to the user's device.
pub(super) fn count_push(cx: &Context, caller: &Caller) {
    cx.metrics.count(
        Metric::PushRequests,
        &[("programme", &caller.programme.id)],
        caller.now,
    );
}

/// The `ACTIVE` push factor a challenge goes to.
pub(super) enum PushFactor {
    /// Authy: its provider id (none in a sandbox, which calls no provider).
    Authy(Option<String>),
    /// The programme's own app on a device: its key and its SNS endpoint.
    Device(Device),
}

/// The user's `ACTIVE` factor on a push `channel`: 409 `CHANNEL_NOT_SUPPORTED` when the
/// programme has not the channel, `CHANNEL_NOT_REGISTERED` when the factor is not `ACTIVE`.
pub(super) async fn active_push_factor(
    factors: &dyn FactorReads,
    caller: &Caller,
    channel: Channel,
) -> Result<PushFactor, ApiError> {
    use crate::domain::factor::FactorStatus;
    let programme = &caller.programme;
    if !programme.channel_enabled(channel) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let factor = factors.get_factor(&caller.user, channel).await?;
    let Some(factor) = factor.filter(|f| f.listed_status(&caller.phone) == FactorStatus::Active)
    else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    match (
        channel,
        factor.device,
        factor.provider_ref,
        programme.sandbox,
    ) {
        (Channel::Biometric, Some(device), _, _) => Ok(PushFactor::Device(device)),
        (Channel::Authy, _, _, true) => Ok(PushFactor::Authy(None)),
        (Channel::Authy, _, Some(id), false) => Ok(PushFactor::Authy(Some(id))),
        _ => Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered)),
    }
}

/// Consumes the user's push request for this hour (the per-number limit is enrolment's): 409
/// `CHALLENGE_LIMIT_EXCEEDED` when none is left, a guard against push-bombing. Returns the
/// counter taken, to give back if the push then fails.
pub(super) async fn take_hourly_push(
    counters: &dyn Counters,
    caller: &Caller,
) -> Result<Vec<LimitCounter>, ApiError> {
    use crate::domain::send_limits::{push_counters, Sender};
    let programme = &caller.programme;
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
    Ok(hourly)
}

/// What a push reaches: the push-request counters, Authy, the devices' SNS endpoints.
pub(super) struct Pushers<'a> {
    pub(super) counters: &'a dyn Counters,
    pub(super) push: &'a dyn PushProvider,
    pub(super) device_push: &'a dyn DevicePush,
}

/// Pushes a challenge (`approval`: what Authy shows; its message is a BIOMETRIC
/// notification's line): consumes the user's push request for this hour (409
/// `CHALLENGE_LIMIT_EXCEEDED` when none is left: a guard against push-bombing), then asks
/// Authy, or publishes to the device's SNS endpoint (a sandbox calls neither, and gets a
/// random request id). If the push fails, the request is given back and the caller gets a
/// 503. An endpoint SNS reports disabled still counts as pushed: the app finds the
/// challenge by listing. Returns the provider's request id (a BIOMETRIC push: the
/// challenge's id).
pub(super) async fn push_approval(
    Pushers {
        counters,
        push,
        device_push,
    }: Pushers<'_>,
    cx: &Context,
    caller: &Caller,
    factor: &PushFactor,
    challenge_id: &ChallengeId,
    approval: Approval,
) -> Result<String, ApiError> {
    let programme = &caller.programme;
    let hourly = take_hourly_push(counters, caller).await?;
    let pushed = match factor {
        PushFactor::Authy(None) => return new_id(cx),
        PushFactor::Authy(Some(provider_ref)) => {
            push.request_approval(provider_ref, &approval).await
        }
        PushFactor::Device(device) => {
            let endpoint = device
                .endpoint
                .as_deref()
                .filter(|e| !programme.sandbox && !e.starts_with("sandbox:"));
            let Some(endpoint) = endpoint else {
                // A sandbox device is answered by listing (or the simulators): no SNS.
                return Ok(challenge_id.as_str().to_owned());
            };
            let message = DeviceMessage {
                challenge_id: challenge_id.as_str().to_owned(),
                // The line Authy's request shows: never a code or an account in full.
                body: approval.message,
            };
            device_push
                .publish(endpoint, device.platform, &message)
                .await
                .map(|delivery| {
                    if delivery == Delivery::EndpointDisabled {
                        tracing::warn!(
                            token = %token_tail(&device.push_token),
                            "the device's endpoint is disabled: the challenge waits for a list"
                        );
                    }
                    challenge_id.as_str().to_owned()
                })
        }
    };
    match pushed {
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

/// What a BIOMETRIC challenge waits for: its signing input (`type`, `id`, `programmeId`, the
/// fields of what is approved, then `v`, `nonce` and `expiresAt`), stored as a code counted
/// on the wrong-code ladder and only for this device's key. `None` for Authy.
pub(super) fn device_answer(
    cx: &Context,
    caller: &Caller,
    factor: &PushFactor,
    challenge_id: &ChallengeId,
    purpose: DevicePurpose,
    approved: Map<String, Value>,
) -> Result<Option<NewChallenge>, ApiError> {
    let PushFactor::Device(device) = factor else {
        return Ok(None);
    };
    let mut fields = Map::new();
    fields.insert("type".into(), json!(purpose.input_type()));
    fields.insert("id".into(), json!(challenge_id.as_str()));
    fields.insert("programmeId".into(), json!(caller.programme.id));
    fields.extend(approved);
    let expires_at = caller.now + PUSH_CHALLENGE_TTL_SECS;
    Ok(Some(NewChallenge {
        challenge_id: challenge_id.clone(),
        code_hash: signing_input(fields, &nonce(cx)?, expires_at),
        phone_hash: PhoneHash::from(device.key.thumbprint().as_str()),
        wrong_code_limit: caller.programme.wrong_code_limit,
        expires_at,
    }))
}
