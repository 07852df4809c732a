//! `GET /authentication_factors`: the user's factors, as this token sees them.

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::NoInput,
    reply::{ApiError, Reply},
    Caller, Handler,
};
use crate::{app::Context, domain::factor::listing, ports, store::FactorReads};

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
    }
}

pub struct ListFactors;

#[async_trait]
impl Handler for ListFactors {
    type Input = NoInput;
    type Ports<'a> = Ports<'a>;
    const IS_GET: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        _input: NoInput,
    ) -> Result<Reply, ApiError> {
        let records = ports.factors.list_factors(&caller.user).await?;
        let factors: Vec<_> = listing(records, &caller.phone)
            .into_iter()
            .map(|(channel, status)| {
                json!({"type": channel.factor_type(), "channel": channel.as_str(), "status": status.as_str()})
            })
            .collect();
        Ok(Reply::json(200, &json!({ "factors": factors })))
    }
}
