//! The store's roles (`crate::store`) on DynamoDB: each method one conditional write or one
//! transaction of the schema's writes; a refused condition's item says why, without a read.

use async_trait::async_trait;

use super::{
    executor::{Returns, Written},
    schema, DynamoStore,
};
use crate::{
    domain::{
        challenge::{challenge_state, ChallengeState},
        channel::Channel,
        factor::FactorRecord,
        idempotency::IdempotencyRef,
        ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
        payment::PaymentChallenge,
        programme::Programme,
        send_limits::LimitCounter,
        step_up::{ChallengeStatus, PushChallenge, SessionId},
    },
    store::{
        Activation, AttemptOutcome, Callbacks, ChallengeSlot, ClaimOutcome, ClaimRecord, Codes,
        CountedAttempt, Counters, FactorReads, IdempotencyRecords, NewChallenge, PaymentOutcome,
        PaymentStart, Payments, PendingPush, Programmes, PushEnrolments, PushPurpose, PushRequest,
        ReserveOutcome, Seeding, SmsEnrolments, StartOutcome, StepUpGrant, StepUpStart, StepUps,
        StoreError, StoredResponse, Unlinking, UserKey,
    },
};

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
        self.get(
            "find_programme",
            &schema::programme_key(api_key_hash),
            false,
        )
        .await?
        .map(|item| schema::programme_from_item(&item))
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
            schema::put_programme(api_key_hash, programme)?,
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }

    async fn put_factor(&self, user: &UserKey, factor: &FactorRecord) -> Result<(), StoreError> {
        self.write(
            "put_factor",
            schema::put_factor(user, factor),
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
        // A user's partition holds a few factors: one page.
        let output = self
            .query(OP, &schema::list_factors_query(user), None)
            .await?;
        output
            .items()
            .iter()
            .map(schema::factor_from_item)
            .collect()
    }

    async fn get_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        self.get("get_factor", &schema::factor_key(user, channel), true)
            .await?
            .map(|item| schema::factor_from_item(&item))
            .transpose()
    }
}

#[async_trait]
impl SmsEnrolments for DynamoStore {
    async fn start_sms_challenge_claiming(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        let mut writes = vec![
            schema::mark_sms_pending(user, &challenge.phone_hash, now),
            schema::put_challenge(user, &ChallengeSlot::Enrolment, challenge, now),
        ];
        writes.extend(counters.iter().map(schema::consume_counter));
        let claim_at = writes.len();
        writes.extend(claim.map(|record| schema::idempotency_record(user, record, now)));
        let refused = match self.transact_returning("start_sms_challenge", writes).await {
            Ok(Ok(())) => return Ok(StartOutcome::Started),
            Ok(Err(refused)) => refused,
            Err(error) => {
                return Ok(StartOutcome::Unclaimed(
                    self.claim_after_failure(user, claim, error).await?,
                ))
            }
        };
        if let Some(outcome) = claim_refusal(claim, claim_at, &refused)? {
            return Ok(StartOutcome::Unclaimed(outcome));
        }
        let failed: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
        Ok(if failed.contains(&0) {
            StartOutcome::AlreadyRegistered
        } else {
            StartOutcome::Limited(limited(&failed, 2))
        })
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
        let mut writes = vec![
            schema::delete_challenge(user, &ChallengeSlot::Enrolment, challenge_id),
            schema::activate_sms(user, phone_hash, attempt_id, now),
        ];
        writes.extend(claim.map(|record| schema::idempotency_record(user, record, now)));
        let refused = match self.transact_returning("activate_sms_factor", writes).await {
            Ok(Ok(())) => return Ok(Activation::Activated),
            Ok(Err(refused)) => refused,
            Err(error) => {
                return Ok(Activation::Unclaimed(
                    self.claim_after_failure(user, claim, error).await?,
                ))
            }
        };
        if let Some(outcome) = claim_refusal(claim, 2, &refused)? {
            return Ok(Activation::Unclaimed(outcome));
        }
        // Refused: by a concurrent request, or by our own first try, committed, whose answer
        // was lost (DynamoDB also dedupes the SDK's resend by its ClientRequestToken).
        let factor = self.get_factor(user, Channel::Sms).await?;
        Ok(
            if factor.is_some_and(|f| f.is_verified_by(attempt_id.as_str())) {
                Activation::Activated
            } else {
                Activation::Refused
            },
        )
    }
}

/// Why a transaction's riding claim (at `at`) was refused, if it was: what the live record
/// under the reference says. Checked before any other refusal, as a separate claim would be.
fn claim_refusal(
    claim: Option<&ClaimRecord>,
    at: usize,
    refused: &[(usize, Option<schema::Item>)],
) -> Result<Option<ClaimOutcome>, StoreError> {
    let Some(claim) = claim else {
        return Ok(None);
    };
    let Some((_, old)) = refused.iter().find(|(i, _)| *i == at) else {
        return Ok(None);
    };
    Ok(Some(claim_outcome(
        old.clone(),
        &claim.lease_id,
        &claim.fingerprint,
    )?))
}

/// What the record that refused a claim says (`None`: the record DynamoDB did not return;
/// "in progress" is then the safe answer, the caller retries).
fn claim_outcome(
    old: Option<schema::Item>,
    lease_id: &LeaseId,
    fingerprint: &str,
) -> Result<ClaimOutcome, StoreError> {
    let Some(record) = old.filter(|item| !item.is_empty()) else {
        return Ok(ClaimOutcome::InProgress);
    };
    let record = schema::idempotency_from_item(&record)?;
    Ok(ClaimOutcome::of_record(
        lease_id,
        fingerprint,
        record.lease_id.as_deref(),
        &record.fingerprint,
        record.response,
    ))
}

