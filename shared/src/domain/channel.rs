//! The channels a factor can live on, and how each route's `{channel}` path parameter parses.

/// One kind of additional factor. The listing order is the declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// SMS one-time passwords (`type` `OTP`).
    Sms,
    /// Twilio Authy push (`type` `PUSH`).
    Authy,
    /// Push from the platform's mobile SDK (`type` `PUSH`).
    Biometric,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Authy, Channel::Biometric];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Authy => "AUTHY",
            Channel::Biometric => "BIOMETRIC",
        }
    }

    /// The factor's `type` in the listing.
    pub fn factor_type(self) -> &'static str {
        match self {
            Channel::Sms => "OTP",
            Channel::Authy | Channel::Biometric => "PUSH",
        }
    }

    /// Parses a path parameter against the channels a route accepts (exact, case-sensitive).
    pub fn parse_among(raw: &str, allowed: &[Channel]) -> Option<Channel> {
        allowed.iter().copied().find(|c| c.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_allowed_spelling() {
        assert_eq!(
            Channel::parse_among("SMS", &[Channel::Sms]),
            Some(Channel::Sms)
        );
        assert_eq!(Channel::parse_among("sms", &[Channel::Sms]), None);
        assert_eq!(Channel::parse_among("AUTHY", &[Channel::Sms]), None);
        assert_eq!(
            Channel::parse_among("BIOMETRIC", &[Channel::Authy, Channel::Biometric]),
            Some(Channel::Biometric)
        );
    }
}
