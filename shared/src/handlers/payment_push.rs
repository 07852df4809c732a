//! `POST /challenges/push/{AUTHY|BIOMETRIC}`: a payment challenge pushed to the user's
//! `ACTIVE` push factor, which shows the amount and the payee; 200 `{"scaChallengeId"}`.
//! Authy's signed callback, the BIOMETRIC device's signed answer (or the sandbox simulator)
//! settles it: approved → `VERIFIED` with a proof. It counts toward the user's push requests
//! per hour (push-bombing); if the push fails, the counter is given back and nothing was
//! stored.

use async_trait::async_trait;
use serde_json::json;

use super::{
    active_push_factor, device_answer,
    input::PushPayment,
    payment_reference_free, push_approval,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, Pushers,
};
use crate::{
    app::Context,
    domain::{
        device::DevicePurpose,
        ids::ChallengeId,
        payment::{format_amount, masked_account, payment_push_message, PaymentChallenge},
        step_up::PUSH_CHALLENGE_TTL_SECS,
    },
    ports,
    push::{device::DevicePush, Approval, PushProvider},
    store::{Counters, FactorReads, PaymentStart, Payments},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        counters: dyn Counters,
        payments: dyn Payments,
        push: dyn PushProvider,
        device_push: dyn DevicePush,
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
        PushPayment(channel, payment): PushPayment,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        let factor = active_push_factor(ports.factors, caller, channel).await?;
        let replaces =
            payment_reference_free(ports.payments, caller, &payment.reference, false).await?;
        let id = ChallengeId::new(super::new_id(cx)?);
        let message = payment_push_message(programme.display_name(), &payment);
        // What the device shows and signs: the amount and the payee whole, and the line.
        let approved = json!({
            "amount": {"currency": payment.currency, "value": payment.value},
            "payee": {"name": payment.payee_name, "account": payment.payee_account},
            "message": message,
        });
        let answer = device_answer(
            cx,
            caller,
            &factor,
            &id,
            DevicePurpose::Payment,
            approved.as_object().cloned().unwrap_or_default(),
        )?;
        let approval = Approval {
            message,
            action: format!(
                "Pay {} to {} ({})",
                format_amount(&payment.currency, payment.value),
                payment.payee_name,
                masked_account(&payment.payee_account)
            ),
            seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
        };
        let pushers = Pushers {
            counters: ports.counters,
            push: ports.push,
            device_push: ports.device_push,
        };
        let request_id = push_approval(pushers, cx, caller, &factor, &id, approval).await?;
        let challenge = PaymentChallenge::pending(
            id.clone(),
            payment,
            channel,
            caller.now,
            caller.now + PUSH_CHALLENGE_TTL_SECS,
            // A device answers its challenge directly: no provider request.
            answer.is_none().then_some(request_id),
        );
        match ports
            .payments
            .start_payment(
                &caller.user,
                &challenge,
                answer.as_ref(),
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
                    "a push payment checks no SMS factor or counter".into(),
                ))
            }
        }
        tracing::info!(challenge = %id, channel = channel.as_str(), sandbox = programme.sandbox, "payment challenge pushed");
        Ok(Reply::json(200, &json!({ "scaChallengeId": id.as_str() })))
    }
}
