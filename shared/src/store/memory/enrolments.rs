//! SMS enrolment, codes and their attempts, and the send-limit counters, in memory.
use super::*;

#[async_trait]
impl SmsEnrolments for MemoryStore {
    async fn start_sms_challenge_claiming(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        let mut tables = self.begin("start_sms_challenge")?;
        tables.sweep(now);
        if let Some(outcome) = claim.and_then(|c| tables.refusal(user, c, now)) {
            return Ok(StartOutcome::Unclaimed(outcome));
        }
        let key = (user.clone(), Channel::Sms);
        if let Some(f) = tables.factors.get(&key) {
            if f.status == FactorStatus::Active
                && f.phone_hash.as_deref() == Some(challenge.phone_hash.as_str())
            {
                return Ok(StartOutcome::AlreadyRegistered);
            }
        }
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(StartOutcome::Limited(full));
        }
        tables.consume(counters, now);
        tables.challenges.insert(
            (user.clone(), ChallengeSlot::Enrolment),
            Challenge {
                stored: challenge.clone(),
                attempts: 0,
                counted: Vec::new(),
                created_at: now,
            },
        );
        let factor = tables.factors.entry(key).or_insert_with(|| FactorRecord {
            channel: Channel::Sms,
            status: FactorStatus::PendingVerification,
            phone_hash: None,
            provider_ref: None,
            pending_request: None,
            verified_by: None,
            updated_at: now,
            device: None,
        });
        factor.status = FactorStatus::PendingVerification;
        factor.updated_at = now;
        if let Some(claim) = claim {
            tables.record(user, claim, now);
        }
        Ok(StartOutcome::Started)
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
        let mut tables = self.begin("activate_sms_factor")?;
        if let Some(outcome) = claim.and_then(|c| tables.refusal(user, c, now)) {
            return Ok(Activation::Unclaimed(outcome));
        }
        let slot = (user.clone(), ChallengeSlot::Enrolment);
        let current = tables.challenges.get(&slot);
        if !current.is_some_and(|c| {
            c.stored.challenge_id == *challenge_id && c.stored.phone_hash == *phone_hash
        }) {
            let factor = tables.factors.get(&(user.clone(), Channel::Sms));
            return Ok(
                if factor.is_some_and(|f| f.is_verified_by(attempt_id.as_str())) {
                    Activation::Activated
                } else {
                    Activation::Refused
                },
            );
        }
        if let Some(claim) = claim {
            tables.record(user, claim, now);
        }
        let phone_hash = phone_hash.as_str().to_owned();
        tables.challenges.remove(&slot);
        tables.factors.insert(
            (user.clone(), Channel::Sms),
            FactorRecord {
                channel: Channel::Sms,
                status: FactorStatus::Active,
                phone_hash: Some(phone_hash),
                provider_ref: None,
                pending_request: None,
                verified_by: Some(attempt_id.as_str().to_owned()),
                updated_at: now,
                device: None,
            },
        );
        Ok(Activation::Activated)
    }
}

#[async_trait]
impl Codes for MemoryStore {
    async fn abandon_challenge(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        challenge_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("abandon_challenge")?;
        let key = (user.clone(), slot.clone());
        if tables
            .challenges
            .get(&key)
            .is_some_and(|c| c.stored.challenge_id == *challenge_id)
        {
            tables.challenges.remove(&key);
        }
        for c in counters {
            if let Some((count, _)) = tables.counters.get_mut(&c.id) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn count_attempt(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError> {
        let mut tables = self.begin("count_sms_attempt")?;
        let Some(challenge) = tables.challenges.get_mut(&(user.clone(), slot.clone())) else {
            return Ok(AttemptOutcome::NoChallenge);
        };
        let counted = |challenge: &Challenge| {
            AttemptOutcome::Counted(CountedAttempt {
                challenge_id: challenge.stored.challenge_id.clone(),
                code_hash: challenge.stored.code_hash.clone(),
                attempts: challenge.attempts,
                limit: challenge.stored.wrong_code_limit,
            })
        };
        match attempt_verdict(
            challenge.stored.phone_hash == *phone_hash,
            challenge.counted.contains(attempt_id),
            challenge.attempts,
            challenge.stored.wrong_code_limit,
            challenge.stored.expires_at,
            now,
        ) {
            AttemptVerdict::NotThisPhone => Ok(AttemptOutcome::NoChallenge),
            AttemptVerdict::CountedBefore => Ok(counted(challenge)),
            AttemptVerdict::Dead => Ok(AttemptOutcome::Dead),
            AttemptVerdict::Expired => Ok(AttemptOutcome::Expired),
            AttemptVerdict::Countable => {
                challenge.attempts += 1;
                challenge.counted.push(attempt_id.clone());
                Ok(counted(challenge))
            }
        }
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn refund_counters(&self, counters: &[LimitCounter]) -> Result<(), StoreError> {
        let mut tables = self.begin("refund_counters")?;
        for c in counters {
            if let Some((count, _)) = tables.counters.get_mut(&c.id) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn consume_counters(
        &self,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        let mut tables = self.begin("consume_counters")?;
        tables.sweep(now);
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(Err(full));
        }
        tables.consume(counters, now);
        Ok(Ok(()))
    }
}
