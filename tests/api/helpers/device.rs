//! A simulated BIOMETRIC device: a P-256 key as the programme's app keeps it in the phone's
//! secure hardware, signing what the API asks it to, in raw `r‖s` or DER as iOS and Android
//! do.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{
        EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    },
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

pub struct Device {
    raw: EcdsaKeyPair,
    der: EcdsaKeyPair,
    pub push_token: String,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self {
            raw: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap(),
            // The same key, signing in DER.
            der: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(),
            push_token: format!("push-token-{}", super::unique()),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let point = self.raw.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// Step one's body.
    pub fn enrol_body(&self) -> Value {
        json!({"publicKey": self.jwk(), "pushToken": self.push_token, "platform": "FCM",
               "deviceName": "Pixel 8"})
    }

    /// The signature (64-byte `r‖s`, base64url) over `signingInput.decision`.
    pub fn sign(&self, signing_input: &str, decision: &str) -> String {
        let message = format!("{signing_input}.{decision}");
        let signature = self
            .raw
            .sign(&SystemRandom::new(), message.as_bytes())
            .unwrap();
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    }

    /// The same, in DER (what iOS and Android give).
    pub fn sign_der(&self, signing_input: &str, decision: &str) -> String {
        let message = format!("{signing_input}.{decision}");
        let signature = self
            .der
            .sign(&SystemRandom::new(), message.as_bytes())
            .unwrap();
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    }
}

/// What a signing input says (the JSON the device shows).
pub fn decoded(signing_input: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signing_input).unwrap()).unwrap()
}

/// A new FCM platform application at the local AWS-compatible server (moto implements SNS
/// mobile push's applications and endpoints): its ARN.
pub async fn fcm_application(client: &aws_sdk_sns::Client) -> String {
    client
        .create_platform_application()
        .name(format!("fcm-{}", super::unique()))
        .platform("GCM")
        .attributes("PlatformCredential", "test-credential")
        .send()
        .await
        .unwrap()
        .platform_application_arn
        .unwrap()
}
