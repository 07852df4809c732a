//! A user's factor items.

use super::*;

// ---- factors -------------------------------------------------------------------------------

pub fn factor_to_item(user: &UserKey, factor: &FactorRecord) -> Item {
    let mut item = factor_key(user, factor.channel).to_item();
    item.insert("status".into(), s(factor.status.as_str()));
    item.insert("updated_at".into(), n(factor.updated_at));
    for (name, value) in [
        ("phone_hash", &factor.phone_hash),
        ("authy_id", &factor.authy_id),
        ("pending_request", &factor.pending_request),
        ("verified_by", &factor.verified_by),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item
}

pub fn factor_from_item(item: &Item) -> Result<FactorRecord, StoreError> {
    const OP: &str = "read factor";
    let sk = get_s(item, "sk", OP)?;
    let channel = sk
        .strip_prefix("FACTOR#")
        .and_then(|c| Channel::parse_among(c, &Channel::ALL))
        .ok_or_else(|| corrupt(OP, "sk"))?;
    let status =
        FactorStatus::parse(&get_s(item, "status", OP)?).ok_or_else(|| corrupt(OP, "status"))?;
    Ok(FactorRecord {
        channel,
        status,
        phone_hash: opt_s(item, "phone_hash"),
        authy_id: opt_s(item, "authy_id"),
        pending_request: opt_s(item, "pending_request"),
        verified_by: opt_s(item, "verified_by"),
        updated_at: get_n(item, "updated_at", OP)?,
    })
}

pub fn put_factor(user: &UserKey, factor: &FactorRecord) -> Write {
    Write::new(
        factor_key(user, factor.channel),
        Action::Put(factor_to_item(user, factor)),
    )
}

pub fn delete_factor(user: &UserKey, channel: Channel) -> Write {
    Write::new(factor_key(user, channel), Action::Delete)
}
