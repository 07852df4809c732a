//! Step-up challenges and grants, on DynamoDB.
use super::*;

#[async_trait]
impl StepUps for DynamoStore {
    async fn start_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<StepUpStart, StoreError> {
        let mut writes = vec![
            schema::sms_active_for(user, &challenge.phone_hash),
            schema::put_step_up_challenge(user, session, challenge, now),
        ];
        writes.extend(counters.iter().map(schema::consume_counter));
        // The contract's order: the factor (409), the wait (409), then the limits (429).
        match self.transact("start_step_up_sms", writes).await? {
            Ok(()) => Ok(StepUpStart::Started),
            Err(failed) if failed.contains(&0) => Ok(StepUpStart::NotRegistered),
            Err(failed) if failed.contains(&1) => Ok(StepUpStart::TooSoon),
            Err(failed) => Ok(StepUpStart::Limited(limited(&failed, 2))),
        }
    }

    async fn complete_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge_id: &ChallengeId,
        grant: &StepUpGrant,
    ) -> Result<bool, StoreError> {
        let writes = vec![
            schema::delete_challenge(user, &ChallengeSlot::StepUp(session.clone()), challenge_id),
            schema::put_grant(user, session, grant),
        ];
        if self.transact("complete_step_up_sms", writes).await?.is_ok() {
            return Ok(true);
        }
        // Refused: by a concurrent request, or by this attempt's own committed first try.
        let stored = self
            .get(
                "complete_step_up_sms",
                &schema::grant_key(user, session),
                true,
            )
            .await?
            .map(|item| schema::grant_from_item(&item))
            .transpose()?;
        Ok(stored.is_some_and(|g| g.verified_by == grant.verified_by))
    }

    async fn step_up_grant(
        &self,
        user: &UserKey,
        session: &SessionId,
    ) -> Result<Option<StepUpGrant>, StoreError> {
        self.get("step_up_grant", &schema::grant_key(user, session), true)
            .await?
            .map(|item| schema::grant_from_item(&item))
            .transpose()
    }

    async fn put_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        answer: Option<&NewChallenge>,
        now: i64,
    ) -> Result<(), StoreError> {
        let writes = vec![
            schema::put_push_challenge(user, challenge),
            match answer {
                // The device answers it directly: no provider request to index.
                Some(answer) => schema::put_challenge(
                    user,
                    &ChallengeSlot::DeviceAnswer(challenge.id.clone()),
                    answer,
                    now,
                ),
                None => schema::put_push_request(
                    &challenge.request_id,
                    user,
                    &crate::store::PushPurpose::StepUp(challenge.id.clone()),
                    now,
                ),
            },
        ];
        match self.transact("put_push_challenge", writes).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Corrupt {
                operation: "put_push_challenge",
                detail: "an unconditional write was refused".into(),
            }),
        }
    }

    async fn get_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PushChallenge>, StoreError> {
        self.get(
            "get_push_challenge",
            &schema::push_challenge_key(user, id),
            true,
        )
        .await?
        .map(|item| schema::push_challenge_from_item(&item))
        .transpose()
    }

    async fn settle_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        grant: Option<&StepUpGrant>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let status = match grant {
            Some(_) => ChallengeStatus::Verified,
            None => ChallengeStatus::Declined,
        };
        let mut writes = vec![
            schema::push_factor_active(user, challenge.channel),
            schema::settle_push_challenge(user, &challenge.id, status, now),
        ];
        if challenge.channel == Channel::Biometric {
            let slot = ChallengeSlot::DeviceAnswer(challenge.id.clone());
            writes.push(schema::delete_challenge(user, &slot, &challenge.id));
        }
        if let Some(grant) = grant {
            writes.push(schema::put_grant(user, &challenge.session, grant));
        }
        Ok(self
            .transact("settle_push_challenge", writes)
            .await?
            .is_ok())
    }

    async fn expire_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<bool, StoreError> {
        Ok(matches!(
            self.write(
                "expire_push_challenge",
                schema::expire_push_challenge(user, id),
                Returns::Nothing
            )
            .await?,
            Written::Done(_)
        ))
    }
}
