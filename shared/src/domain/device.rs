//! BIOMETRIC devices: the P-256 key the programme's app keeps in the phone's secure hardware,
//! the signatures it makes, and the signing inputs this API builds for it to sign.
//!
//! A *signing input* is the UTF-8 bytes of a JSON object this API builds (`v`, `type`, `id`,
//! `programmeId`, `nonce`, `expiresAt`, and what the user approves), sent and stored as its
//! base64url text: the app shows what it says *from those bytes* and signs exactly
//! `ASCII(signingInput + "." + decision)`. The stored text is what is verified, never a
//! re-serialisation. A signature is ECDSA P-256 with SHA-256, as the 64-byte `r‖s` of JWS or
//! as DER (what iOS and Android give); it is kept and published as `r‖s`.

use aws_lc_rs::{
    digest,
    signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

/// How long a signing input may be answered: `expiresAt` is 5 minutes after it was made.
pub const SIGNING_INPUT_TTL_SECS: i64 = 300;

/// A BIOMETRIC factor's device: the key its approvals are signed with, where its pushes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub key: DeviceKey,
    pub platform: Platform,
    /// The push token (never logged whole).
    pub push_token: String,
    pub name: String,
    /// The SNS platform endpoint, once the enrolment is verified.
    pub endpoint: Option<String>,
}

/// A device's public key: a point on P-256, checked when parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey {
    x: [u8; 32],
    y: [u8; 32],
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.thumbprint())
    }
}

/// Why a `publicKey` is refused (400 `fieldName` `publicKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceKeyError {
    #[error("must be a public JWK: kty EC, crv P-256, x and y (32 bytes each, base64url)")]
    Shape,
    #[error("must not carry a private member (d)")]
    Private,
    #[error("is not a point on P-256")]
    NotOnCurve,
}

impl DeviceKey {
    /// A public JWK on P-256: `kty` `EC`, `crv` `P-256`, `x` and `y` of 32 bytes each, no `d`,
    /// and the point on the curve.
    pub fn from_jwk(jwk: &Value) -> Result<Self, DeviceKeyError> {
        let object = jwk.as_object().ok_or(DeviceKeyError::Shape)?;
        if object.contains_key("d") {
            return Err(DeviceKeyError::Private);
        }
        if object.get("kty").and_then(Value::as_str) != Some("EC")
            || object.get("crv").and_then(Value::as_str) != Some("P-256")
        {
            return Err(DeviceKeyError::Shape);
        }
        let coordinate = |name: &str| -> Result<[u8; 32], DeviceKeyError> {
            let text = object
                .get(name)
                .and_then(Value::as_str)
                .ok_or(DeviceKeyError::Shape)?;
            URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or(DeviceKeyError::Shape)
        };
        Self::from_coordinates(coordinate("x")?, coordinate("y")?)
    }

    /// From its coordinates, checked on the curve.
    pub fn from_coordinates(x: [u8; 32], y: [u8; 32]) -> Result<Self, DeviceKeyError> {
        let key = Self { x, y };
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.point())
            .map_err(|_| DeviceKeyError::NotOnCurve)?;
        Ok(key)
    }

    /// From the base64url coordinates the store keeps.
    pub fn from_stored(x: &str, y: &str) -> Option<Self> {
        let decode = |text: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        };
        Self::from_coordinates(decode(x)?, decode(y)?).ok()
    }

    pub fn x_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.x)
    }

    pub fn y_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.y)
    }

    /// The uncompressed SEC1 point (`04 || x || y`).
    fn point(&self) -> Vec<u8> {
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        point
    }

    /// The public JWK (what a proof's `cnf` carries).
    pub fn to_jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x_b64(), "y": self.y_b64()})
    }

    /// The RFC 7638 thumbprint: one device key, one name (two factors never share a key).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.x_b64(),
            self.y_b64()
        );
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// Whether `signature` is this key's over exactly `message` (ECDSA P-256, SHA-256).
    pub fn verifies(&self, message: &[u8], signature: &DeviceSignature) -> bool {
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.point())
            .is_ok_and(|key| key.verify_sig(message, &signature.0).is_ok())
    }
}

/// An ECDSA P-256 signature, as the 64-byte `r‖s` whatever form it came in.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceSignature([u8; 64]);

impl std::fmt::Debug for DeviceSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSignature(***)")
    }
}

