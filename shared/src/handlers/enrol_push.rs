//! `POST /authentication_factors/push/{channel}`: `AUTHY` registers the user's phone with the
//! push provider and pushes an enrolment approval request to the device; `BIOMETRIC`
//! registers the programme's app's device key and answers the signing input it must sign
//! (`device_enrolment`).
//!
//! The request counters (the user's per hour, the number's per day) are consumed first
//! (atomically with the "not already ACTIVE" check); if the provider fails, they are given
//! back and nothing else was written.

use async_trait::async_trait;

use super::{
    device_input::PushEnrolment,
    enrolment_phone,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, StepUp,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        send_limits::{push_counters, Sender},
    },
    ports,
    push::{device::DevicePlatforms, Approval, PushProvider},
    store::{Counters, Devices, PendingPush, PushEnrolments, ReserveOutcome},
};

/// How long the user has to answer an enrolment request on the device.
const ENROLMENT_REQUEST_LIFETIME_SECS: u32 = 24 * 3_600;

ports! {
    pub struct Ports {
        enrolments: dyn PushEnrolments,
        counters: dyn Counters,
        push: dyn PushProvider,
        devices: dyn Devices,
        device_platforms: dyn DevicePlatforms,
    }
}

pub struct EnrolPush;

#[async_trait]
impl Handler for EnrolPush {
    type Input = PushEnrolment;
    type Ports<'a> = Ports<'a>;

    fn step_up(_: &PushEnrolment) -> StepUp {
        StepUp::IfAnyFactorActive
    }

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        input: PushEnrolment,
    ) -> Result<Reply, ApiError> {
        if let PushEnrolment::Biometric(device) = input {
            let reach = super::device_enrolment::Reach {
                devices: ports.devices,
                platforms: ports.device_platforms,
                counters: ports.counters,
            };
            return super::device_enrolment::start(reach, cx, caller, device).await;
        }
        let phone = enrolment_phone(cx, caller, Channel::Authy)?;
        let programme = &caller.programme;
        let counters = push_counters(
            &programme.send_limits,
            &Sender {
                programme_id: &programme.id,
                credential_id: &caller.user.credential_id,
                sandbox: programme.sandbox,
            },
            phone.hash.as_str(),
            caller.now,
        );
        match ports
            .enrolments
            .reserve_push_enrolment(&caller.user, &counters, caller.now)
            .await?
        {
            ReserveOutcome::Reserved => {}
            ReserveOutcome::AlreadyRegistered => {
                return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered))
            }
            ReserveOutcome::Limited(_) => {
                return Err(ApiError::Conflict(ErrorCode::ChallengeLimitExceeded))
            }
        }
        let pending = if programme.sandbox {
            PendingPush {
                phone_hash: phone.hash.clone(),
                provider_ref: None,
                request_id: super::new_id(cx)?,
            }
        } else {
            let approval = Approval {
                message: format!(
                    "{}: approve adding this device as a security factor.",
                    programme.display_name()
                ),
                action: "Add this device as a security factor".into(),
                seconds_to_expire: ENROLMENT_REQUEST_LIFETIME_SECS,
            };
            let pushed = async {
                let provider_ref = ports.push.register_user(&phone.number).await?;
                let request_id = ports
                    .push
                    .request_approval(&provider_ref, &approval)
                    .await?;
                Ok::<_, crate::push::PushError>((provider_ref, request_id))
            }
            .await;
            match pushed {
                Ok((provider_ref, request_id)) => {
                    super::count_push(cx, caller);
                    PendingPush {
                        phone_hash: phone.hash.clone(),
                        provider_ref: Some(provider_ref),
                        request_id,
                    }
                }
                Err(error) => {
                    if let Err(refund) = ports.counters.refund_counters(&counters).await {
                        tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
                    }
                    return Err(ApiError::Unavailable(error.into()));
                }
            }
        };
        if !ports
            .enrolments
            .set_push_pending(&caller.user, &pending, caller.now)
            .await?
        {
            return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered));
        }
        tracing::info!(to = %phone.number, sandbox = programme.sandbox, "push enrolment requested");
        Ok(Reply::no_content())
    }
}
