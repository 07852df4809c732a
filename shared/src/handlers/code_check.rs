//! Checking a code: the comparison (counted in the metrics), what a wrong one is told by the
//! ladder, and what a counted attempt leaves to compare.

use super::{
    reply::{ApiError, ErrorCode},
    Caller,
};
use crate::{
    app::Context,
    domain::{ids::ChallengeId, otp::VerificationCode},
    metrics::Metric,
    store::AttemptOutcome,
};

/// Compares a code with the challenge's stored hash (and counts the comparison).
pub(super) fn code_is_right(
    cx: &Context,
    caller: &Caller,
    challenge_id: &ChallengeId,
    code: &VerificationCode,
    code_hash: &str,
) -> bool {
    use std::sync::atomic::Ordering;
    cx.metrics.codes_compared.fetch_add(1, Ordering::SeqCst);
    let right = cx
        .hasher
        .code_matches(challenge_id.as_str(), code, code_hash);
    count_comparison(cx, caller, right);
    right
}

/// A code or a signature compared, in the metrics (`CodesCompared`, right or wrong).
fn count_comparison(cx: &Context, caller: &Caller, right: bool) {
    cx.metrics.count(
        Metric::CodesCompared,
        &[
            ("programme", &caller.programme.id),
            ("result", if right { "right" } else { "wrong" }),
        ],
        caller.now,
    );
}

/// Checks a device's signature over `message` with its key, and counts the comparison in the
/// metrics as a code's (`CodesCompared`, right or wrong).
pub(super) fn signature_is_right(
    cx: &Context,
    caller: &Caller,
    key: &crate::domain::device::DeviceKey,
    message: &[u8],
    signature: &crate::domain::device::DeviceSignature,
) -> bool {
    let right = key.verifies(message, signature);
    count_comparison(cx, caller, right);
    right
}

/// What a wrong code is told, by the attempts counted so far.
pub(super) fn wrong_code_answer(
    cx: &Context,
    caller: &Caller,
    attempts: u32,
    limit: u32,
) -> ErrorCode {
    use crate::domain::challenge::{wrong_code, WrongCode};
    match wrong_code(attempts, limit) {
        WrongCode::Invalid => ErrorCode::VerificationCodeInvalid,
        WrongCode::OneRemaining => ErrorCode::OneChallengeLimitRemaining,
        WrongCode::LimitExceeded => {
            cx.metrics.count(
                Metric::ChallengeLimitReached,
                &[("programme", &caller.programme.id)],
                caller.now,
            );
            ErrorCode::ChallengeLimitExceeded
        }
    }
}

/// What a verification attempt's count leaves to compare: the counted attempt, or `None`
/// when there is no challenge for this phone (each route says what that means). A dead
/// challenge (every attempt used) is 409 `STATE_INVALID`; an expired one, 409
/// `VERIFICATION_CODE_EXPIRED`.
pub(super) fn counted(
    outcome: AttemptOutcome,
) -> Result<Option<crate::store::CountedAttempt>, ApiError> {
    match outcome {
        AttemptOutcome::Counted(attempt) => Ok(Some(attempt)),
        AttemptOutcome::NoChallenge => Ok(None),
        AttemptOutcome::Dead => Err(ApiError::Conflict(ErrorCode::StateInvalid)),
        AttemptOutcome::Expired => Err(ApiError::Conflict(ErrorCode::VerificationCodeExpired)),
    }
}
