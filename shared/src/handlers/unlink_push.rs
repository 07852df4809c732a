//! `DELETE /authentication_factors/push/{AUTHY|BIOMETRIC}`: remove a push factor. Its
//! pending requests die with it: a later callback finds nothing to change.

use crate::{
    app::App,
    domain::channel::Channel,
    events::Change,
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
};

pub async fn unlink_push(app: &App, caller: &Caller, channel: Channel) -> Result<Reply, ApiError> {
    let Some(removed) = app.store.delete_factor(&caller.user, channel).await? else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    tracing::info!(channel = channel.as_str(), "push factor unlinked");
    // The provider forgets the user too, once no factor in any programme uses it (Authy
    // gives one phone one user id everywhere); the factor is already gone whatever happens.
    if let Some(authy_id) = removed.authy_id.filter(|_| !caller.programme.sandbox) {
        match app.store.release_authy_user(&authy_id, &caller.user).await {
            Ok(true) => {
                if let Err(error) = app.push.forget_user(&authy_id).await {
                    tracing::warn!(error = %crate::logging::redacted_chain(&error), "the push provider did not forget the user");
                }
            }
            Ok(false) => tracing::info!("the push provider's user is still used by another factor"),
            Err(error) => {
                tracing::warn!(error = %crate::logging::redacted_chain(&error), "the push provider's user kept: its references could not be updated");
            }
        }
    }
    app.announce(&caller.user, channel, Change::Unlinked).await;
    Ok(Reply::no_content())
}
