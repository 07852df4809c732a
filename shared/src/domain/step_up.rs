//! Step-up challenges: proving, later, that the holder of a token also holds an enrolled
//! factor. A verified challenge steps up the token's *session* (its `sid` claim, else the
//! token itself) until the earlier of the token's `exp` and the programme's step-up lifetime.
//!
//! ```text
//!   SMS:   start (code sent, 5 min) ──► verify: counted, then compared ──► VERIFIED
//!                                         └─ the wrong-code ladder ends it ──► DECLINED
//!   push:  start (approval request pushed, 5 min) ──► PENDING
//!            ├── approved on the device (signed callback / simulator) ──► VERIFIED
//!            ├── denied ──► DECLINED
//!            └── 5 minutes pass, or the push factor is unlinked ──► EXPIRED (on read)
//! ```

use aws_lc_rs::digest;

use super::hex::hex;

/// A new SMS for the same purpose (one session's step-up) within this many seconds of the
/// last one is refused: `RETRY_IN_15SEC`.
pub const RETRY_WAIT_SECS: i64 = 15;

/// How long a push step-up challenge waits for the user.
pub const PUSH_CHALLENGE_TTL_SECS: i64 = 300;

/// The contract's step-up lifetime: 15 minutes after verification.
pub const DEFAULT_STEP_UP_LIFETIME_SECS: u32 = 900;

/// A session: what a step-up is granted to. The SHA-256 of the token's `sid` claim (so an
/// arbitrary claim makes a fixed-size key), else of the whole token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn of_token(sid: Option<&str>, token: &str) -> Self {
        let source = match sid {
            Some(sid) => format!("sid|{sid}"),
            None => format!("token|{token}"),
        };
        Self(hex(
            digest::digest(&digest::SHA256, source.as_bytes()).as_ref()
        ))
    }

    /// A session id as stored (64 hex characters).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a challenge's outcome stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Pending,
    Verified,
    Declined,
    Expired,
}

impl ChallengeStatus {
    /// The status a reader sees at `now` of a challenge stored with this status that
    /// expires at `expires_at`: a pending one past its time is expired.
    pub fn seen_at(self, expires_at: i64, now: i64) -> Self {
        match self {
            ChallengeStatus::Pending if now >= expires_at => ChallengeStatus::Expired,
            status => status,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "PENDING",
            ChallengeStatus::Verified => "VERIFIED",
            ChallengeStatus::Declined => "DECLINED",
            ChallengeStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Verified, Self::Declined, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// Until when a session verified at `now` counts as stepped up: the earlier of the token's
/// `exp` and `now + lifetime`.
pub fn stepped_up_until(now: i64, lifetime_secs: u32, token_exp: i64) -> i64 {
    (now + i64::from(lifetime_secs)).min(token_exp)
}

/// A push challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushChallenge {
    pub id: super::ids::ChallengeId,
    /// The push factor it went to (`AUTHY` or `BIOMETRIC`).
    pub channel: super::channel::Channel,
    pub session: SessionId,
    /// The `exp` of the token that started it: the step-up never outlives it.
    pub token_exp: i64,
    /// The programme's step-up lifetime when it started (the callback has no programme).
    pub lifetime_secs: u32,
    pub status: ChallengeStatus,
    pub expires_at: i64,
    /// The provider's approval request (a random id in sandboxes; a BIOMETRIC challenge's
    /// own id: the device answers it directly).
    pub request_id: String,
}

impl PushChallenge {
    /// The status a reader sees at `now`: a pending challenge past its time is expired.
    pub fn status_at(&self, now: i64) -> ChallengeStatus {
        self.status.seen_at(self.expires_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_its_sid_else_its_token() {
        let a = SessionId::of_token(Some("s1"), "token-a");
        assert_eq!(a, SessionId::of_token(Some("s1"), "token-b"));
        assert_ne!(a, SessionId::of_token(Some("s2"), "token-a"));
        assert_ne!(
            SessionId::of_token(None, "token-a"),
            SessionId::of_token(None, "token-b")
        );
        // A sid equal to some token does not collide with that token's own session.
        assert_ne!(
            SessionId::of_token(Some("t"), "x"),
            SessionId::of_token(None, "t")
        );
        assert_eq!(a.as_str().len(), 64);
    }

    #[test]
    fn stepped_up_until_the_earlier_of_exp_and_the_lifetime() {
        assert_eq!(stepped_up_until(1_000, 900, 5_000), 1_900);
        assert_eq!(stepped_up_until(1_000, 900, 1_500), 1_500);
    }

    #[test]
    fn a_pending_challenge_expires_on_read() {
        let c = PushChallenge {
            id: "c".into(),
            channel: crate::domain::channel::Channel::Authy,
            session: SessionId::of_token(None, "t"),
            token_exp: 10_000,
            lifetime_secs: 900,
            status: ChallengeStatus::Pending,
            expires_at: 300,
            request_id: "r".into(),
        };
        assert_eq!(c.status_at(299), ChallengeStatus::Pending);
        assert_eq!(c.status_at(300), ChallengeStatus::Expired);
        let verified = PushChallenge {
            status: ChallengeStatus::Verified,
            ..c
        };
        assert_eq!(verified.status_at(1_000), ChallengeStatus::Verified);
        for s in ["PENDING", "VERIFIED", "DECLINED", "EXPIRED"] {
            assert_eq!(ChallengeStatus::parse(s).map(|s| s.as_str()), Some(s));
        }
    }
}
