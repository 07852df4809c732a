//! The embedded default store: everything in process memory under one lock.
//!
//! Each port method runs entirely under the lock, which makes it as atomic as the DynamoDB
//! transaction it stands for. It also counts its operations and can be told to fail, so the
//! handler tests can prove the 503 paths.

mod devices;
mod enrolments;
mod idempotency;
mod payments;
mod push;
mod step_ups;

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
    CountedAttempt, Counters, DeviceStart, Devices, FactorReads, IdempotencyRecords, NewChallenge,
    PaymentOutcome, PaymentStart, Payments, PendingPush, Programmes, PushEnrolments, PushPurpose,
    PushRequest, ReserveOutcome, Seeding, SmsEnrolments, StartOutcome, StepUpGrant, StepUpStart,
    StepUps, StoreError, StoredResponse, Unlinking, UserKey,
};
use crate::domain::{
    challenge::{attempt_verdict, AttemptVerdict},
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
    provider_users: HashMap<String, std::collections::HashSet<UserKey>>,
    /// A device key's thumbprint → the user whose BIOMETRIC factor it is.
    device_keys: HashMap<String, UserKey>,
}

impl Tables {
    /// Stores a fresh challenge in its slot (replacing the slot's earlier one).
    fn put_challenge(
        &mut self,
        user: &UserKey,
        slot: ChallengeSlot,
        stored: &NewChallenge,
        now: i64,
    ) {
        self.challenges.insert(
            (user.clone(), slot),
            Challenge {
                stored: stored.clone(),
                attempts: 0,
                counted: Vec::new(),
                created_at: now,
            },
        );
    }

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