impl DynamoStore {
    /// A transaction carrying a claim failed without a verdict (a conflict with another
    /// transaction, throttling, the network). If a live record of *another* request holds the
    /// reference, the claim could not have been taken: what that record says ("in progress",
    /// its kept answer) is the answer, not a 503. Otherwise the original error.
    async fn claim_after_failure(
        &self,
        user: &UserKey,
        claim: Option<&ClaimRecord>,
        error: StoreError,
    ) -> Result<ClaimOutcome, StoreError> {
        let Some(claim) = claim else {
            return Err(error);
        };
        let key = schema::idempotency_key(user, &claim.reference);
        let Ok(Some(item)) = self.get("read_idempotency", &key, true).await else {
            return Err(error);
        };
        match claim_outcome(Some(item), &claim.lease_id, &claim.fingerprint)? {
            // Ours (the transaction committed after all, its answer lost): not knowable here
            // which answer it had; the caller's retry replays or runs again.
            ClaimOutcome::Claimed => Err(error),
            outcome => Ok(outcome),
        }
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
            schema::delete_challenge(user, slot, challenge_id),
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
        let counted = |challenge: schema::ChallengeItem| {
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
                schema::count_attempt(user, slot, phone_hash, attempt_id, now),
                Returns::New,
            )
            .await?
        {
            Written::Done(Some(item)) => return Ok(counted(schema::challenge_from_item(&item)?)),
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
        let challenge = schema::challenge_from_item(&item)?;
        if challenge.phone_hash != *phone_hash {
            return Ok(AttemptOutcome::NoChallenge);
        }
        if challenge.counted.contains(attempt_id) && now < challenge.expires_at {
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
        let writes = counters.iter().map(schema::consume_counter).collect();
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
        let mut writes = vec![schema::authy_not_active(user)];
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
        if let Some(authy_id) = &pending.authy_id {
            writes.push(schema::reference_authy_user(authy_id, user));
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

    async fn release_authy_user(&self, authy_id: &str, user: &UserKey) -> Result<bool, StoreError> {
        let write = schema::unreference_authy_user(authy_id, user);
        Ok(
            match self
                .write("release_authy_user", write, Returns::New)
                .await?
            {
                Written::Done(item) => item.is_none_or(|item| schema::authy_references(&item) == 0),
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
        now: i64,
    ) -> Result<(), StoreError> {
        let writes = vec![
            schema::put_push_challenge(user, challenge),
            schema::put_push_request(
                &challenge.request_id,
                user,
                &crate::store::PushPurpose::StepUp(challenge.id.clone()),
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
            schema::authy_active(user),
            schema::settle_push_challenge(user, &challenge.id, status, now),
        ];
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

#[async_trait]
impl Payments for DynamoStore {
    async fn payment_by_reference(
        &self,
        user: &UserKey,
        reference: &str,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        const OP: &str = "payment_by_reference";
        let Some(item) = self
            .get(OP, &schema::payment_reference_key(user, reference), true)
            .await?
        else {
            return Ok(None);
        };
        let id = ChallengeId::new(schema::get_s(&item, "challenge_id", OP)?);
        self.get_payment(user, &id).await
    }

    async fn get_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PaymentChallenge>, StoreError> {
        self.get("get_payment", &schema::payment_key(user, id), true)
            .await?
            .map(|item| schema::payment_from_item(&item))
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
            writes.push(schema::sms_active_for(user, &code.phone_hash));
        }
        let reference_at = writes.len();
        writes.push(schema::take_payment_reference(
            user,
            &challenge.payment.reference,
            &challenge.id,
            replaces,
            now,
        ));
        writes.push(schema::put_payment(user, challenge));
        match (code, &challenge.request_id) {
            (Some(code), _) => writes.push(schema::put_challenge(
                user,
                &ChallengeSlot::Payment(challenge.id.clone()),
                code,
                now,
            )),
            (None, Some(request_id)) => writes.push(schema::put_push_request(
                request_id,
                user,
                &PushPurpose::Payment(challenge.id.clone()),
                now,
            )),
            (None, None) => {}
        }
        let leading = writes.len();
        writes.extend(counters.iter().map(schema::consume_counter));
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
            schema::delete_challenge(user, &ChallengeSlot::Payment(challenge.id.clone()), code_id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            schema::release_payment_reference(user, &challenge.payment.reference, &challenge.id),
            Returns::Nothing,
        )
        .await?;
        self.write(
            OP,
            schema::delete_payment(user, &challenge.id),
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
        let mut writes = vec![schema::finish_payment(
            user,
            id,
            outcome.verified.as_ref(),
            now,
        )];
        if let Some(code) = &outcome.consume_code {
            writes.push(schema::delete_challenge(
                user,
                &ChallengeSlot::Payment(id.to_owned()),
                code,
            ));
        }
        if outcome.require_authy {
            writes.push(schema::authy_active(user));
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
        let write = schema::claim_idempotency(user, reference, fingerprint, lease_id, now);
        let old = match self.write(OP, write, Returns::Nothing).await? {
            Written::Done(_) => return Ok(ClaimOutcome::Claimed),
            Written::Refused(old) => old,
        };
        claim_outcome(old, lease_id, fingerprint)
    }

    async fn keep_idempotency(
        &self,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let write = schema::idempotency_record(user, record, now);
        match self
            .write("keep_idempotency", write, Returns::Nothing)
            .await?
        {
            Written::Done(_) => Ok(ClaimOutcome::Claimed),
            Written::Refused(old) => claim_outcome(old, &record.lease_id, &record.fingerprint),
        }
    }

    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError> {
        let write = schema::complete_idempotency(user, reference, lease_id, response, now);
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
            schema::release_idempotency(user, reference, lease_id),
            Returns::Nothing,
        )
        .await?;
        Ok(())
    }
}
