//! `GET /stepup/challenges/{id}`: a push step-up challenge's status. Another user's id (or
//! an unknown one) is a 404. A pending challenge past its 5 minutes, or whose Authy factor
//! is gone, reads `EXPIRED` (marked so once, and announced once).

use serde_json::json;

use super::step_up_status;
use crate::{
    app::App,
    handlers::{
        reply::{ApiError, Reply},
        Caller,
    },
};

pub async fn get_step_up_challenge(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    let Some(challenge) = app.store.get_push_challenge(&caller.user, id).await? else {
        return Err(ApiError::NotFound);
    };
    let status = step_up_status(app, caller, &challenge).await?;
    Ok(Reply::json(
        200,
        &json!({"id": challenge.id, "status": status.as_str()}),
    ))
}
