//! `DELETE /authentication_factors/push/{AUTHY|BIOMETRIC}`: remove a push factor. Its
//! pending requests die with it: a later callback finds nothing to change.

use async_trait::async_trait;

use super::{
    input::PushChannel,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, StepUp,
};
use crate::{
    app::Context,
    events::{Change, EventPublisher},
    ports,
    push::{device::DevicePush, PushProvider},
    store::{Devices, Unlinking},
};

ports! {
    pub struct Ports {
        unlinking: dyn Unlinking,
        push: dyn PushProvider,
        devices: dyn Devices,
        device_push: dyn DevicePush,
        events: dyn EventPublisher,
    }
}

pub struct UnlinkPush;

#[async_trait]
impl Handler for UnlinkPush {
    type Input = PushChannel;
    type Ports<'a> = Ports<'a>;

    fn step_up(input: &PushChannel) -> StepUp {
        StepUp::IfActive(input.0)
    }

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        PushChannel(channel): PushChannel,
    ) -> Result<Reply, ApiError> {
        let Some(removed) = ports.unlinking.delete_factor(&caller.user, channel).await? else {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
        };
        tracing::info!(channel = channel.as_str(), "push factor unlinked");
        // A BIOMETRIC device: its key may be registered again, its pending challenges die
        // with it, and its SNS endpoint is deleted (a stale endpoint gets no more pushes).
        if let Some(device) = &removed.device {
            if let Err(error) = ports
                .devices
                .remove_device(&caller.user, &device.key.thumbprint())
                .await
            {
                tracing::warn!(error = %crate::logging::redacted_chain(&error), "the device's key registration could not be removed");
            }
            let endpoint = device
                .endpoint
                .as_deref()
                .filter(|e| !e.starts_with("sandbox:"));
            if let Some(endpoint) = endpoint {
                if let Err(error) = ports.device_push.delete_endpoint(endpoint).await {
                    tracing::warn!(error = %crate::logging::redacted_chain(&error), "the device's endpoint could not be deleted");
                }
            }
        }
        // The provider forgets the user too, once no factor in any programme uses it (Authy
        // gives one phone one user id everywhere); the factor is already gone whatever
        // happens.
        if let Some(provider_ref) = removed.provider_ref.filter(|_| !caller.programme.sandbox) {
            match ports
                .unlinking
                .release_provider_user(&provider_ref, &caller.user)
                .await
            {
                Ok(true) => {
                    if let Err(error) = ports.push.forget_user(&provider_ref).await {
                        tracing::warn!(error = %crate::logging::redacted_chain(&error), "the push provider did not forget the user");
                    }
                }
                Ok(false) => {
                    tracing::info!("the push provider's user is still used by another factor")
                }
                Err(error) => {
                    tracing::warn!(error = %crate::logging::redacted_chain(&error), "the push provider's user kept: its references could not be updated");
                }
            }
        }
        super::announce(
            ports.events,
            &caller.user,
            channel,
            Change::Unlinked,
            caller.now,
        )
        .await;
        Ok(Reply::no_content())
    }
}
