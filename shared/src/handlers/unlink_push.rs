//! `DELETE /authentication_factors/push/{AUTHY|BIOMETRIC}`: remove a push factor. Its
//! pending requests die with it: a later callback finds nothing to change.

use crate::{
    app::App,
    domain::channel::Channel,
    events::Change,
    http::{
        response::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn unlink_push(app: &App, caller: &Caller, channel: Channel) -> Result<Reply, ApiError> {
    let Some(removed) = app.store.delete_factor(&caller.user, channel).await? else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    tracing::info!(channel = channel.as_str(), "push factor unlinked");
    // The provider forgets the user too; the factor is already gone whatever it answers.
    if let Some(authy_id) = removed.authy_id.filter(|_| !caller.programme.sandbox) {
        if let Err(error) = app.push.forget_user(&authy_id).await {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), "the push provider did not forget the user");
        }
    }
    app.announce(&caller.user, channel, Change::Unlinked).await;
    Ok(Reply::no_content())
}
