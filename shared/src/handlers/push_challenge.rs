//! Pushing an approval request to the user's device: the factor it goes to, the push-bombing
//! guard (push requests per hour), the provider's call and its refund on failure.

use super::{
    new_id,
    reply::{ApiError, ErrorCode},
    Caller,
};
use crate::{
    app::Context,
    domain::channel::Channel,
    metrics::Metric,
    push::{Approval, PushProvider},
    store::{Counters, FactorReads},
};

/// A push sent to the user's device through Authy.
pub(super) fn count_push(cx: &Context, caller: &Caller) {
    cx.metrics.count(
        Metric::PushRequests,
        &[("programme", &caller.programme.id)],
        caller.now,
    );
}

/// The user's `ACTIVE` Authy factor a push challenge goes to: its provider id (none in a
/// sandbox, which calls no provider).
pub(super) async fn active_provider_ref(
    factors: &dyn FactorReads,
    caller: &Caller,
) -> Result<Option<String>, ApiError> {
    use crate::domain::factor::FactorStatus;
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Authy) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let factor = factors.get_factor(&caller.user, Channel::Authy).await?;
    let Some(factor) = factor.filter(|f| f.listed_status(&caller.phone) == FactorStatus::Active)
    else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    match (factor.provider_ref, programme.sandbox) {
        (_, true) => Ok(None),
        (Some(id), false) => Ok(Some(id)),
        (None, false) => Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered)),
    }
}

/// Pushes a challenge's approval request: consumes the user's push request for this hour
/// (409 `CHALLENGE_LIMIT_EXCEEDED` when none is left: a guard against push-bombing), then
/// asks Authy (a sandbox gets a random request id). If Authy fails, the request is given back
/// and the caller gets a 503. Returns the provider's request id.
pub(super) async fn push_approval(
    counters: &dyn Counters,
    push: &dyn PushProvider,
    cx: &Context,
    caller: &Caller,
    provider_ref: Option<String>,
    approval: Approval,
) -> Result<String, ApiError> {
    use crate::domain::send_limits::{push_counters, Sender};
    let programme = &caller.programme;
    // The user's push requests per hour; the per-number limit is enrolment's.
    let hourly: Vec<_> = push_counters(
        &programme.send_limits,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        "",
        caller.now,
    )
    .into_iter()
    .take(1)
    .collect();
    if counters
        .consume_counters(&hourly, caller.now)
        .await?
        .is_err()
    {
        return Err(ApiError::Conflict(ErrorCode::ChallengeLimitExceeded));
    }
    let Some(provider_ref) = provider_ref else {
        return new_id(cx);
    };
    match push.request_approval(&provider_ref, &approval).await {
        Ok(request_id) => {
            count_push(cx, caller);
            Ok(request_id)
        }
        Err(error) => {
            if let Err(refund) = counters.refund_counters(&hourly).await {
                tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
            }
            Err(ApiError::Unavailable(error.into()))
        }
    }
}
