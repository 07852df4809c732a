//! Idempotency records, in memory.
use super::*;

impl MemoryStore {
    /// A claim's conditional put: written unless a live record of another request holds the
    /// reference.
    fn put_record(
        &self,
        operation: &'static str,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.begin(operation)?;
        if let Some(outcome) = tables.refusal(user, record, now) {
            return Ok(outcome);
        }
        tables.record(user, record, now);
        Ok(ClaimOutcome::Claimed)
    }
}

#[async_trait]
impl IdempotencyRecords for MemoryStore {
    async fn claim_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        fingerprint: &str,
        lease_id: &LeaseId,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let record = ClaimRecord {
            reference: reference.clone(),
            fingerprint: fingerprint.to_owned(),
            lease_id: lease_id.clone(),
            response: None,
        };
        self.put_record("claim_idempotency", user, &record, now)
    }

    async fn keep_idempotency(
        &self,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.put_record("keep_idempotency", user, record, now)
    }

    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("complete_idempotency")?;
        if let Some(record) = tables
            .idempotency
            .get_mut(&(user.clone(), reference.as_str().to_owned()))
            .filter(|r| r.lease_id == *lease_id)
        {
            record.response = Some(response.clone());
            record.expires_at = now + KEEP_SECS;
        }
        Ok(())
    }

    async fn release_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("release_idempotency")?;
        let key = (user.clone(), reference.as_str().to_owned());
        if tables
            .idempotency
            .get(&key)
            .is_some_and(|r| r.lease_id == *lease_id && r.response.is_none())
        {
            tables.idempotency.remove(&key);
        }
        Ok(())
    }
}
