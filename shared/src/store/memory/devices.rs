//! BIOMETRIC devices, in memory.

use super::*;
use crate::domain::device::{DeviceChallenge, DevicePurpose};

#[async_trait]
impl Devices for MemoryStore {
    async fn start_device_enrolment(
        &self,
        user: &UserKey,
        factor: &FactorRecord,
        challenge: &NewChallenge,
        now: i64,
    ) -> Result<DeviceStart, StoreError> {
        let mut tables = self.begin("start_device_enrolment")?;
        let key = (user.clone(), Channel::Biometric);
        if tables
            .factors
            .get(&key)
            .is_some_and(|f| f.status == FactorStatus::Active)
        {
            return Ok(DeviceStart::AlreadyRegistered);
        }
        let thumbprint = factor.device.as_ref().map(|d| d.key.thumbprint());
        if thumbprint.is_some_and(|t| tables.device_keys.contains_key(&t)) {
            return Ok(DeviceStart::KeyTaken);
        }
        tables.factors.insert(key, factor.clone());
        tables.put_challenge(user, ChallengeSlot::DeviceEnrolment, challenge, now);
        Ok(DeviceStart::Started)
    }

    async fn activate_device(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        key_thumbprint: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("activate_device")?;
        let slot = (user.clone(), ChallengeSlot::DeviceEnrolment);
        let key = (user.clone(), Channel::Biometric);
        let live = tables
            .challenges
            .get(&slot)
            .is_some_and(|c| c.stored.challenge_id == *challenge_id);
        let pending = tables
            .factors
            .get(&key)
            .is_some_and(|f| f.status == FactorStatus::PendingVerification);
        if !live || !pending || tables.device_keys.contains_key(key_thumbprint) {
            return Ok(false);
        }
        tables.challenges.remove(&slot);
        tables
            .device_keys
            .insert(key_thumbprint.to_owned(), user.clone());
        if let Some(factor) = tables.factors.get_mut(&key) {
            factor.status = FactorStatus::Active;
            factor.updated_at = now;
            if let Some(device) = &mut factor.device {
                device.endpoint = Some(endpoint.to_owned());
            }
        }
        Ok(true)
    }

    async fn update_device_push(
        &self,
        user: &UserKey,
        push_token: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("update_device_push")?;
        let Some(factor) = tables
            .factors
            .get_mut(&(user.clone(), Channel::Biometric))
            .filter(|f| f.status == FactorStatus::Active)
        else {
            return Ok(false);
        };
        let Some(device) = &mut factor.device else {
            return Ok(false);
        };
        device.push_token = push_token.to_owned();
        device.endpoint = Some(endpoint.to_owned());
        factor.updated_at = now;
        Ok(true)
    }

    async fn device_challenges(
        &self,
        user: &UserKey,
        key_thumbprint: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<DeviceChallenge>, StoreError> {
        let tables = self.begin("device_challenges")?;
        let live: Vec<DeviceChallenge> = tables
            .challenges
            .iter()
            .filter(|((owner, slot), c)| {
                owner == user
                    && matches!(slot, ChallengeSlot::DeviceAnswer(_))
                    && c.stored.phone_hash.as_str() == key_thumbprint
                    && c.stored.expires_at > now
                    && c.attempts < c.stored.wrong_code_limit
            })
            .map(|(_, c)| DeviceChallenge {
                id: c.stored.challenge_id.clone(),
                signing_input: c.stored.code_hash.clone(),
                created_at: c.created_at,
                expires_at: c.stored.expires_at,
            })
            .collect();
        Ok(DeviceChallenge::newest_first(live, limit))
    }

    async fn remove_device(&self, user: &UserKey, key_thumbprint: &str) -> Result<(), StoreError> {
        let mut tables = self.begin("remove_device")?;
        tables.factors.remove(&(user.clone(), Channel::Biometric));
        tables
            .challenges
            .remove(&(user.clone(), ChallengeSlot::DeviceEnrolment));
        if tables.device_keys.get(key_thumbprint) == Some(user) {
            tables.device_keys.remove(key_thumbprint);
        }
        // Its challenges' answers go, and the challenges read EXPIRED.
        let answers: Vec<(ChallengeSlot, String)> = tables
            .challenges
            .iter()
            .filter(|((owner, slot), _)| {
                owner == user && matches!(slot, ChallengeSlot::DeviceAnswer(_))
            })
            .map(|((_, slot), c)| (slot.clone(), c.stored.code_hash.clone()))
            .collect();
        for (slot, input) in answers {
            tables.challenges.remove(&(user.clone(), slot.clone()));
            let ChallengeSlot::DeviceAnswer(id) = slot else {
                continue;
            };
            let key = (user.clone(), id);
            let status = match DevicePurpose::of_signing_input(&input) {
                Some(DevicePurpose::StepUp) => {
                    tables.push_challenges.get_mut(&key).map(|c| &mut c.status)
                }
                Some(DevicePurpose::Payment) => {
                    tables.payments.get_mut(&key).map(|c| &mut c.status)
                }
                None => None,
            };
            if let Some(status) = status.filter(|s| **s == ChallengeStatus::Pending) {
                *status = ChallengeStatus::Expired;
            }
        }
        Ok(())
    }
}
