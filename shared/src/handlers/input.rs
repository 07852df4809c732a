//! What each route's request carries, parsed at the edge: a handler receives its route's
//! input type, never an `Option` of something its route guarantees.
//!
//! Every invalid field of a request is reported at once (400 `INVALID_FIELDS`), the
//! `{channel}` first; a body that is not JSON is a 400 of its own only when no field was
//! already wrong.

use super::reply::{ApiError, FieldError, FieldErrorKind};
use crate::domain::{
    channel::Channel,
    ids::{AttemptId, ChallengeId},
    otp::{VerificationCode, VerificationCodeError},
    payment::Payment,
};

/// The raw parts of a request a route's input is parsed from.
pub struct Edge<'a> {
    /// The `{channel}` path parameter, as sent (empty where the route has none).
    pub channel: &'a str,
    /// The `{id}` or `{scaChallengeId}` path parameter (empty where the route has none).
    pub id: &'a str,
    pub body: &'a [u8],
    /// The verification attempt this request is (see `IdempotencyRef::attempt_id`).
    pub attempt: &'a AttemptId,
}

/// A route's input.
pub trait Input: Sized + Send {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError>;
}

/// `GET /authentication_factors`: nothing but the caller.
pub struct NoInput;

impl Input for NoInput {
    fn parse(_: &Edge<'_>) -> Result<Self, ApiError> {
        Ok(NoInput)
    }
}

/// `{channel}` is `SMS`; no body.
pub struct SmsChannel;

impl Input for SmsChannel {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        channel_among(edge.channel, &[Channel::Sms])
            .map(|_| SmsChannel)
            .map_err(|field| ApiError::InvalidFields(vec![field]))
    }
}

/// `{channel}` is `AUTHY`; no body.
pub struct AuthyChannel;

impl Input for AuthyChannel {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        channel_among(edge.channel, &[Channel::Authy])
            .map(|_| AuthyChannel)
            .map_err(|field| ApiError::InvalidFields(vec![field]))
    }
}

/// A push factor (to unlink, or to push a step-up to): `{channel}` is `AUTHY` or `BIOMETRIC`.
pub struct PushChannel(pub Channel);

impl Input for PushChannel {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        channel_among(edge.channel, &[Channel::Authy, Channel::Biometric])
            .map(PushChannel)
            .map_err(|field| ApiError::InvalidFields(vec![field]))
    }
}

/// A challenge named by the path (`{id}`, `{scaChallengeId}`); no body.
pub struct ChallengeRef(pub ChallengeId);

impl Input for ChallengeRef {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        Ok(ChallengeRef(ChallengeId::new(edge.id)))
    }
}

/// A code typed by the user, on `{channel}` `SMS`: `{"verificationCode": "123456"}`.
pub struct TypedCode {
    pub code: VerificationCode,
    pub attempt: AttemptId,
}

impl Input for TypedCode {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (_, code) = with_channel(
            channel_among(edge.channel, &[Channel::Sms]),
            verification_code(edge.body),
        )?;
        Ok(TypedCode {
            code,
            attempt: edge.attempt.clone(),
        })
    }
}

/// A payment challenge's code: the challenge (`{scaChallengeId}`) and the typed code.
pub struct PaymentCode {
    pub id: ChallengeId,
    pub typed: TypedCode,
}

impl Input for PaymentCode {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        Ok(PaymentCode {
            id: ChallengeId::new(edge.id),
            typed: TypedCode::parse(edge)?,
        })
    }
}

/// The payment a challenge started on `{channel}` `SMS` approves.
pub struct SmsPayment(pub Payment);

impl Input for SmsPayment {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (_, payment) = with_channel(
            channel_among(edge.channel, &[Channel::Sms]),
            super::payment_body::parse_payment(edge.body),
        )?;
        Ok(SmsPayment(payment))
    }
}

/// The payment a challenge pushed on `{channel}` `AUTHY` or `BIOMETRIC` approves.
pub struct PushPayment(pub Channel, pub Payment);

impl Input for PushPayment {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (channel, payment) = with_channel(
            channel_among(edge.channel, &[Channel::Authy, Channel::Biometric]),
            super::payment_body::parse_payment(edge.body),
        )?;
        Ok(PushPayment(channel, payment))
    }
}

/// `{channel}` is `BIOMETRIC`; no body (the device's list of challenges).
pub struct BiometricChannel;

impl Input for BiometricChannel {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        channel_among(edge.channel, &[Channel::Biometric])
            .map(|_| BiometricChannel)
            .map_err(|field| ApiError::InvalidFields(vec![field]))
    }
}

/// The `{channel}` if it is one of `allowed`, else its field error (`IN`, naming them).
pub(super) fn channel_among(raw: &str, allowed: &[Channel]) -> Result<Channel, FieldError> {
    Channel::parse_among(raw, allowed).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
        FieldError::new("channel", FieldErrorKind::In, &names)
    })
}

/// The channel and the body together: every field error of both, the channel's first; a
/// body refused as a whole only when the channel is right.
pub(super) fn with_channel<T>(
    channel: Result<Channel, FieldError>,
    body: Result<T, ApiError>,
) -> Result<(Channel, T), ApiError> {
    match (channel, body) {
        (Ok(channel), Ok(body)) => Ok((channel, body)),
        (Ok(_), Err(error)) => Err(error),
        (Err(field), Err(ApiError::InvalidFields(more))) => Err(ApiError::InvalidFields(
            std::iter::once(field).chain(more).collect(),
        )),
        (Err(field), _) => Err(ApiError::InvalidFields(vec![field])),
    }
}

/// The verify body's one field. Deserialising into a struct (not a map) makes a repeated
/// `verificationCode` an error instead of "the last one wins": a body whose meaning depends
/// on the parser is refused. Other fields are ignored.
#[derive(serde::Deserialize)]
struct VerifyBody {
    #[serde(rename = "verificationCode", default)]
    verification_code: Option<serde_json::Value>,
}

/// `{"verificationCode": "123456"}`; an empty body counts as `{}`.
fn verification_code(body: &[u8]) -> Result<VerificationCode, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let code = match first {
        None => None,
        // serde would also read a struct from an array: only an object is a body.
        Some(b'{') => {
            serde_json::from_slice::<VerifyBody>(body)
                .map_err(|_| {
                    ApiError::MalformedBody(
                        "The request body is not valid JSON, or repeats a field.",
                    )
                })?
                .verification_code
        }
        Some(_) => {
            return Err(ApiError::MalformedBody(
                "The request body must be a JSON object.",
            ))
        }
    };
    let field = |kind, params: &[&str]| {
        ApiError::InvalidFields(vec![FieldError::new("verificationCode", kind, params)])
    };
    match code.as_ref() {
        None | Some(serde_json::Value::Null) => Err(field(FieldErrorKind::Required, &[])),
        Some(serde_json::Value::String(raw)) => VerificationCode::parse(raw).map_err(|e| match e {
            VerificationCodeError::Size => field(FieldErrorKind::Size, &["6", "6"]),
            VerificationCodeError::Regex => field(FieldErrorKind::Regex, &["^[0-9]*$"]),
        }),
        Some(_) => Err(ApiError::MalformedBody(
            "verificationCode must be a string.",
        )),
    }
}
