//! SMS enrolment, codes and their attempts, and the send-limit counters, on DynamoDB.
use super::*;

#[async_trait]
impl SmsEnrolments for DynamoStore {
    async fn start_sms_challenge_claiming(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        let mut writes = vec![
            schema::mark_sms_pending(user, &challenge.phone_hash, now),
            schema::put_challenge(user, &ChallengeSlot::Enrolment, challenge, now),
        ];
        writes.extend(counters.iter().map(schema::consume_counter));
        let claim_at = writes.len();
        writes.extend(claim.map(|record| schema::idempotency_record(user, record, now)));
        let refused = match self.transact_returning("start_sms_challenge", writes).await {
            Ok(Ok(())) => return Ok(StartOutcome::Started),
            Ok(Err(refused)) => refused,
            Err(error) => {
                return Ok(StartOutcome::Unclaimed(
                    self.claim_after_failure(user, claim, error).await?,
                ))
            }
        };
        if let Some(outcome) = claim_refusal(claim, claim_at, &refused)? {
            return Ok(StartOutcome::Unclaimed(outcome));
        }
        let failed: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
        Ok(if failed.contains(&0) {
            StartOutcome::AlreadyRegistered
        } else {
            StartOutcome::Limited(limited(&failed, 2))
        })
    }

    async fn activate_sms_factor_claiming(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<Activation, StoreError> {
        let mut writes = vec![
            schema::delete_challenge(user, &ChallengeSlot::Enrolment, challenge_id),
            schema::activate_sms(user, phone_hash, attempt_id, now),
        ];
        writes.extend(claim.map(|record| schema::idempotency_record(user, record, now)));
        let refused = match self.transact_returning("activate_sms_factor", writes).await {
            Ok(Ok(())) => return Ok(Activation::Activated),
            Ok(Err(refused)) => refused,
            Err(error) => {
                return Ok(Activation::Unclaimed(
                    self.claim_after_failure(user, claim, error).await?,
                ))
            }
        };
        if let Some(outcome) = claim_refusal(claim, 2, &refused)? {
            return Ok(Activation::Unclaimed(outcome));
        }
        // Refused: by a concurrent request, or by our own first try, committed, whose answer
        // was lost (DynamoDB also dedupes the SDK's resend by its ClientRequestToken).
        let factor = self.get_factor(user, Channel::Sms).await?;
        Ok(
            if factor.is_some_and(|f| f.is_verified_by(attempt_id.as_str())) {
                Activation::Activated
            } else {
                Activation::Refused
            },
        )
    }
}

#[async_trait]
impl Codes for DynamoStore {
    async fn abandon_challenge(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        challenge_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        self.write(
            "abandon_challenge",
            schema::delete_challenge(user, slot, challenge_id),
            Returns::Nothing,
        )
        .await?;
        self.refund(counters).await
    }

    async fn count_attempt(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError> {
        const OP: &str = "count_sms_attempt";
        let counted = |challenge: schema::ChallengeItem| {
            AttemptOutcome::Counted(CountedAttempt {
                challenge_id: challenge.challenge_id,
                code_hash: challenge.code_hash,
                attempts: challenge.attempts,
                limit: challenge.wrong_code_limit,
            })
        };
        let refused = match self
            .write(
                OP,
                schema::count_attempt(user, slot, phone_hash, attempt_id, now),
                Returns::New,
            )
            .await?
        {
            Written::Done(Some(item)) => return Ok(counted(schema::challenge_from_item(&item)?)),
            Written::Done(None) => {
                return Err(StoreError::Corrupt {
                    operation: OP,
                    detail: "no item returned".into(),
                })
            }
            Written::Refused(old) => old,
        };
        // Why was it refused? DynamoDB returns the item as it was; none means there is none.
        let Some(item) = refused.filter(|item| !item.is_empty()) else {
            return Ok(AttemptOutcome::NoChallenge);
        };
        let challenge = schema::challenge_from_item(&item)?;
        Ok(
            match attempt_verdict(
                challenge.phone_hash == *phone_hash,
                challenge.counted.contains(attempt_id),
                challenge.attempts,
                challenge.wrong_code_limit,
                challenge.expires_at,
                now,
            ) {
                AttemptVerdict::NotThisPhone => AttemptOutcome::NoChallenge,
                // Our own attempt, counted by a first try whose answer was lost: not again.
                AttemptVerdict::CountedBefore => counted(challenge),
                AttemptVerdict::Dead => AttemptOutcome::Dead,
                AttemptVerdict::Expired => AttemptOutcome::Expired,
                // Replaced between the write and the read: this request's challenge is gone.
                AttemptVerdict::Countable => AttemptOutcome::NoChallenge,
            },
        )
    }
}

#[async_trait]
impl Counters for DynamoStore {
    async fn refund_counters(&self, counters: &[LimitCounter]) -> Result<(), StoreError> {
        self.refund(counters).await
    }

    async fn consume_counters(
        &self,
        counters: &[LimitCounter],
        _now: i64,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        if counters.is_empty() {
            return Ok(Ok(()));
        }
        let writes = counters.iter().map(schema::consume_counter).collect();
        self.transact("consume_counters", writes).await
    }
}
