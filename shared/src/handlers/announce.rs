//! Lifecycle events: a factor's change, a step-up's or a payment's outcome, published best
//! effort (a failure is logged, never answered).

use crate::{
    domain::{
        channel::Channel, ids::ChallengeId, payment::PaymentChallenge, step_up::ChallengeStatus,
    },
    events::{Change, Event, EventPublisher, FactorEvent, PaymentEvent, StepUpEvent},
    store::UserKey,
};

/// Publishes a lifecycle event; a failure is logged (as `what`), never answered.
pub(super) async fn publish(events: &dyn EventPublisher, event: Event, what: &'static str) {
    if let Err(error) = events.publish(&event).await {
        tracing::warn!(error = %crate::logging::redacted_chain(&error), what, "event not published");
    }
}

/// Announces a factor's change.
pub(super) async fn announce(
    events: &dyn EventPublisher,
    user: &UserKey,
    channel: Channel,
    change: Change,
    now: i64,
) {
    let event = FactorEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        channel,
        change,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::Factor(event), change.as_str()).await;
}

/// Announces a step-up challenge's outcome.
pub(super) async fn announce_step_up(
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge_id: &ChallengeId,
    channel: Channel,
    status: ChallengeStatus,
    now: i64,
) {
    let event = StepUpEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        challenge_id: challenge_id.as_str().to_owned(),
        channel,
        status,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::StepUp(event), status.as_str()).await;
}

/// Announces a payment challenge's outcome.
pub(super) async fn announce_payment(
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge: &PaymentChallenge,
    status: ChallengeStatus,
    now: i64,
) {
    let event = PaymentEvent {
        credential_id: user.credential_id.clone(),
        programme_id: user.programme_id.clone(),
        sca_challenge_id: challenge.id.as_str().to_owned(),
        channel: challenge.channel,
        reference: challenge.payment.reference.clone(),
        status,
        published_timestamp: now.saturating_mul(1_000),
    };
    publish(events, Event::Payment(event), status.as_str()).await;
}
