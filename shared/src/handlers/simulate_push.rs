//! `POST /simulate/authentication_factors/push/AUTHY/{accept|reject}`: in sandbox programmes,
//! stands in for the user answering the push on their device.

use crate::{
    app::App,
    domain::channel::Channel,
    events::Change,
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn simulate_push(app: &App, caller: &Caller, approved: bool) -> Result<Reply, ApiError> {
    if app
        .store
        .resolve_push(&caller.user, None, approved, caller.now)
        .await?
    {
        tracing::info!(approved, "simulated push answer");
        app.announce(&caller.user, Channel::Authy, Change::answer(approved))
            .await;
        Ok(Reply::no_content())
    } else {
        Err(ApiError::Conflict(ErrorCode::StateInvalid))
    }
}
