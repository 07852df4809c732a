//! `POST /stepup/challenges/push/AUTHY`: push a step-up approval request to the user's
//! `ACTIVE` Authy device; 200 `{"id"}`. Authy's signed callback (or, in a sandbox, the
//! simulator) settles it; `GET /stepup/challenges/{id}` reads it.
//!
//! The request counts toward the user's push requests per hour (409
//! `CHALLENGE_LIMIT_EXCEEDED` when full: a guard against push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use serde_json::json;

use crate::{
    app::App,
    domain::{
        channel::Channel,
        factor::FactorStatus,
        limits::{push_counters, Sender},
        otp::random_id,
        step_up::{ChallengeStatus, PushChallenge, PUSH_CHALLENGE_TTL_SECS},
    },
    http::{
        response::{ApiError, ErrorCode, Reply},
        Caller,
    },
    push::Approval,
};

pub async fn step_up_push(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Authy) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let factor = app.store.get_factor(&caller.user, Channel::Authy).await?;
    let token_phone = caller.token_phone(app);
    let Some(factor) = factor.filter(|f| f.listed_status(&token_phone) == FactorStatus::Active)
    else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    let authy_id = match (&factor.authy_id, programme.sandbox) {
        (_, true) => None,
        (Some(id), false) => Some(id.clone()),
        (None, false) => return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered)),
    };
    // The user's push requests per hour (the per-number limit is enrolment's).
    let counters: Vec<_> = push_counters(
        &programme.send_limits,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        factor.phone_hash.as_deref().unwrap_or_default(),
        caller.now,
    )
    .into_iter()
    .take(1)
    .collect();
    if app
        .store
        .consume_counters(&counters, caller.now)
        .await?
        .is_err()
    {
        return Err(ApiError::Conflict(ErrorCode::ChallengeLimitExceeded));
    }
    let random =
        |app: &App| random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()));
    let id = random(app)?;
    let request_id = match authy_id {
        None => random(app)?,
        Some(authy_id) => {
            let approval = Approval {
                message: format!("{}: approve this sign-in step.", programme.display_name()),
                action: "Confirm it is you".into(),
                seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
            };
            match app.push.request_approval(&authy_id, &approval).await {
                Ok(request_id) => request_id,
                Err(error) => {
                    if let Err(refund) = app.store.refund_counters(&counters).await {
                        tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
                    }
                    return Err(ApiError::Unavailable(error.into()));
                }
            }
        }
    };
    let challenge = PushChallenge {
        id: id.clone(),
        session: caller.session.clone(),
        token_exp: caller.token_exp,
        lifetime_secs: programme.step_up_lifetime_seconds,
        status: ChallengeStatus::Pending,
        expires_at: caller.now + PUSH_CHALLENGE_TTL_SECS,
        request_id,
    };
    app.store
        .put_push_challenge(&caller.user, &challenge, caller.now)
        .await?;
    tracing::info!(challenge = %id, sandbox = programme.sandbox, "push step-up requested");
    Ok(Reply::json(200, &json!({ "id": id })))
}
