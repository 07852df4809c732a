//! Push enrolment, unlinking and the provider's callbacks, in memory.
use super::*;

#[async_trait]
impl PushEnrolments for MemoryStore {
    async fn reserve_push_enrolment(
        &self,
        user: &UserKey,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<ReserveOutcome, StoreError> {
        let mut tables = self.begin("reserve_push_enrolment")?;
        tables.sweep(now);
        if tables
            .factors
            .get(&(user.clone(), Channel::Authy))
            .is_some_and(|f| f.status == FactorStatus::Active)
        {
            return Ok(ReserveOutcome::AlreadyRegistered);
        }
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(ReserveOutcome::Limited(full));
        }
        tables.consume(counters, now);
        Ok(ReserveOutcome::Reserved)
    }

    async fn set_push_pending(
        &self,
        user: &UserKey,
        pending: &PendingPush,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("set_push_pending")?;
        let key = (user.clone(), Channel::Authy);
        if tables
            .factors
            .get(&key)
            .is_some_and(|f| f.status == FactorStatus::Active)
        {
            return Ok(false);
        }
        let previous = tables.factors.insert(
            key,
            FactorRecord {
                channel: Channel::Authy,
                status: FactorStatus::PendingVerification,
                phone_hash: Some(pending.phone_hash.as_str().to_owned()),
                provider_ref: pending.provider_ref.clone(),
                pending_request: Some(pending.request_id.clone()),
                verified_by: None,
                updated_at: now,
                device: None,
            },
        );
        if let Some(old) = previous.and_then(|f| f.pending_request) {
            tables.push_requests.remove(&old);
        }
        tables.push_requests.insert(
            pending.request_id.clone(),
            PushRequest {
                user: user.clone(),
                purpose: PushPurpose::Enrolment,
            },
        );
        if let Some(provider_ref) = &pending.provider_ref {
            tables
                .provider_users
                .entry(provider_ref.clone())
                .or_default()
                .insert(user.clone());
        }
        Ok(true)
    }

    async fn resolve_push(
        &self,
        user: &UserKey,
        request_id: Option<&str>,
        approved: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("resolve_push")?;
        let Some(factor) = tables.factors.get_mut(&(user.clone(), Channel::Authy)) else {
            return Ok(false);
        };
        let matches = request_id.is_none_or(|r| factor.pending_request.as_deref() == Some(r));
        if factor.status != FactorStatus::PendingVerification || !matches {
            return Ok(false);
        }
        factor.status = if approved {
            FactorStatus::Active
        } else {
            FactorStatus::Inactive
        };
        factor.updated_at = now;
        if let Some(old) = factor.pending_request.take() {
            tables.push_requests.remove(&old);
        }
        Ok(true)
    }
}

#[async_trait]
impl Unlinking for MemoryStore {
    async fn delete_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        let mut tables = self.begin("delete_factor")?;
        let removed = tables.factors.remove(&(user.clone(), channel));
        if let Some(request) = removed.as_ref().and_then(|f| f.pending_request.as_ref()) {
            tables.push_requests.remove(request);
        }
        Ok(removed)
    }

    async fn release_provider_user(
        &self,
        provider_ref: &str,
        user: &UserKey,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("release_provider_user")?;
        let Some(users) = tables.provider_users.get_mut(provider_ref) else {
            return Ok(true);
        };
        users.remove(user);
        let unused = users.is_empty();
        if unused {
            tables.provider_users.remove(provider_ref);
        }
        Ok(unused)
    }
}

#[async_trait]
impl Callbacks for MemoryStore {
    async fn claim_callback_nonce(
        &self,
        nonce_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin("claim_callback_nonce")?;
        tables.sweep(now);
        if tables
            .nonces
            .get(nonce_key)
            .is_some_and(|until| *until > now)
        {
            return Ok(false);
        }
        tables.nonces.insert(nonce_key.to_owned(), expires_at);
        Ok(true)
    }

    async fn find_push_request(&self, request_id: &str) -> Result<Option<PushRequest>, StoreError> {
        Ok(self
            .begin("find_push_request")?
            .push_requests
            .get(request_id)
            .cloned())
    }
}
