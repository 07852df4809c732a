//! The DynamoDB store: one table, every port method one conditional write or one
//! transaction (see `items` for the table layout and every expression).
//!
//! Conditions carry the rules: an attempt is counted only while `attempts < limit` and
//! `expires_at > now`; a challenge is consumed only if it is still the one that was counted;
//! a reference is claimed only if no live record holds it; a counter grows only below its
//! limit, in the same transaction as the state change it pays for. When a condition fails,
//! the item it failed on (`ReturnValuesOnConditionCheckFailure`) tells why, without a read.

pub mod items;
pub mod operator;
pub mod settings;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    error::SdkError,
    operation::{
        delete_item::DeleteItemError, put_item::PutItemError,
        transact_write_items::TransactWriteItemsError, update_item::UpdateItemError,
    },
    types::{
        AttributeDefinition, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, Put,
        ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
        TimeToLiveSpecification, TransactWriteItem, Update,
    },
    Client,
};

use self::items::{Action, Item, Key, Write};
use super::{
    AttemptOutcome, Callbacks, ChallengeSlot, ClaimOutcome, Codes, CountedAttempt, Counters,
    FactorReads, IdempotencyRecords, NewChallenge, PaymentOutcome, PaymentStart, Payments,
    PendingPush, Programmes, PushEnrolments, PushPurpose, PushRequest, ReserveOutcome, Seeding,
    SmsEnrolments, StartOutcome, StepUpGrant, StepUpStart, StepUps, StoreError, StoredResponse,
    Unlinking, UserKey,
};
use crate::domain::{
    challenge::{challenge_state, ChallengeState},
    channel::Channel,
    factor::FactorRecord,
    idempotency::IdempotencyRef,
    ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
    payment::PaymentChallenge,
    programme::Programme,
    send_limits::LimitCounter,
    step_up::{ChallengeStatus, PushChallenge, SessionId},
};

/// The TTL attribute of the table.
pub const TTL_ATTRIBUTE: &str = "ttl";

pub struct DynamoStore {
    client: crate::aws::Lazy<Client>,
    table: String,
    requests: AtomicU64,
}

/// A conditional write's result: done (with the item asked for), or refused by its
/// condition (with the item as it was, when DynamoDB returned it).
enum Written {
    Done(Option<Item>),
    Refused(Option<Item>),
}

/// What the write should return.
#[derive(Clone, Copy)]
enum Returns {
    Nothing,
    New,
    Old,
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    error: E,
) -> StoreError {
    StoreError::Unavailable {
        operation,
        source: Box::new(error),
    }
}

fn build_error(operation: &'static str, error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt {
        operation,
        detail: error.to_string(),
    }
}

fn non_empty<V>(
    map: std::collections::HashMap<String, V>,
) -> Option<std::collections::HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

