//! Push enrolment: the pending push, the provider's requests and users, callback nonces.

use super::*;

// ---- push ----------------------------------------------------------------------------------

/// The push enrolment's condition: the (Authy) push factor is not `ACTIVE`.
pub fn push_factor_not_active(user: &UserKey) -> Write {
    Write::new(factor_key(user, Channel::Authy), Action::Check)
        .names(&["pk", "status"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .condition("attribute_not_exists(#pk) OR #status <> :active")
}

pub fn set_push_pending(user: &UserKey, pending: &PendingPush, now: i64) -> Write {
    let mut update = "SET #status = :pending, #phone_hash = :phone, #pending_request = :request, #updated_at = :now".to_owned();
    let mut write = Write::new(factor_key(user, Channel::Authy), Action::Check)
        .names(&[
            "pk",
            "status",
            "phone_hash",
            "pending_request",
            "updated_at",
            "provider_ref",
            LEGACY_PROVIDER_REF,
        ])
        .value(":pending", s(FactorStatus::PendingVerification.as_str()))
        .value(":active", s(FactorStatus::Active.as_str()))
        .value(":phone", s(pending.phone_hash.as_str()))
        .value(":request", s(&pending.request_id))
        .value(":now", n(now))
        .condition("attribute_not_exists(#pk) OR #status <> :active");
    match &pending.provider_ref {
        Some(provider_ref) => {
            update.push_str(", #provider_ref = :provider REMOVE #authy_id");
            write = write.value(":provider", s(provider_ref));
        }
        None => update.push_str(" REMOVE #provider_ref, #authy_id"),
    }
    write.action = Action::Update(update);
    write
}

pub fn put_push_request(
    request_id: &str,
    user: &UserKey,
    purpose: &PushPurpose,
    now: i64,
) -> Write {
    let mut item = push_request_key(request_id).to_item();
    item.insert("programme_id".into(), s(&user.programme_id));
    item.insert("credential_id".into(), s(&user.credential_id));
    match purpose {
        PushPurpose::Enrolment => {}
        PushPurpose::StepUp(challenge_id) => {
            item.insert("challenge_id".into(), s(challenge_id.as_str()));
        }
        PushPurpose::Payment(payment_id) => {
            item.insert("payment_id".into(), s(payment_id.as_str()));
        }
    }
    item.insert("ttl".into(), n(now + PUSH_REQUEST_TTL_SECS));
    Write::new(push_request_key(request_id), Action::Put(item))
}

/// The item listing which factors hold the provider's user (`AUTHYUSER#`: the key items
/// have had since Authy was the only provider; kept so they keep reading).
pub fn provider_user_key(provider_ref: &str) -> Key {
    Key {
        pk: format!("AUTHYUSER#{provider_ref}"),
        sk: "AUTHYUSER".into(),
    }
}

/// The reference a factor holds on the provider's user (programme ids hold no `#`).
pub(super) fn provider_user_reference(user: &UserKey) -> AttributeValue {
    AttributeValue::Ss(vec![format!(
        "{}#{}",
        user.programme_id, user.credential_id
    )])
}

/// Adds this user's factor to the provider's user's references (a set: adding twice is once).
pub fn reference_provider_user(provider_ref: &str, user: &UserKey) -> Write {
    Write::new(
        provider_user_key(provider_ref),
        Action::Update("ADD #refs :me".into()),
    )
    .names(&["refs"])
    .value(":me", provider_user_reference(user))
}

/// Removes this user's factor from the provider's user's references; refused when no reference
/// item exists (a factor enrolled before references were kept).
pub fn unreference_provider_user(provider_ref: &str, user: &UserKey) -> Write {
    Write::new(
        provider_user_key(provider_ref),
        Action::Update("DELETE #refs :me".into()),
    )
    .names(&["pk", "refs"])
    .value(":me", provider_user_reference(user))
    .condition("attribute_exists(#pk)")
}

/// How many factors still reference the provider's user, from the item after the update.
pub fn provider_user_references(item: &Item) -> usize {
    match item.get("refs") {
        Some(AttributeValue::Ss(refs)) => refs.len(),
        _ => 0,
    }
}

pub fn resolve_push(user: &UserKey, request_id: Option<&str>, approved: bool, now: i64) -> Write {
    let status = if approved {
        FactorStatus::Active
    } else {
        FactorStatus::Inactive
    };
    let write = Write::new(
        factor_key(user, Channel::Authy),
        Action::Update("SET #status = :status, #updated_at = :now REMOVE #pending_request".into()),
    )
    .names(&["status", "updated_at", "pending_request"])
    .value(":status", s(status.as_str()))
    .value(":pending", s(FactorStatus::PendingVerification.as_str()))
    .value(":now", n(now));
    match request_id {
        Some(id) => write
            .value(":request", s(id))
            .condition("#status = :pending AND #pending_request = :request"),
        None => write.condition("#status = :pending"),
    }
}

pub fn push_request_from_item(item: &Item) -> Result<PushRequest, StoreError> {
    Ok(PushRequest {
        user: UserKey {
            programme_id: get_s(item, "programme_id", "find_push_request")?,
            credential_id: get_s(item, "credential_id", "find_push_request")?,
        },
        purpose: match (opt_s(item, "challenge_id"), opt_s(item, "payment_id")) {
            (Some(id), _) => PushPurpose::StepUp(ChallengeId::new(id)),
            (None, Some(id)) => PushPurpose::Payment(ChallengeId::new(id)),
            (None, None) => PushPurpose::Enrolment,
        },
    })
}

/// Remembers a callback nonce: only if it is not remembered already.
pub fn claim_nonce(nonce_key: &str, expires_at: i64, now: i64) -> Write {
    let key = Key {
        pk: format!("NONCE#{nonce_key}"),
        sk: "NONCE".into(),
    };
    let item = key.to_item();
    claim(key, item, expires_at, now)
}

/// Puts `item` (held until `expires_at`, then removed by the TTL) only where no live item
/// holds its key: none, or one past its own `expires_at`.
pub(super) fn claim(key: Key, mut item: Item, expires_at: i64, now: i64) -> Write {
    item.insert("expires_at".into(), n(expires_at));
    item.insert("ttl".into(), n(expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
        .names(&["pk", "expires_at"])
        .value(":now", n(now))
        .condition("attribute_not_exists(#pk) OR #expires_at <= :now")
}
