//! `POST /stepup/challenges/push/AUTHY`: push a step-up approval request to the user's
//! `ACTIVE` Authy device; 200 `{"id"}`. Authy's signed callback (or, in a sandbox, the
//! simulator) settles it; `GET /stepup/challenges/{id}` reads it.
//!
//! The request counts toward the user's push requests per hour (409
//! `CHALLENGE_LIMIT_EXCEEDED` when full: a guard against push-bombing); if Authy fails, the
//! counter is given back and nothing was stored.

use async_trait::async_trait;
use serde_json::json;

use super::{
    active_provider_ref,
    input::AuthyChannel,
    push_approval,
    reply::{ApiError, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{
        ids::ChallengeId,
        step_up::{ChallengeStatus, PushChallenge, PUSH_CHALLENGE_TTL_SECS},
    },
    ports,
    push::{Approval, PushProvider},
    store::{Counters, FactorReads, StepUps},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        counters: dyn Counters,
        step_ups: dyn StepUps,
        push: dyn PushProvider,
    }
}

pub struct StepUpPush;

#[async_trait]
impl Handler for StepUpPush {
    type Input = AuthyChannel;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        _input: AuthyChannel,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        let provider_ref = active_provider_ref(ports.factors, caller).await?;
        let approval = Approval {
            message: format!("{}: approve this sign-in step.", programme.display_name()),
            action: "Confirm it is you".into(),
            seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
        };
        let request_id = push_approval(
            ports.counters,
            ports.push,
            cx,
            caller,
            provider_ref,
            approval,
        )
        .await?;
        let id = ChallengeId::new(super::new_id(cx)?);
        let challenge = PushChallenge {
            id: id.clone(),
            session: caller.session.clone(),
            token_exp: caller.token_exp,
            lifetime_secs: programme.step_up_lifetime_seconds,
            status: ChallengeStatus::Pending,
            expires_at: caller.now + PUSH_CHALLENGE_TTL_SECS,
            request_id,
        };
        ports
            .step_ups
            .put_push_challenge(&caller.user, &challenge, caller.now)
            .await?;
        tracing::info!(challenge = %id, sandbox = programme.sandbox, "push step-up requested");
        Ok(Reply::json(200, &json!({ "id": id.as_str() })))
    }
}
