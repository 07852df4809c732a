//! Settling push challenges (the device's answer, from the provider's callback or the
//! simulator), a push step-up's status as a reader sees it, and whether a payment reference
//! may start a new challenge.

use super::{
    announce::{announce_payment, announce_step_up},
    reply::{ApiError, ErrorCode},
    Caller,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        ids::ChallengeId,
        payment::PaymentChallenge,
        step_up::{ChallengeStatus, PushChallenge},
    },
    events::EventPublisher,
    proof::DeviceApproval,
    proof::ProofSigner,
    store::{ChallengeSlot, FactorReads, Payments, StepUps, UserKey},
};

/// How a push payment was answered.
pub(super) enum PushAnswer {
    /// By the provider's callback, the simulator, or a device's signed `DECLINE`: approved
    /// or not.
    Said(bool),
    /// Approved by a BIOMETRIC device's signature (and the attempt that carried it).
    ByDevice(DeviceApproval, String),
}

impl PushAnswer {
    fn approved(&self) -> bool {
        match self {
            PushAnswer::Said(approved) => *approved,
            PushAnswer::ByDevice(..) => true,
        }
    }
}

/// Settles a pending push step-up (the device's answer: Authy's callback, the BIOMETRIC
/// device's signature, or the simulator): approved → `VERIFIED` and the session that started
/// it stepped up, denied → `DECLINED`. `false` when it was not pending, had expired, or its
/// push factor is gone.
pub(super) async fn settle_step_up(
    step_ups: &dyn StepUps,
    events: &dyn EventPublisher,
    user: &UserKey,
    challenge: &PushChallenge,
    approved: bool,
    now: i64,
) -> Result<bool, ApiError> {
    use crate::domain::step_up::stepped_up_until;
    let grant = approved.then(|| crate::store::StepUpGrant {
        until: stepped_up_until(now, challenge.lifetime_secs, challenge.token_exp),
        challenge_id: challenge.id.clone(),
        verified_by: challenge.request_id.clone(),
    });
    if !step_ups
        .settle_push_challenge(user, challenge, grant.as_ref(), now)
        .await?
    {
        return Ok(false);
    }
    let status = if approved {
        ChallengeStatus::Verified
    } else {
        ChallengeStatus::Declined
    };
    announce_step_up(events, user, &challenge.id, challenge.channel, status, now).await;
    Ok(true)
}

/// A push step-up's status as a reader sees it: a pending one past its time, or whose push
/// factor is no longer `ACTIVE`, is `EXPIRED` (stored and announced once).
pub(super) async fn step_up_status(
    factors: &dyn FactorReads,
    step_ups: &dyn StepUps,
    events: &dyn EventPublisher,
    caller: &Caller,
    challenge: &PushChallenge,
) -> Result<ChallengeStatus, ApiError> {
    use crate::domain::factor::FactorStatus;
    let status = challenge.status_at(caller.now);
    let expired = match status {
        ChallengeStatus::Expired if challenge.status == ChallengeStatus::Pending => true,
        ChallengeStatus::Pending => !factors
            .get_factor(&caller.user, challenge.channel)
            .await?
            .is_some_and(|f| f.status == FactorStatus::Active),
        _ => false,
    };
    if !expired {
        return Ok(status);
    }
    if !step_ups
        .expire_push_challenge(&caller.user, &challenge.id)
        .await?
    {
        // Settled (or expired) by another request meanwhile: what it left stands.
        return Ok(step_ups
            .get_push_challenge(&caller.user, &challenge.id)
            .await?
            .map_or(ChallengeStatus::Expired, |c| c.status_at(caller.now)));
    }
    announce_step_up(
        events,
        &caller.user,
        &challenge.id,
        challenge.channel,
        ChallengeStatus::Expired,
        caller.now,
    )
    .await;
    Ok(ChallengeStatus::Expired)
}

