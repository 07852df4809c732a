//! `PUT /authentication_factors/push/BIOMETRIC`: the app's push token changed (a reinstall, a
//! restored backup, the platform rotated it); the device proves it is the one enrolled by
//! signing `push-token.<pushToken>.<signedAt>` with its key, `signedAt` within 5 minutes of
//! now. The SNS endpoint's token is replaced (and the endpoint enabled again).

use async_trait::async_trait;

use super::{
    device_input::DevicePushToken,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{channel::Channel, device::SIGNING_INPUT_TTL_SECS, factor::FactorStatus},
    ports,
    push::device::{token_tail, DevicePush},
    store::{Devices, FactorReads},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        devices: dyn Devices,
        device_push: dyn DevicePush,
    }
}

pub struct UpdateDevicePush;

#[async_trait]
impl Handler for UpdateDevicePush {
    type Input = DevicePushToken;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        update: DevicePushToken,
    ) -> Result<Reply, ApiError> {
        let Some(device) = ports
            .factors
            .get_factor(&caller.user, Channel::Biometric)
            .await?
            .filter(|f| f.status == FactorStatus::Active)
            .and_then(|f| f.device)
        else {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
        };
        let fresh = (caller.now - update.signed_at).abs() <= SIGNING_INPUT_TTL_SECS;
        let message = format!("push-token.{}.{}", update.push_token, update.signed_at);
        if !fresh || !device.key.verifies(message.as_bytes(), &update.signature) {
            tracing::info!(
                fresh,
                "push token update refused: stale or not signed by the device"
            );
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        let current = device.endpoint.clone().unwrap_or_default();
        let endpoint = if caller.programme.sandbox || current.starts_with("sandbox:") {
            current
        } else {
            ports
                .device_push
                .set_token(&current, device.platform, &update.push_token)
                .await
                .map_err(|e| ApiError::Unavailable(e.into()))?
        };
        if !ports
            .devices
            .update_device_push(&caller.user, &update.push_token, &endpoint, caller.now)
            .await?
        {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
        }
        tracing::info!(token = %token_tail(&update.push_token), "device push token replaced");
        Ok(Reply::no_content())
    }
}
