//! BIOMETRIC devices on DynamoDB: each operation one transaction.

use super::*;

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

    async fn remove_device(&self, user: &UserKey, key_thumbprint: &str) -> Result<(), StoreError> {
        let writes = vec![
            schema::delete_factor(user, Channel::Biometric),
            schema::delete_device_challenge(user),
            schema::delete_device_key(key_thumbprint),
        ];
        match self.transact("remove_device", writes).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Corrupt {
                operation: "remove_device",
                detail: "an unconditional delete was refused".into(),
            }),
        }
    }
}
