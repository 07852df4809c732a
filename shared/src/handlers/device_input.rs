//! The BIOMETRIC routes' inputs, parsed at the edge: the device enrolment's body, a
//! signature. Every invalid field is listed in one 400; a body that repeats a key at any depth
//! is refused whole.

use serde_json::Value;

use super::{
    body_fields::{name_char, text, Strict},
    input::{channel_among, with_channel, Edge, Input},
    reply::{ApiError, FieldError, FieldErrorKind},
};
use crate::domain::{
    channel::Channel,
    device::{DeviceKey, DeviceSignature, Platform},
};

/// What step one of a BIOMETRIC enrolment registers.
#[derive(Debug, Clone)]
pub struct DeviceEnrolment {
    pub key: DeviceKey,
    pub push_token: String,
    pub platform: Platform,
    pub name: String,
}

/// `POST /authentication_factors/push/{channel}`: `AUTHY` (no body), or `BIOMETRIC` with the
/// device to register.
pub enum PushEnrolment {
    Authy,
    Biometric(DeviceEnrolment),
}

impl Input for PushEnrolment {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        match channel_among(edge.channel, &[Channel::Authy, Channel::Biometric]) {
            Ok(Channel::Biometric) => device_enrolment(edge.body).map(PushEnrolment::Biometric),
            // No body is read for AUTHY, but one that is not a JSON object is refused.
            Ok(_) => object(edge.body).map(|_| PushEnrolment::Authy),
            Err(field) => Err(ApiError::InvalidFields(vec![field])),
        }
    }
}

/// The body as a JSON object (an empty body is `{}`), refusing repeated keys.
pub(super) fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(serde_json::Map::new()),
        Some(b'{') => match serde_json::from_slice::<Strict>(body) {
            Ok(Strict(Value::Object(map))) => Ok(map),
            _ => Err(ApiError::MalformedBody(
                "The request body is not valid JSON, or repeats a field.",
            )),
        },
        Some(_) => Err(ApiError::MalformedBody(
            "The request body must be a JSON object.",
        )),
    }
}

/// `signature`: base64url of a 64-byte `r‖s` or a DER ECDSA P-256 signature.
pub(super) fn signature_field(
    body: &serde_json::Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<DeviceSignature> {
    match body.get("signature") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("signature", FieldErrorKind::Required, &[]));
            None
        }
        Some(Value::String(text)) => {
            let parsed = DeviceSignature::parse(text);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "signature",
                    FieldErrorKind::Regex,
                    &["base64url of an ECDSA P-256 signature (64-byte r||s or DER)"],
                ));
            }
            parsed
        }
        Some(_) => {
            errors.push(FieldError::new(
                "signature",
                FieldErrorKind::Regex,
                &["base64url of an ECDSA P-256 signature (64-byte r||s or DER)"],
            ));
            None
        }
    }
}

/// `pushToken`: 1–4096 visible ASCII characters (step one and the upkeep `PUT`).
fn push_token_field(
    body: &serde_json::Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    text(
        body.get("pushToken"),
        "pushToken",
        (1, 4096),
        |c| c.is_ascii_graphic(),
        "^[\\x21-\\x7E]{1,4096}$",
        errors,
    )
}

fn device_enrolment(body: &[u8]) -> Result<DeviceEnrolment, ApiError> {
    let body = object(body)?;
    let mut errors = Vec::new();
    let key = match body.get("publicKey") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("publicKey", FieldErrorKind::Required, &[]));
            None
        }
        Some(jwk) => match DeviceKey::from_jwk(jwk) {
            Ok(key) => Some(key),
            Err(_) => {
                errors.push(FieldError::new(
                    "publicKey",
                    FieldErrorKind::Regex,
                    &["a public JWK on P-256: kty EC, crv P-256, x, y; no d"],
                ));
                None
            }
        },
    };
    let push_token = push_token_field(&body, &mut errors);
    let platform = match body.get("platform") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("platform", FieldErrorKind::Required, &[]));
            None
        }
        Some(value) => {
            let parsed = value.as_str().and_then(Platform::parse);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "platform",
                    FieldErrorKind::In,
                    &["APNS", "APNS_SANDBOX", "FCM"],
                ));
            }
            parsed
        }
    };
    let name = text(
        body.get("deviceName"),
        "deviceName",
        (1, 64),
        name_char,
        "^[^\\p{Cc}\\p{Cf}]{1,64}$",
        &mut errors,
    );
    match (key, push_token, platform, name) {
        (Some(key), Some(push_token), Some(platform), Some(name)) if errors.is_empty() => {
            Ok(DeviceEnrolment {
                key,
                push_token,
                platform,
                name,
            })
        }
        _ => Err(ApiError::InvalidFields(errors)),
    }
}

/// `PUT /authentication_factors/push/BIOMETRIC`: `{"pushToken", "signedAt", "signature"}`.
pub struct DevicePushToken {
    pub push_token: String,
    /// Unix seconds, as the device signed them.
    pub signed_at: i64,
    pub signature: DeviceSignature,
}

impl Input for DevicePushToken {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (_, update) = with_channel(
            channel_among(edge.channel, &[Channel::Biometric]),
            object(edge.body).and_then(|body| {
                let mut errors = Vec::new();
                let push_token = push_token_field(&body, &mut errors);
                let signed_at = match body.get("signedAt") {
                    None | Some(Value::Null) => {
                        errors.push(FieldError::new("signedAt", FieldErrorKind::Required, &[]));
                        None
                    }
                    Some(value) => {
                        let parsed = value.as_i64().filter(|s| *s >= 0);
                        if parsed.is_none() {
                            errors.push(FieldError::new(
                                "signedAt",
                                FieldErrorKind::Regex,
                                &["^[0-9]+$"],
                            ));
                        }
                        parsed
                    }
                };
                let signature = signature_field(&body, &mut errors);
                match (push_token, signed_at, signature) {
                    (Some(push_token), Some(signed_at), Some(signature)) if errors.is_empty() => {
                        Ok(DevicePushToken {
                            push_token,
                            signed_at,
                            signature,
                        })
                    }
                    _ => Err(ApiError::InvalidFields(errors)),
                }
            }),
        )?;
        Ok(update)
    }
}
