//! `POST /simulate/authentication_factors/push/AUTHY/{accept|reject}`: in sandbox programmes,
//! stands in for the user answering the push on their device.

use async_trait::async_trait;

use super::{
    input::AuthyChannel,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::channel::Channel,
    events::{Change, EventPublisher},
    ports,
    store::PushEnrolments,
};

ports! {
    pub struct Ports {
        enrolments: dyn PushEnrolments,
        events: dyn EventPublisher,
    }
}

/// `.../accept` (`SimulatePush<true>`) or `.../reject` (`SimulatePush<false>`).
pub struct SimulatePush<const APPROVED: bool>;

#[async_trait]
impl<const APPROVED: bool> Handler for SimulatePush<APPROVED> {
    type Input = AuthyChannel;
    type Ports<'a> = Ports<'a>;
    const SANDBOX_ONLY: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        _input: AuthyChannel,
    ) -> Result<Reply, ApiError> {
        if !ports
            .enrolments
            .resolve_push(&caller.user, None, APPROVED, caller.now)
            .await?
        {
            return Err(ApiError::Conflict(ErrorCode::StateInvalid));
        }
        tracing::info!(approved = APPROVED, "simulated push answer");
        super::announce(
            ports.events,
            &caller.user,
            Channel::Authy,
            Change::answer(APPROVED),
            caller.now,
        )
        .await;
        Ok(Reply::no_content())
    }
}
