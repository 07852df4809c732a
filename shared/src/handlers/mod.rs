//! One module per route, named after what it does. Each takes an authenticated, validated
//! request and returns a response or an `ApiError`; the pipeline in `http` did the rest.

pub mod authy_callback;
pub mod enrol_push;
pub mod enrol_sms_otp;
pub mod get_payment_challenge;
pub mod get_step_up_challenge;
pub mod jwks;
pub mod list_factors;
pub mod payment_push;
pub mod payment_sms;
pub mod reply;
pub mod simulate_payment;
pub mod simulate_push;
pub mod simulate_step_up;
pub mod step_up_push;
pub mod step_up_sms;
pub mod unlink_push;
pub mod verify_payment_sms;
pub mod verify_sms_otp;
pub mod verify_step_up_sms;

use std::sync::Arc;

use crate::{
    auth::PhoneClaim,
    domain::{channel::Channel, phone::PhoneNumber},
    domain::{factor::TokenPhone, programme::Programme},
    handlers::reply::{ApiError, ErrorCode},
    store::UserKey,
};

/// The authenticated caller of one request.
pub struct Caller {
    pub programme: Arc<Programme>,
    pub user: UserKey,
    pub phone: PhoneClaim,
    pub stepped_up: bool,
    /// The token's session (what a step-up challenge steps up) and its `exp`.
    pub session: crate::domain::step_up::SessionId,
    pub token_exp: i64,
    /// The request's clock, read once.
    pub now: i64,
}

impl Caller {
    /// The token's phone as the listing rule sees it.
    pub fn token_phone(&self, app: &crate::app::App) -> TokenPhone {
        match &self.phone {
            PhoneClaim::Absent => TokenPhone::Absent,
            PhoneClaim::Invalid => TokenPhone::Invalid,
            PhoneClaim::Valid(phone) => {
                TokenPhone::Hash(app.hasher.phone_hash(phone.expose_e164()))
            }
        }
    }
}

/// The phone a new factor is enrolled on: the token's, if the programme allows the channel
/// and the number's country. The 409s of both enrolment routes, in the contract's order.
fn enrolment_phone<'c>(
    app: &crate::app::App,
    caller: &'c Caller,
    channel: Channel,
) -> Result<&'c PhoneNumber, ApiError> {
    if !caller.programme.channel_enabled(channel) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    match &caller.phone {
        PhoneClaim::Absent => Err(ApiError::Conflict(ErrorCode::MobileNumberNotAvailable)),
        PhoneClaim::Invalid => Err(ApiError::Conflict(ErrorCode::MobileNumberInvalid)),
        PhoneClaim::Valid(phone)
            if !caller
                .programme
                .country_allowed(phone.country_code(), &app.policy.default_countries) =>
        {
            Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported))
        }
        PhoneClaim::Valid(phone) => Ok(phone),
    }
}

/// A random number for picking a counter shard.
fn shard_pick(app: &crate::app::App) -> u32 {
    let mut buf = [0u8; 4];
    let _ = app.random.fill(&mut buf);
    u32::from_le_bytes(buf)
}

/// A fresh code for `phone` (`123456` in a sandbox, else uniform from the CSPRNG) and the
/// challenge that stores its hash, live for `CODE_TTL_SECS`: what every SMS route sends.
fn new_sms_code(
    app: &crate::app::App,
    caller: &Caller,
    phone_hash: String,
) -> Result<
    (
        crate::domain::otp::VerificationCode,
        crate::store::NewChallenge,
    ),
    ApiError,
