//! Push enrolment, unlinking and the provider's callbacks, on DynamoDB.
use super::*;

#[async_trait]
impl PushEnrolments for DynamoStore {
    async fn reserve_push_enrolment(
        &self,
        user: &UserKey,
        counters: &[LimitCounter],
        _now: i64,
    ) -> Result<ReserveOutcome, StoreError> {
        let mut writes = vec![schema::push_factor_not_active(user)];
        writes.extend(counters.iter().map(schema::consume_counter));
        match self.transact("reserve_push_enrolment", writes).await? {
            Ok(()) => Ok(ReserveOutcome::Reserved),
            Err(failed) if failed.contains(&0) => Ok(ReserveOutcome::AlreadyRegistered),
            Err(failed) => Ok(ReserveOutcome::Limited(limited(&failed, 1))),
        }
    }

    async fn set_push_pending(
        &self,
        user: &UserKey,
        pending: &PendingPush,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut writes = vec![
            schema::set_push_pending(user, pending, now),
            schema::put_push_request(
                &pending.request_id,
                user,
                &crate::store::PushPurpose::Enrolment,
                now,
            ),
        ];
        // The factor's reference on the Authy user, in the same transaction that writes it.
        if let Some(provider_ref) = &pending.provider_ref {
            writes.push(schema::reference_provider_user(provider_ref, user));
        }
        Ok(self.transact("set_push_pending", writes).await?.is_ok())
    }

    async fn resolve_push(
        &self,
        user: &UserKey,
        request_id: Option<&str>,
        approved: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let write = schema::resolve_push(user, request_id, approved, now);
        Ok(matches!(
            self.write("resolve_push", write, Returns::Nothing).await?,
            Written::Done(_)
        ))
    }
}

#[async_trait]
impl Unlinking for DynamoStore {
    async fn delete_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        match self
            .write(
                "delete_factor",
                schema::delete_factor(user, channel),
                Returns::Old,
            )
            .await?
        {
            Written::Done(Some(old)) if !old.is_empty() => {
                Ok(Some(schema::factor_from_item(&old)?))
            }
            Written::Done(_) | Written::Refused(_) => Ok(None),
        }
    }

    async fn release_provider_user(
        &self,
        provider_ref: &str,
        user: &UserKey,
    ) -> Result<bool, StoreError> {
        let write = schema::unreference_provider_user(provider_ref, user);
        Ok(
            match self
                .write("release_provider_user", write, Returns::New)
                .await?
            {
                Written::Done(item) => {
                    item.is_none_or(|item| schema::provider_user_references(&item) == 0)
                }
                // No reference item: enrolled before references were kept, so no other
                // factor is known to use it.
                Written::Refused(_) => true,
            },
        )
    }
}

#[async_trait]
impl Callbacks for DynamoStore {
    async fn claim_callback_nonce(
        &self,
        nonce_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let write = schema::claim_nonce(nonce_key, expires_at, now);
        Ok(matches!(
            self.write("claim_callback_nonce", write, Returns::Nothing)
                .await?,
            Written::Done(_)
        ))
    }

    async fn find_push_request(&self, request_id: &str) -> Result<Option<PushRequest>, StoreError> {
        self.get(
            "find_push_request",
            &schema::push_request_key(request_id),
            true,
        )
        .await?
        .map(|item| schema::push_request_from_item(&item))
        .transpose()
    }
}
