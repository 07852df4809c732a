//! `DELETE /authentication_factors/push/{AUTHY|BIOMETRIC}`: remove a push factor. Its
//! pending requests die with it: a later callback finds nothing to change.

use crate::{
    app::App,
    domain::channel::Channel,
    http::{
        response::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn unlink_push(app: &App, caller: &Caller, channel: Channel) -> Result<Reply, ApiError> {
    if app.store.delete_factor(&caller.user, channel).await? {
        tracing::info!(channel = channel.as_str(), "push factor unlinked");
        Ok(Reply::no_content())
    } else {
        Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered))
    }
}