> {
    use crate::domain::{
        otp::{generate_code, VerificationCode, SANDBOX_CODE},
        random::random_id,
    };
    let code = if caller.programme.sandbox {
        VerificationCode::parse(SANDBOX_CODE).map_err(|e| ApiError::Internal(e.into()))?
    } else {
        generate_code(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?
    };
    let challenge_id = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
    let challenge = crate::store::NewChallenge {
        code_hash: app.hasher.code_hash(&challenge_id, &code),
        challenge_id,
        phone_hash,
        wrong_code_limit: caller.programme.wrong_code_limit,
        expires_at: caller.now + crate::domain::challenge::CODE_TTL_SECS,
    };
    Ok((code, challenge))
}

/// The send-limit counters one SMS to `phone` consumes (enrolment and step-up share them).
fn sms_counters_for(
    app: &crate::app::App,
    caller: &Caller,
    phone: &PhoneNumber,
    phone_hash: &str,
) -> Vec<crate::domain::send_limits::LimitCounter> {
    use crate::domain::send_limits::{sms_counters, Destination, Sender};
    let programme = &caller.programme;
    sms_counters(
        &programme.send_limits,
        &app.policy.sms_budget,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        &Destination {
            phone_hash,
            country_code: phone.country_code(),
        },
        caller.now,
        shard_pick(app),
    )
}

/// What a failed send leaves behind to remove.
enum Unsent<'a> {
    /// An enrolment or step-up code: the slot's challenge (by id).
    Challenge(&'a crate::store::ChallengeSlot, &'a str),
    /// A payment challenge, its code (by id) and its hold on the reference.
    Payment(&'a crate::domain::payment::PaymentChallenge, &'a str),
}

/// Sends a stored challenge's code as `text` (a sandbox sends nothing). If the send fails,
/// what was stored for it is removed, the counters are given back when SNS definitely sent
/// nothing (an SMS that may have left still counts), and the caller gets a 503 whose retry
/// works.
async fn send_code(
    app: &crate::app::App,
    caller: &Caller,
    phone: &PhoneNumber,
    code: crate::domain::otp::VerificationCode,
    text: String,
    unsent: Unsent<'_>,
    counters: &[crate::domain::send_limits::LimitCounter],
) -> Result<(), ApiError> {
    use crate::sms::{Delivery, SmsMessage};
    let programme = &caller.programme;
    if programme.sandbox {
        tracing::info!(to = %phone, "sandbox programme: challenge stored, no SMS sent");
        return Ok(());
    }
    let message = SmsMessage {
        to: phone.clone(),
        text,
        code,
        sender_id: programme.sms_sender_id.clone(),
    };
    let Err(error) = app.sms.send(&message).await else {
        tracing::info!(to = %phone, "SMS code sent");
        let country = phone.country_code().to_string();
        app.metrics.count(
            crate::metrics::Metric::SmsSent,
            &[("programme", &programme.id), ("country", &country)],
            caller.now,
        );
        return Ok(());
    };
    let refund: &[_] = match error.delivery {
        Delivery::NotSent => counters,
        Delivery::Unknown => &[],
    };
    let delivery = match error.delivery {
        Delivery::NotSent => "not_sent",
        Delivery::Unknown => "unknown",
    };
    tracing::info!(delivery, refunded = !refund.is_empty(), "SMS not sent");
    let abandoned = match unsent {
        Unsent::Challenge(slot, id) => {
            app.store
                .abandon_challenge(&caller.user, slot, id, refund)
                .await
        }
        Unsent::Payment(challenge, code_id) => {
            app.store
                .abandon_payment(&caller.user, challenge, code_id, refund)
                .await
        }
    };
    if let Err(cleanup) = abandoned {
        tracing::warn!(error = %crate::logging::redacted_chain(&cleanup), "the unsent challenge could not be removed");
    }
    Err(ApiError::Unavailable(error.into()))
}

/// A push sent to the user's device through Authy.
fn count_push(app: &crate::app::App, caller: &Caller) {
    app.metrics.count(
        crate::metrics::Metric::PushRequests,
        &[("programme", &caller.programme.id)],
        caller.now,
    );
}

/// Compares a code with the challenge's stored hash (and counts the comparison).
fn code_is_right(
    app: &crate::app::App,
    caller: &Caller,
    challenge_id: &str,
    code: &crate::domain::otp::VerificationCode,
    code_hash: &str,
) -> bool {
    use std::sync::atomic::Ordering;
    app.metrics.codes_compared.fetch_add(1, Ordering::SeqCst);
    let right = app.hasher.code_matches(challenge_id, code, code_hash);
    app.metrics.count(
        crate::metrics::Metric::CodesCompared,
        &[
            ("programme", &caller.programme.id),
            ("result", if right { "right" } else { "wrong" }),
        ],
        caller.now,
    );
    right
}

