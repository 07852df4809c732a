//! Runs a mutating request at most once per `idempotency-ref`.
//!
//! The reference is *claimed* by a conditional write before anything runs, so two retries
//! arriving together cannot both run. A final 2xx, 400 or 409 is kept; anything else (401,
//! 403, 429, 5xx) drops the claim so that the caller's retry runs again.
//!
//! The request's deadline cuts the claim and the work (a cut is a 503, and drops the claim),
//! never the recording of their answer: once an SMS has gone out, cutting the write that
//! keeps its 204 would answer 503 and hold the reference for its lease, after which the
//! caller's retry sends a second SMS. Recording has its own budget instead
//! (`RECORDING_BUDGET`); if that runs out too, the work's answer is still the answer.

use std::future::Future;

use crate::handlers::{
    reply::{ApiError, ErrorCode, Reply},
    Caller,
};
use crate::{
    app::App,
    domain::{idempotency::IdempotencyRef, ids::LeaseId},
    store::ClaimOutcome,
};

pub async fn run_once<F>(
    app: &App,
    caller: &Caller,
    reference: Option<IdempotencyRef>,
    fingerprint: &str,
    deadline: tokio::time::Instant,
    work: F,
) -> Result<Reply, ApiError>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    let Some(reference) = reference else {
        return super::until(deadline, work).await;
    };
    let lease = LeaseId::new(crate::handlers::new_id(&app.context)?);
    let claimed = super::until(deadline, async {
        Ok(app
            .store
            .claim_idempotency(&caller.user, &reference, fingerprint, &lease, caller.now)
            .await?)
    })
    .await?;
    match claimed {
        ClaimOutcome::Claimed => {}
        ClaimOutcome::Replay(stored) => {
            tracing::info!(status = stored.status, "idempotent replay");
            return Ok(Reply::replayed(&stored));
        }
        ClaimOutcome::Mismatch => return Err(ApiError::IdempotencyMismatch),
        ClaimOutcome::InProgress => {
            return Err(ApiError::Conflict(ErrorCode::IdempotentRequestInProgress))
        }
    }
    let result = super::until(deadline, work).await;
    let reply = match &result {
        Ok(reply) => reply.clone(),
        Err(error) => error.to_reply(),
    };
    if reply.is_kept() {
        let stored = reply.to_stored();
        let kept = app.store.complete_idempotency(
            &caller.user,
            &reference,
            &lease,
            &stored,
            app.clock.now(),
        );
        within_recording_budget(kept, "the response could not be kept for replay").await;
    } else {
        let released = app
            .store
            .release_idempotency(&caller.user, &reference, &lease);
        within_recording_budget(released, "the idempotency claim could not be released").await;
    }
    result
}

/// Runs a write that records the outcome, for at most `RECORDING_BUDGET`; a failure (or
/// running out of time) is logged as `what`, and changes nothing the caller is told.
async fn within_recording_budget(
    write: impl Future<Output = Result<(), crate::store::StoreError>>,
    what: &str,
) {
    match tokio::time::timeout(crate::aws::RECORDING_BUDGET, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), "{what}");
        }
        Err(_) => tracing::warn!("{what}: out of time"),
    }
}
