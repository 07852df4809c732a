//! `POST /challenges/push/AUTHY`: a payment challenge pushed to the user's `ACTIVE` Authy
//! device, which shows the amount and the payee; 200 `{"scaChallengeId"}`. Authy's signed
//! callback (or the sandbox simulator) settles it: approved → `VERIFIED` with a proof.
//! It counts toward the user's push requests per hour (push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use async_trait::async_trait;
use serde_json::json;

use super::{
    active_provider_ref,
    input::PushPayment,
    payment_reference_free, push_approval,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        ids::ChallengeId,
        payment::{format_amount, masked_account, payment_push_message, PaymentChallenge},
        step_up::PUSH_CHALLENGE_TTL_SECS,
    },
    ports,
    push::{Approval, PushProvider},
    store::{Counters, FactorReads, PaymentStart, Payments},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        counters: dyn Counters,
        payments: dyn Payments,
        push: dyn PushProvider,
    }
}

pub struct PaymentPush;

#[async_trait]
impl Handler for PaymentPush {
    type Input = PushPayment;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        PushPayment(payment): PushPayment,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        let provider_ref = active_provider_ref(ports.factors, caller).await?;
        let replaces =
            payment_reference_free(ports.payments, caller, &payment.reference, false).await?;
        let approval = Approval {
            message: payment_push_message(programme.display_name(), &payment),
            action: format!(
                "Pay {} to {} ({})",
                format_amount(&payment.currency, payment.value),
                payment.payee_name,
                masked_account(&payment.payee_account)
            ),
            seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
        };
        let request_id = push_approval(
            ports.counters,
            ports.push,
            cx,
            caller,
            provider_ref,
            approval,
        )
        .await?;
        let id = ChallengeId::new(super::new_id(cx)?);
        let challenge = PaymentChallenge::pending(
            id.clone(),
            payment,
            Channel::Authy,
            caller.now,
            caller.now + PUSH_CHALLENGE_TTL_SECS,
            Some(request_id),
        );
        match ports
            .payments
            .start_payment(
                &caller.user,
                &challenge,
                None,
                replaces.as_ref(),
                &[],
                caller.now,
            )
            .await?
        {
            PaymentStart::Started => {}
            PaymentStart::ReferenceTaken => {
                return Err(ApiError::Conflict(ErrorCode::StateInvalid))
            }
            PaymentStart::NotRegistered | PaymentStart::Limited(_) => {
                return Err(ApiError::Internal(
                    "a push payment checks no factor or counter".into(),
                ))
            }
        }
        tracing::info!(challenge = %id, sandbox = programme.sandbox, "payment challenge pushed");
        Ok(Reply::json(200, &json!({ "scaChallengeId": id.as_str() })))
    }
}
