//! One-time codes: the code the user types, how a fresh one is drawn, and how it is kept.
//!
//! A code is never stored or logged in clear. The store keeps an HMAC-SHA256 of it under a
//! server secret, bound to the challenge id, so a stolen table gives nothing to brute-force
//! offline and a hash cannot be replayed against another challenge.

use std::fmt;

use aws_lc_rs::{digest, hmac, rand::SecureRandom};

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

/// The randomness the service draws from: the OS generator in production.
pub trait RandomSource: Send + Sync {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// The operating system's cryptographically secure generator.
#[derive(Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl RandomSource for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        self.0.fill(buf).map_err(|_| RandomError)
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

/// A random identifier: 16 bytes, hex.
pub fn random_id(random: &dyn RandomSource) -> Result<String, RandomError> {
    let mut buf = [0u8; 16];
    random.fill(&mut buf)?;
    Ok(hex(&buf))
}

/// The server-side keys: the HMAC key for codes and phone numbers.
pub struct Hasher {
    key: hmac::Key,
}

impl Hasher {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn tag(&self, parts: &[&str]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        ctx.sign()
    }

    /// The stored form of a challenge's code.
    pub fn code_hash(&self, challenge_id: &str, code: &VerificationCode) -> String {
        hex(self
            .tag(&["otp-code", challenge_id, code.expose()])
            .as_ref())
    }

    /// Compares a typed code with the stored hash in constant time.
    pub fn code_matches(&self, challenge_id: &str, code: &VerificationCode, stored: &str) -> bool {
        let Some(stored) = unhex(stored) else {
            return false;
        };
        let mut ctx = Vec::new();
        for part in ["otp-code", challenge_id, code.expose()] {
            ctx.extend_from_slice(&(part.len() as u64).to_be_bytes());
            ctx.extend_from_slice(part.as_bytes());
        }
        hmac::verify(&self.key, &ctx, &stored).is_ok()
    }

    /// A stable pseudonym of a phone number: what the store keeps instead of the number.
    pub fn phone_hash(&self, e164: &str) -> String {
        hex(self.tag(&["phone", e164]).as_ref())
    }
}

/// How api keys are stored: SHA-256 of the key, hex.
pub fn api_key_hash(api_key: &str) -> String {
    hex(digest::digest(&digest::SHA256, api_key.as_bytes()).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn hash_binds_code_and_challenge() {
        let hasher = Hasher::new(b"k");
        let code = VerificationCode::parse("123456").ok().into_iter().next();
        let other = VerificationCode::parse("123457").ok();
        let (Some(code), Some(other)) = (code, other) else {
            unreachable!()
        };
        let stored = hasher.code_hash("c1", &code);
        assert!(!stored.contains("123456"));
        assert!(hasher.code_matches("c1", &code, &stored));
        assert!(!hasher.code_matches("c1", &other, &stored));
        assert!(!hasher.code_matches("c2", &code, &stored));
        assert!(!Hasher::new(b"other").code_matches("c1", &code, &stored));
        assert!(!hasher.code_matches("c1", &code, "not-hex"));
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
