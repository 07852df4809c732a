//! Proofs of a verified payment challenge: a compact JWS (ES256, `typ: sca-proof+jwt`, `kid`
//! the key's RFC 7638 thumbprint) over the challenge's values, which a payment service checks
//! offline against `GET /.well-known/jwks.json`.
//!
//! The signing port: `kms` (an asymmetric ECC_NIST_P256 KMS key; the private key never
//! leaves KMS) in AWS, `local` (a development key the local server creates and keeps)
//! locally and in tests, `unconfigured` where no key is set (signing answers 503).

pub mod kms;
pub mod local;

use async_trait::async_trait;
use aws_lc_rs::digest;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

use crate::{
    domain::{
        channel::Channel,
        device::{DeviceKey, DeviceSignature},
        payment::PaymentChallenge,
    },
    store::UserKey,
};

/// The `iss` of proofs signed by a deployment that names none (local runs, tests).
pub const LOCAL_PROOF_ISSUER: &str = "https://additional-factors.local";

/// How long a proof is valid: `exp` = `iat` + 300.
pub const PROOF_TTL_SECS: i64 = 300;

/// The `typ` of a proof's header.
pub const PROOF_TYPE: &str = "sca-proof+jwt";

/// A P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub x: [u8; 32],
    pub y: [u8; 32],
}

impl PublicKey {
    /// From an uncompressed SEC1 point (`04 || x || y`).
    pub fn from_uncompressed(point: &[u8]) -> Option<Self> {
        match point {
            [4, rest @ ..] if rest.len() == 64 => Some(Self {
                x: rest.get(..32)?.try_into().ok()?,
                y: rest.get(32..)?.try_into().ok()?,
            }),
            _ => None,
        }
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256 of the required members, sorted).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(self.x),
            URL_SAFE_NO_PAD.encode(self.y)
        );
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// The key as a JWK.
    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": self.thumbprint(),
            "x": URL_SAFE_NO_PAD.encode(self.x),
            "y": URL_SAFE_NO_PAD.encode(self.y),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the proof could not be signed")]
