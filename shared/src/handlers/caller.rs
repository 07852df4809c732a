//! The authenticated caller of one request, as the pipeline hands it to a handler, and what
//! it knows of the request's riding idempotency claim.

use std::sync::Arc;

use super::{
    claim,
    reply::{ApiError, Reply},
};
use crate::{
    domain::{phone::TokenPhone, programme::Programme, step_up::SessionId},
    store::{ClaimOutcome, ClaimRecord, UserKey},
};

/// The authenticated caller of one request.
pub struct Caller {
    pub programme: Arc<Programme>,
    pub user: UserKey,
    /// The token's phone, hashed once for the request.
    pub phone: TokenPhone,
    pub stepped_up: bool,
    /// The token's session (what a step-up challenge steps up) and its `exp`.
    pub session: SessionId,
    pub token_exp: i64,
    /// The request's clock, read once.
    pub now: i64,
    /// The `idempotency-ref` claim this request's own write carries, when its route lets the
    /// claim ride (`Handler::CLAIM_RIDES`) and the request has a reference.
    pub claim: Option<claim::Claim>,
}

impl Caller {
    /// The in-progress record a write carries, if the claim rides (see `claim`).
    pub fn claim_in_progress(&self) -> Option<&ClaimRecord> {
        self.claim.as_ref().map(claim::Claim::in_progress)
    }

    /// The record with `answer`, for a write after which nothing can fail.
    pub fn claim_with_answer(&self, answer: &Reply) -> Option<ClaimRecord> {
        self.claim.as_ref().map(|c| c.with_answer(answer))
    }

    /// A write was refused for its claim: the answer the live record gives.
    pub fn claim_refused(&self, outcome: ClaimOutcome) -> Result<Reply, ApiError> {
        match &self.claim {
            Some(_) => claim::refused_answer(outcome),
            None => claim::answer(outcome).unwrap_or_else(|| {
                Err(ApiError::Internal(
                    "a write without a claim was refused for one".into(),
                ))
            }),
        }
    }
}
