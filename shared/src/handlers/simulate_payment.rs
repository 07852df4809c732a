//! `POST /simulate/challenges/{scaChallengeId}/{accept|reject}`: in sandbox programmes,
//! stands in for the user answering a push payment challenge. An unknown id is a 404; a
//! challenge that is not a pending push (an SMS one, answered, expired) is 409 `STATE_INVALID`.

use super::settle_payment;
use crate::{
    app::App,
    domain::channel::Channel,
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn simulate_payment(
    app: &App,
    caller: &Caller,
    id: &str,
    approved: bool,
) -> Result<Reply, ApiError> {
    let Some(challenge) = app.store.get_payment(&caller.user, id).await? else {
        return Err(ApiError::NotFound);
    };
    if challenge.channel != Channel::Authy {
        return Err(ApiError::Conflict(ErrorCode::StateInvalid));
    }
    if settle_payment(app, &caller.user, &challenge, approved, caller.now).await? {
        tracing::info!(approved, "simulated payment answer");
        Ok(Reply::no_content())
    } else {
        Err(ApiError::Conflict(ErrorCode::StateInvalid))
    }
}
