//! `POST /simulate/stepup/challenges/{id}/{accept|reject}`: in sandbox programmes, stands in
//! for the user answering a push step-up on the device. An unknown id is a 404; a challenge
//! that is not pending (answered, expired, or an SMS one) is a 409 `STATE_INVALID`.

use async_trait::async_trait;

use super::{
    input::ChallengeRef,
    reply::{ApiError, ErrorCode, Reply},
    settle_step_up, Caller, Handler,
};
use crate::{app::Context, events::EventPublisher, ports, store::StepUps};

ports! {
    pub struct Ports {
        step_ups: dyn StepUps,
        events: dyn EventPublisher,
    }
}

/// `.../accept` (`SimulateStepUp<true>`) or `.../reject` (`SimulateStepUp<false>`).
pub struct SimulateStepUp<const APPROVED: bool>;

#[async_trait]
impl<const APPROVED: bool> Handler for SimulateStepUp<APPROVED> {
    type Input = ChallengeRef;
    type Ports<'a> = Ports<'a>;
    const SANDBOX_ONLY: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        ChallengeRef(id): ChallengeRef,
    ) -> Result<Reply, ApiError> {
        let Some(challenge) = ports.step_ups.get_push_challenge(&caller.user, &id).await? else {
            return Err(ApiError::NotFound);
        };
        if !settle_step_up(
            ports.step_ups,
            ports.events,
            &caller.user,
            &challenge,
            APPROVED,
            caller.now,
        )
        .await?
        {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        tracing::info!(approved = APPROVED, "simulated step-up answer");
        Ok(Reply::no_content())
    }
}