/// Whether a payment reference may start a new challenge: free, or held by a declined or
/// expired one (returned, to be replaced). A pending or verified one holds it
/// (`STATE_INVALID`, which answers before the wait); a new SMS for a reference whose last
/// SMS is under 15 s old waits (`RETRY_IN_15SEC`).
pub(super) async fn payment_reference_free(
    payments: &dyn Payments,
    caller: &Caller,
    reference: &str,
    sms: bool,
) -> Result<Option<ChallengeId>, ApiError> {
    use crate::domain::step_up::RETRY_WAIT_SECS;
    let Some(current) = payments
        .payment_by_reference(&caller.user, reference)
        .await?
    else {
        return Ok(None);
    };
    match current.status_at(caller.now) {
        ChallengeStatus::Pending | ChallengeStatus::Verified => {
            Err(ApiError::Conflict(ErrorCode::StateInvalid))
        }
        ChallengeStatus::Declined | ChallengeStatus::Expired
            if sms
                && current.channel == Channel::Sms
                && current.created_at > caller.now - RETRY_WAIT_SECS =>
        {
            Err(ApiError::Conflict(ErrorCode::RetryIn15Sec))
        }
        ChallengeStatus::Declined | ChallengeStatus::Expired => Ok(Some(current.id)),
    }
}

/// What settling a push payment reaches: the challenge, the key that signs its proof, and
/// the events its outcome is announced on.
pub(super) struct PaymentSettlement<'a> {
    pub(super) payments: &'a dyn Payments,
    pub(super) signer: &'a dyn ProofSigner,
    /// The signer is the sandbox key (its proofs say `"sandbox": true`).
    pub(super) sandbox: bool,
    pub(super) events: &'a dyn EventPublisher,
}

/// Settles a pending push payment challenge (the device's answer: Authy's callback, the
/// BIOMETRIC device's signature — whose key and signature the proof then carries — or the
/// simulator): approved → signed, then `VERIFIED` with its proof; denied → `DECLINED`.
/// `false` when it was not pending, had expired, or its push factor is gone.
pub(super) async fn settle_payment(
    ports: PaymentSettlement<'_>,
    cx: &Context,
    user: &UserKey,
    challenge: &PaymentChallenge,
    answer: PushAnswer,
    now: i64,
) -> Result<bool, ApiError> {
    let approved = answer.approved();
    use crate::store::{PaymentOutcome, PaymentProof};
    if challenge.status_at(now) != ChallengeStatus::Pending {
        return Ok(false);
    }
    let verified = if approved {
        let device = match &answer {
            PushAnswer::ByDevice(approval, _) => Some(approval),
            _ => None,
        };
        let claims = crate::proof::proof_claims(
            &cx.proof_issuer,
            user,
            challenge,
            device,
            ports.sandbox,
            now,
        );
        let proof = crate::proof::sign_proof(ports.signer, &claims)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        Some(PaymentProof {
            proof,
            verified_by: match &answer {
                PushAnswer::ByDevice(_, attempt) => attempt.clone(),
                _ => challenge.request_id.clone().unwrap_or_default(),
            },
        })
    } else {
        None
    };
    // A BIOMETRIC challenge's answer is consumed with it: unlinking removed it, so an
    // unlinked device's challenge settles no more, whatever enrols next.
    let consume_code = (challenge.channel == Channel::Biometric).then(|| {
        (
            ChallengeSlot::DeviceAnswer(challenge.id.clone()),
            challenge.id.clone(),
        )
    });
    let outcome = PaymentOutcome {
        verified,
        consume_code,
        require_factor: Some(challenge.channel),
    };
    if !ports
        .payments
        .finish_payment(user, &challenge.id, &outcome, now)
        .await?
    {
        return Ok(false);
    }
    let status = if approved {
        ChallengeStatus::Verified
    } else {
        ChallengeStatus::Declined
    };
    announce_payment(ports.events, user, challenge, status, now).await;
    Ok(true)
}