impl DynamoStore {
    /// A store on an existing client.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_lazy_client(crate::aws::lazy(move || client), table)
    }

    /// A store whose client is built on its first request (Lambda cold starts).
    pub fn with_lazy_client(client: crate::aws::Lazy<Client>, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            requests: AtomicU64::new(0),
        }
    }

    /// How many DynamoDB requests this store has made.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Creates the table (on-demand, `pk`/`sk` strings, TTL on `ttl`) unless it exists.
    /// For local servers and the operator tool; production tables come from `template.yaml`.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        const OP: &str = "create_table";
        if self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| build_error(OP, e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| build_error(OP, e))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| build_error(OP, e))?,
            )
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        Ok(true)
    }

    /// Builds the client and opens its connection with one `GetItem` of a key never written
    /// (`WARMUP`): the cold start's init does it at full CPU instead of the first request at
    /// the memory size's share. Uses only `dynamodb:GetItem`, which every function reading
    /// the table has.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let key = items::Key {
            pk: "WARMUP".into(),
            sk: "WARMUP".into(),
        };
        self.get("warm_up", &key, false).await.map(|_| ())
    }

    /// Every programme in the table, with its api key hash: a scan, made only by the one-time
    /// `operator::register_legacy_programmes`.
    async fn scan_programmes(&self) -> Result<Vec<(String, Programme)>, StoreError> {
        const OP: &str = "scan_programmes";
        let mut found = Vec::new();
        let mut start = None;
        loop {
            self.count();
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :sk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":sk", items::s("PROGRAMME"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(OP, e))?;
            for item in page.items() {
                let pk = items::get_s(item, "pk", OP)?;
                let hash = pk.strip_prefix("PROGRAMME#").unwrap_or(&pk).to_owned();
                found.push((hash, items::programme_from_item(item)?));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    async fn get(
        &self,
        operation: &'static str,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.count();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| unavailable(operation, e))?;
        Ok(output.item)
    }

    /// Sends one write on its own.
    async fn write(
        &self,
        operation: &'static str,
        write: Write,
        returns: Returns,
    ) -> Result<Written, StoreError> {
        self.count();
        let names = non_empty(write.names);
        let values = non_empty(write.values);
        let on_failure = Some(ReturnValuesOnConditionCheckFailure::AllOld);
        match write.action {
            Action::Put(item) => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(Written::Done(None)),
                    Err(SdkError::ServiceError(e))
                        if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                    {
                        match e.into_err() {
                            PutItemError::ConditionalCheckFailedException(c) => {
                                Ok(Written::Refused(c.item))
                            }
                            other => Err(unavailable(operation, other)),
                        }
                    }
                    Err(e) => Err(unavailable(operation, e)),
                }
            }
            Action::Update(update) => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(write.key.to_item()))
                    .update_expression(update)
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(match returns {
                        Returns::New => ReturnValue::AllNew,
                        Returns::Old => ReturnValue::AllOld,
                        Returns::Nothing => ReturnValue::None,
                    })
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                match result {
                    Ok(output) => Ok(Written::Done(output.attributes)),
                    Err(SdkError::ServiceError(e))
                        if matches!(
                            e.err(),
                            UpdateItemError::ConditionalCheckFailedException(_)
                        ) =>
                    {
                        match e.into_err() {
                            UpdateItemError::ConditionalCheckFailedException(c) => {
                                Ok(Written::Refused(c.item))
                            }
                            other => Err(unavailable(operation, other)),
                        }
                    }
                    Err(e) => Err(unavailable(operation, e)),
                }
            }
            Action::Delete => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(write.key.to_item()))
                    .set_condition_expression(write.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(match returns {
                        Returns::Old => ReturnValue::AllOld,
                        _ => ReturnValue::None,
                    })
                    .set_return_values_on_condition_check_failure(on_failure)
                    .send()
                    .await;
                match result {
                    Ok(output) => Ok(Written::Done(output.attributes)),
                    Err(SdkError::ServiceError(e))
                        if matches!(
                            e.err(),
                            DeleteItemError::ConditionalCheckFailedException(_)
                        ) =>
                    {
                        match e.into_err() {
                            DeleteItemError::ConditionalCheckFailedException(c) => {
                                Ok(Written::Refused(c.item))
                            }
                            other => Err(unavailable(operation, other)),
                        }
                    }
                    Err(e) => Err(unavailable(operation, e)),
                }
            }
            Action::Check => Err(StoreError::Corrupt {
                operation,
                detail: "a condition check needs a transaction".into(),
            }),
        }
    }

    /// Sends writes as one transaction. `Err` with the index of every write whose condition
    /// failed when the transaction was cancelled by conditions.
    async fn transact(
        &self,
        operation: &'static str,
        writes: Vec<Write>,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        self.count();
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let names = non_empty(write.names);
            let values = non_empty(write.values);
            let key = Some(write.key.to_item());
            let item = match write.action {
                Action::Put(item) => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Update(update) => TransactWriteItem::builder().update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .update_expression(update)
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Delete => TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .set_condition_expression(write.condition)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
                Action::Check => TransactWriteItem::builder().condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(key)
                        .condition_expression(write.condition.unwrap_or_default())
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|e| build_error(operation, e))?,
                ),
            };
            items.push(item.build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) = e.into_err()
                else {
                    return Err(StoreError::Corrupt {
                        operation,
                        detail: "unexpected error kind".into(),
                    });
                };
                let reasons = cancelled.cancellation_reasons();
                let failed: Vec<usize> = reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect();
                let other = reasons.iter().any(|r| {
                    !matches!(
                        r.code(),
                        None | Some("None") | Some("ConditionalCheckFailed")
                    )
                });
                if failed.is_empty() || other {
                    // A conflict with another transaction, or throttling: retryable.
                    return Err(unavailable(operation, cancelled));
                }
                Ok(Err(failed))
            }
            Err(e) => Err(unavailable(operation, e)),
        }
    }

    /// Refunds counters one by one (failure paths only; a counter already at zero stays).
    async fn refund(&self, counters: &[LimitCounter]) -> Result<(), StoreError> {
        for counter in counters {
            self.write(
                "refund_counter",
                items::refund_counter(counter),
                Returns::Nothing,
            )
            .await?;
        }
        Ok(())
    }
}

