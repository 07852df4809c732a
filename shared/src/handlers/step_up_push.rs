//! `POST /stepup/challenges/push/AUTHY`: push a step-up approval request to the user's
//! `ACTIVE` Authy device; 200 `{"id"}`. Authy's signed callback (or, in a sandbox, the
//! simulator) settles it; `GET /stepup/challenges/{id}` reads it.
//!
//! The request counts toward the user's push requests per hour (409
//! `CHALLENGE_LIMIT_EXCEEDED` when full: a guard against push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use serde_json::json;

use super::{active_authy_id, push_approval};

use crate::{
    app::App,
    domain::{
        random::random_id,
        step_up::{ChallengeStatus, PushChallenge, PUSH_CHALLENGE_TTL_SECS},
    },
    handlers::{
        reply::{ApiError, Reply},
        Caller,
    },
    push::Approval,
};

pub async fn step_up_push(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    let authy_id = active_authy_id(app, caller).await?;
    let approval = Approval {
        message: format!("{}: approve this sign-in step.", programme.display_name()),
        action: "Confirm it is you".into(),
        seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
    };
    let request_id = push_approval(app, caller, authy_id, approval).await?;
    let id = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
    let challenge = PushChallenge {
        id: id.clone(),
        session: caller.session.clone(),
        token_exp: caller.token_exp,
        lifetime_secs: programme.step_up_lifetime_seconds,
        status: ChallengeStatus::Pending,
        expires_at: caller.now + PUSH_CHALLENGE_TTL_SECS,
        request_id,
    };
    app.store
        .put_push_challenge(&caller.user, &challenge, caller.now)
        .await?;
    tracing::info!(challenge = %id, sandbox = programme.sandbox, "push step-up requested");
    Ok(Reply::json(200, &json!({ "id": id })))
}
