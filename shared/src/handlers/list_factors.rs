//! `GET /authentication_factors`: the user's factors, as this token sees them.

use serde_json::json;

use crate::{
    app::App,
    domain::factor::listing,
    handlers::{
        reply::{ApiError, Reply},
        Caller,
    },
};

pub async fn list_factors(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let records = app.store.list_factors(&caller.user).await?;
    let factors: Vec<_> = listing(records, &caller.token_phone(app))
        .into_iter()
        .map(|(channel, status)| {
            json!({"type": channel.factor_type(), "channel": channel.as_str(), "status": status.as_str()})
        })
        .collect();
    Ok(Reply::json(200, &json!({ "factors": factors })))
}