/// The outcome of a transaction that consumes counters after `leading` other writes.
fn limited(failed: &[usize], leading: usize) -> Vec<usize> {
    failed
        .iter()
        .filter(|&&i| i >= leading)
        .map(|&i| i - leading)
        .collect()
}

#[async_trait]
impl Programmes for DynamoStore {
    async fn find_programme(&self, api_key_hash: &str) -> Result<Option<Programme>, StoreError> {
        self.get("find_programme", &items::programme_key(api_key_hash), false)
            .await?
            .map(|item| items::programme_from_item(&item))
            .transpose()
    }
}

#[async_trait]
impl Seeding for DynamoStore {
    async fn put_programme(
        &self,
        api_key_hash: &str,
        programme: &Programme,
    ) -> Result<(), StoreError> {
        self.write(
            "put_programme",
            items::put_programme(api_key_hash, programme)?,
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }

    async fn put_factor(&self, user: &UserKey, factor: &FactorRecord) -> Result<(), StoreError> {
        self.write(
            "put_factor",
            items::put_factor(user, factor),
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl FactorReads for DynamoStore {
    async fn list_factors(&self, user: &UserKey) -> Result<Vec<FactorRecord>, StoreError> {
        const OP: &str = "list_factors";
        self.count();
        let query = items::list_factors_query(user);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(query.key_condition)
            .set_expression_attribute_names(Some(query.names))
            .set_expression_attribute_values(Some(query.values))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        output.items().iter().map(items::factor_from_item).collect()
    }

    async fn get_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        self.get("get_factor", &items::factor_key(user, channel), true)
            .await?
            .map(|item| items::factor_from_item(&item))
            .transpose()
    }
}

#[async_trait]
impl SmsEnrolments for DynamoStore {
    async fn start_sms_challenge(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        let mut writes = vec![
            items::mark_sms_pending(user, &challenge.phone_hash, now),
            items::put_challenge(user, &ChallengeSlot::Enrolment, challenge, now),
        ];
        writes.extend(counters.iter().map(items::consume_counter));
        match self.transact("start_sms_challenge", writes).await? {
            Ok(()) => Ok(StartOutcome::Started),
            Err(failed) if failed.contains(&0) => Ok(StartOutcome::AlreadyRegistered),
            Err(failed) => Ok(StartOutcome::Limited(limited(&failed, 2))),
        }
    }

    async fn activate_sms_factor(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let writes = vec![
            items::delete_challenge(user, &ChallengeSlot::Enrolment, challenge_id),
            items::activate_sms(user, phone_hash, attempt_id, now),
        ];
        if self.transact("activate_sms_factor", writes).await?.is_ok() {
            return Ok(true);
        }
        // Refused: by a concurrent request, or by our own first try, committed, whose answer
        // was lost (DynamoDB also dedupes the SDK's resend by its ClientRequestToken).
        let factor = self.get_factor(user, Channel::Sms).await?;
        Ok(factor.is_some_and(|f| f.is_verified_by(attempt_id.as_str())))
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
            items::delete_challenge(user, slot, challenge_id),
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
        let counted = |challenge: items::ChallengeItem| {
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
                items::count_attempt(user, slot, phone_hash, attempt_id, now),
                Returns::New,
            )
            .await?
        {
            Written::Done(Some(item)) => return Ok(counted(items::challenge_from_item(&item)?)),
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
        let challenge = items::challenge_from_item(&item)?;
        if challenge.phone_hash != *phone_hash {
            return Ok(AttemptOutcome::NoChallenge);
        }
        if challenge.last_attempt.as_ref() == Some(attempt_id) && now < challenge.expires_at {
            // Our own attempt, counted by a first try whose answer was lost: not again. Only
            // for the same phone and while the challenge lives, like any other attempt.
            return Ok(counted(challenge));
        }
        Ok(
            match challenge_state(
                challenge.attempts,
                challenge.wrong_code_limit,
                challenge.expires_at,
                now,
            ) {
                ChallengeState::Dead => AttemptOutcome::Dead,
                ChallengeState::Expired => AttemptOutcome::Expired,
                // Replaced between the write and the read: this request's challenge is gone.
                ChallengeState::Live => AttemptOutcome::NoChallenge,
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
        let writes = counters.iter().map(items::consume_counter).collect();
        self.transact("consume_counters", writes).await
    }
}

#[async_trait]
impl PushEnrolments for DynamoStore {
    async fn reserve_push_enrolment(
        &self,
        user: &UserKey,
        counters: &[LimitCounter],
        _now: i64,
    ) -> Result<ReserveOutcome, StoreError> {
        let mut writes = vec![items::authy_not_active(user)];
        writes.extend(counters.iter().map(items::consume_counter));
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
            items::set_push_pending(user, pending, now),
            items::put_push_request(
                &pending.request_id,
                user,
                &super::PushPurpose::Enrolment,
                now,
            ),
        ];
        // The factor's reference on the Authy user, in the same transaction that writes it.
        if let Some(authy_id) = &pending.authy_id {
            writes.push(items::reference_authy_user(authy_id, user));
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
        let write = items::resolve_push(user, request_id, approved, now);
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
                items::delete_factor(user, channel),
                Returns::Old,
            )
            .await?
        {
            Written::Done(Some(old)) if !old.is_empty() => Ok(Some(items::factor_from_item(&old)?)),
            Written::Done(_) | Written::Refused(_) => Ok(None),
        }
    }

    async fn release_authy_user(&self, authy_id: &str, user: &UserKey) -> Result<bool, StoreError> {
        let write = items::unreference_authy_user(authy_id, user);
        Ok(
            match self
                .write("release_authy_user", write, Returns::New)
                .await?
            {
                Written::Done(item) => item.is_none_or(|item| items::authy_references(&item) == 0),
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
        let write = items::claim_nonce(nonce_key, expires_at, now);
        Ok(matches!(
            self.write("claim_callback_nonce", write, Returns::Nothing)
                .await?,
            Written::Done(_)
        ))
    }

    async fn find_push_request(&self, request_id: &str) -> Result<Option<PushRequest>, StoreError> {
        self.get(
            "find_push_request",
            &items::push_request_key(request_id),
            true,
        )
        .await?
        .map(|item| items::push_request_from_item(&item))
        .transpose()
    }
}

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
            items::sms_active_for(user, &challenge.phone_hash),
            items::put_step_up_challenge(user, session, challenge, now),
        ];
        writes.extend(counters.iter().map(items::consume_counter));
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
            items::delete_challenge(user, &ChallengeSlot::StepUp(session.clone()), challenge_id),
            items::put_grant(user, session, grant),
        ];
        if self.transact("complete_step_up_sms", writes).await?.is_ok() {
            return Ok(true);
        }
        // Refused: by a concurrent request, or by this attempt's own committed first try.
        let stored = self
            .get(
                "complete_step_up_sms",
                &items::grant_key(user, session),
                true,
            )
            .await?
            .map(|item| items::grant_from_item(&item))
            .transpose()?;
        Ok(stored.is_some_and(|g| g.verified_by == grant.verified_by))
    }

    async fn step_up_grant(
        &self,
        user: &UserKey,
        session: &SessionId,
    ) -> Result<Option<StepUpGrant>, StoreError> {
        self.get("step_up_grant", &items::grant_key(user, session), true)
            .await?
            .map(|item| items::grant_from_item(&item))
            .transpose()
    }

    async fn put_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        now: i64,
    ) -> Result<(), StoreError> {
        let writes = vec![
            items::put_push_challenge(user, challenge),
            items::put_push_request(
                &challenge.request_id,
                user,
                &super::PushPurpose::StepUp(challenge.id.clone()),
                now,
            ),
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
            &items::push_challenge_key(user, id),
            true,
        )
        .await?
        .map(|item| items::push_challenge_from_item(&item))
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
            items::authy_active(user),
            items::settle_push_challenge(user, &challenge.id, status, now),
        ];
        if let Some(grant) = grant {
            writes.push(items::put_grant(user, &challenge.session, grant));
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
                items::expire_push_challenge(user, id),
                Returns::Nothing
            )
            .await?,
            Written::Done(_)
        ))
    }
}