pub struct SignError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SignError {
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait ProofSigner: Send + Sync {
    /// The key proofs are signed with now.
    async fn current_key(&self) -> Result<PublicKey, SignError>;
    /// Every key a proof may still carry: the current one first, then the previous one.
    async fn public_keys(&self) -> Result<Vec<PublicKey>, SignError>;
    /// An ES256 signature (64 bytes, `r || s`) of `message` with the current key.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A sandbox programme's proof key: published only at `/.well-known/sandbox-jwks.json`, never
/// in the live JWKS, so a proof made with a sandbox's fixed code is never live evidence. The
/// simulators hold this key and no other.
pub struct SandboxKey(pub std::sync::Arc<dyn ProofSigner>);

impl SandboxKey {
    pub fn signer(&self) -> &dyn ProofSigner {
        &*self.0
    }
}

/// Both proof keys, for a route that serves live and sandbox programmes alike.
pub struct ProofKeys {
    pub live: std::sync::Arc<dyn ProofSigner>,
    pub sandbox: SandboxKey,
}

impl ProofKeys {
    /// The key a programme's proofs are signed with.
    pub fn for_programme(&self, sandbox: bool) -> &dyn ProofSigner {
        if sandbox {
            self.sandbox.signer()
        } else {
            &*self.live
        }
    }
}

/// No signing key configured: signing fails (503), the JWKS is empty.
pub struct UnconfiguredSigner;

#[async_trait]
impl ProofSigner for UnconfiguredSigner {
    async fn current_key(&self) -> Result<PublicKey, SignError> {
        Err(SignError::new("no proof signing key is configured"))
    }
    async fn public_keys(&self) -> Result<Vec<PublicKey>, SignError> {
        Ok(Vec::new())
    }
    async fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        Err(SignError::new("no proof signing key is configured"))
    }
}

/// The claims of a proof: what was approved, by whom, how, when, and whether in a sandbox
/// programme (whose proofs a sandbox key signs).
pub fn proof_claims(
    issuer: &str,
    user: &UserKey,
    challenge: &PaymentChallenge,
    device: Option<&DeviceApproval>,
    sandbox: bool,
    iat: i64,
) -> Value {
    let amr = match challenge.channel {
        Channel::Sms => json!(["sms", "otp"]),
        // Authy holds a software key; BIOMETRIC a key in the phone's secure hardware.
        Channel::Authy => json!(["swk", "user"]),
        Channel::Biometric => json!(["hwk", "user"]),
    };
    let payment = &challenge.payment;
    let mut claims = json!({
        "iss": issuer,
        "sub": user.credential_id,
        "programme_id": user.programme_id,
        "sca_challenge_id": challenge.id.as_str(),
        "reference": payment.reference,
        "amount": {"currency": payment.currency, "value": payment.value},
        "payee": {"name": payment.payee_name, "account": payment.payee_account},
        "amr": amr,
        "sandbox": sandbox,
        "iat": iat,
        "exp": iat + PROOF_TTL_SECS,
    });
    // The device's own word: its key (RFC 7800 `cnf`) and its signature over the signing
    // input that showed this amount and payee, checkable offline.
    if let (Some(device), Some(fields)) = (device, claims.as_object_mut()) {
        fields.insert("cnf".into(), json!({ "jwk": device.key.to_jwk() }));
        fields.insert(
            "device_approval".into(),
            json!({
                "signing_input": device.signing_input,
                "signature": device.signature.to_b64(),
            }),
        );
    }
    claims
}

/// A BIOMETRIC device's approval of a payment: its key and its signature (`r‖s`) over the
/// signing input it was shown, for the proof's `cnf` and `device_approval`.
#[derive(Debug, Clone)]
pub struct DeviceApproval {
    pub key: DeviceKey,
    pub signing_input: String,
    pub signature: DeviceSignature,
}

/// Signs the claims as a compact JWS with the signer's current key.
pub async fn sign_proof(signer: &dyn ProofSigner, claims: &Value) -> Result<String, SignError> {
    let key = signer.current_key().await?;
    let header = json!({"alg": "ES256", "typ": PROOF_TYPE, "kid": key.thumbprint()});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(input.as_bytes()).await?;
    if signature.len() != 64 {
        return Err(SignError::new("an ES256 signature is 64 bytes"));
    }
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The JWKS document: every key a proof of this signer may carry.
pub async fn jwks(signer: &dyn ProofSigner) -> Result<Value, SignError> {
    let keys: Vec<Value> = signer
        .public_keys()
        .await?
        .iter()
        .map(PublicKey::to_jwk)
        .collect();
    Ok(json!({ "keys": keys }))
}

/// Converts a DER `ECDSA-Sig-Value` (what KMS returns) to the 64-byte `r || s` of JWS.
pub fn der_to_jws_signature(der: &[u8]) -> Option<Vec<u8>> {
    crate::domain::device::der_to_raw(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_64_bytes() {
        // r with a leading zero (high bit set), s short.
        let mut der = vec![0x30, 0x00, 0x02, 33, 0x00];
        der.extend([0xff; 32]);
        der.extend([0x02, 2, 0x01, 0x02]);
        der[1] = (der.len() - 2) as u8;
        let jws = der_to_jws_signature(&der).unwrap();
        assert_eq!(jws.len(), 64);
        assert_eq!(&jws[..32], &[0xff; 32]);
        assert_eq!(&jws[32..62], &[0; 30]);
        assert_eq!(&jws[62..], &[1, 2]);
        assert_eq!(der_to_jws_signature(&[0x30, 0x01, 0x05]), None);
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        let key = PublicKey {
            x: [1; 32],
            y: [2; 32],
        };
        let jwk = key.to_jwk();
        assert_eq!(jwk["kid"], key.thumbprint());
        assert_eq!(key.thumbprint().len(), 43);
        let mut point = vec![4];
        point.extend([1; 32]);
        point.extend([2; 32]);
        assert_eq!(PublicKey::from_uncompressed(&point), Some(key));
        assert_eq!(PublicKey::from_uncompressed(&point[1..]), None);
    }
}
