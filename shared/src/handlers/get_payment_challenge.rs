//! `GET /challenges/{scaChallengeId}`: a payment challenge's status, and its proof once
//! `VERIFIED` (the same proof every time). Another user's or programme's id is a 404.

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::ChallengeRef,
    reply::{ApiError, Reply},
    Caller, Handler,
};
use crate::{app::Context, domain::step_up::ChallengeStatus, ports, store::Payments};

ports! {
    pub struct Ports {
        payments: dyn Payments,
    }
}

pub struct GetPaymentChallenge;

#[async_trait]
impl Handler for GetPaymentChallenge {
    type Input = ChallengeRef;
    type Ports<'a> = Ports<'a>;
    const IS_GET: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        ChallengeRef(id): ChallengeRef,
    ) -> Result<Reply, ApiError> {
        let Some(challenge) = ports.payments.get_payment(&caller.user, &id).await? else {
            return Err(ApiError::NotFound);
        };
        let status = challenge.status_at(caller.now);
        let body = match (&challenge.proof, status) {
            (Some(proof), ChallengeStatus::Verified) => {
                json!({"scaChallengeId": challenge.id.as_str(), "status": status.as_str(), "proof": proof})
            }
            _ => json!({"scaChallengeId": challenge.id.as_str(), "status": status.as_str()}),
        };
        Ok(Reply::json(200, &body))
    }
}
