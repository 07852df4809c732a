//! The service's hashes: codes and phone numbers under the server's HMAC key, api keys by
//! SHA-256.
//!
//! A code is never stored or logged in clear. The store keeps an HMAC-SHA256 of it under a
//! server secret, bound to the challenge id, so a stolen table gives nothing to brute-force
//! offline and a hash cannot be replayed against another challenge.

use aws_lc_rs::{digest, hmac};

use super::{
    hex::{hex, unhex},
    ids::PhoneHash,
    otp::VerificationCode,
};

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
    pub fn phone_hash(&self, e164: &str) -> PhoneHash {
        PhoneHash::new(hex(self.tag(&["phone", e164]).as_ref()))
    }
}

/// How api keys are stored: SHA-256 of the key, hex.
pub fn api_key_hash(api_key: &str) -> String {
    hex(digest::digest(&digest::SHA256, api_key.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
