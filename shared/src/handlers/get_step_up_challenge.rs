//! `GET /stepup/challenges/{id}`: a push step-up challenge's status. Another user's id (or
//! an unknown one) is a 404. A pending challenge past its 5 minutes, or whose Authy factor
//! is gone, reads `EXPIRED` (marked so once, and announced once).

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::ChallengeRef,
    reply::{ApiError, Reply},
    step_up_status, Caller, Handler,
};
use crate::{
    app::Context,
    events::EventPublisher,
    ports,
    store::{FactorReads, StepUps},
};

ports! {
    pub struct Ports {
        step_ups: dyn StepUps,
        factors: dyn FactorReads,
        events: dyn EventPublisher,
    }
}

pub struct GetStepUpChallenge;

#[async_trait]
impl Handler for GetStepUpChallenge {
    type Input = ChallengeRef;
    type Ports<'a> = Ports<'a>;
    const IS_GET: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        ChallengeRef(id): ChallengeRef,
    ) -> Result<Reply, ApiError> {
        let Some(challenge) = ports.step_ups.get_push_challenge(&caller.user, &id).await? else {
            return Err(ApiError::NotFound);
        };
        let status = step_up_status(
            ports.factors,
            ports.step_ups,
            ports.events,
            caller,
            &challenge,
        )
        .await?;
        Ok(Reply::json(
            200,
            &json!({"id": challenge.id.as_str(), "status": status.as_str()}),
        ))
    }
}
