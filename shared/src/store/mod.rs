//! The storage port: every state change the API makes, each one atomic.
//!
//! Each method is one conditional write (or one transaction) in DynamoDB, so the rules that
//! must hold under concurrency — the wrong-code limit, single use of a code, one execution per
//! `idempotency-ref`, the send limits — are kept by the store itself, never by a read followed
//! by a write in the function. The memory store keeps the same contract under one lock; the
//! same contract tests run against both.

pub mod dynamodb;
pub mod memory;
mod roles;

pub use self::roles::*;

use crate::domain::{
    idempotency::IdempotencyRef,
    ids::{ChallengeId, LeaseId, PhoneHash},
    step_up::SessionId,
};

/// Whose data: a programme's user (the token's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserKey {
    pub programme_id: String,
    pub credential_id: String,
}

/// A fresh SMS challenge, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    pub challenge_id: ChallengeId,
    /// HMAC of the code, bound to `challenge_id`.
    pub code_hash: String,
    /// The keyed hash of the phone it was sent to.
    pub phone_hash: PhoneHash,
    pub wrong_code_limit: u32,
    pub expires_at: i64,
}

/// The result of step one's atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Challenge stored (any earlier one replaced), factor pending, counters consumed.
    Started,
    /// The SMS factor is already `ACTIVE` for this phone: nothing written.
    AlreadyRegistered,
    /// These counters (indices into the request's list) are full: nothing written.
    Limited(Vec<usize>),
    /// The idempotency claim riding in the write was refused (a live record holds the
    /// reference): nothing written.
    Unclaimed(ClaimOutcome),
}

/// The result of activating the SMS factor by a right code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Challenge consumed, factor `ACTIVE` (and the riding record written).
    Activated,
    /// The challenge was consumed or replaced meanwhile: nothing written.
    Refused,
    /// The idempotency claim riding in the write was refused: nothing written.
    Unclaimed(ClaimOutcome),
}

/// An `idempotency-ref`'s record written by the operation's own write — the claim *rides* in
/// it, so a first request costs no separate claim (see `http::idempotency`). In progress
/// while `response` is `None` (held for its lease), final otherwise (kept for replays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    pub reference: IdempotencyRef,
    pub fingerprint: String,
    pub lease_id: LeaseId,
    pub response: Option<StoredResponse>,
}

/// An attempt that was counted and may now be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedAttempt {
    pub challenge_id: ChallengeId,
    pub code_hash: String,
    /// Attempts counted so far, this one included.
    pub attempts: u32,
    pub limit: u32,
}

/// The result of counting a verification attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Counted(CountedAttempt),
    /// No challenge, or one sent to another phone: nothing counted.
    NoChallenge,
    /// Every attempt used: nothing counted.
    Dead,
    /// Past its expiry: nothing counted.
    Expired,
}

/// The result of reserving a push enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    AlreadyRegistered,
    Limited(Vec<usize>),
}

/// Which SMS challenge of a user: the enrolment's, or one session's step-up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChallengeSlot {
    Enrolment,
    StepUp(SessionId),
    /// A payment challenge's code (by the challenge's id).
    Payment(ChallengeId),
    /// A BIOMETRIC enrolment: its "code" is the signing input the device signs, and its
    /// "phone" the device key's thumbprint (a challenge counts only for its device).
    DeviceEnrolment,
    /// A BIOMETRIC step-up or payment challenge's answer (by the challenge's id), as the
    /// enrolment's: kept while the challenge waits for the device, consumed when it settles.
    DeviceAnswer(ChallengeId),
}

/// What starting a BIOMETRIC enrolment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStart {
    Started,
    /// The user's BIOMETRIC factor is `ACTIVE`: nothing written.
    AlreadyRegistered,
    /// The device key is registered to a factor: nothing written.
    KeyTaken,
}

/// The result of starting a payment challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStart {
    Started,
    /// The SMS factor is not `ACTIVE` for this phone: nothing written.
    NotRegistered,
    /// Another challenge took the reference meanwhile: nothing written.
    ReferenceTaken,
    /// These counters (indices into the request's list) are full: nothing written.
    Limited(Vec<usize>),
}

/// How a payment challenge ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    /// `VERIFIED` (with its proof) or `DECLINED`.
    pub verified: Option<PaymentProof>,
    /// The code (its slot and challenge id) consumed with it: an SMS code, or a BIOMETRIC
    /// challenge's answer (which must still be there: unlinking removes it).
    pub consume_code: Option<(ChallengeSlot, ChallengeId)>,
    /// Settles only while this push factor is `ACTIVE` (unlinking voids it).
    pub require_factor: Option<crate::domain::channel::Channel>,
}

/// A verified payment challenge's proof, and what verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentProof {
    pub proof: String,
    pub verified_by: String,
}

/// The result of starting an SMS step-up challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUpStart {
    /// Challenge stored (any earlier one of the session replaced), counters consumed.
    Started,
    /// The SMS factor is not `ACTIVE` for this phone: nothing written.
    NotRegistered,
    /// The session's last SMS left less than 15 s ago: nothing written.
    TooSoon,
    /// These counters (indices into the request's list) are full: nothing written.
    Limited(Vec<usize>),
}

/// A step-up granted to a session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpGrant {
    /// Until when the session counts as stepped up.
    pub until: i64,
    /// The challenge that proved it.
    pub challenge_id: ChallengeId,
    /// The verification attempt (SMS) or the provider request (push) that proved it.
    pub verified_by: String,
}

/// What a provider's approval request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushPurpose {
    /// A push factor's enrolment.
    Enrolment,
    /// A step-up challenge (its id).
    StepUp(ChallengeId),
    /// A payment challenge (its id).
    Payment(ChallengeId),
}

/// Whose approval request this is, and what for (the provider's callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub user: UserKey,
    pub purpose: PushPurpose,
}

/// A push enrolment request waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPush {
    pub phone_hash: PhoneHash,
    pub provider_ref: Option<String>,
    pub request_id: String,
}

/// A final response kept for an idempotency reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The JSON body, empty for none.
    pub body: String,
}

/// The result of claiming an idempotency reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// First use (or the old record expired): the request runs.
    Claimed,
    /// Same operation and body, finished: answer this again.
    Replay(StoredResponse),
    /// Same reference, another operation or body.
    Mismatch,
    /// Same reference, still running.
    InProgress,
}

impl ClaimOutcome {
    /// What a live record under the reference says to a claim: `Claimed` when the record is
    /// the claim's own (written by a first try whose answer was lost).
    pub fn of_record(
        claim_lease: &LeaseId,
        claim_fingerprint: &str,
        record_lease: Option<&str>,
        record_fingerprint: &str,
        response: Option<StoredResponse>,
    ) -> Self {
        if record_lease == Some(claim_lease.as_str()) {
            ClaimOutcome::Claimed
        } else if record_fingerprint != claim_fingerprint {
            ClaimOutcome::Mismatch
        } else {
            match response {
                Some(response) => ClaimOutcome::Replay(response),
                None => ClaimOutcome::InProgress,
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store failed, timed out or throttled (503).
    #[error("the store is unavailable during {operation}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An item the store returned cannot be read (500).
    #[error("the store returned an unreadable item during {operation}: {detail}")]
    Corrupt {
        operation: &'static str,
        detail: String,
    },
}
