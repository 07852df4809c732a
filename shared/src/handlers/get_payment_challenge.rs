//! `GET /challenges/{scaChallengeId}`: a payment challenge's status, and its proof once
//! `VERIFIED` (the same proof every time). Another user's or programme's id is a 404.

use serde_json::json;

use crate::{
    app::App,
    domain::step_up::ChallengeStatus,
    handlers::{
        reply::{ApiError, Reply},
        Caller,
    },
};

pub async fn get_payment_challenge(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    let Some(challenge) = app.store.get_payment(&caller.user, id).await? else {
        return Err(ApiError::NotFound);
    };
    let status = challenge.status_at(caller.now);
    let body = match (&challenge.proof, status) {
        (Some(proof), ChallengeStatus::Verified) => {
            json!({"scaChallengeId": challenge.id, "status": status.as_str(), "proof": proof})
        }
        _ => json!({"scaChallengeId": challenge.id, "status": status.as_str()}),
    };
    Ok(Reply::json(200, &body))
}