/// What a wrong code is told, by the attempts counted so far.
fn wrong_code_answer(
    app: &crate::app::App,
    caller: &Caller,
    attempts: u32,
    limit: u32,
) -> ErrorCode {
    use crate::domain::challenge::{wrong_code, WrongCode};
    match wrong_code(attempts, limit) {
        WrongCode::Invalid => ErrorCode::VerificationCodeInvalid,
        WrongCode::OneRemaining => ErrorCode::OneChallengeLimitRemaining,
        WrongCode::LimitExceeded => {
            app.metrics.count(
                crate::metrics::Metric::ChallengeLimitReached,
                &[("programme", &caller.programme.id)],
                caller.now,
            );
            ErrorCode::ChallengeLimitExceeded
        }
    }
}

/// The 429 of an SMS refused by its send limits (counted by the limit that was full).
fn sms_refused(
    app: &crate::app::App,
    caller: &Caller,
    phone: &PhoneNumber,
    counters: &[crate::domain::send_limits::LimitCounter],
    full: &[usize],
) -> ApiError {
    let hit: Vec<_> = full.iter().filter_map(|&i| counters.get(i)).collect();
    tracing::info!(to = %phone, "SMS send limit reached");
    for counter in &hit {
        app.metrics.count(
            crate::metrics::Metric::SmsRefused,
            &[
                ("programme", &caller.programme.id),
                ("limit", counter.kind().name()),
            ],
            caller.now,
        );
    }
    match crate::domain::send_limits::rate_limited(counters, &hit, caller.now) {
        Some(limited) => ApiError::RateLimited(limited),
        None => ApiError::Internal("limited without a full counter".into()),
    }
}

/// Settles a pending push step-up (the device's answer, from Authy's callback or the
/// simulator): approved → `VERIFIED` and the session stepped up, denied → `DECLINED`.
/// `false` when it was not pending, had expired, or its Authy factor is gone.
async fn settle_step_up(
    app: &crate::app::App,
    user: &crate::store::UserKey,
    challenge: &crate::domain::step_up::PushChallenge,
    approved: bool,
    now: i64,
) -> Result<bool, ApiError> {
    use crate::domain::step_up::{stepped_up_until, ChallengeStatus};
    let grant = approved.then(|| crate::store::StepUpGrant {
        until: stepped_up_until(now, challenge.lifetime_secs, challenge.token_exp),
        challenge_id: challenge.id.clone(),
        verified_by: challenge.request_id.clone(),
    });
    if !app
        .store
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
    app.announce_step_up(user, &challenge.id, Channel::Authy, status)
        .await;
    Ok(true)
}

/// A push step-up's status as a reader sees it: a pending one past its time, or whose Authy
/// factor is no longer `ACTIVE`, is `EXPIRED` (stored and announced once).
async fn step_up_status(
    app: &crate::app::App,
    caller: &Caller,
    challenge: &crate::domain::step_up::PushChallenge,
) -> Result<crate::domain::step_up::ChallengeStatus, ApiError> {
    use crate::domain::{factor::FactorStatus, step_up::ChallengeStatus};
    let status = challenge.status_at(caller.now);
    let expired = match status {
        ChallengeStatus::Expired if challenge.status == ChallengeStatus::Pending => true,
        ChallengeStatus::Pending => !app
            .store
            .get_factor(&caller.user, Channel::Authy)
            .await?
            .is_some_and(|f| f.status == FactorStatus::Active),
        _ => false,
    };
    if !expired {
        return Ok(status);
    }
    if !app
        .store
        .expire_push_challenge(&caller.user, &challenge.id)
        .await?
    {
        // Settled (or expired) by another request meanwhile: what it left stands.
        return Ok(app
            .store
            .get_push_challenge(&caller.user, &challenge.id)
            .await?
            .map_or(ChallengeStatus::Expired, |c| c.status_at(caller.now)));
    }
    app.announce_step_up(
        &caller.user,
        &challenge.id,
        Channel::Authy,
        ChallengeStatus::Expired,
    )
    .await;
    Ok(ChallengeStatus::Expired)
}

