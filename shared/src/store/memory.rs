//! The embedded default store: everything in process memory under one lock.
//!
//! Each port method runs entirely under the lock, which makes it as atomic as the DynamoDB
//! transaction it stands for. It also counts its operations and can be told to fail, so the
//! handler tests can prove the 503 paths.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex, MutexGuard,
    },
};

use async_trait::async_trait;

use super::{
    Activation, AttemptOutcome, Callbacks, ChallengeSlot, ClaimOutcome, ClaimRecord, Codes,
    CountedAttempt, Counters, FactorReads, IdempotencyRecords, NewChallenge, PaymentOutcome,
    PaymentStart, Payments, PendingPush, Programmes, PushEnrolments, PushPurpose, PushRequest,
    ReserveOutcome, Seeding, SmsEnrolments, StartOutcome, StepUpGrant, StepUpStart, StepUps,
    StoreError, StoredResponse, Unlinking, UserKey,
};
use crate::domain::{
    challenge::{challenge_state, ChallengeState},
    channel::Channel,
    factor::{FactorRecord, FactorStatus},
    idempotency::{IdempotencyRef, KEEP_SECS, LEASE_SECS},
    ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
    payment::PaymentChallenge,
    programme::Programme,
    send_limits::{CounterId, LimitCounter},
    step_up::{ChallengeStatus, PushChallenge, SessionId, RETRY_WAIT_SECS},
};

#[derive(Debug, Clone)]
struct Challenge {
    stored: NewChallenge,
    attempts: u32,
    /// Every attempt counted on this challenge.
    counted: Vec<AttemptId>,
    created_at: i64,
}

#[derive(Debug, Clone)]
struct IdempotencyRecord {
    fingerprint: String,
    lease_id: LeaseId,
    /// `None` while the first request runs.
    response: Option<StoredResponse>,
    expires_at: i64,
}

#[derive(Default)]
struct Tables {
    programmes: HashMap<String, Programme>,
    factors: HashMap<(UserKey, Channel), FactorRecord>,
    challenges: HashMap<(UserKey, ChallengeSlot), Challenge>,
    /// key → (count, window end)
    counters: HashMap<CounterId, (u32, i64)>,
    idempotency: HashMap<(UserKey, String), IdempotencyRecord>,
    push_requests: HashMap<String, PushRequest>,
    push_challenges: HashMap<(UserKey, ChallengeId), PushChallenge>,
    /// (user, session) → the step-up granted to it.
    grants: HashMap<(UserKey, SessionId), StepUpGrant>,
    payments: HashMap<(UserKey, ChallengeId), PaymentChallenge>,
    /// (user, reference) → the payment challenge holding it.
    payment_references: HashMap<(UserKey, String), ChallengeId>,
    /// Callback nonce → until when it is remembered.
    nonces: HashMap<String, i64>,
    /// Authy user id → the users whose factors reference it.
    authy_users: HashMap<String, std::collections::HashSet<UserKey>>,
}

impl Tables {
    fn count(&self, counter: &LimitCounter, now: i64) -> u32 {
        match self.counters.get(&counter.id) {
            Some((count, end)) if *end > now => *count,
            _ => 0,
        }
    }

    fn full_counters(&self, counters: &[LimitCounter], now: i64) -> Vec<usize> {
        counters
            .iter()
            .enumerate()
            .filter(|(_, c)| self.count(c, now) >= c.limit)
            .map(|(i, _)| i)
            .collect()
    }

    fn consume(&mut self, counters: &[LimitCounter], now: i64) {
        for c in counters {
            let count = self.count(c, now).saturating_add(1);
            self.counters.insert(c.id.clone(), (count, c.window_end));
        }
    }

    /// Drops what DynamoDB's TTL would eventually drop, so a long-running local server does
    /// not grow without bound. Expiry is never decided here: every read checks it itself.
    /// Why a claim cannot be taken: the live record under its reference, unless it is ours.
    fn refusal(&self, user: &UserKey, claim: &ClaimRecord, now: i64) -> Option<ClaimOutcome> {
        let key = (user.clone(), claim.reference.as_str().to_owned());
        let existing = self.idempotency.get(&key).filter(|r| r.expires_at > now)?;
        match ClaimOutcome::of_record(
            &claim.lease_id,
            &claim.fingerprint,
            Some(existing.lease_id.as_str()),
            &existing.fingerprint,
            existing.response.clone(),
        ) {
            ClaimOutcome::Claimed => None,
            outcome => Some(outcome),
        }
    }

