//! `POST /challenges/push/AUTHY`: a payment challenge pushed to the user's `ACTIVE` Authy
//! device, which shows the amount and the payee; 200 `{"scaChallengeId"}`. Authy's signed
//! callback (or the sandbox simulator) settles it: approved → `VERIFIED` with a proof.
//! It counts toward the user's push requests per hour (push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use serde_json::json;

use super::payment_reference_free;
use crate::{
    app::App,
    domain::{
        channel::Channel,
        factor::FactorStatus,
        limits::{push_counters, Sender},
        otp::random_id,
        payment::{format_amount, payment_push_message, Payment, PaymentChallenge},
        step_up::{ChallengeStatus, PUSH_CHALLENGE_TTL_SECS},
    },
    http::{
        response::{ApiError, ErrorCode, Reply},
        Caller,
    },
    push::Approval,
    store::PaymentStart,
};

pub async fn payment_push(app: &App, caller: &Caller, payment: Payment) -> Result<Reply, ApiError> {
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
    let replaces = payment_reference_free(app, caller, &payment.reference, false).await?;
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
    let random = || random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()));
    let id = random()?;
    let request_id = match authy_id {
        None => random()?,
        Some(authy_id) => {
            let approval = Approval {
                message: payment_push_message(programme.display_name(), &payment),
                action: format!(
                    "Pay {} to {}",
                    format_amount(&payment.currency, payment.value),
                    payment.payee_name
                ),
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
    let challenge = PaymentChallenge {
        id: id.clone(),
        payment,
        channel: Channel::Authy,
        status: ChallengeStatus::Pending,
        created_at: caller.now,
        expires_at: caller.now + PUSH_CHALLENGE_TTL_SECS,
        request_id: Some(request_id),
        proof: None,
        verified_by: None,
    };
    match app
        .store
        .start_payment(
            &caller.user,
            &challenge,
            None,
            replaces.as_deref(),
            &[],
            caller.now,
        )
        .await?
    {
        PaymentStart::Started => {}
        PaymentStart::ReferenceTaken => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        PaymentStart::NotRegistered | PaymentStart::Limited(_) => {
            return Err(ApiError::Internal(
                "a push payment checks no factor or counter".into(),
            ))
        }
    }
    tracing::info!(challenge = %id, sandbox = programme.sandbox, "payment challenge pushed");
    Ok(Reply::json(200, &json!({ "scaChallengeId": id })))
}
