//! A user's factor items.

use super::*;
use crate::domain::device::{Device, DeviceKey, Platform};

// ---- factors -------------------------------------------------------------------------------

/// The attribute the provider's user id was stored under before it was `provider_ref`.
pub(super) const LEGACY_PROVIDER_REF: &str = "authy_id";

pub fn factor_to_item(user: &UserKey, factor: &FactorRecord) -> Item {
    let mut item = factor_key(user, factor.channel).to_item();
    item.insert("status".into(), s(factor.status.as_str()));
    item.insert("updated_at".into(), n(factor.updated_at));
    for (name, value) in [
        ("phone_hash", &factor.phone_hash),
        ("provider_ref", &factor.provider_ref),
        ("pending_request", &factor.pending_request),
        ("verified_by", &factor.verified_by),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    if let Some(device) = &factor.device {
        item.insert("device_x".into(), s(&device.key.x_b64()));
        item.insert("device_y".into(), s(&device.key.y_b64()));
        item.insert("device_platform".into(), s(device.platform.as_str()));
        item.insert("device_token".into(), s(&device.push_token));
        item.insert("device_name".into(), s(&device.name));
        if let Some(endpoint) = &device.endpoint {
            item.insert("device_endpoint".into(), s(endpoint));
        }
    }
    item
}

/// A BIOMETRIC factor's device, if the item has one.
fn device_from_item(item: &Item) -> Result<Option<Device>, StoreError> {
    const OP: &str = "read device";
    let (Some(x), Some(y)) = (opt_s(item, "device_x"), opt_s(item, "device_y")) else {
        return Ok(None);
    };
    Ok(Some(Device {
        key: DeviceKey::from_stored(&x, &y).ok_or_else(|| corrupt(OP, "device_x"))?,
        platform: Platform::parse(&get_s(item, "device_platform", OP)?)
            .ok_or_else(|| corrupt(OP, "device_platform"))?,
        push_token: get_s(item, "device_token", OP)?,
        name: get_s(item, "device_name", OP)?,
        endpoint: opt_s(item, "device_endpoint"),
    }))
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
        // `authy_id`: the name items written before the push seam was provider-neutral carry.
        provider_ref: opt_s(item, "provider_ref").or_else(|| opt_s(item, LEGACY_PROVIDER_REF)),
        pending_request: opt_s(item, "pending_request"),
        verified_by: opt_s(item, "verified_by"),
        updated_at: get_n(item, "updated_at", OP)?,
        device: device_from_item(item)?,
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