    /// Writes a claim's record: in progress for its lease, or final for `KEEP_SECS`.
    fn record(&mut self, user: &UserKey, claim: &ClaimRecord, now: i64) {
        let held = if claim.response.is_some() {
            KEEP_SECS
        } else {
            LEASE_SECS
        };
        self.idempotency.insert(
            (user.clone(), claim.reference.as_str().to_owned()),
            IdempotencyRecord {
                fingerprint: claim.fingerprint.clone(),
                lease_id: claim.lease_id.clone(),
                response: claim.response.clone(),
                expires_at: now + held,
            },
        );
    }

    fn sweep(&mut self, now: i64) {
        const GRACE: i64 = 3_600;
        self.counters.retain(|_, (_, end)| *end + GRACE > now);
        self.idempotency.retain(|_, r| r.expires_at + GRACE > now);
        self.challenges
            .retain(|_, c| c.stored.expires_at + GRACE > now);
        self.nonces.retain(|_, until| *until + GRACE > now);
        self.grants.retain(|_, g| g.until + GRACE > now);
        self.push_challenges
            .retain(|_, c| c.expires_at + GRACE > now);
    }
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    operations: AtomicU32,
    failures_to_inject: AtomicU32,
    /// An operation (by name) that fails the next time it runs.
    failing_operation: Mutex<Option<&'static str>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` operations fail as if the store were unreachable.
    pub fn fail_next(&self, n: u32) {
        self.failures_to_inject.store(n, Ordering::SeqCst);
    }

    /// The next run of the named operation (a port method's name) fails.
    pub fn fail_operation(&self, operation: &'static str) {
        *self
            .failing_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(operation);
    }

    /// How many port operations ran (failed ones included).
    pub fn operations(&self) -> u32 {
        self.operations.load(Ordering::SeqCst)
    }

    /// The attempts counted on a user's current enrolment challenge, if any.
    pub fn challenge_attempts(&self, user: &UserKey) -> Option<u32> {
        self.lock()
            .challenges
            .get(&(user.clone(), ChallengeSlot::Enrolment))
            .map(|c| c.attempts)
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Nothing panics while the lock is held, so a poisoned lock still guards whole updates.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the operation and takes the lock, or fails it when a failure was injected.
    fn begin(&self, operation: &'static str) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.operations.fetch_add(1, Ordering::SeqCst);
        let injected = self
            .failures_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let named = {
            let mut failing = self
                .failing_operation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            failing.take_if(|name| *name == operation).is_some()
        };
        if injected || named {
            return Err(StoreError::Unavailable {
                operation,
                source: "injected failure".into(),
            });
        }
        Ok(self.lock())
    }
}

#[async_trait]
impl Programmes for MemoryStore {
    async fn find_programme(&self, api_key_hash: &str) -> Result<Option<Programme>, StoreError> {
        Ok(self
            .begin("find_programme")?
            .programmes
            .get(api_key_hash)
            .cloned())
    }
}

#[async_trait]
impl Seeding for MemoryStore {
    async fn put_programme(
        &self,
        api_key_hash: &str,
        programme: &Programme,
    ) -> Result<(), StoreError> {
        self.begin("put_programme")?
            .programmes
            .insert(api_key_hash.to_owned(), programme.clone());
        Ok(())
    }

    async fn put_factor(&self, user: &UserKey, factor: &FactorRecord) -> Result<(), StoreError> {
        self.begin("put_factor")?
            .factors
            .insert((user.clone(), factor.channel), factor.clone());
        Ok(())
    }
}

#[async_trait]
impl FactorReads for MemoryStore {
    async fn list_factors(&self, user: &UserKey) -> Result<Vec<FactorRecord>, StoreError> {
        let tables = self.begin("list_factors")?;
        Ok(Channel::ALL
            .iter()
            .filter_map(|c| tables.factors.get(&(user.clone(), *c)).cloned())
            .collect())
    }

