//! Payment challenges, in memory.
use super::*;

#[async_trait]
impl Payments for MemoryStore {
    async fn payment_by_reference(
        &self,
        user: &UserKey,
        reference: &str,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        let tables = self.begin("payment_by_reference")?;
        Ok(tables
            .payment_references
            .get(&(user.clone(), reference.to_owned()))
            .and_then(|id| tables.payments.get(&(user.clone(), id.clone())))
            .cloned())
    }

    async fn get_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        Ok(self
            .begin("get_payment")?
            .payments
            .get(&(user.clone(), id.to_owned()))
            .cloned())
    }

    async fn start_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code: Option<&NewChallenge>,
        replaces: Option<&ChallengeId>,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<PaymentStart, StoreError> {
        let mut tables = self.begin("start_payment")?;
        tables.sweep(now);
        let sms = challenge.channel == Channel::Sms;
        if let Some(code) = code.filter(|_| sms) {
            let registered = tables
                .factors
                .get(&(user.clone(), Channel::Sms))
                .is_some_and(|f| {
                    f.status == FactorStatus::Active
                        && f.phone_hash.as_deref() == Some(code.phone_hash.as_str())
                });
            if !registered {
                return Ok(PaymentStart::NotRegistered);
            }
        }
        let reference = (user.clone(), challenge.payment.reference.clone());
        let holder = tables.payment_references.get(&reference);
        if holder.is_some_and(|held| Some(held) != replaces) {
            return Ok(PaymentStart::ReferenceTaken);
        }
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(PaymentStart::Limited(full));
        }
        tables.consume(counters, now);
        tables
            .payment_references
            .insert(reference, challenge.id.clone());
        tables
            .payments
            .insert((user.clone(), challenge.id.clone()), challenge.clone());
        if let Some(code) = code {
            let slot = if sms {
                ChallengeSlot::Payment(challenge.id.clone())
            } else {
                ChallengeSlot::DeviceAnswer(challenge.id.clone())
            };
            tables.put_challenge(user, slot, code, now);
        }
        if let Some(request_id) = challenge.request_id.as_ref().filter(|_| code.is_none()) {
            tables.push_requests.insert(
                request_id.clone(),
                PushRequest {
                    user: user.clone(),
                    purpose: PushPurpose::Payment(challenge.id.clone()),
                },
            );
        }
        Ok(PaymentStart::Started)
    }

    async fn abandon_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("abandon_payment")?;
        let slot = (user.clone(), ChallengeSlot::Payment(challenge.id.clone()));
        if tables
            .challenges
            .get(&slot)
            .is_some_and(|c| c.stored.challenge_id == *code_id)
        {
            tables.challenges.remove(&slot);
        }
        let reference = (user.clone(), challenge.payment.reference.clone());
        if tables.payment_references.get(&reference) == Some(&challenge.id) {
            tables.payment_references.remove(&reference);
        }
        tables
            .payments
            .remove(&(user.clone(), challenge.id.clone()));
        for c in counters {
            if let Some((count, _)) = tables.counters.get_mut(&c.id) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn finish_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
        outcome: &PaymentOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("finish_payment")?;
        if let Some(channel) = outcome.require_factor {
            let active = tables
                .factors
                .get(&(user.clone(), channel))
                .is_some_and(|f| f.status == FactorStatus::Active);
            if !active {
                return Ok(false);
            }
        }
        if let Some((slot, code)) = &outcome.consume_code {
            if tables
                .challenges
                .get(&(user.clone(), slot.clone()))
                .is_none_or(|c| &c.stored.challenge_id != code)
            {
                return Ok(false);
            }
        }
        let Some(payment) = tables.payments.get_mut(&(user.clone(), id.to_owned())) else {
            return Ok(false);
        };
        if payment.status != ChallengeStatus::Pending || now >= payment.expires_at {
            return Ok(false);
        }
        match &outcome.verified {
            Some(proof) => {
                payment.status = ChallengeStatus::Verified;
                payment.proof = Some(proof.proof.clone());
                payment.verified_by = Some(proof.verified_by.clone());
            }
            None => payment.status = ChallengeStatus::Declined,
        }
        if let Some((slot, _)) = &outcome.consume_code {
            tables.challenges.remove(&(user.clone(), slot.clone()));
        }
        Ok(true)
    }
}
