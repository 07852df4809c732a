//! `POST /challenges/otp/SMS`: a payment challenge by SMS — the code is bound to one amount
//! to one payee, and the SMS names both (`123456 approves EUR 125.50 to Acme Ltd. ...`).
//!
//! One challenge per reference per user at a time (`STATE_INVALID` while one is pending or
//! verified; a verified reference is final); a new SMS for the same reference waits 15 s
//! (`RETRY_IN_15SEC`); the send limits of enrolment apply (429). The challenge, the
//! reference, the code and the counters are one transaction, conditional on the SMS factor
//! being `ACTIVE` for the token's phone; then the SMS is sent (a failed send removes the code).

use serde_json::json;

use super::{new_sms_code, payment_reference_free, send_code, sms_counters_for, Unsent};
use crate::{
    app::App,
    auth::PhoneClaim,
    domain::{
        channel::Channel,
        payment::{payment_sms_text, Payment, PaymentChallenge},
        random::random_id,
        step_up::ChallengeStatus,
    },
    handlers::reply::{ApiError, ErrorCode, Reply},
    handlers::Caller,
    store::PaymentStart,
};

pub async fn payment_sms(app: &App, caller: &Caller, payment: Payment) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Sms) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let PhoneClaim::Valid(phone) = &caller.phone else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    // The factor is checked inside the start's transaction (CHANNEL_NOT_REGISTERED), not
    // read first: a reference held by another challenge answers before it.
    let replaces = payment_reference_free(app, caller, &payment.reference, true).await?;
    let (code, stored_code) = new_sms_code(app, caller, phone_hash)?;
    let id = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
    let expires_at = stored_code.expires_at;
    let challenge = PaymentChallenge {
        id: id.clone(),
        payment,
        channel: Channel::Sms,
        status: ChallengeStatus::Pending,
        created_at: caller.now,
        expires_at,
        request_id: None,
        proof: None,
        verified_by: None,
    };
    let counters = sms_counters_for(app, caller, phone, &stored_code.phone_hash);
    match app
        .store
        .start_payment(
            &caller.user,
            &challenge,
            Some(&stored_code),
            replaces.as_deref(),
            &counters,
            caller.now,
        )
        .await?
    {
        PaymentStart::Started => {}
        PaymentStart::NotRegistered => {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered))
        }
        PaymentStart::ReferenceTaken => return Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        PaymentStart::Limited(full) => {
            return Err(super::sms_refused(app, caller, phone, &counters, &full))
        }
    }
    let text = payment_sms_text(code.expose(), &challenge.payment);
    send_code(
        app,
        caller,
        phone,
        code,
        text,
        Unsent::Payment(&challenge, &stored_code.challenge_id),
        &counters,
    )
    .await?;
    tracing::info!(challenge = %id, "payment challenge sent by SMS");
    Ok(Reply::json(200, &json!({ "scaChallengeId": id })))
}
