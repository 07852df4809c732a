//! The ids that travel together through a request, each its own type so that two of them
//! cannot swap places in a call: a challenge's id, a verification attempt's id, an
//! idempotency claim's lease, and the keyed hash that stands for a phone number.

use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id_type!(
    /// A challenge's id (an SMS code's, a push step-up's, a payment's): 16 random bytes, hex.
    ChallengeId
);
id_type!(
    /// A verification attempt: from the request's `idempotency-ref` and body (the same on
    /// every retry of the same request), else random.
    AttemptId
);
id_type!(
    /// One execution's hold on an `idempotency-ref`.
    LeaseId
);
id_type!(
    /// The keyed hash (HMAC) of a phone number: what the store keeps instead of the number.
    PhoneHash
);
