//! Payment challenges and the references they hold.

use super::*;

/// How long a payment challenge (and its proof) stays readable.
pub(super) const PAYMENT_TTL_SECS: i64 = 30 * 24 * 3_600;

pub fn payment_key(user: &UserKey, id: &ChallengeId) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("PAYCHAL#{id}"),
    }
}

pub fn payment_reference_key(user: &UserKey, reference: &str) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("PAYREF#{reference}"),
    }
}

pub fn put_payment(user: &UserKey, challenge: &PaymentChallenge) -> Write {
    let key = payment_key(user, &ChallengeId::from(challenge.id.as_str()));
    let mut item = key.to_item();
    let payment = &challenge.payment;
    item.insert("reference".into(), s(&payment.reference));
    item.insert("currency".into(), s(&payment.currency));
    item.insert("value".into(), AttributeValue::N(payment.value.to_string()));
    item.insert("payee_name".into(), s(&payment.payee_name));
    item.insert("payee_account".into(), s(&payment.payee_account));
    item.insert("channel".into(), s(challenge.channel.as_str()));
    item.insert("status".into(), s(challenge.status.as_str()));
    item.insert("created_at".into(), n(challenge.created_at));
    item.insert("expires_at".into(), n(challenge.expires_at));
    if let Some(request_id) = &challenge.request_id {
        item.insert("request_id".into(), s(request_id));
    }
    item.insert("ttl".into(), n(challenge.created_at + PAYMENT_TTL_SECS));
    Write::new(key, Action::Put(item))
}

pub fn payment_from_item(item: &Item) -> Result<PaymentChallenge, StoreError> {
    const OP: &str = "read payment challenge";
    let sk = get_s(item, "sk", OP)?;
    let value = match item.get("value") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(OP, "value"))?,
        _ => return Err(corrupt(OP, "value")),
    };
    Ok(PaymentChallenge {
        id: ChallengeId::new(
            sk.strip_prefix("PAYCHAL#")
                .ok_or_else(|| corrupt(OP, "sk"))?,
        ),
        payment: Payment {
            reference: get_s(item, "reference", OP)?,
            currency: get_s(item, "currency", OP)?,
            value,
            payee_name: get_s(item, "payee_name", OP)?,
            payee_account: get_s(item, "payee_account", OP)?,
        },
        channel: Channel::parse_among(&get_s(item, "channel", OP)?, &Channel::ALL)
            .ok_or_else(|| corrupt(OP, "channel"))?,
        status: ChallengeStatus::parse(&get_s(item, "status", OP)?)
            .ok_or_else(|| corrupt(OP, "status"))?,
        created_at: get_n(item, "created_at", OP)?,
        expires_at: get_n(item, "expires_at", OP)?,
        request_id: opt_s(item, "request_id"),
        proof: opt_s(item, "proof"),
        verified_by: opt_s(item, "verified_by"),
    })
}

/// Takes a payment reference: only if free, or still held by the challenge it replaces.
pub fn take_payment_reference(
    user: &UserKey,
    reference: &str,
    challenge_id: &ChallengeId,
    replaces: Option<&ChallengeId>,
    now: i64,
) -> Write {
    let key = payment_reference_key(user, reference);
    let mut item = key.to_item();
    item.insert("challenge_id".into(), s(challenge_id.as_str()));
    item.insert("ttl".into(), n(now + PAYMENT_TTL_SECS));
    let write = Write::new(key, Action::Put(item)).names(&["pk"]);
    match replaces {
        None => write.condition("attribute_not_exists(#pk)"),
        Some(previous) => write
            .names(&["challenge_id"])
            .value(":previous", s(previous.as_str()))
            .condition("attribute_not_exists(#pk) OR #challenge_id = :previous"),
    }
}

/// Releases a payment reference, if still held by this challenge.
pub fn release_payment_reference(
    user: &UserKey,
    reference: &str,
    challenge_id: &ChallengeId,
) -> Write {
    Write::new(payment_reference_key(user, reference), Action::Delete)
        .names(&["challenge_id"])
        .value(":challenge", s(challenge_id.as_str()))
        .condition("#challenge_id = :challenge")
}

pub fn delete_payment(user: &UserKey, id: &ChallengeId) -> Write {
    Write::new(payment_key(user, id), Action::Delete)
}

/// Ends a pending, unexpired payment challenge: verified (with its proof) or declined.
pub fn finish_payment(
    user: &UserKey,
    id: &ChallengeId,
    proof: Option<&crate::store::PaymentProof>,
    now: i64,
) -> Write {
    let write = Write::new(payment_key(user, id), Action::Check)
        .names(&["status", "expires_at"])
        .value(":pending", s(ChallengeStatus::Pending.as_str()))
        .value(":now", n(now))
        .condition("#status = :pending AND #expires_at > :now");
    let mut write = match proof {
        Some(proof) => write
            .names(&["proof", "verified_by"])
            .value(":status", s(ChallengeStatus::Verified.as_str()))
            .value(":proof", s(&proof.proof))
            .value(":by", s(&proof.verified_by)),
        None => write.value(":status", s(ChallengeStatus::Declined.as_str())),
    };
    write.action = Action::Update(match proof {
        Some(_) => "SET #status = :status, #proof = :proof, #verified_by = :by".into(),
        None => "SET #status = :status".into(),
    });
    write
}

/// Marks a pending payment challenge expired (its BIOMETRIC factor was unlinked).
pub fn expire_payment(user: &UserKey, id: &ChallengeId) -> Write {
    Write::new(
        payment_key(user, id),
        Action::Update("SET #status = :expired".into()),
    )
    .names(&["status"])
    .value(":expired", s(ChallengeStatus::Expired.as_str()))
    .value(":pending", s(ChallengeStatus::Pending.as_str()))
    .condition("#status = :pending")
}
