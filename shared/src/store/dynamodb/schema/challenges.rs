//! Code challenges (enrolment, step-up, payment codes), step-up grants and push step-up challenges: their items, the count before compare, consumption.

use super::*;

// ---- SMS challenges ------------------------------------------------------------------------

/// Step one's factor write: pending, unless already ACTIVE for this phone.
pub fn mark_sms_pending(user: &UserKey, phone_hash: &PhoneHash, now: i64) -> Write {
    Write::new(
        factor_key(user, Channel::Sms),
        Action::Update("SET #status = :pending, #updated_at = :now".into()),
    )
    .names(&["status", "updated_at", "phone_hash"])
    .value(":pending", s(FactorStatus::PendingVerification.as_str()))
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":phone", s(phone_hash.as_str()))
    .value(":now", n(now))
    .condition("NOT (#status = :active AND #phone_hash = :phone)")
}

pub fn put_challenge(
    user: &UserKey,
    slot: &ChallengeSlot,
    challenge: &NewChallenge,
    now: i64,
) -> Write {
    let key = challenge_key(user, slot);
    let mut item = key.to_item();
    item.insert("created_at".into(), n(now));
    item.insert("challenge_id".into(), s(challenge.challenge_id.as_str()));
    item.insert("code_hash".into(), s(&challenge.code_hash));
    item.insert("phone_hash".into(), s(challenge.phone_hash.as_str()));
    item.insert("attempts".into(), n(0));
    item.insert(
        "wrong_code_limit".into(),
        n(i64::from(challenge.wrong_code_limit)),
    );
    item.insert("expires_at".into(), n(challenge.expires_at));
    item.insert("ttl".into(), n(challenge.expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

/// A session's step-up challenge: stored only if its last one is at least 15 s old.
pub fn put_step_up_challenge(
    user: &UserKey,
    session: &SessionId,
    challenge: &NewChallenge,
    now: i64,
) -> Write {
    put_challenge(
        user,
        &ChallengeSlot::StepUp(session.clone()),
        challenge,
        now,
    )
    .names(&["pk", "created_at"])
    .value(":retry_before", n(now - RETRY_WAIT_SECS))
    .condition("attribute_not_exists(#pk) OR #created_at <= :retry_before")
}

/// The SMS factor is `ACTIVE` for this phone (a step-up's condition).
pub fn sms_active_for(user: &UserKey, phone_hash: &PhoneHash) -> Write {
    Write::new(factor_key(user, Channel::Sms), Action::Check)
        .names(&["status", "phone_hash"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .value(":phone", s(phone_hash.as_str()))
        .condition("#status = :active AND #phone_hash = :phone")
}

/// The push factor is `ACTIVE` (a push challenge's settlement: unlinking voids it).
pub fn push_factor_active(user: &UserKey, channel: Channel) -> Write {
    Write::new(factor_key(user, channel), Action::Check)
        .names(&["status"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .condition("#status = :active")
}

/// A step-up granted to a session.
pub fn put_grant(user: &UserKey, session: &SessionId, grant: &StepUpGrant) -> Write {
    let key = grant_key(user, session);
    let mut item = key.to_item();
    item.insert("until".into(), n(grant.until));
    item.insert("challenge_id".into(), s(grant.challenge_id.as_str()));
    item.insert("verified_by".into(), s(&grant.verified_by));
    item.insert("ttl".into(), n(grant.until + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

pub fn grant_from_item(item: &Item) -> Result<StepUpGrant, StoreError> {
    const OP: &str = "read step-up grant";
    Ok(StepUpGrant {
        until: get_n(item, "until", OP)?,
        challenge_id: ChallengeId::new(get_s(item, "challenge_id", OP)?),
        verified_by: get_s(item, "verified_by", OP)?,
    })
}

pub fn put_push_challenge(user: &UserKey, challenge: &PushChallenge) -> Write {
    let key = push_challenge_key(user, &ChallengeId::from(challenge.id.as_str()));
    let mut item = key.to_item();
    item.insert("channel".into(), s(challenge.channel.as_str()));
    item.insert("session".into(), s(challenge.session.as_str()));
    item.insert("token_exp".into(), n(challenge.token_exp));
    item.insert("lifetime".into(), n(i64::from(challenge.lifetime_secs)));
    item.insert("status".into(), s(challenge.status.as_str()));
    item.insert("expires_at".into(), n(challenge.expires_at));
    item.insert("request_id".into(), s(&challenge.request_id));
    item.insert("ttl".into(), n(challenge.expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

pub fn push_challenge_from_item(item: &Item) -> Result<PushChallenge, StoreError> {
    const OP: &str = "read push challenge";
    let sk = get_s(item, "sk", OP)?;
    Ok(PushChallenge {
        id: ChallengeId::new(
            sk.strip_prefix("PUSHCHAL#")
                .ok_or_else(|| corrupt(OP, "sk"))?,
        ),
        // Written before BIOMETRIC existed: an Authy challenge.
        channel: match opt_s(item, "channel") {
            None => Channel::Authy,
            Some(raw) => {
                Channel::parse_among(&raw, &Channel::ALL).ok_or_else(|| corrupt(OP, "channel"))?
            }
        },
        session: SessionId::from_stored(get_s(item, "session", OP)?),
        token_exp: get_n(item, "token_exp", OP)?,
        lifetime_secs: u32::try_from(get_n(item, "lifetime", OP)?)
            .map_err(|_| corrupt(OP, "lifetime"))?,
        status: ChallengeStatus::parse(&get_s(item, "status", OP)?)
            .ok_or_else(|| corrupt(OP, "status"))?,
        expires_at: get_n(item, "expires_at", OP)?,
        request_id: get_s(item, "request_id", OP)?,
    })
}

/// Settles a pending, unexpired push challenge.
pub fn settle_push_challenge(
    user: &UserKey,
    id: &ChallengeId,
    status: ChallengeStatus,
    now: i64,
) -> Write {
    Write::new(
        push_challenge_key(user, id),
        Action::Update("SET #status = :status".into()),
    )
    .names(&["status", "expires_at"])
    .value(":status", s(status.as_str()))
    .value(":pending", s(ChallengeStatus::Pending.as_str()))
    .value(":now", n(now))
    .condition("#status = :pending AND #expires_at > :now")
}

/// Marks a pending push challenge expired.
pub fn expire_push_challenge(user: &UserKey, id: &ChallengeId) -> Write {
    Write::new(
        push_challenge_key(user, id),
        Action::Update("SET #status = :expired".into()),
    )
    .names(&["status"])
    .value(":expired", s(ChallengeStatus::Expired.as_str()))
    .value(":pending", s(ChallengeStatus::Pending.as_str()))
    .condition("#status = :pending")
}

/// Counts one attempt, only while the challenge is live and was sent to this phone.
///
/// `attempt_id` makes the increment idempotent: if the SDK resends the request after a lost
/// answer, or the caller retries the same idempotent request, the write finds its own id in
/// `attempt_ids` (every attempt counted on this challenge, so other attempts in between do
/// not hide it) and is refused instead of counting the same attempt twice (the caller then
/// reads the count from the returned item). `last_attempt` is still written and checked, for
/// challenges stored before `attempt_ids` existed.
pub fn count_attempt(
    user: &UserKey,
    slot: &ChallengeSlot,
    phone_hash: &PhoneHash,
    attempt_id: &AttemptId,
    now: i64,
) -> Write {
    Write::new(
        challenge_key(user, slot),
        Action::Update(
            "ADD #attempts :one, #attempt_ids :attempt_set SET #last_attempt = :attempt".into(),
        ),
    )
    .names(&[
        "pk",
        "attempts",
        "wrong_code_limit",
        "expires_at",
        "phone_hash",
        "last_attempt",
        "attempt_ids",
    ])
    .value(":one", n(1))
    .value(":phone", s(phone_hash.as_str()))
    .value(":now", n(now))
    .value(":attempt", s(attempt_id.as_str()))
    .value(
        ":attempt_set",
        AttributeValue::Ss(vec![attempt_id.as_str().to_owned()]),
    )
    .condition(
        "attribute_exists(#pk) AND #phone_hash = :phone AND #attempts < #wrong_code_limit \
         AND #expires_at > :now AND (attribute_not_exists(#last_attempt) OR #last_attempt <> :attempt) \
         AND NOT contains(#attempt_ids, :attempt)",
    )
}

/// Consumes the challenge if it is still this one.
pub fn delete_challenge(user: &UserKey, slot: &ChallengeSlot, challenge_id: &ChallengeId) -> Write {
    Write::new(challenge_key(user, slot), Action::Delete)
        .names(&["challenge_id"])
        .value(":challenge", s(challenge_id.as_str()))
        .condition("#challenge_id = :challenge")
}

pub fn activate_sms(
    user: &UserKey,
    phone_hash: &PhoneHash,
    attempt_id: &AttemptId,
    now: i64,
) -> Write {
    Write::new(
        factor_key(user, Channel::Sms),
        Action::Update(
            "SET #status = :active, #phone_hash = :phone, #verified_by = :attempt, #updated_at = :now"
                .into(),
        ),
    )
    .names(&["status", "phone_hash", "verified_by", "updated_at"])
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":phone", s(phone_hash.as_str()))
    .value(":attempt", s(attempt_id.as_str()))
    .value(":now", n(now))
}

pub fn challenge_from_item(item: &Item) -> Result<ChallengeItem, StoreError> {
    const OP: &str = "read challenge";
    let mut counted: Vec<AttemptId> = match item.get("attempt_ids") {
        Some(AttributeValue::Ss(ids)) => ids.iter().map(|id| AttemptId::new(id.clone())).collect(),
        _ => Vec::new(),
    };
    if let Some(last) = opt_s(item, "last_attempt") {
        counted.push(AttemptId::new(last));
    }
    Ok(ChallengeItem {
        counted,
        challenge_id: ChallengeId::new(get_s(item, "challenge_id", OP)?),
        code_hash: get_s(item, "code_hash", OP)?,
        phone_hash: PhoneHash::new(get_s(item, "phone_hash", OP)?),
        attempts: u32::try_from(get_n(item, "attempts", OP)?)
            .map_err(|_| corrupt(OP, "attempts"))?,
        wrong_code_limit: u32::try_from(get_n(item, "wrong_code_limit", OP)?)
            .map_err(|_| corrupt(OP, "wrong_code_limit"))?,
        expires_at: get_n(item, "expires_at", OP)?,
    })
}

/// A challenge as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeItem {
    /// The ids of the attempts counted on this challenge.
    pub counted: Vec<AttemptId>,
    pub challenge_id: ChallengeId,
    pub code_hash: String,
    pub phone_hash: PhoneHash,
    pub attempts: u32,
    pub wrong_code_limit: u32,
    pub expires_at: i64,
}

/// A challenge waiting for a BIOMETRIC device's answer, as the device lists it; `None` when
/// it is not this device's (`phone_hash` holds the key's thumbprint), is past its time, or
/// has no attempt left.
pub fn device_answer_from_item(
    item: &Item,
    key_thumbprint: &str,
    now: i64,
) -> Result<Option<DeviceChallenge>, StoreError> {
    const OP: &str = "read device answer";
    let created_at = get_n(item, "created_at", OP)?;
    let challenge = challenge_from_item(item)?;
    let live = challenge.phone_hash.as_str() == key_thumbprint
        && challenge.expires_at > now
        && challenge.attempts < challenge.wrong_code_limit;
    Ok(live.then_some(DeviceChallenge {
        id: challenge.challenge_id,
        signing_input: challenge.code_hash,
        created_at,
        expires_at: challenge.expires_at,
    }))
}
