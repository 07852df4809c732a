//! The signature Twilio Authy puts on its callbacks, as Authy documents it:
//!
//! 1. the callback URL, without parameters;
//! 2. the JSON body flattened into form parameters (`a[b][c]=v`, arrays as `a[]=v`),
//!    each key and value URL-encoded (RFC 3986; spaces then written `+`), sorted by key,
//!    case-sensitive, joined with `&`;
//! 3. the `X-Authy-Signature-Nonce` header;
//! 4. `nonce|POST|url|params`, HMAC-SHA256 under the Authy application's API key,
//!    base64 (RFC 4648, no line breaks) = the `X-Authy-Signature` header.
//!
//! Verification compares the MACs in constant time.

use aws_lc_rs::hmac;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

/// The most parameters a callback body may flatten to: Authy's documented callbacks hold a
/// few dozen. A body with more is refused before its signature is computed.
pub const MAX_PARAMS: usize = 256;

/// Too many parameters: flattening stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyParams;

fn flatten(
    key: String,
    value: &Value,
    out: &mut Vec<(String, String)>,
) -> Result<(), TooManyParams> {
    if out.len() >= MAX_PARAMS {
        return Err(TooManyParams);
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let nested = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}[{k}]")
                };
                flatten(nested, v, out)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(format!("{key}[]"), item, out)?;
            }
        }
        Value::String(s) => out.push((key, s.clone())),
        Value::Number(n) => out.push((key, n.to_string())),
        Value::Bool(b) => out.push((key, b.to_string())),
        Value::Null => out.push((key, String::new())),
    }
    Ok(())
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The sorted, encoded parameters of a JSON body (at most `MAX_PARAMS`).
pub fn signed_params(body: &Value) -> Result<String, TooManyParams> {
    let mut pairs = Vec::new();
    flatten(String::new(), body, &mut pairs)?;
    let mut encoded: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

fn message(nonce: &str, method: &str, url: &str, body: &Value) -> Result<String, TooManyParams> {
    Ok(format!("{nonce}|{method}|{url}|{}", signed_params(body)?))
}

/// The signature Authy would send (used by the tests' fake Authy, and by nobody in production).
/// A body over `MAX_PARAMS` gets a signature that no verification accepts.
pub fn sign(api_key: &str, nonce: &str, method: &str, url: &str, body: &Value) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, api_key.as_bytes());
    let message = message(nonce, method, url, body).unwrap_or_default();
    STANDARD.encode(hmac::sign(&key, message.as_bytes()).as_ref())
}

/// Whether `signature` is Authy's signature of this callback (constant-time comparison).
pub fn verify(
    api_key: &str,
    nonce: &str,
    method: &str,
    url: &str,
    body: &Value,
    signature: &str,
) -> bool {
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(message) = message(nonce, method, url, body) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, api_key.as_bytes());
    hmac::verify(&key, message.as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The vector of a public Authy client's test suite: key `foo`, nonce 1455825429,
    /// `POST https://foo.bar/`, body `{"qux": "net", "foo": {"bar": {"biz": "foo bar"}}}`.
    #[test]
    fn matches_a_published_vector() {
        let body = json!({"qux": "net", "foo": {"bar": {"biz": "foo bar"}}});
        assert_eq!(
            signed_params(&body),
            Ok("foo%5Bbar%5D%5Bbiz%5D=foo+bar&qux=net".to_owned())
        );
        let expected = "+fyGys+d5yNJx9SpeKZdf+N77od1t1cC/fVSWDW2+kY=";
        assert_eq!(
            sign("foo", "1455825429", "POST", "https://foo.bar/", &body),
            expected
        );
        assert!(verify(
            "foo",
            "1455825429",
            "POST",
            "https://foo.bar/",
            &body,
            expected
        ));
    }

    #[test]
    fn a_body_flattening_past_the_cap_is_refused() {
        let at_cap = Value::Array(vec![json!(0); MAX_PARAMS]);
        assert!(signed_params(&at_cap).is_ok());
        let over = Value::Array(vec![json!(0); MAX_PARAMS + 1]);
        assert_eq!(signed_params(&over), Err(TooManyParams));
        let nested = json!({"a": [[1, 2], {"b": vec![json!("x"); MAX_PARAMS]}]});
        assert_eq!(signed_params(&nested), Err(TooManyParams));
        let sig = sign("key", "1", "POST", "https://x/", &over);
        assert!(!verify("key", "1", "POST", "https://x/", &over, &sig));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let body = json!({"uuid": "u", "status": "approved", "approval_request": {"transaction": {"details": {"a": 1}}}});
        let sig = sign("key", "1", "POST", "https://x/webhooks/authy", &body);
        assert!(verify(
            "key",
            "1",
            "POST",
            "https://x/webhooks/authy",
            &body,
            &sig
        ));
        let denied = json!({"uuid": "u", "status": "denied", "approval_request": {"transaction": {"details": {"a": 1}}}});
        assert!(!verify(
            "key",
            "1",
            "POST",
            "https://x/webhooks/authy",
            &denied,
            &sig
        ));
        assert!(!verify(
            "key",
            "2",
            "POST",
            "https://x/webhooks/authy",
            &body,
            &sig
        ));
        assert!(!verify(
            "other",
            "1",
            "POST",
            "https://x/webhooks/authy",
            &body,
            &sig
        ));
        assert!(!verify(
            "key",
            "1",
            "POST",
            "https://y/webhooks/authy",
            &body,
            &sig
        ));
        assert!(!verify(
            "key",
            "1",
            "POST",
            "https://x/webhooks/authy",
            &body,
            "not base64!"
        ));
        assert!(!verify(
            "key",
            "1",
            "POST",
            "https://x/webhooks/authy",
            &body,
            ""
        ));
    }

    #[test]
    fn arrays_booleans_and_nulls_flatten_like_qs() {
        let body = json!({"b": [1, "two"], "a": true, "c": null, "d": {}});
        assert_eq!(
            signed_params(&body).as_deref(),
            Ok("a=true&b%5B%5D=1&b%5B%5D=two&c=")
        );
    }
}
