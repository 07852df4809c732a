//! `POST /authentication_factors/push/AUTHY`: register the user's phone with the push
//! provider and push an enrolment approval request to the device.
//!
//! The request counters (the user's per hour, the number's per day) are consumed first
//! (atomically with the "not already ACTIVE" check); if the provider fails, they are given
//! back and nothing else was written.

use super::enrolment_phone;
use crate::{
    app::App,
    domain::{
        channel::Channel,
        random::random_id,
        send_limits::{push_counters, Sender},
    },
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
    push::Approval,
    store::{PendingPush, ReserveOutcome},
};

/// How long the user has to answer an enrolment request on the device.
const ENROLMENT_REQUEST_LIFETIME_SECS: u32 = 24 * 3_600;

pub async fn enrol_push(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let phone = enrolment_phone(app, caller, Channel::Authy)?;
    let programme = &caller.programme;
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    let counters = push_counters(
        &programme.send_limits,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        &phone_hash,
        caller.now,
    );
    match app
        .store
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
        let request_id =
            random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
        PendingPush {
            phone_hash,
            authy_id: None,
            request_id,
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
            let authy_id = app.push.register_user(phone).await?;
            let request_id = app.push.request_approval(&authy_id, &approval).await?;
            Ok::<_, crate::push::PushError>((authy_id, request_id))
        }
        .await;
        match pushed {
            Ok((authy_id, request_id)) => {
                super::count_push(app, caller);
                PendingPush {
                    phone_hash,
                    authy_id: Some(authy_id),
                    request_id,
                }
            }
            Err(error) => {
                if let Err(refund) = app.store.refund_counters(&counters).await {
                    tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
                }
                return Err(ApiError::Unavailable(error.into()));
            }
        }
    };
    if !app
        .store
        .set_push_pending(&caller.user, &pending, caller.now)
        .await?
    {
        return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered));
    }
    tracing::info!(to = %phone, sandbox = programme.sandbox, "push enrolment requested");
    Ok(Reply::no_content())
}
