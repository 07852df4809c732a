//! `POST /simulate/stepup/challenges/{id}/{accept|reject}`: in sandbox programmes, stands in
//! for the user answering a push step-up on the device. An unknown id is a 404; a challenge
//! that is not pending (answered, expired, or an SMS one) is a 409 `STATE_INVALID`.

use super::settle_step_up;
use crate::{
    app::App,
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn simulate_step_up(
    app: &App,
    caller: &Caller,
    id: &str,
    approved: bool,
) -> Result<Reply, ApiError> {
    let Some(challenge) = app.store.get_push_challenge(&caller.user, id).await? else {
        return Err(ApiError::NotFound);
    };
    if settle_step_up(app, &caller.user, &challenge, approved, caller.now).await? {
        tracing::info!(approved, "simulated step-up answer");
        Ok(Reply::no_content())
    } else {
        Err(ApiError::Conflict(ErrorCode::StateInvalid))
    }
}
