//! The store's roles: what each kind of route may do to the table, one trait each. A handler
//! is handed only the roles its route uses; an adapter implements them all (`Store`).

use async_trait::async_trait;

use super::*;
use crate::domain::{
    channel::Channel,
    device::DeviceChallenge,
    factor::FactorRecord,
    idempotency::IdempotencyRef,
    ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
    payment::PaymentChallenge,
    programme::Programme,
    send_limits::LimitCounter,
    step_up::{PushChallenge, SessionId},
};

/// The programme an api key belongs to (the pipeline, every user route).
#[async_trait]
pub trait Programmes: Send + Sync {
    /// The programme an api key (by its SHA-256) belongs to.
    async fn find_programme(&self, api_key_hash: &str) -> Result<Option<Programme>, StoreError>;
}

/// Writes no route makes: the operator tool, the local server and the tests seed programmes and factors with them.
#[async_trait]
pub trait Seeding: Send + Sync {
    /// Creates or replaces a programme under an api key hash.
    async fn put_programme(
        &self,
        api_key_hash: &str,
        programme: &Programme,
    ) -> Result<(), StoreError>;

    /// Creates or replaces a factor (operator tool, mobile SDK factors, tests).
    async fn put_factor(&self, user: &UserKey, factor: &FactorRecord) -> Result<(), StoreError>;
}

/// A user's factors, read.
#[async_trait]
pub trait FactorReads: Send + Sync {
    /// Every factor of a user, in no particular order.
    async fn list_factors(&self, user: &UserKey) -> Result<Vec<FactorRecord>, StoreError>;

    /// One factor of a user.
    async fn get_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError>;
}

