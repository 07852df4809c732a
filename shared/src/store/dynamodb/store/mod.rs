//! The store's roles (`crate::store`) on DynamoDB: each method one conditional write or one
//! transaction of the schema's writes; a refused condition's item says why, without a read.

mod claims;
mod devices;
mod enrolments;
mod idempotency;
mod payments;
mod push;
mod step_ups;

use self::claims::{claim_outcome, claim_refusal};

use async_trait::async_trait;

use super::{
    executor::{Returns, Written},
    schema, DynamoStore,
};
use crate::{
    domain::{
        challenge::{attempt_verdict, AttemptVerdict},
        channel::Channel,
        factor::FactorRecord,
        idempotency::IdempotencyRef,
        ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
        payment::PaymentChallenge,
        programme::Programme,
        send_limits::LimitCounter,
        step_up::{ChallengeStatus, PushChallenge, SessionId},
    },
    store::{
        Activation, AttemptOutcome, Callbacks, ChallengeSlot, ClaimOutcome, ClaimRecord, Codes,
        CountedAttempt, Counters, DeviceStart, Devices, FactorReads, IdempotencyRecords,
        NewChallenge, PaymentOutcome, PaymentStart, Payments, PendingPush, Programmes,
        PushEnrolments, PushPurpose, PushRequest, ReserveOutcome, Seeding, SmsEnrolments,
        StartOutcome, StepUpGrant, StepUpStart, StepUps, StoreError, StoredResponse, Unlinking,
        UserKey,
    },
};

/// The outcome of a transaction that consumes counters after `leading` other writes.
fn limited(failed: &[usize], leading: usize) -> Vec<usize> {
    failed
        .iter()
        .filter(|&&i| i >= leading)
        .map(|&i| i - leading)
        .collect()
}

#[async_trait]
impl Programmes for DynamoStore {
    async fn find_programme(&self, api_key_hash: &str) -> Result<Option<Programme>, StoreError> {
        self.get(
            "find_programme",
            &schema::programme_key(api_key_hash),
            false,
        )
        .await?
        .map(|item| schema::programme_from_item(&item))
        .transpose()
    }
}

#[async_trait]
impl Seeding for DynamoStore {
    async fn put_programme(
        &self,
        api_key_hash: &str,
        programme: &Programme,
    ) -> Result<(), StoreError> {
        self.write(
            "put_programme",
            schema::put_programme(api_key_hash, programme)?,
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }

    async fn put_factor(&self, user: &UserKey, factor: &FactorRecord) -> Result<(), StoreError> {
        self.write(
            "put_factor",
            schema::put_factor(user, factor),
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl FactorReads for DynamoStore {
    async fn list_factors(&self, user: &UserKey) -> Result<Vec<FactorRecord>, StoreError> {
        const OP: &str = "list_factors";
        // A user's partition holds a few factors: one page.
        let output = self
            .query(OP, &schema::list_factors_query(user), None)
            .await?;
        output
            .items()
            .iter()
            .map(schema::factor_from_item)
            .collect()
    }

    async fn get_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        self.get("get_factor", &schema::factor_key(user, channel), true)
            .await?
            .map(|item| schema::factor_from_item(&item))
            .transpose()
    }
}
