//! Runs a mutating request at most once per `idempotency-ref`.
//!
//! The reference is *claimed* by a conditional write before anything runs, so two retries
//! arriving together cannot both run. A final 2xx, 400 or 409 is kept; anything else (401,
//! 403, 429, 5xx) drops the claim so that the caller's retry runs again.

use std::future::Future;

use super::{
    response::{ApiError, ErrorCode, Reply},
    Caller,
};
use crate::{
    app::App,
    domain::{idempotency::IdempotencyRef, otp::random_id},
    store::ClaimOutcome,
};

pub async fn run_once<F>(
    app: &App,
    caller: &Caller,
    reference: Option<IdempotencyRef>,
    fingerprint: &str,
    work: F,
) -> Result<Reply, ApiError>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    let Some(reference) = reference else {
        return work.await;
    };
    let lease = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
    match app
        .store
        .claim_idempotency(&caller.user, &reference, fingerprint, &lease, caller.now)
        .await?
    {
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
    let result = work.await;
    let reply = match &result {
        Ok(reply) => reply.clone(),
        Err(error) => error.to_reply(),
    };
    if reply.is_kept() {
        let kept = app
            .store
            .complete_idempotency(
                &caller.user,
                &reference,
                &lease,
                &reply.to_stored(),
                app.clock.now(),
            )
            .await;
        if let Err(error) = kept {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), "the response could not be kept for replay");
        }
    } else if let Err(error) = app
        .store
        .release_idempotency(&caller.user, &reference, &lease)
        .await
    {
        tracing::warn!(error = %crate::logging::redacted_chain(&error), "the idempotency claim could not be released");
    }
    result
}