impl DeviceSignature {
    /// base64url (padding tolerated) of the 64-byte `r‖s` or of a DER `ECDSA-Sig-Value`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let raw = if bytes.len() == 64 {
            bytes
        } else {
            der_to_raw(&bytes)?
        };
        <[u8; 64]>::try_from(raw).ok().map(Self)
    }

    /// The 64-byte `r‖s`, base64url (what a proof's `device_approval` carries).
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// Converts a DER `ECDSA-Sig-Value` (`SEQUENCE { r INTEGER, s INTEGER }`, what KMS, iOS and
/// Android produce) to the 64-byte `r‖s` of JWS.
pub fn der_to_raw(der: &[u8]) -> Option<Vec<u8>> {
    fn integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if tag != 0x02 || len > 33 || len == 0 {
            return None;
        }
        let value = rest.get(..usize::from(len))?;
        Some((value, rest.get(usize::from(len)..)?))
    }
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&len, body) = rest.split_first()?;
    if usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = integer(body)?;
    let (s, rest) = integer(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(64);
    for part in [r, s] {
        let trimmed: Vec<u8> = part.iter().copied().skip_while(|b| *b == 0).collect();
        if trimmed.len() > 32 {
            return None;
        }
        out.extend(std::iter::repeat_n(0, 32 - trimmed.len()));
        out.extend(trimmed);
    }
    Some(out)
}

/// What a signature says of its signing input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Enrol,
    Approve,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Enrol => "ENROL",
            Decision::Approve => "APPROVE",
            Decision::Decline => "DECLINE",
        }
    }

    /// The bytes a device signs: `ASCII(signingInput + "." + decision)`.
    pub fn message(self, signing_input: &str) -> Vec<u8> {
        format!("{signing_input}.{}", self.as_str()).into_bytes()
    }
}

/// The platform a device's push token belongs to (an SNS platform application each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Apns,
    ApnsSandbox,
    Fcm,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Apns, Platform::ApnsSandbox, Platform::Fcm];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "APNS",
            Platform::ApnsSandbox => "APNS_SANDBOX",
            Platform::Fcm => "FCM",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The platform's name in SNS (`GCM` is SNS's name for FCM).
    pub fn sns_name(self) -> &'static str {
        match self {
            Platform::Apns => "APNS",
            Platform::ApnsSandbox => "APNS_SANDBOX",
            Platform::Fcm => "GCM",
        }
    }
}

/// Builds a signing input: the JSON object `fields` (with `v` 1, `nonce` and `expiresAt`
/// added) as base64url of its UTF-8 bytes. Built once and stored: the same challenge always
/// returns the same bytes.
pub fn signing_input(
    mut fields: serde_json::Map<String, Value>,
    nonce: &[u8; 32],
    expires_at: i64,
) -> String {
    fields.insert("v".into(), json!(1));
    fields.insert("nonce".into(), json!(URL_SAFE_NO_PAD.encode(nonce)));
    fields.insert("expiresAt".into(), json!(rfc3339(expires_at)));
    URL_SAFE_NO_PAD.encode(Value::Object(fields).to_string())
}

/// What a device approves besides its own enrolment: a step-up or a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePurpose {
    StepUp,
    Payment,
}

impl DevicePurpose {
    /// The `purpose` the device's list shows.
    pub fn as_str(self) -> &'static str {
        match self {
            DevicePurpose::StepUp => "STEP_UP",
            DevicePurpose::Payment => "PAYMENT",
        }
    }

    /// The signing input's `type`.
    pub fn input_type(self) -> &'static str {
        match self {
            DevicePurpose::StepUp => "step_up",
            DevicePurpose::Payment => "payment",
        }
    }

    /// What a signing input this API built is for (its `type`), read back from its bytes.
    pub fn of_signing_input(input: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(input).ok()?;
        let fields: Value = serde_json::from_slice(&bytes).ok()?;
        let kind = fields.get("type")?.as_str()?;
        [DevicePurpose::StepUp, DevicePurpose::Payment]
            .into_iter()
            .find(|p| p.input_type() == kind)
    }
}

