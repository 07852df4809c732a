//! A riding idempotency claim's refusal: what the live record under its reference says.
use super::*;

/// Why a transaction's riding claim (at `at`) was refused, if it was: what the live record
/// under the reference says. Checked before any other refusal, as a separate claim would be.
pub(super) fn claim_refusal(
    claim: Option<&ClaimRecord>,
    at: usize,
    refused: &[(usize, Option<schema::Item>)],
) -> Result<Option<ClaimOutcome>, StoreError> {
    let Some(claim) = claim else {
        return Ok(None);
    };
    let Some((_, old)) = refused.iter().find(|(i, _)| *i == at) else {
        return Ok(None);
    };
    Ok(Some(claim_outcome(
        old.clone(),
        &claim.lease_id,
        &claim.fingerprint,
    )?))
}

/// What the record that refused a claim says (`None`: the record DynamoDB did not return;
/// "in progress" is then the safe answer, the caller retries).
pub(super) fn claim_outcome(
    old: Option<schema::Item>,
    lease_id: &LeaseId,
    fingerprint: &str,
) -> Result<ClaimOutcome, StoreError> {
    let Some(record) = old.filter(|item| !item.is_empty()) else {
        return Ok(ClaimOutcome::InProgress);
    };
    let record = schema::idempotency_from_item(&record)?;
    Ok(ClaimOutcome::of_record(
        lease_id,
        fingerprint,
        record.lease_id.as_deref(),
        &record.fingerprint,
        record.response,
    ))
}

impl DynamoStore {
    /// A transaction carrying a claim failed without a verdict (a conflict with another
    /// transaction, throttling, the network). If a live record of *another* request holds the
    /// reference, the claim could not have been taken: what that record says ("in progress",
    /// its kept answer) is the answer, not a 503. Otherwise the original error.
    pub(super) async fn claim_after_failure(
        &self,
        user: &UserKey,
        claim: Option<&ClaimRecord>,
        error: StoreError,
    ) -> Result<ClaimOutcome, StoreError> {
        let Some(claim) = claim else {
            return Err(error);
        };
        let key = schema::idempotency_key(user, &claim.reference);
        let Ok(Some(item)) = self.get("read_idempotency", &key, true).await else {
            return Err(error);
        };
        match claim_outcome(Some(item), &claim.lease_id, &claim.fingerprint)? {
            // Ours (the transaction committed after all, its answer lost): not knowable here
            // which answer it had; the caller's retry replays or runs again.
            ClaimOutcome::Claimed => Err(error),
            outcome => Ok(outcome),
        }
    }
}
