//! `POST /stepup/challenges/push/{AUTHY|BIOMETRIC}`: push a step-up approval request to the
//! user's `ACTIVE` push factor; 200 `{"id"}`. Authy's signed callback, the BIOMETRIC device's
//! signed answer (or, in a sandbox, the simulator) settles it; `GET /stepup/challenges/{id}`
//! reads it.
//!
//! The request counts toward the user's push requests per hour (409
//! `CHALLENGE_LIMIT_EXCEEDED` when full: a guard against push-bombing); if the push fails,
//! the counter is given back and nothing was stored.

use async_trait::async_trait;
use serde_json::json;

use super::{
    active_push_factor, device_answer,
    input::PushChannel,
    push_approval,
    reply::{ApiError, Reply},
    Caller, Handler, PushFactor, Pushers,
};
use crate::{
    app::Context,
    domain::{
        device::DevicePurpose,
        ids::ChallengeId,
        step_up::{ChallengeStatus, PushChallenge, PUSH_CHALLENGE_TTL_SECS},
    },
    ports,
    push::{device::DevicePush, Approval, PushProvider},
    store::{Counters, FactorReads, StepUps},
};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        counters: dyn Counters,
        step_ups: dyn StepUps,
        push: dyn PushProvider,
        device_push: dyn DevicePush,
    }
}

pub struct StepUpPush;

#[async_trait]
impl Handler for StepUpPush {
    type Input = PushChannel;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        PushChannel(channel): PushChannel,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        let factor = active_push_factor(ports.factors, caller, channel).await?;
        let id = ChallengeId::new(super::new_id(cx)?);
        let name = programme.display_name();
        let message = match factor {
            PushFactor::Device(_) => format!("{name}: confirm it is you"),
            PushFactor::Authy(_) => format!("{name}: approve this sign-in step."),
        };
        let answer = device_answer(
            cx,
            caller,
            &factor,
            &id,
            DevicePurpose::StepUp,
            [("message".to_owned(), json!(message))]
                .into_iter()
                .collect(),
        )?;
        let approval = Approval {
            message,
            action: "Confirm it is you".into(),
            seconds_to_expire: PUSH_CHALLENGE_TTL_SECS as u32,
        };
        let pushers = Pushers {
            counters: ports.counters,
            push: ports.push,
            device_push: ports.device_push,
        };
        let request_id = push_approval(pushers, cx, caller, &factor, &id, approval).await?;
        let challenge = PushChallenge {
            id: id.clone(),
            channel,
            session: caller.session.clone(),
            token_exp: caller.token_exp,
            lifetime_secs: programme.step_up_lifetime_seconds,
            status: ChallengeStatus::Pending,
            expires_at: caller.now + PUSH_CHALLENGE_TTL_SECS,
            request_id,
        };
        ports
            .step_ups
            .put_push_challenge(&caller.user, &challenge, answer.as_ref(), caller.now)
            .await?;
        tracing::info!(challenge = %id, channel = channel.as_str(), sandbox = programme.sandbox, "push step-up requested");
        Ok(Reply::json(200, &json!({ "id": id.as_str() })))
    }
}