#[async_trait]
impl Payments for DynamoStore {
    async fn payment_by_reference(
        &self,
        user: &UserKey,
        reference: &str,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        const OP: &str = "payment_by_reference";
        let Some(item) = self
            .get(OP, &items::payment_reference_key(user, reference), true)
            .await?
        else {
            return Ok(None);
        };
        let id = ChallengeId::new(items::get_s(&item, "challenge_id", OP)?);
        self.get_payment(user, &id).await
    }

    async fn get_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        self.get("get_payment", &items::payment_key(user, id), true)
            .await?
            .map(|item| items::payment_from_item(&item))
            .transpose()
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
        let mut writes = Vec::new();
        if let Some(code) = code {
            writes.push(items::sms_active_for(user, &code.phone_hash));
        }
        let reference_at = writes.len();
        writes.push(items::take_payment_reference(
            user,
            &challenge.payment.reference,
            &challenge.id,
            replaces,
            now,
        ));
        writes.push(items::put_payment(user, challenge));
        match (code, &challenge.request_id) {
            (Some(code), _) => writes.push(items::put_challenge(
                user,
                &ChallengeSlot::Payment(challenge.id.clone()),
                code,
                now,
            )),
            (None, Some(request_id)) => writes.push(items::put_push_request(
                request_id,
                user,
                &PushPurpose::Payment(challenge.id.clone()),
                now,
            )),
            (None, None) => {}
        }
        let leading = writes.len();
        writes.extend(counters.iter().map(items::consume_counter));
        match self.transact("start_payment", writes).await? {
            Ok(()) => Ok(PaymentStart::Started),
            Err(failed) if code.is_some() && failed.contains(&0) => Ok(PaymentStart::NotRegistered),
            Err(failed) if failed.contains(&reference_at) => Ok(PaymentStart::ReferenceTaken),
            Err(failed) => Ok(PaymentStart::Limited(limited(&failed, leading))),
        }
    }

    async fn abandon_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        const OP: &str = "abandon_payment";
        self.write(
            OP,
            items::delete_challenge(user, &ChallengeSlot::Payment(challenge.id.clone()), code_id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            items::release_payment_reference(user, &challenge.payment.reference, &challenge.id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            items::delete_payment(user, &challenge.id),
            Returns::Nothing,
        )
        .await?;
        self.refund(counters).await
    }

    async fn finish_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
        outcome: &PaymentOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut writes = vec![items::finish_payment(
            user,
            id,
            outcome.verified.as_ref(),
            now,
        )];
        if let Some(code) = &outcome.consume_code {
            writes.push(items::delete_challenge(
                user,
                &ChallengeSlot::Payment(id.to_owned()),
                code,
            ));
        }
        if outcome.require_authy {
            writes.push(items::authy_active(user));
        }
        Ok(self.transact("finish_payment", writes).await?.is_ok())
    }
}

