//! Step-up challenges and grants, in memory.
use super::*;

#[async_trait]
impl StepUps for MemoryStore {
    async fn start_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<StepUpStart, StoreError> {
        let mut tables = self.begin("start_step_up_sms")?;
        tables.sweep(now);
        let registered = tables
            .factors
            .get(&(user.clone(), Channel::Sms))
            .is_some_and(|f| {
                f.status == FactorStatus::Active
                    && f.phone_hash.as_deref() == Some(challenge.phone_hash.as_str())
            });
        if !registered {
            return Ok(StepUpStart::NotRegistered);
        }
        let slot = (user.clone(), ChallengeSlot::StepUp(session.clone()));
        if tables
            .challenges
            .get(&slot)
            .is_some_and(|c| c.created_at > now - RETRY_WAIT_SECS)
        {
            return Ok(StepUpStart::TooSoon);
        }
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(StepUpStart::Limited(full));
        }
        tables.consume(counters, now);
        tables.challenges.insert(
            slot,
            Challenge {
                stored: challenge.clone(),
                attempts: 0,
                counted: Vec::new(),
                created_at: now,
            },
        );
        Ok(StepUpStart::Started)
    }

    async fn complete_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge_id: &ChallengeId,
        grant: &StepUpGrant,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("complete_step_up_sms")?;
        let slot = (user.clone(), ChallengeSlot::StepUp(session.clone()));
        let grant_key = (user.clone(), session.clone());
        if tables
            .challenges
            .get(&slot)
            .is_none_or(|c| c.stored.challenge_id != *challenge_id)
        {
            return Ok(tables
                .grants
                .get(&grant_key)
                .is_some_and(|g| g.verified_by == grant.verified_by));
        }
        tables.challenges.remove(&slot);
        tables.grants.insert(grant_key, grant.clone());
        Ok(true)
    }

    async fn step_up_grant(
        &self,
        user: &UserKey,
        session: &SessionId,
    ) -> Result<Option<StepUpGrant>, StoreError> {
        Ok(self
            .begin("step_up_grant")?
            .grants
            .get(&(user.clone(), session.clone()))
            .cloned())
    }

    async fn put_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        answer: Option<&NewChallenge>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("put_push_challenge")?;
        match answer {
            Some(answer) => tables.put_challenge(
                user,
                ChallengeSlot::DeviceAnswer(challenge.id.clone()),
                answer,
                now,
            ),
            None => {
                tables.push_requests.insert(
                    challenge.request_id.clone(),
                    PushRequest {
                        user: user.clone(),
                        purpose: PushPurpose::StepUp(challenge.id.clone()),
                    },
                );
            }
        }
        tables
            .push_challenges
            .insert((user.clone(), challenge.id.clone()), challenge.clone());
        Ok(())
    }

    async fn get_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PushChallenge>, StoreError> {
        Ok(self
            .begin("get_push_challenge")?
            .push_challenges
            .get(&(user.clone(), id.to_owned()))
            .cloned())
    }

    async fn settle_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        grant: Option<&StepUpGrant>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("settle_push_challenge")?;
        let factor_active = tables
            .factors
            .get(&(user.clone(), challenge.channel))
            .is_some_and(|f| f.status == FactorStatus::Active);
        let answer = (
            user.clone(),
            ChallengeSlot::DeviceAnswer(challenge.id.clone()),
        );
        let answer_kept =
            challenge.channel != Channel::Biometric || tables.challenges.contains_key(&answer);
        let key = (user.clone(), challenge.id.clone());
        let Some(stored) = tables.push_challenges.get_mut(&key) else {
            return Ok(false);
        };
        if !factor_active
            || !answer_kept
            || stored.status != ChallengeStatus::Pending
            || now >= stored.expires_at
        {
            return Ok(false);
        }
        stored.status = match grant {
            Some(_) => ChallengeStatus::Verified,
            None => ChallengeStatus::Declined,
        };
        let session = stored.session.clone();
        tables.challenges.remove(&answer);
        if let Some(grant) = grant {
            tables.grants.insert((user.clone(), session), grant.clone());
        }
        Ok(true)
    }

    async fn expire_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("expire_push_challenge")?;
        match tables
            .push_challenges
            .get_mut(&(user.clone(), id.to_owned()))
        {
            Some(c) if c.status == ChallengeStatus::Pending => {
                c.status = ChallengeStatus::Expired;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