/// SMS enrolment: step one's atomic write, and activation by a right code.
#[async_trait]
pub trait SmsEnrolments: Send + Sync {
    /// Step one, atomically: unless the SMS factor is `ACTIVE` for this phone and unless a
    /// counter is full, store the challenge (replacing any earlier one), mark the factor
    /// pending and consume every counter.
    async fn start_sms_challenge(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<StartOutcome, StoreError> {
        self.start_sms_challenge_claiming(user, challenge, counters, None, now)
            .await
    }

    /// `start_sms_challenge`, with the request's idempotency claim riding in the same write:
    /// refused first of all if a live record holds the reference.
    async fn start_sms_challenge_claiming(
        &self,
        user: &UserKey,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<StartOutcome, StoreError>;

    /// Consumes the challenge (if still this one) and makes the SMS factor `ACTIVE` for the
    /// phone it was sent to, marked as verified by `attempt_id`. `false` when the challenge
    /// was consumed or replaced meanwhile by anything but this same attempt (whose own write,
    /// resent after a lost answer, is found and is `true`).
    async fn activate_sms_factor(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .activate_sms_factor_claiming(user, challenge_id, phone_hash, attempt_id, None, now)
            .await?
            == Activation::Activated)
    }

    /// `activate_sms_factor`, with the request's idempotency record (final: the answer is
    /// known once this write commits) riding in the same write.
    async fn activate_sms_factor_claiming(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        claim: Option<&ClaimRecord>,
        now: i64,
    ) -> Result<Activation, StoreError>;
}

/// Counting attempts on an SMS code, and removing a code that could not be sent.
#[async_trait]
pub trait Codes: Send + Sync {
    /// Counts one attempt if the enrolment challenge is live and was sent to this phone.
    ///
    /// An attempt is counted once per `attempt_id`: the same id again (an SDK resend, or the
    /// caller's retry of the same idempotent request after its claim was released) reads
    /// the count instead of adding to it — only for the same phone while the challenge lives.
    async fn count_sms_attempt(
        &self,
        user: &UserKey,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError> {
        self.count_attempt(user, &ChallengeSlot::Enrolment, phone_hash, attempt_id, now)
            .await
    }

    /// Counts one attempt on a challenge of this slot (see `count_sms_attempt`).
    async fn count_attempt(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        phone_hash: &PhoneHash,
        attempt_id: &AttemptId,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError>;

    /// Removes a slot's challenge (if still this one) and gives counters back.
    async fn abandon_challenge(
        &self,
        user: &UserKey,
        slot: &ChallengeSlot,
        challenge_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError>;
}

/// Send-limit counters consumed, or given back, on their own.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Gives counters back after the provider failed.
    async fn refund_counters(&self, counters: &[LimitCounter]) -> Result<(), StoreError>;

    /// Consumes counters atomically: `Err` with the indices of the full ones (nothing
    /// consumed then).
    async fn consume_counters(
        &self,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<Result<(), Vec<usize>>, StoreError>;
}

/// Push enrolment: the reservation, the pending request, the device's answer.
#[async_trait]
pub trait PushEnrolments: Send + Sync {
    /// Push enrolment, atomically: unless the Authy factor is `ACTIVE` and unless a counter
    /// is full, consume the counters.
    async fn reserve_push_enrolment(
        &self,
        user: &UserKey,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<ReserveOutcome, StoreError>;

    /// Marks the Authy factor pending on this request, unless it became `ACTIVE` meanwhile;
    /// in the same atomic write, the factor references its Authy user (Authy gives one
    /// phone the same user id in every programme).
    async fn set_push_pending(
        &self,
        user: &UserKey,
        pending: &PendingPush,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Approves or denies the pending Authy enrolment (the one with `request_id`, if given).
    /// `false` when nothing (or another request) is pending.
    async fn resolve_push(
        &self,
        user: &UserKey,
        request_id: Option<&str>,
        approved: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Removing a factor, and its hold on the push provider's user.
#[async_trait]
pub trait Unlinking: Send + Sync {
    /// Removes a factor; returns it, `None` when there was none.
    async fn delete_factor(
        &self,
        user: &UserKey,
        channel: Channel,
    ) -> Result<Option<FactorRecord>, StoreError>;

    /// Drops this user's factor's reference on the push provider's user (Authy gives one
    /// phone one user everywhere); `true` when no factor, in any programme, references it any
    /// more (the provider may then forget the user).
    async fn release_provider_user(
        &self,
        provider_ref: &str,
        user: &UserKey,
    ) -> Result<bool, StoreError>;
}

/// What a provider's callback needs to find and to refuse a replay.
#[async_trait]
pub trait Callbacks: Send + Sync {
    /// Records a provider callback's nonce until `expires_at`: `false` if it was seen already
    /// (a replayed callback).
    async fn claim_callback_nonce(
        &self,
        nonce_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Whose approval request this is, and what for (for the provider's callback).
    async fn find_push_request(&self, request_id: &str) -> Result<Option<PushRequest>, StoreError>;
}

/// Step-up challenges (SMS and push) and the grants they leave.
#[async_trait]
pub trait StepUps: Send + Sync {
    /// Starts a session's SMS step-up, atomically: only if the SMS factor is `ACTIVE` for
    /// this phone, the session's last challenge is at least 15 s old and no counter is full,
    /// store the challenge (replacing the session's earlier one) and consume the counters.
    async fn start_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge: &NewChallenge,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<StepUpStart, StoreError>;

    /// Consumes the session's SMS challenge (if still this one) and grants the step-up, in
    /// one transaction. `false` when the challenge was consumed or replaced meanwhile by
    /// anything but this same attempt (whose own grant, after a lost answer, is `true`).
    async fn complete_step_up_sms(
        &self,
        user: &UserKey,
        session: &SessionId,
        challenge_id: &ChallengeId,
        grant: &StepUpGrant,
    ) -> Result<bool, StoreError>;

    /// The step-up granted to a session, if any (expired or not: compare `until`).
    async fn step_up_grant(
        &self,
        user: &UserKey,
        session: &SessionId,
    ) -> Result<Option<StepUpGrant>, StoreError>;

    /// Stores a pending push step-up challenge and, in the same write, the index of its
    /// provider request (Authy's callback finds it by that) or, for a BIOMETRIC challenge,
    /// its `answer` (slot `DeviceAnswer`: what the device signs, counted as a code).
    async fn put_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        answer: Option<&NewChallenge>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// One of the user's push challenges.
    async fn get_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PushChallenge>, StoreError>;

    /// Settles a pending, unexpired push challenge while its push factor is `ACTIVE` (and, on
    /// BIOMETRIC, consumes its answer, which unlinking removes): approved → `VERIFIED` with
    /// the grant written in the same transaction, denied → `DECLINED`. `false` when it was
    /// not pending (or expired, or the factor or the answer is gone).
    async fn settle_push_challenge(
        &self,
        user: &UserKey,
        challenge: &PushChallenge,
        grant: Option<&StepUpGrant>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Marks a pending challenge `EXPIRED`; `false` when it was no longer pending.
    async fn expire_push_challenge(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<bool, StoreError>;
}

/// Payment challenges.
#[async_trait]
pub trait Payments: Send + Sync {
    /// The challenge that holds a payment reference now, if any.
    async fn payment_by_reference(
        &self,
        user: &UserKey,
        reference: &str,
    ) -> Result<Option<PaymentChallenge>, StoreError>;

    /// One of the user's payment challenges.
    async fn get_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
    ) -> Result<Option<PaymentChallenge>, StoreError>;

    /// Starts a payment challenge, atomically: only if the reference is free (or still held
    /// by `replaces`, a declined or expired challenge), the SMS factor is `ACTIVE` for the
    /// code's phone (SMS) and no counter is full, store the challenge, take the reference,
    /// store the code (SMS; on BIOMETRIC the device's answer, slot `DeviceAnswer`) or index
    /// the provider request (AUTHY), consume the counters.
    async fn start_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code: Option<&NewChallenge>,
        replaces: Option<&ChallengeId>,
        counters: &[LimitCounter],
        now: i64,
    ) -> Result<PaymentStart, StoreError>;

    /// After a failed send: removes the payment challenge, its code and its hold on the
    /// reference (if still its own), and gives the counters back.
    async fn abandon_payment(
        &self,
        user: &UserKey,
        challenge: &PaymentChallenge,
        code_id: &ChallengeId,
        counters: &[LimitCounter],
    ) -> Result<(), StoreError>;

    /// Ends a pending, unexpired payment challenge as the outcome says; `false` when it was
    /// no longer pending (or the push factor, or the code to consume, is gone).
    async fn finish_payment(
        &self,
        user: &UserKey,
        id: &ChallengeId,
        outcome: &PaymentOutcome,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// One execution per `idempotency-ref` (the pipeline).
#[async_trait]
pub trait IdempotencyRecords: Send + Sync {
    /// Claims a reference for one execution (conditional put of an in-progress record).
    async fn claim_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        fingerprint: &str,
        lease_id: &LeaseId,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Keeps the final response under the claim (if the claim is still ours).
    async fn complete_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Writes a final record in one conditional put (a claim and its answer at once), for a
    /// request whose riding claim was never written: `Claimed` when written (or ours already),
    /// else what the live record under the reference says.
    async fn keep_idempotency(
        &self,
        user: &UserKey,
        record: &ClaimRecord,
        now: i64,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Drops the claim (if still ours and still in progress), so a retry runs again.
    async fn release_idempotency(
        &self,
        user: &UserKey,
        reference: &IdempotencyRef,
        lease_id: &LeaseId,
    ) -> Result<(), StoreError>;
}

/// BIOMETRIC devices: enrolment (the factor pending with its device, its challenge), activation
/// (the challenge consumed, the endpoint kept, the key registered to the factor), unlinking.
#[async_trait]
pub trait Devices: Send + Sync {
    /// Step one: the BIOMETRIC factor `PENDING_VERIFICATION` with `factor.device` (replacing a
    /// pending one and its challenge) and the enrolment challenge, in one write; refused when
    /// the factor is `ACTIVE`, or the device's key is registered to a factor.
    async fn start_device_enrolment(
        &self,
        user: &UserKey,
        factor: &FactorRecord,
        challenge: &NewChallenge,
        now: i64,
    ) -> Result<DeviceStart, StoreError>;

    /// Step two, after the signature verified: the challenge consumed (if still this one), the
    /// factor `ACTIVE` with its endpoint, and its key registered to it (never two `ACTIVE`
    /// factors with one key). `false` when the challenge or the pending factor is gone, or
    /// the key was registered meanwhile.
    async fn activate_device(
        &self,
        user: &UserKey,
        challenge_id: &ChallengeId,
        key_thumbprint: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// A new push token (and endpoint) for the user's `ACTIVE` device; `false` when none.
    async fn update_device_push(
        &self,
        user: &UserKey,
        push_token: &str,
        endpoint: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The challenges waiting for this device's answer (its key's thumbprint), unexpired at
    /// `now`, newest first, at most `limit`.
    async fn device_challenges(
        &self,
        user: &UserKey,
        key_thumbprint: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<DeviceChallenge>, StoreError>;

    /// Unlink: the factor, its pending enrolment and its key's registration, in one write;
    /// then the challenges waiting for its answer are removed and marked `EXPIRED` (no
    /// answer can settle them any more, whatever device enrols next).
    async fn remove_device(&self, user: &UserKey, key_thumbprint: &str) -> Result<(), StoreError>;
}

/// Every role of the store: what an adapter implements. A handler is given only the roles
/// its route uses (`handlers`), never the whole store.
pub trait Store:
    Programmes
    + Seeding
    + FactorReads
    + SmsEnrolments
    + Codes
    + Counters
    + PushEnrolments
    + Unlinking
    + Callbacks
    + StepUps
    + Payments
    + IdempotencyRecords
    + Devices
{
}

impl<
        T: Programmes
            + Seeding
            + FactorReads
            + SmsEnrolments
            + Codes
            + Counters
            + PushEnrolments
            + Unlinking
            + Callbacks
            + StepUps
            + Payments
            + IdempotencyRecords
            + Devices
            + ?Sized,
    > Store for T
{
}
