//! The idempotency claim a route carries in its own first write.
//!
//! Most routes claim an `idempotency-ref` with a write of its own before they run
//! (`http::idempotency::claim_once`). A route whose state change is one write it controls
//! (`Handler::CLAIM_RIDES`) carries the claim *in* that write instead — a transaction item, or
//! the final record beside the change it answers — so an idempotent request costs no extra
//! round trip. The handler hands back, with its answer, what became of the claim
//! (`Ridden`: by value, nothing shared); the pipeline then keeps the answer, drops the claim,
//! or keeps nothing (`http::idempotency::run_riding`). A handler cut by the deadline hands
//! back nothing: the claim counts as unwritten, and a 503's claim is dropped only if it is
//! ours and unanswered, which is what it would have been had the state been kept.

use super::reply::{ApiError, ErrorCode, Reply};
use crate::{
    domain::{idempotency::IdempotencyRef, ids::LeaseId},
    store::{ClaimOutcome, ClaimRecord},
};

/// What became of a riding claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// No write carried it (or none committed): the pipeline writes the answer, if kept.
    Unwritten,
    /// Written in progress: the pipeline keeps the answer, or drops the claim.
    InProgress,
    /// Written with the answer: nothing left to do.
    Final,
    /// A live record held the reference: the handler answered what it says.
    Refused,
}

/// The claim a request's own write may carry: its record, read-only.
pub struct Claim {
    record: ClaimRecord,
}

impl Claim {
    pub fn new(reference: IdempotencyRef, fingerprint: String, lease_id: LeaseId) -> Self {
        Self {
            record: ClaimRecord {
                reference,
                fingerprint,
                lease_id,
                response: None,
            },
        }
    }

    pub fn reference(&self) -> &IdempotencyRef {
        &self.record.reference
    }

    pub fn lease_id(&self) -> &LeaseId {
        &self.record.lease_id
    }

    /// The record a write carries while the request still runs (held for its lease).
    pub fn in_progress(&self) -> &ClaimRecord {
        &self.record
    }

    /// The record with the request's answer, for a write after which nothing can fail.
    pub fn with_answer(&self, reply: &Reply) -> ClaimRecord {
        ClaimRecord {
            response: Some(reply.to_stored()),
            ..self.record.clone()
        }
    }
}

/// A riding handler's answer, and what became of the claim its write carried.
pub struct Ridden {
    pub result: Result<Reply, ApiError>,
    pub claim: ClaimState,
}

impl Ridden {
    /// An answer whose claim no write carried.
    pub fn unwritten(result: Result<Reply, ApiError>) -> Self {
        Self {
            result,
            claim: ClaimState::Unwritten,
        }
    }
}

/// The answer when a write was refused for the claim it carried: the live record's.
pub fn refused_answer(outcome: ClaimOutcome) -> Result<Reply, ApiError> {
    answer(outcome).unwrap_or_else(|| {
        // Only a record of ours refuses nothing; a write does not report it as refused.
        Err(ApiError::Conflict(ErrorCode::IdempotentRequestInProgress))
    })
}

/// The answer a claim's outcome gives, when it is not "claimed, run": the kept answer again,
/// 400 for another operation or body, 409 while the first request still runs.
pub fn answer(outcome: ClaimOutcome) -> Option<Result<Reply, ApiError>> {
    match outcome {
        ClaimOutcome::Claimed => None,
        ClaimOutcome::Replay(stored) => {
            tracing::info!(status = stored.status, "idempotent replay");
            Some(Ok(Reply::replayed(&stored)))
        }
        ClaimOutcome::Mismatch => Some(Err(ApiError::IdempotencyMismatch)),
        ClaimOutcome::InProgress => Some(Err(ApiError::Conflict(
            ErrorCode::IdempotentRequestInProgress,
        ))),
    }
}
