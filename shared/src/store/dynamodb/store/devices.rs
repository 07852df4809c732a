//! BIOMETRIC devices on DynamoDB: each operation one transaction.

use super::*;
use crate::domain::device::{DeviceChallenge, DevicePurpose};

#[async_trait]
impl Devices for DynamoStore {
    async fn start_device_enrolment(
        &self,
        user: &UserKey,
        factor: &FactorRecord,
        challenge: &NewChallenge,
        now: i64,
    ) -> Result<DeviceStart, StoreError> {
        let thumbprint = factor
            .device
            .as_ref()
            .map(|d| d.key.thumbprint())
            .ok_or_else(|| StoreError::Corrupt {
                operation: "start_device_enrolment",
                detail: "a device enrolment without a device".into(),
            })?;
        let writes = vec![
            schema::put_pending_device(user, factor),
            schema::device_key_free(&thumbprint),
            schema::put_challenge(user, &ChallengeSlot::DeviceEnrolment, challenge, now),
        ];
        Ok(
            match self.transact("start_device_enrolment", writes).await? {
                Ok(()) => DeviceStart::Started,
                Err(failed) if failed.contains(&0) => DeviceStart::AlreadyRegistered,
                Err(_) => DeviceStart::KeyTaken,
            },
        )
    }

    async fn activate_device(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        key_thumbprint: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let writes = vec![
            schema::delete_challenge(user, &ChallengeSlot::DeviceEnrolment, challenge_id),
            schema::activate_device(user, endpoint, now),
            schema::register_device_key(key_thumbprint, user, now),
        ];
        Ok(self.transact("activate_device", writes).await?.is_ok())
    }

    async fn update_device_push(
        &self,
        user: &UserKey,
        push_token: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(matches!(
            self.write(
                "update_device_push",
                schema::update_device_push(user, push_token, endpoint, now),
                Returns::Nothing,
            )
            .await?,
            Written::Done(_)
        ))
    }

    async fn device_challenges(
        &self,
        user: &UserKey,
        key_thumbprint: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<DeviceChallenge>, StoreError> {
        let mut live = Vec::new();
        for item in self.device_answers(user).await? {
            live.extend(schema::device_answer_from_item(&item, key_thumbprint, now)?);
        }
        Ok(DeviceChallenge::newest_first(live, limit))
    }

    async fn remove_device(&self, user: &UserKey, key_thumbprint: &str) -> Result<(), StoreError> {
        const OP: &str = "remove_device";
        let writes = vec![
            schema::delete_factor(user, Channel::Biometric),
            schema::delete_device_challenge(user),
            schema::delete_device_key(key_thumbprint),
        ];
        if self.transact(OP, writes).await?.is_err() {
            return Err(StoreError::Corrupt {
                operation: OP,
                detail: "an unconditional delete was refused".into(),
            });
        }
        // The factor is gone, so nothing settles its challenges; removing their answers keeps
        // them so if the same key enrols again, and marks them EXPIRED for their readers.
        for item in self.device_answers(user).await? {
            let answer = schema::challenge_from_item(&item)?;
            let id = answer.challenge_id;
            let slot = ChallengeSlot::DeviceAnswer(id.clone());
            self.write(
                OP,
                schema::delete_challenge(user, &slot, &id),
                Returns::Nothing,
            )
            .await?;
            let expire = match DevicePurpose::of_signing_input(&answer.code_hash) {
                Some(DevicePurpose::StepUp) => schema::expire_push_challenge(user, &id),
                Some(DevicePurpose::Payment) => schema::expire_payment(user, &id),
                None => continue,
            };
            // Refused when it settled meanwhile: what it left stands.
            self.write(OP, expire, Returns::Nothing).await?;
        }
        Ok(())
    }
}

impl DynamoStore {
    /// Every item of the user's partition under `CHALLENGE#DEVICE#` (a few: one per push
    /// challenge of the last hours, the push limit bounds them), page after page.
    async fn device_answers(&self, user: &UserKey) -> Result<Vec<schema::Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .query("device_answers", &schema::device_answers_query(user), start)
                .await?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(items),
            }
        }
    }
}