    async fn get_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError> {
        Ok(self
            .begin("get_factor")?
            .factors
            .get(&(user.clone(), channel))
            .cloned())
    }
}

#[async_trait]
impl SmsEnrolments for MemoryStore {
    async fn start_sms_challenge_claiming(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        let mut tables = self.begin("start_sms_challenge")?;
        tables.sweep(now);
        if let Some(outcome) = claim.and_then(|c| tables.refusal(user, c, now)) {
            return Ok(StartOutcome::Unclaimed(outcome));
        }
        let key = (user.clone(), Channel::Sms);
        if let Some(f) = tables.factors.get(&key) {
            if f.status == FactorStatus::Active
                && f.phone_hash.as_deref() == Some(challenge.phone_hash.as_str())
            {
                return Ok(StartOutcome::AlreadyRegistered);
            }
        }
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(StartOutcome::Limited(full));
        }
        tables.consume(counters, now);
        tables.challenges.insert(
            (user.clone(), ChallengeSlot::Enrolment),
            Challenge {
                stored: challenge.clone(),
                attempts: 0,
                counted: Vec::new(),
                created_at: now,
            },
        );
        let factor = tables.factors.entry(key).or_insert_with(|| FactorRecord {
            channel: Channel::Sms,
            status: FactorStatus::PendingVerification,
            phone_hash: None,
            authy_id: None,
            pending_request: None,
            verified_by: None,
            updated_at: now,
        });
        factor.status = FactorStatus::PendingVerification;
        factor.updated_at = now;
        if let Some(claim) = claim {
            tables.record(user, claim, now);
        }
        Ok(StartOutcome::Started)
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
        let mut tables = self.begin("activate_sms_factor")?;
        if let Some(outcome) = claim.and_then(|c| tables.refusal(user, c, now)) {
            return Ok(Activation::Unclaimed(outcome));
        }
        let slot = (user.clone(), ChallengeSlot::Enrolment);
        let current = tables.challenges.get(&slot);
        if !current.is_some_and(|c| {
            c.stored.challenge_id == *challenge_id && c.stored.phone_hash == *phone_hash
        }) {
            let factor = tables.factors.get(&(user.clone(), Channel::Sms));
            return Ok(
                if factor.is_some_and(|f| f.is_verified_by(attempt_id.as_str())) {
                    Activation::Activated
                } else {
                    Activation::Refused
                },
            );
        }
        if let Some(claim) = claim {
            tables.record(user, claim, now);
        }
        let phone_hash = phone_hash.as_str().to_owned();
        tables.challenges.remove(&slot);
        tables.factors.insert(
            (user.clone(), Channel::Sms),
            FactorRecord {
                channel: Channel::Sms,
                status: FactorStatus::Active,
                phone_hash: Some(phone_hash),
                authy_id: None,
                pending_request: None,
                verified_by: Some(attempt_id.as_str().to_owned()),
                updated_at: now,
            },
        );
        Ok(Activation::Activated)
    }
}

