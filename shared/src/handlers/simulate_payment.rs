//! `POST /simulate/challenges/{scaChallengeId}/{accept|reject}`: in sandbox programmes,
//! stands in for the user answering a push payment challenge (AUTHY or BIOMETRIC; a real
//! device may answer a BIOMETRIC one as well). The proof is the sandbox key's and carries no
//! device approval. An unknown id is a 404; a
//! challenge that is not a pending push (an SMS one, answered, expired) is 409 `STATE_INVALID`.

use async_trait::async_trait;

use super::{
    input::ChallengeRef,
    reply::{ApiError, ErrorCode, Reply},
    settle_payment, Caller, Handler, PaymentSettlement, PushAnswer,
};
use crate::{
    app::Context, domain::channel::Channel, events::EventPublisher, ports, proof::SandboxKey,
    store::Payments,
};

ports! {
    pub struct Ports {
        payments: dyn Payments,
        // The sandbox key and no other: a simulator never mints live evidence.
        signer: SandboxKey,
        events: dyn EventPublisher,
    }
}

/// `.../accept` (`SimulatePayment<true>`) or `.../reject` (`SimulatePayment<false>`).
pub struct SimulatePayment<const APPROVED: bool>;

#[async_trait]
impl<const APPROVED: bool> Handler for SimulatePayment<APPROVED> {
    type Input = ChallengeRef;
    type Ports<'a> = Ports<'a>;
    const SANDBOX_ONLY: bool = true;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        ChallengeRef(id): ChallengeRef,
    ) -> Result<Reply, ApiError> {
        let Some(challenge) = ports.payments.get_payment(&caller.user, &id).await? else {
            return Err(ApiError::NotFound);
        };
        if challenge.channel == Channel::Sms {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        let settlement = PaymentSettlement {
            payments: ports.payments,
            signer: ports.signer.signer(),
            sandbox: true,
            events: ports.events,
        };
        if !settle_payment(
            settlement,
            cx,
            &caller.user,
            &challenge,
            PushAnswer::Said(APPROVED),
            caller.now,
        )
        .await?
        {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        tracing::info!(approved = APPROVED, "simulated payment answer");
        Ok(Reply::no_content())
    }
}
