//! Runs a mutating request at most once per `idempotency-ref`.
//!
//! The reference is *claimed* by a conditional write before anything runs (`claim_once`), or
//! by the route's own first write (`run_riding`, for a route with `Handler::CLAIM_RIDES`: one
//! round trip fewer), so two retries arriving together cannot both run. A final 2xx, 400 or
//! 409 is kept; anything else (401, 403, 429, 5xx) drops the claim so that the caller's retry
//! runs again.
//!
//! The request's deadline cuts the claim and the work (a cut is a 503, and drops the claim),
//! never the recording of their answer: once an SMS has gone out, cutting the write that
//! keeps its 204 would answer 503 and hold the reference for its lease, after which the
//! caller's retry sends a second SMS. Recording has its own budget instead
//! (`RECORDING_BUDGET`); if that runs out too, the work's answer is still the answer.

use std::future::Future;

use crate::handlers::{
    claim::{self, Claim, ClaimState},
    reply::{ApiError, Reply},
    Caller,
};
use crate::{
    app::App,
    domain::{idempotency::IdempotencyRef, ids::LeaseId},
    store::ClaimOutcome,
};

/// What claiming a reference before the work runs decided.
pub enum Once {
    /// Run the work; then `finish_once` keeps its answer under the claim, if any.
    Run(Option<(IdempotencyRef, LeaseId)>),
    /// The reference answers: a kept response again, or 409 while its first request runs.
    Answered(Result<Reply, ApiError>),
    /// The reference holds another operation, target or body: 400, after the route's
    /// `Handler::mismatched`.
    Mismatch,
}

/// Claims `reference` (if any) by a conditional write before the work runs.
pub async fn claim_once(
    app: &App,
    caller: &Caller,
    reference: Option<IdempotencyRef>,
    fingerprint: &str,
    deadline: tokio::time::Instant,
) -> Result<Once, ApiError> {
    let Some(reference) = reference else {
        return Ok(Once::Run(None));
    };
    let lease = LeaseId::new(crate::handlers::new_id(&app.context)?);
    let claimed = super::until(deadline, async {
        Ok(app
            .store
            .claim_idempotency(&caller.user, &reference, fingerprint, &lease, caller.now)
            .await?)
    })
    .await?;
    Ok(match claimed {
        ClaimOutcome::Claimed => Once::Run(Some((reference, lease))),
        ClaimOutcome::Mismatch => Once::Mismatch,
        other => Once::Answered(claim::answer(other).unwrap_or_else(|| {
            Err(ApiError::Internal(
                "a claim was neither taken nor refused".into(),
            ))
        })),
    })
}

/// Keeps the answer of work run under a claim of `claim_once` (or drops the claim).
pub async fn finish_once(
    app: &App,
    caller: &Caller,
    claim: Option<(IdempotencyRef, LeaseId)>,
    result: &Result<Reply, ApiError>,
) {
    if let Some((reference, lease)) = claim {
        settle(app, caller, &reference, &lease, result).await;
    }
}

/// Runs a route whose own write carries the claim (`handlers::claim`), then records what the
/// handler's writes did not: the answer of a claim written in progress (or its release), or,
/// when no write took the claim, a final record in one conditional put, whose refusal means
/// an earlier request with the reference answered first, and its answer is the answer. An
/// attempt on a code that the request counted before it learnt the reference holds another
/// body stays counted: a code is never compared without being counted.
pub async fn run_riding<F>(
    app: &App,
    caller: &Caller,
    claim: &Claim,
    deadline: tokio::time::Instant,
    work: F,
) -> Result<Reply, ApiError>
where
    F: Future<Output = claim::Ridden>,
{
    // Cut by the deadline, the handler hands back nothing: unwritten, as far as we know (a
    // 503's claim is then dropped only if it is ours and unanswered).
    let claim::Ridden {
        result,
        claim: state,
    } = tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| claim::Ridden::unwritten(Err(super::out_of_time())));
    let reply = reply_of(&result);
    let result = match state {
        ClaimState::Final | ClaimState::Refused => result,
        ClaimState::InProgress => {
            settle(app, caller, claim.reference(), claim.lease_id(), &result).await;
            result
        }
        ClaimState::Unwritten if reply.is_kept() => {
            let record = claim.with_answer(&reply);
            let kept = app
                .store
                .keep_idempotency(&caller.user, &record, app.clock.now());
            match within_recording_budget(kept, "the response could not be kept for replay").await {
                Some(outcome) => claim::answer(outcome).unwrap_or(result),
                None => result,
            }
        }
        ClaimState::Unwritten => {
            if reply.status >= 500 {
                // Cut (or failed) while its write was under way: that write may have committed
                // the claim. Dropping it (only if ours and unanswered) is a no-op otherwise.
                let released = app.store.release_idempotency(
                    &caller.user,
                    claim.reference(),
                    claim.lease_id(),
                );
                within_recording_budget(released, "the idempotency claim could not be released")
                    .await;
            }
            result
        }
    };
    result
}

fn reply_of(result: &Result<Reply, ApiError>) -> Reply {
    match result {
        Ok(reply) => reply.clone(),
        Err(error) => error.to_reply(),
    }
}

/// Keeps a claimed request's answer, or drops the claim when the answer is not kept.
async fn settle(
    app: &App,
    caller: &Caller,
    reference: &IdempotencyRef,
    lease: &LeaseId,
    result: &Result<Reply, ApiError>,
) {
    let reply = reply_of(result);
    if reply.is_kept() {
        let stored = reply.to_stored();
        let kept = app.store.complete_idempotency(
            &caller.user,
            reference,
            lease,
            &stored,
            app.clock.now(),
        );
        within_recording_budget(kept, "the response could not be kept for replay").await;
    } else {
        let released = app
            .store
            .release_idempotency(&caller.user, reference, lease);
        within_recording_budget(released, "the idempotency claim could not be released").await;
    }
}

/// Runs a write that records the outcome, for at most `RECORDING_BUDGET`; a failure (or
/// running out of time) is logged as `what`, changes nothing the caller is told, and is `None`.
async fn within_recording_budget<T>(
    write: impl Future<Output = Result<T, crate::store::StoreError>>,
    what: &str,
) -> Option<T> {
    match tokio::time::timeout(crate::aws::RECORDING_BUDGET, write).await {
        Ok(Ok(done)) => Some(done),
        Ok(Err(error)) => {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), "{what}");
            None
        }
        Err(_) => {
            tracing::warn!("{what}: out of time");
            None
        }
    }
}
