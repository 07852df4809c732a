//! `POST /challenges/push/AUTHY`: a payment challenge pushed to the user's `ACTIVE` Authy
//! device, which shows the amount and the payee; 200 `{"scaChallengeId"}`. Authy's signed
//! callback (or the sandbox simulator) settles it: approved → `VERIFIED` with a proof.
//! It counts toward the user's push requests per hour (push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use serde_json::json;

use super::{active_authy_id, payment_reference_free, push_approval};
use crate::{
    app::App,
    domain::{
        channel::Channel,
        payment::{format_amount, payment_push_message, Payment, PaymentChallenge},
        random::random_id,
        step_up::{ChallengeStatus, PUSH_CHALLENGE_TTL_SECS},
    },
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
    push::Approval,
    store::PaymentStart,
};

pub async fn payment_push(app: &App, caller: &Caller, payment: Payment) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    let authy_id = active_authy_id(app, caller).await?;
    let replaces = payment_reference_free(app, caller, &payment.reference, false).await?;
    let approval = Approval {
        message: payment_push_message(programme.display_name(), &payment),
        action: format!(
            "Pay {} to {}",
            format_amount(&payment.currency, payment.value),
            payment.payee_name
        ),
        seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
    };
    let request_id = push_approval(app, caller, authy_id, approval).await?;
    let id = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
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