/// Whether a payment reference may start a new challenge: free, or held by a declined or
/// expired one (returned, to be replaced). A pending or verified one holds it
/// (`STATE_INVALID`, which answers before the wait); a new SMS for a reference whose last
/// SMS is under 15 s old waits (`RETRY_IN_15SEC`).
async fn payment_reference_free(
    app: &crate::app::App,
    caller: &Caller,
    reference: &str,
    sms: bool,
) -> Result<Option<String>, ApiError> {
    use crate::domain::step_up::{ChallengeStatus, RETRY_WAIT_SECS};
    let Some(current) = app
        .store
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

/// Settles a pending push payment challenge (the device's answer, from Authy's callback or
/// the simulator): approved → signed, then `VERIFIED` with its proof; denied → `DECLINED`.
/// `false` when it was not pending, had expired, or its Authy factor is gone.
async fn settle_payment(
    app: &crate::app::App,
    user: &crate::store::UserKey,
    challenge: &crate::domain::payment::PaymentChallenge,
    approved: bool,
    now: i64,
) -> Result<bool, ApiError> {
    use crate::{
        domain::step_up::ChallengeStatus,
        store::{PaymentOutcome, PaymentProof},
    };
    if challenge.status_at(now) != ChallengeStatus::Pending {
        return Ok(false);
    }
    let verified = if approved {
        let claims = crate::proof::proof_claims(&app.proof_issuer, user, challenge, now);
        let proof = crate::proof::sign_proof(app.signer.as_ref(), &claims)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        Some(PaymentProof {
            proof,
            verified_by: challenge.request_id.clone().unwrap_or_default(),
        })
    } else {
        None
    };
    let outcome = PaymentOutcome {
        verified,
        consume_code: None,
        require_authy: true,
    };
    if !app
        .store
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
    app.announce_payment(user, challenge, status).await;
    Ok(true)
}

/// The user's `ACTIVE` Authy factor a push challenge goes to: its provider id (none in a
/// sandbox, which calls no provider).
async fn active_authy_id(
    app: &crate::app::App,
    caller: &Caller,
) -> Result<Option<String>, ApiError> {
    use crate::domain::factor::FactorStatus;
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Authy) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    let factor = app.store.get_factor(&caller.user, Channel::Authy).await?;
    let token_phone = caller.token_phone(app);
    let Some(factor) = factor.filter(|f| f.listed_status(&token_phone) == FactorStatus::Active)
    else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    match (factor.authy_id, programme.sandbox) {
        (_, true) => Ok(None),
        (Some(id), false) => Ok(Some(id)),
        (None, false) => Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered)),
    }
}

/// Pushes a challenge's approval request: consumes the user's push request for this hour
/// (409 `CHALLENGE_LIMIT_EXCEEDED` when none is left: a guard against push-bombing), then
/// asks Authy (a sandbox gets a random request id). If Authy fails, the request is given back
/// and the caller gets a 503. Returns the provider's request id.
async fn push_approval(
    app: &crate::app::App,
    caller: &Caller,
    authy_id: Option<String>,
    approval: crate::push::Approval,
) -> Result<String, ApiError> {
    use crate::domain::send_limits::{push_counters, Sender};
    let programme = &caller.programme;
    // The user's push requests per hour; the per-number limit is enrolment's.
    let counters: Vec<_> = push_counters(
        &programme.send_limits,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        "",
        caller.now,
    )
    .into_iter()
    .take(1)
    .collect();
    if app
        .store
        .consume_counters(&counters, caller.now)
        .await?
        .is_err()
    {
        return Err(ApiError::Conflict(ErrorCode::ChallengeLimitExceeded));
    }
    let Some(authy_id) = authy_id else {
        return crate::domain::random::random_id(app.random.as_ref())
            .map_err(|e| ApiError::Internal(e.into()));
    };
    match app.push.request_approval(&authy_id, &approval).await {
        Ok(request_id) => {
            count_push(app, caller);
            Ok(request_id)
        }
        Err(error) => {
            if let Err(refund) = app.store.refund_counters(&counters).await {
                tracing::warn!(error = %crate::logging::redacted_chain(&refund), "push counter not refunded");
            }
            Err(ApiError::Unavailable(error.into()))
        }
    }
}
