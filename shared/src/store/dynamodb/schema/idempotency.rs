//! Idempotency records: claims, kept answers, releases.

use super::*;

// ---- idempotency ---------------------------------------------------------------------------

/// Claims a reference: only if there is no live record under it.
pub fn claim_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    fingerprint: &str,
    lease_id: &LeaseId,
    now: i64,
) -> Write {
    let key = idempotency_key(user, reference);
    let mut item = key.to_item();
    item.insert("fingerprint".into(), s(fingerprint));
    item.insert("lease_id".into(), s(lease_id.as_str()));
    claim(key, item, now + LEASE_SECS, now)
}

/// A record written in the operation's own write (`ClaimRecord`): like a claim, only where no
/// live record holds the reference; final (kept `KEEP_SECS`) when it carries the answer.
pub fn idempotency_record(user: &UserKey, record: &ClaimRecord, now: i64) -> Write {
    let key = idempotency_key(user, &record.reference);
    let mut item = key.to_item();
    item.insert("fingerprint".into(), s(&record.fingerprint));
    item.insert("lease_id".into(), s(record.lease_id.as_str()));
    let held_until = match &record.response {
        Some(response) => {
            item.insert("response_status".into(), n(i64::from(response.status)));
            item.insert("response_body".into(), s(&response.body));
            now + KEEP_SECS
        }
        None => now + LEASE_SECS,
    };
    claim(key, item, held_until, now)
}

pub fn complete_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    lease_id: &LeaseId,
    response: &StoredResponse,
    now: i64,
) -> Write {
    Write::new(
        idempotency_key(user, reference),
        Action::Update(
            "SET #response_status = :status, #response_body = :body, #expires_at = :expires, #ttl = :ttl".into(),
        ),
    )
    .names(&["response_status", "response_body", "expires_at", "ttl", "lease_id"])
    .value(":status", n(i64::from(response.status)))
    .value(":body", s(&response.body))
    .value(":expires", n(now + KEEP_SECS))
    .value(":ttl", n(now + KEEP_SECS + TTL_GRACE_SECS))
    .value(":lease", s(lease_id.as_str()))
    .condition("#lease_id = :lease")
}

pub fn release_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    lease_id: &LeaseId,
) -> Write {
    Write::new(idempotency_key(user, reference), Action::Delete)
        .names(&["lease_id", "response_status"])
        .value(":lease", s(lease_id.as_str()))
        .condition("#lease_id = :lease AND attribute_not_exists(#response_status)")
}

/// An idempotency record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyItem {
    pub fingerprint: String,
    pub lease_id: Option<String>,
    pub response: Option<StoredResponse>,
    pub expires_at: i64,
}

pub fn idempotency_from_item(item: &Item) -> Result<IdempotencyItem, StoreError> {
    const OP: &str = "read idempotency record";
    let response = match item.get("response_status") {
        Some(_) => Some(StoredResponse {
            status: u16::try_from(get_n(item, "response_status", OP)?)
                .map_err(|_| corrupt(OP, "response_status"))?,
            body: opt_s(item, "response_body").unwrap_or_default(),
        }),
        None => None,
    };
    Ok(IdempotencyItem {
        fingerprint: get_s(item, "fingerprint", OP)?,
        lease_id: opt_s(item, "lease_id"),
        response,
        expires_at: get_n(item, "expires_at", OP)?,
    })
}
