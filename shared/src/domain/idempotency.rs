//! Idempotency references and request fingerprints.
//!
//! A reference belongs to the programme and the user. Its record remembers a fingerprint of
//! the operation (method, route, channel) and of the body as a JSON value, so that whitespace
//! and key order do not matter and an absent body is a value of its own.

use aws_lc_rs::digest;

use super::hex::hex;

/// How long a final response is kept: at least the contract's 24 hours.
pub const KEEP_SECS: i64 = 25 * 3_600;

/// How long a claim blocks other requests with the same reference before it is presumed
/// abandoned (longer than any function timeout).
pub const LEASE_SECS: i64 = 60;

/// An `idempotency-ref` header value: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyRef(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyRefError {
    /// Empty or longer than 255 (400 `SIZE`, params `["1", "255"]`).
    #[error("must be 1 to 255 characters")]
    Size,
    /// A character outside visible ASCII (400 `REGEX`).
    #[error("must be visible ASCII characters")]
    Regex,
}

impl IdempotencyRef {
    pub fn parse(raw: &[u8]) -> Result<Self, IdempotencyRefError> {
        if raw.is_empty() || raw.len() > 255 {
            // A multi-byte value longer than 255 bytes is not visible ASCII anyway.
            if raw.iter().all(|b| (0x21..=0x7e).contains(b)) || raw.is_empty() {
                return Err(IdempotencyRefError::Size);
            }
            return Err(IdempotencyRefError::Regex);
        }
        if !raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(IdempotencyRefError::Regex);
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the verification attempt a request with this reference and this
    /// `fingerprint` (operation and body) counts: the same on every retry of the same
    /// request, so that a retry which runs again (its first try failed after counting) does
    /// not count a second attempt; another body (another code) under the same reference is
    /// another attempt, so a released or expired claim never buys a free comparison.
    pub fn attempt_id(&self, fingerprint: &str) -> String {
        hex(digest::digest(
            &digest::SHA256,
            format!("attempt|{}|{fingerprint}", self.0).as_bytes(),
        )
        .as_ref())
    }
}

/// The fingerprint of an operation and its body.
pub fn fingerprint(operation: &str, body: &[u8]) -> String {
    let body_value = if body.is_empty() {
        "absent".to_owned()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            // serde_json's map is ordered by key: this is a canonical form.
            Ok(value) => format!("json:{value}"),
            Err(_) => format!(
                "raw:{}",
                hex(digest::digest(&digest::SHA256, body).as_ref())
            ),
        }
    };
    let text = format!("{operation}\n{body_value}");
    hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_1_to_255_visible_ascii() {
        assert!(IdempotencyRef::parse(b"a").is_ok());
        assert!(IdempotencyRef::parse(&[b'x'; 255]).is_ok());
        assert_eq!(IdempotencyRef::parse(b""), Err(IdempotencyRefError::Size));
        assert_eq!(
            IdempotencyRef::parse(&[b'x'; 256]),
            Err(IdempotencyRefError::Size)
        );
        assert_eq!(
            IdempotencyRef::parse(b"a b"),
            Err(IdempotencyRefError::Regex)
        );
        assert_eq!(
            IdempotencyRef::parse(b"a\tb"),
            Err(IdempotencyRefError::Regex)
        );
        assert_eq!(
            IdempotencyRef::parse("é".as_bytes()),
            Err(IdempotencyRefError::Regex)
        );
        assert!(IdempotencyRef::parse(b"!~").is_ok());
    }

    #[test]
    fn attempt_id_binds_the_reference_and_the_body() {
        let r = IdempotencyRef::parse(b"ref-1").unwrap();
        let a = fingerprint("POST verify SMS", br#"{"verificationCode": "111111"}"#);
        let b = fingerprint("POST verify SMS", br#"{"verificationCode": "222222"}"#);
        assert_eq!(r.attempt_id(&a), r.attempt_id(&a));
        assert_ne!(r.attempt_id(&a), r.attempt_id(&b));
        let other = IdempotencyRef::parse(b"ref-2").unwrap();
        assert_ne!(r.attempt_id(&a), other.attempt_id(&a));
    }

    #[test]
    fn fingerprint_ignores_whitespace_and_key_order_only() {
        let a = fingerprint("POST verify SMS", br#"{"a": 1, "b": "x"}"#);
        assert_eq!(a, fingerprint("POST verify SMS", br#"{"b":"x","a":1}"#));
        assert_ne!(a, fingerprint("POST verify SMS", br#"{"a": 2, "b": "x"}"#));
        assert_ne!(a, fingerprint("POST enrol SMS", br#"{"a": 1, "b": "x"}"#));
        assert_ne!(fingerprint("op", b""), fingerprint("op", b"{}"));
        assert_ne!(
            fingerprint("op", b"not json"),
            fingerprint("op", b"not json!")
        );
    }
}
