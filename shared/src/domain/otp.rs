//! One-time codes: the code the user types and how a fresh one is drawn. How a code is
//! kept (never in clear: an HMAC bound to its challenge) is in `crypto`.

use std::fmt;

use super::random::{RandomError, RandomSource};

/// The fixed code of sandbox programmes (no SMS is sent there).
pub const SANDBOX_CODE: &str = "123456";

/// A six-digit code, as typed by the user. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

/// Why a `verificationCode` is refused, named after the contract's field errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerificationCodeError {
    /// Not exactly six characters (400 `SIZE`).
    #[error("must be 6 characters")]
    Size,
    /// Six characters, not all ASCII digits (400 `REGEX`).
    #[error("must be digits only")]
    Regex,
}

impl VerificationCode {
    pub fn parse(raw: &str) -> Result<Self, VerificationCodeError> {
        if raw.chars().count() != 6 {
            return Err(VerificationCodeError::Size);
        }
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerificationCodeError::Regex);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The digits, for the SMS text and the keyed hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(***)")
    }
}

/// Largest multiple of 1,000,000 that fits in a u32: draws at or above it are rejected so that
/// every code from 000000 to 999999 has exactly the same probability.
const UNBIASED_LIMIT: u32 = 4_294_000_000;

/// Draws a code uniformly over 000000–999999 (rejection sampling, no modulo bias).
pub fn generate_code(random: &dyn RandomSource) -> Result<VerificationCode, RandomError> {
    loop {
        let mut buf = [0u8; 4];
        random.fill(&mut buf)?;
        let draw = u32::from_le_bytes(buf);
        if draw < UNBIASED_LIMIT {
            return Ok(VerificationCode(format!("{:06}", draw % 1_000_000)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::random::SystemRandom;

    #[test]
    fn parses_six_ascii_digits_only() {
        assert!(VerificationCode::parse("012345").is_ok());
        assert_eq!(
            VerificationCode::parse(""),
            Err(VerificationCodeError::Size)
        );
        assert_eq!(
            VerificationCode::parse("12345"),
            Err(VerificationCodeError::Size)
        );
        assert_eq!(
            VerificationCode::parse("1234567"),
            Err(VerificationCodeError::Size)
        );
        assert_eq!(
            VerificationCode::parse("12345a"),
            Err(VerificationCodeError::Regex)
        );
        assert_eq!(
            VerificationCode::parse("12 456"),
            Err(VerificationCodeError::Regex)
        );
        assert_eq!(
            VerificationCode::parse("١٢٣٤٥٦"),
            Err(VerificationCodeError::Regex)
        );
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = VerificationCode::parse("424242").ok();
        assert_eq!(format!("{code:?}"), "Some(VerificationCode(***))");
    }

    /// A generator that replays fixed bytes, to pin the rejection-sampling edge.
    struct Replay(std::sync::Mutex<Vec<u8>>);
    impl RandomSource for Replay {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            let mut bytes = self.0.lock().map_err(|_| RandomError)?;
            for b in buf.iter_mut() {
                *b = if bytes.is_empty() { 0 } else { bytes.remove(0) };
            }
            Ok(())
        }
    }

    #[test]
    fn draws_at_the_biased_tail_are_rejected() {
        let mut bytes = UNBIASED_LIMIT.to_le_bytes().to_vec(); // rejected
        bytes.extend_from_slice(&(UNBIASED_LIMIT - 1).to_le_bytes()); // accepted: 999999
        let code = generate_code(&Replay(std::sync::Mutex::new(bytes))).ok();
        assert_eq!(code.as_ref().map(VerificationCode::expose), Some("999999"));
        let zero = generate_code(&Replay(std::sync::Mutex::new(vec![0, 0, 0, 0]))).ok();
        assert_eq!(zero.as_ref().map(VerificationCode::expose), Some("000000"));
    }

    /// 10,000 codes from the real generator: all six digits, and each position uniform over
    /// 0–9 by a chi-square test at significance 1e-6 (critical value 44.8 for 9 degrees of
    /// freedom), so a correct generator fails it about once in a million runs per position.
    #[test]
    fn generated_codes_are_uniform_per_position() {
        let random = SystemRandom::default();
        let mut counts = [[0u32; 10]; 6];
        for _ in 0..10_000 {
            let code = generate_code(&random).ok();
            let code = code.as_ref().map(VerificationCode::expose).unwrap_or("x");
            assert_eq!(code.len(), 6);
            for (pos, b) in code.bytes().enumerate() {
                assert!(b.is_ascii_digit());
                if let Some(cell) = counts
                    .get_mut(pos)
                    .and_then(|c| c.get_mut(usize::from(b - b'0')))
                {
                    *cell += 1;
                }
            }
        }
        for (pos, row) in counts.iter().enumerate() {
            let expected = 1_000.0;
            let chi2: f64 = row
                .iter()
                .map(|&o| (f64::from(o) - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 44.8,
                "position {pos}: chi-square {chi2:.1} over {row:?}"
            );
        }
    }
}