/// A challenge waiting for the device's answer, as the device lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChallenge {
    pub id: super::ids::ChallengeId,
    /// The signing input, exactly as stored.
    pub signing_input: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl DeviceChallenge {
    pub fn purpose(&self) -> Option<DevicePurpose> {
        DevicePurpose::of_signing_input(&self.signing_input)
    }

    /// The `limit` newest, newest first (by creation, then id: one order for equal times).
    pub fn newest_first(mut challenges: Vec<Self>, limit: usize) -> Vec<Self> {
        challenges
            .sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));
        challenges.truncate(limit);
        challenges
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-12-07T18:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        (rem % 3_600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{
            EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
        },
    };

    use super::*;

    fn device() -> (EcdsaKeyPair, DeviceKey) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let key = DeviceKey::from_coordinates(
            point[1..33].try_into().unwrap(),
            point[33..].try_into().unwrap(),
        )
        .unwrap();
        (pair, key)
    }

    #[test]
    fn a_signing_input_says_what_it_is_for() {
        let made = |kind: &str| {
            let mut fields = serde_json::Map::new();
            fields.insert("type".into(), json!(kind));
            signing_input(fields, &[1; 32], 1_800_000_000)
        };
        assert_eq!(
            DevicePurpose::of_signing_input(&made("step_up")),
            Some(DevicePurpose::StepUp)
        );
        assert_eq!(
            DevicePurpose::of_signing_input(&made("payment")),
            Some(DevicePurpose::Payment)
        );
        assert_eq!(DevicePurpose::of_signing_input(&made("enrol")), None);
        assert_eq!(DevicePurpose::of_signing_input("not base64url!"), None);
        assert_eq!(DevicePurpose::StepUp.as_str(), "STEP_UP");
    }

    #[test]
    fn a_signature_verifies_over_exactly_its_bytes_raw_or_der() {
        let (pair, key) = device();
        let rng = SystemRandom::new();
        let input = signing_input(serde_json::Map::new(), &[7; 32], 1_800_000_000);
        let message = Decision::Approve.message(&input);
        let raw = pair.sign(&rng, &message).unwrap();
        let signature = DeviceSignature::parse(&URL_SAFE_NO_PAD.encode(raw.as_ref())).unwrap();
        assert!(key.verifies(&message, &signature));
        assert!(!key.verifies(&Decision::Decline.message(&input), &signature));
        assert!(!key.verifies(&Decision::Approve.message(&format!("{input}x")), &signature));
        // DER, as iOS and Android give it, verifies the same and is kept as r||s.
        let der_pair = {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
        };
        let point = der_pair.public_key().as_ref().to_vec();
        let der_key = DeviceKey::from_coordinates(
            point[1..33].try_into().unwrap(),
            point[33..].try_into().unwrap(),
        )
        .unwrap();
        let der = der_pair.sign(&rng, &message).unwrap();
        let parsed = DeviceSignature::parse(&URL_SAFE_NO_PAD.encode(der.as_ref())).unwrap();
        assert!(der_key.verifies(&message, &parsed));
        assert_eq!(URL_SAFE_NO_PAD.decode(parsed.to_b64()).unwrap().len(), 64);
        // Another key's signature does not verify.
        assert!(!key.verifies(&message, &parsed));
        assert!(DeviceSignature::parse("not a signature").is_none());
        assert!(DeviceSignature::parse(&URL_SAFE_NO_PAD.encode([1u8; 63])).is_none());
    }

    #[test]
    fn a_public_key_is_a_public_jwk_on_p256() {
        let (_, key) = device();
        let jwk = key.to_jwk();
        assert_eq!(DeviceKey::from_jwk(&jwk), Ok(key.clone()));
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        assert_eq!(DeviceKey::from_jwk(&private), Err(DeviceKeyError::Private));
        let mut other_curve = jwk.clone();
        other_curve["crv"] = json!("P-384");
        assert_eq!(
            DeviceKey::from_jwk(&other_curve),
            Err(DeviceKeyError::Shape)
        );
        let mut off_curve = jwk.clone();
        off_curve["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert_eq!(
            DeviceKey::from_jwk(&off_curve),
            Err(DeviceKeyError::NotOnCurve)
        );
        let mut short = jwk;
        short["x"] = json!("AQID");
        assert_eq!(DeviceKey::from_jwk(&short), Err(DeviceKeyError::Shape));
        assert_eq!(key.thumbprint().len(), 43);
        assert_eq!(
            DeviceKey::from_stored(&key.x_b64(), &key.y_b64()),
            Some(key)
        );
    }

    #[test]
    fn a_signing_input_is_stored_bytes_with_its_expiry() {
        let mut fields = serde_json::Map::new();
        fields.insert("type".into(), json!("enrol"));
        let input = signing_input(fields, &[0; 32], 1_800_000_000);
        let decoded: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&input).unwrap()).unwrap();
        assert_eq!(decoded["v"], 1);
        assert_eq!(decoded["type"], "enrol");
        assert_eq!(decoded["expiresAt"], "2027-01-15T08:00:00Z");
        assert_eq!(decoded["nonce"].as_str().unwrap().len(), 43);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
