//! `POST /challenges/otp/SMS`: a payment challenge by SMS — the code is bound to one amount
//! to one payee, and the SMS names both (`123456 approves EUR 125.50 to Acme Ltd. ...`).
//!
//! One challenge per reference per user at a time (`STATE_INVALID` while one is pending or
//! verified; a verified reference is final); a new SMS for the same reference waits 15 s
//! (`RETRY_IN_15SEC`); the send limits of enrolment apply (429). The challenge, the
//! reference, the code and the counters are one transaction, conditional on the SMS factor
//! being `ACTIVE` for the token's phone; then the SMS is sent (a failed send removes the code).

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::SmsPayment,
    payment_reference_free,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, SmsCode, Unsent,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        ids::ChallengeId,
        payment::{payment_sms_text, PaymentChallenge},
        phone::TokenPhone,
    },
    ports,
    sms::SmsSender,
    store::{PaymentStart, Payments},
};

ports! {
    pub struct Ports {
        payments: dyn Payments,
        sms: dyn SmsSender,
    }
}

pub struct PaymentSms;

#[async_trait]
impl Handler for PaymentSms {
    type Input = SmsPayment;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        SmsPayment(payment): SmsPayment,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        if !programme.channel_enabled(Channel::Sms) {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
        }
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
        };
        // The factor is checked inside the start's transaction (CHANNEL_NOT_REGISTERED), not
        // read first: a reference held by another challenge answers before it.
        let replaces =
            payment_reference_free(ports.payments, caller, &payment.reference, true).await?;
        let code = SmsCode::new(cx, caller, phone)?;
        let id = ChallengeId::new(super::new_id(cx)?);
        let challenge = PaymentChallenge::pending(
            id.clone(),
            payment,
            Channel::Sms,
            caller.now,
            code.challenge.expires_at,
            None,
        );
        match ports
            .payments
            .start_payment(
                &caller.user,
                &challenge,
                Some(&code.challenge),
                replaces.as_ref(),
                &code.counters,
                caller.now,
            )
            .await?
        {
            PaymentStart::Started => {}
            PaymentStart::NotRegistered => {
                return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered))
            }
            PaymentStart::ReferenceTaken => {
                return Err(ApiError::Conflict(ErrorCode::StateInvalid))
            }
            PaymentStart::Limited(full) => return Err(code.refused(cx, caller, &full)),
        }
        let text = |code: &str| payment_sms_text(code, &challenge.payment);
        let unsent = Unsent::Payment(ports.payments, &challenge);
        code.send(ports.sms, cx, caller, text, unsent).await?;
        tracing::info!(challenge = %id, "payment challenge sent by SMS");
        Ok(Reply::json(200, &json!({ "scaChallengeId": id.as_str() })))
    }
}
