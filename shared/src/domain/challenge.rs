//! The SMS challenge and its attempt limit: a small state machine.
//!
//! ```text
//!            step one (new code, attempts = 0, expires_at = now + 300 s)
//!                 │
//!                 ▼
//!   ┌────────► LIVE ── attempts reach the limit ──► DEAD ─┐
//!   │             │  └── now ≥ expires_at ──────► EXPIRED ─┤ step one again
//!   │             └── right code (counted) ──► CONSUMED   │
//!   └─────────────────────────────────────────────────────┘
//! ```
//!
//! An attempt is *counted before the code is compared*: the store increments `attempts` with a
//! condition that the challenge is LIVE (`attempts < limit`, `expires_at > now`, same phone),
//! and only the request whose increment succeeded may compare. So however many guesses arrive
//! at once, at most `limit` codes are ever compared. The state lives in the store item, never
//! in process memory, because Lambda instances share none.

/// How long a code is valid: 5 minutes.
pub const CODE_TTL_SECS: i64 = 300;

/// The default number of wrong codes a challenge survives.
pub const DEFAULT_WRONG_CODE_LIMIT: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    /// An attempt may be counted.
    Live,
    /// Every attempt has been used: any code gets `STATE_INVALID` until step one runs again.
    Dead,
    /// Past `expires_at`: `VERIFICATION_CODE_EXPIRED`.
    Expired,
}

/// The state of a stored challenge at `now`. A dead challenge stays dead after it expires.
pub fn challenge_state(attempts: u32, limit: u32, expires_at: i64, now: i64) -> ChallengeState {
    if attempts >= limit {
        ChallengeState::Dead
    } else if now >= expires_at {
        ChallengeState::Expired
    } else {
        ChallengeState::Live
    }
}

/// What an attempt on a stored challenge gets: the one rule both stores follow (the memory
/// store under its lock, DynamoDB from the item its refused conditional write returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    /// The challenge was sent to another phone (or device key): not this caller's.
    NotThisPhone,
    /// This attempt id was counted already (a retry after a lost answer): its count stands,
    /// nothing is counted again.
    CountedBefore,
    /// Every attempt used.
    Dead,
    /// Past its expiry.
    Expired,
    /// Live: the attempt is counted (DynamoDB counts it in the conditional write itself).
    Countable,
}

/// The verdict on an attempt (`attempt_known`: its id is among those counted on the
/// challenge). A recognised attempt is recognised only for its phone and while the
/// challenge lives; a dead challenge stays dead after it expires.
pub fn attempt_verdict(
    same_phone: bool,
    attempt_known: bool,
    attempts: u32,
    limit: u32,
    expires_at: i64,
    now: i64,
) -> AttemptVerdict {
    if !same_phone {
        return AttemptVerdict::NotThisPhone;
    }
    if attempt_known && now < expires_at {
        return AttemptVerdict::CountedBefore;
    }
    match challenge_state(attempts, limit, expires_at, now) {
        ChallengeState::Dead => AttemptVerdict::Dead,
        ChallengeState::Expired => AttemptVerdict::Expired,
        ChallengeState::Live => AttemptVerdict::Countable,
    }
}

/// What a wrong code is told, given the attempts counted so far (this one included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongCode {
    /// `VERIFICATION_CODE_INVALID`: more than one try left.
    Invalid,
    /// `ONE_CHALLENGE_LIMIT_REMAINING`: exactly one try left.
    OneRemaining,
    /// `CHALLENGE_LIMIT_EXCEEDED`: that was the last try; the challenge is now dead.
    LimitExceeded,
}

pub fn wrong_code(attempts: u32, limit: u32) -> WrongCode {
    if attempts >= limit {
        WrongCode::LimitExceeded
    } else if attempts + 1 == limit {
        WrongCode::OneRemaining
    } else {
        WrongCode::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladder_is_three_invalid_then_one_remaining_then_exceeded() {
        let ladder: Vec<_> = (1..=5).map(|n| wrong_code(n, 5)).collect();
        assert_eq!(
            ladder,
            [
                WrongCode::Invalid,
                WrongCode::Invalid,
                WrongCode::Invalid,
                WrongCode::OneRemaining,
                WrongCode::LimitExceeded
            ]
        );
    }

    #[test]
    fn ladder_at_the_configurable_edges() {
        assert_eq!(wrong_code(1, 1), WrongCode::LimitExceeded);
        assert_eq!(wrong_code(1, 2), WrongCode::OneRemaining);
        assert_eq!(wrong_code(2, 2), WrongCode::LimitExceeded);
        assert_eq!(wrong_code(8, 10), WrongCode::Invalid);
        assert_eq!(wrong_code(9, 10), WrongCode::OneRemaining);
    }

    #[test]
    fn every_transition() {
        // limit-1, limit, limit+1 attempts
        assert_eq!(challenge_state(4, 5, 300, 0), ChallengeState::Live);
        assert_eq!(challenge_state(5, 5, 300, 0), ChallengeState::Dead);
        assert_eq!(challenge_state(6, 5, 300, 0), ChallengeState::Dead);
        // 299 s, 300 s, 301 s after a challenge created at 0
        assert_eq!(
            challenge_state(0, 5, CODE_TTL_SECS, 299),
            ChallengeState::Live
        );
        assert_eq!(
            challenge_state(0, 5, CODE_TTL_SECS, 300),
            ChallengeState::Expired
        );
        assert_eq!(
            challenge_state(0, 5, CODE_TTL_SECS, 301),
            ChallengeState::Expired
        );
        // dead wins over expired
        assert_eq!(
            challenge_state(5, 5, CODE_TTL_SECS, 301),
            ChallengeState::Dead
        );
    }

    #[test]
    fn an_attempt_is_judged_by_phone_then_by_its_id_then_by_the_challenge() {
        use AttemptVerdict::*;
        assert_eq!(attempt_verdict(false, true, 0, 5, 300, 0), NotThisPhone);
        assert_eq!(attempt_verdict(true, true, 5, 5, 300, 0), CountedBefore);
        assert_eq!(attempt_verdict(true, true, 1, 5, 300, 300), Expired);
        assert_eq!(attempt_verdict(true, false, 5, 5, 300, 400), Dead);
        assert_eq!(attempt_verdict(true, false, 4, 5, 300, 299), Countable);
    }
}
