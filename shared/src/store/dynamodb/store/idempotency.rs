//! Idempotency records, on DynamoDB.
use super::*;

#[async_trait]
impl IdempotencyRecords for DynamoStore {
    async fn claim_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        fingerprint: &str,
        lease_id: &LeaseId,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        const OP: &str = "claim_idempotency";
        let write = schema::claim_idempotency(user, reference, fingerprint, lease_id, now);
        let old = match self.write(OP, write, Returns::Nothing).await? {
            Written::Done(_) => return Ok(ClaimOutcome::Claimed),
            Written::Refused(old) => old,
        };
        claim_outcome(old, lease_id, fingerprint)
    }

    async fn keep_idempotency(
        &self,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let write = schema::idempotency_record(user, record, now);
        match self
            .write("keep_idempotency", write, Returns::Nothing)
            .await?
        {
            Written::Done(_) => Ok(ClaimOutcome::Claimed),
            Written::Refused(old) => claim_outcome(old, &record.lease_id, &record.fingerprint),
        }
    }

    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError> {
        let write = schema::complete_idempotency(user, reference, lease_id, response, now);
        self.write("complete_idempotency", write, Returns::Nothing)
            .await?;
        Ok(())
    }

    async fn release_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
    ) -> Result<(), StoreError> {
        self.write(
            "release_idempotency",
            schema::release_idempotency(user, reference, lease_id),
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }
}