#[async_trait]
impl IdempotencyRecords for DynamoStore {
    async fn claim_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        fingerprint: &str,
        lease_id: &LeaseId,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        const OP: &str = "claim_idempotency";
        let write = items::claim_idempotency(user, reference, fingerprint, lease_id, now);
        let old = match self.write(OP, write, Returns::Nothing).await? {
            Written::Done(_) => return Ok(ClaimOutcome::Claimed),
            Written::Refused(old) => old,
        };
        // The condition fails only on an existing record, which DynamoDB returns; without it
        // the safe answer is "in progress" (the caller retries).
        let Some(record) = old.filter(|item| !item.is_empty()) else {
            return Ok(ClaimOutcome::InProgress);
        };
        let record = items::idempotency_from_item(&record)?;
        if record.lease_id.as_deref() == Some(lease_id.as_str()) {
            // Our own claim, written by a first try whose answer was lost.
            return Ok(ClaimOutcome::Claimed);
        }
        Ok(if record.fingerprint != fingerprint {
            ClaimOutcome::Mismatch
        } else {
            match record.response {
                Some(response) => ClaimOutcome::Replay(response),
                None => ClaimOutcome::InProgress,
            }
        })
    }

    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError> {
        let write = items::complete_idempotency(user, reference, lease_id, response, now);
        self.write("complete_idempotency", write, Returns::Nothing)
            .await?;
        Ok(())
    }

    async fn release_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
    ) -> Result<(), StoreError> {
        self.write(
            "release_idempotency",
            items::release_idempotency(user, reference, lease_id),
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }
}