#[async_trait]
impl Codes for MemoryStore {
    async fn abandon_challenge(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        challenge_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("abandon_challenge")?;
        let key = (user.clone(), slot.clone());
        if tables
            .challenges
            .get(&key)
            .is_some_and(|c| c.stored.challenge_id == *challenge_id)
        {
            tables.challenges.remove(&key);
        }
        for c in counters {
            if let Some((count, _)) = tables.counters.get_mut(&c.id) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn count_attempt(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError> {
        let mut tables = self.begin("count_sms_attempt")?;
        let Some(challenge) = tables.challenges.get_mut(&(user.clone(), slot.clone())) else {
            return Ok(AttemptOutcome::NoChallenge);
        };
        let counted = |challenge: &Challenge| {
            AttemptOutcome::Counted(CountedAttempt {
                challenge_id: challenge.stored.challenge_id.clone(),
                code_hash: challenge.stored.code_hash.clone(),
                attempts: challenge.attempts,
                limit: challenge.stored.wrong_code_limit,
            })
        };
        if challenge.stored.phone_hash != *phone_hash {
            return Ok(AttemptOutcome::NoChallenge);
        }
        if challenge.counted.contains(attempt_id) && now < challenge.stored.expires_at {
            // Already counted: not again (same phone, challenge still live).
            return Ok(counted(challenge));
        }
        match challenge_state(
            challenge.attempts,
            challenge.stored.wrong_code_limit,
            challenge.stored.expires_at,
            now,
        ) {
            ChallengeState::Dead => Ok(AttemptOutcome::Dead),
            ChallengeState::Expired => Ok(AttemptOutcome::Expired),
            ChallengeState::Live => {
                challenge.attempts += 1;
                challenge.counted.push(attempt_id.clone());
                Ok(counted(challenge))
            }
        }
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn refund_counters(&self, counters: &[LimitCounter]) -> Result<(), StoreError> {
        let mut tables = self.begin("refund_counters")?;
        for c in counters {
            if let Some((count, _)) = tables.counters.get_mut(&c.id) {
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn consume_counters(
        &self,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        let mut tables = self.begin("consume_counters")?;
        tables.sweep(now);
        let full = tables.full_counters(counters, now);
        if !full.is_empty() {
            return Ok(Err(full));
        }
        tables.consume(counters, now);
        Ok(Ok(()))
    }
}

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
                authy_id: pending.authy_id.clone(),
                pending_request: Some(pending.request_id.clone()),
                verified_by: None,
                updated_at: now,
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
        if let Some(authy_id) = &pending.authy_id {
            tables
                .authy_users
                .entry(authy_id.clone())
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

    async fn release_authy_user(&self, authy_id: &str, user: &UserKey) -> Result<bool, StoreError> {
        let mut tables = self.begin("release_authy_user")?;
        let Some(users) = tables.authy_users.get_mut(authy_id) else {
            return Ok(true);
        };
        users.remove(user);
        let unused = users.is_empty();
        if unused {
            tables.authy_users.remove(authy_id);
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
        _now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("put_push_challenge")?;
        tables.push_requests.insert(
            challenge.request_id.clone(),
            PushRequest {
                user: user.clone(),
                purpose: PushPurpose::StepUp(challenge.id.clone()),
            },
        );
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
            .get(&(user.clone(), Channel::Authy))
            .is_some_and(|f| f.status == FactorStatus::Active);
        let key = (user.clone(), challenge.id.clone());
        let Some(stored) = tables.push_challenges.get_mut(&key) else {
            return Ok(false);
        };
        if !factor_active || stored.status != ChallengeStatus::Pending || now >= stored.expires_at {
            return Ok(false);
        }
        stored.status = match grant {
            Some(_) => ChallengeStatus::Verified,
            None => ChallengeStatus::Declined,
        };
        let session = stored.session.clone();
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
        if let Some(code) = code {
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
            tables.challenges.insert(
                (user.clone(), ChallengeSlot::Payment(challenge.id.clone())),
                Challenge {
                    stored: code.clone(),
                    attempts: 0,
                    counted: Vec::new(),
                    created_at: now,
                },
            );
        }
        if let Some(request_id) = &challenge.request_id {
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
        let authy_active = tables
            .factors
            .get(&(user.clone(), Channel::Authy))
            .is_some_and(|f| f.status == FactorStatus::Active);
        if outcome.require_authy && !authy_active {
            return Ok(false);
        }
        let slot = (user.clone(), ChallengeSlot::Payment(id.to_owned()));
        if let Some(code) = &outcome.consume_code {
            if tables
                .challenges
                .get(&slot)
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
        if outcome.consume_code.is_some() {
            tables.challenges.remove(&slot);
        }
        Ok(true)
    }
}

impl MemoryStore {
    /// A claim's conditional put: written unless a live record of another request holds the
    /// reference.
    fn put_record(
        &self,
        operation: &'static str,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.begin(operation)?;
        if let Some(outcome) = tables.refusal(user, record, now) {
            return Ok(outcome);
        }
        tables.record(user, record, now);
        Ok(ClaimOutcome::Claimed)
    }
}

#[async_trait]
impl IdempotencyRecords for MemoryStore {
    async fn claim_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        fingerprint: &str,
        lease_id: &LeaseId,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let record = ClaimRecord {
            reference: reference.clone(),
            fingerprint: fingerprint.to_owned(),
            lease_id: lease_id.clone(),
            response: None,
        };
        self.put_record("claim_idempotency", user, &record, now)
    }

    async fn keep_idempotency(
        &self,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.put_record("keep_idempotency", user, record, now)
    }

    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("complete_idempotency")?;
        if let Some(record) = tables
            .idempotency
            .get_mut(&(user.clone(), reference.as_str().to_owned()))
            .filter(|r| r.lease_id == *lease_id)
        {
            record.response = Some(response.clone());
            record.expires_at = now + KEEP_SECS;
        }
        Ok(())
    }

    async fn release_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
    ) -> Result<(), StoreError> {
        let mut tables = self.begin("release_idempotency")?;
        let key = (user.clone(), reference.as_str().to_owned());
        if tables
            .idempotency
            .get(&key)
            .is_some_and(|r| r.lease_id == *lease_id && r.response.is_none())
        {
            tables.idempotency.remove(&key);
        }
        Ok(())
    }
}
