//! BIOMETRIC devices: the factor item's device (see `factors`), and the registry of device
//! keys (`DEVICEKEY#<thumbprint>`, its own partition) that keeps one key to one factor.

use super::*;

pub fn device_key_key(thumbprint: &str) -> Key {
    Key {
        pk: format!("DEVICEKEY#{thumbprint}"),
        sk: "KEY".into(),
    }
}

/// The key is registered to no factor.
pub fn device_key_free(thumbprint: &str) -> Write {
    Write::new(device_key_key(thumbprint), Action::Check)
        .names(&["pk"])
        .condition("attribute_not_exists(#pk)")
}

/// Registers the key to the user's factor.
pub fn register_device_key(thumbprint: &str, user: &UserKey, now: i64) -> Write {
    let key = device_key_key(thumbprint);
    let mut item = key.to_item();
    item.insert("owner".into(), s(&user_partition(user)));
    item.insert("created_at".into(), n(now));
    Write::new(key, Action::Put(item))
        .names(&["pk"])
        .condition("attribute_not_exists(#pk)")
}

pub fn delete_device_key(thumbprint: &str) -> Write {
    Write::new(device_key_key(thumbprint), Action::Delete)
}

/// The BIOMETRIC factor pending with its device, unless it is `ACTIVE`.
pub fn put_pending_device(user: &UserKey, factor: &FactorRecord) -> Write {
    Write::new(
        factor_key(user, Channel::Biometric),
        Action::Put(factor_to_item(user, factor)),
    )
    .names(&["pk", "status"])
    .value(":active", s(FactorStatus::Active.as_str()))
    .condition("attribute_not_exists(#pk) OR #status <> :active")
}

/// The pending BIOMETRIC factor `ACTIVE`, with its endpoint.
pub fn activate_device(user: &UserKey, endpoint: &str, now: i64) -> Write {
    Write::new(
        factor_key(user, Channel::Biometric),
        Action::Update(
            "SET #status = :active, #device_endpoint = :endpoint, #updated_at = :now".into(),
        ),
    )
    .names(&["status", "device_endpoint", "updated_at"])
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":pending", s(FactorStatus::PendingVerification.as_str()))
    .value(":endpoint", s(endpoint))
    .value(":now", n(now))
    .condition("#status = :pending")
}

/// The `ACTIVE` device's new push token and endpoint.
pub fn update_device_push(user: &UserKey, token: &str, endpoint: &str, now: i64) -> Write {
    Write::new(
        factor_key(user, Channel::Biometric),
        Action::Update(
            "SET #device_token = :token, #device_endpoint = :endpoint, #updated_at = :now".into(),
        ),
    )
    .names(&["status", "device_token", "device_endpoint", "updated_at"])
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":token", s(token))
    .value(":endpoint", s(endpoint))
    .value(":now", n(now))
    .condition("#status = :active")
}

/// The device's enrolment challenge, gone with it.
pub fn delete_device_challenge(user: &UserKey) -> Write {
    Write::new(
        challenge_key(user, &ChallengeSlot::DeviceEnrolment),
        Action::Delete,
    )
}
