//! Factors as stored, and the status a caller sees for them.
//!
//! The store keeps `PENDING_VERIFICATION`, `ACTIVE` or `INACTIVE`. What the listing shows also
//! depends on the token: an SMS factor verified with one phone is `INACTIVE` for a token that
//! carries another phone (a SIM swap or a changed number must not inherit the old factor). A
//! token without `phone_number` sees the stored status.

use super::{channel::Channel, phone::TokenPhone};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorStatus {
    PendingVerification,
    Active,
    Inactive,
}

impl FactorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStatus::PendingVerification => "PENDING_VERIFICATION",
            FactorStatus::Active => "ACTIVE",
            FactorStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::PendingVerification, Self::Active, Self::Inactive]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A factor as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorRecord {
    pub channel: Channel,
    pub status: FactorStatus,
    /// The keyed hash of the phone the factor was verified (or registered) with.
    pub phone_hash: Option<String>,
    /// The push provider's id for the user (Authy only).
    pub provider_ref: Option<String>,
    /// The provider's id of the enrolment request still waiting for the user (Authy only).
    pub pending_request: Option<String>,
    /// The verification attempt that made the SMS factor `ACTIVE`: a retry of that same
    /// request (same `idempotency-ref`) whose first try succeeded unseen finds its success.
    pub verified_by: Option<String>,
    pub updated_at: i64,
    /// The device of a BIOMETRIC factor: its key, where its pushes go, its name.
    pub device: Option<super::device::Device>,
}

impl FactorRecord {
    /// An `ACTIVE` SMS factor that this verification attempt activated.
    pub fn is_verified_by(&self, attempt_id: &str) -> bool {
        self.status == FactorStatus::Active && self.verified_by.as_deref() == Some(attempt_id)
    }

    /// The status the caller with this token sees.
    pub fn listed_status(&self, token_phone: &TokenPhone) -> FactorStatus {
        match (self.channel, self.status, token_phone) {
            (Channel::Sms, FactorStatus::Active, TokenPhone::Invalid) => FactorStatus::Inactive,
            (Channel::Sms, FactorStatus::Active, TokenPhone::Valid(phone))
                if self.phone_hash.as_deref() != Some(phone.hash.as_str()) =>
            {
                FactorStatus::Inactive
            }
            (_, status, _) => status,
        }
    }
}

/// The listing: one entry per stored factor, in the order SMS, AUTHY, BIOMETRIC.
pub fn listing(
    mut records: Vec<FactorRecord>,
    token_phone: &TokenPhone,
) -> Vec<(Channel, FactorStatus)> {
    records.sort_by_key(|r| r.channel);
    records
        .iter()
        .map(|r| (r.channel, r.listed_status(token_phone)))
        .collect()
}

/// Whether any factor is listed `ACTIVE` for this token: adding or removing one then needs
/// a stepped-up token.
pub fn has_active_factor(records: &[FactorRecord], token_phone: &TokenPhone) -> bool {
    records
        .iter()
        .any(|r| r.listed_status(token_phone) == FactorStatus::Active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(status: FactorStatus, phone: &str) -> FactorRecord {
        FactorRecord {
            channel: Channel::Sms,
            status,
            phone_hash: Some(phone.into()),
            provider_ref: None,
            pending_request: None,
            verified_by: None,
            updated_at: 0,
            device: None,
        }
    }

    /// A valid token phone whose keyed hash is `hash`.
    fn hashed(hash: &str) -> TokenPhone {
        TokenPhone::Valid(crate::domain::phone::HashedPhone {
            number: crate::domain::phone::PhoneNumber::parse("+447700900123").unwrap(),
            hash: crate::domain::ids::PhoneHash::new(hash),
        })
    }

    #[test]
    fn active_sms_is_inactive_for_another_phone_only() {
        let f = sms(FactorStatus::Active, "a");
        assert_eq!(f.listed_status(&hashed("a")), FactorStatus::Active);
        assert_eq!(f.listed_status(&hashed("b")), FactorStatus::Inactive);
        assert_eq!(
            f.listed_status(&TokenPhone::Invalid),
            FactorStatus::Inactive
        );
        assert_eq!(f.listed_status(&TokenPhone::Absent), FactorStatus::Active);
    }

    #[test]
    fn pending_sms_is_pending_whatever_the_phone() {
        let f = sms(FactorStatus::PendingVerification, "a");
        assert_eq!(
            f.listed_status(&hashed("b")),
            FactorStatus::PendingVerification
        );
    }

    #[test]
    fn listing_is_ordered_sms_authy_biometric() {
        let mut bio = sms(FactorStatus::Active, "a");
        bio.channel = Channel::Biometric;
        let mut authy = sms(FactorStatus::PendingVerification, "a");
        authy.channel = Channel::Authy;
        let list = listing(
            vec![bio, authy, sms(FactorStatus::Active, "a")],
            &TokenPhone::Absent,
        );
        let channels: Vec<_> = list.iter().map(|(c, _)| *c).collect();
        assert_eq!(channels, [Channel::Sms, Channel::Authy, Channel::Biometric]);
    }
}
