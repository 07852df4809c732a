//! The one table from outcomes to HTTP responses. Every status the API answers is built here.

use lambda_http::{http::HeaderValue, Body, Response};
use serde_json::json;

use crate::{domain::send_limits::RateLimited, store::StoredResponse};

/// A 400's field errors (`syntaxErrors.invalidFields`), in a room of their own.
pub use super::field_error::{FieldError, FieldErrorKind};

/// The `errorCode` of a 409 (or, for the two step-up codes, a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ChannelAlreadyRegistered,
    ChannelNotRegistered,
    ChannelNotSupported,
    MobileNumberNotAvailable,
    MobileNumberInvalid,
    MobileCountryNotSupported,
    VerificationCodeInvalid,
    OneChallengeLimitRemaining,
    ChallengeLimitExceeded,
    VerificationCodeExpired,
    StateInvalid,
    IdempotentRequestInProgress,
    RetryIn15Sec,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ChannelAlreadyRegistered => "CHANNEL_ALREADY_REGISTERED",
            ErrorCode::ChannelNotRegistered => "CHANNEL_NOT_REGISTERED",
            ErrorCode::ChannelNotSupported => "CHANNEL_NOT_SUPPORTED",
            ErrorCode::MobileNumberNotAvailable => "MOBILE_NUMBER_NOT_AVAILABLE",
            ErrorCode::MobileNumberInvalid => "MOBILE_NUMBER_INVALID",
            ErrorCode::MobileCountryNotSupported => "MOBILE_COUNTRY_NOT_SUPPORTED",
            ErrorCode::VerificationCodeInvalid => "VERIFICATION_CODE_INVALID",
            ErrorCode::OneChallengeLimitRemaining => "ONE_CHALLENGE_LIMIT_REMAINING",
            ErrorCode::ChallengeLimitExceeded => "CHALLENGE_LIMIT_EXCEEDED",
            ErrorCode::VerificationCodeExpired => "VERIFICATION_CODE_EXPIRED",
            ErrorCode::StateInvalid => "STATE_INVALID",
            ErrorCode::IdempotentRequestInProgress => "IDEMPOTENT_REQUEST_IN_PROGRESS",
            ErrorCode::RetryIn15Sec => "RETRY_IN_15SEC",
        }
    }
}

/// How long a caller should wait after a 503.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;

/// Every answer other than success. Each variant's status is in its doc comment.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with `syntaxErrors`.
    InvalidFields(Vec<FieldError>),
    /// 400 with a `message` only: the body is not the JSON object the route takes.
    MalformedBody(&'static str),
    /// 400 with a `message`: the `idempotency-ref` was used with another operation or body.
    IdempotencyMismatch,
    /// 401, empty body, whichever credential check failed.
    Unauthorized,
    /// 403 `STEP_UP_REQUIRED`.
    StepUpRequired,
    /// 404 `{"code", "message"}`.
    NotFound,
    /// 413 with a `message`: the body is larger than the route's cap (not read further).
    PayloadTooLarge,
    /// 405 `{"code", "message"}` with `Allow`.
    MethodNotAllowed(&'static str),
    /// 409 `{"errorCode"}`.
    Conflict(ErrorCode),
    /// 429, empty, with the rate-limit headers.
    RateLimited(RateLimited),
    /// 503, empty, with `Retry-After`: a dependency failed. The cause goes to the log.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// 500, empty. The cause goes to the log.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable { .. } => ApiError::Unavailable(error.into()),
            crate::store::StoreError::Corrupt { .. } => ApiError::Internal(error.into()),
        }
    }
}

/// A response before it becomes HTTP: what idempotency keeps and what the handlers return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn no_content() -> Self {
        Self::new(204, None)
    }

    /// 200 without a body (the answer a webhook sender expects).
    pub fn ok() -> Self {
        Self::new(200, None)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, Some(value.to_string()))
    }

    fn new(status: u16, body: Option<String>) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Whether idempotency keeps this response: final 2xx, 400 and 409 answers.
    pub fn is_kept(&self) -> bool {
        (200..300).contains(&self.status) || self.status == 400 || self.status == 409
    }

    pub fn to_stored(&self) -> StoredResponse {
        StoredResponse {
            status: self.status,
            body: self.body.clone().unwrap_or_default(),
        }
    }

    /// A kept response, answered again.
    pub fn replayed(stored: &StoredResponse) -> Self {
        let body = (!stored.body.is_empty()).then(|| stored.body.clone());
        Self::new(stored.status, body).with_header("idempotent-replayed", "true".into())
    }

    /// Whether this is a kept answer returned again (`replayed`).
    pub fn is_replay(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, _)| *name == "idempotent-replayed")
    }

    pub fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        if self.body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                builder = builder.header(*name, value);
            }
        }
        let body = self.body.map_or(Body::Empty, Body::Text);
        builder.body(body).unwrap_or_else(|_| {
            let mut fallback = Response::new(Body::Empty);
            *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
    }
}

impl ApiError {
    pub fn to_reply(&self) -> Reply {
        match self {
            ApiError::InvalidFields(fields) => {
                let invalid: Vec<_> = fields
                    .iter()
                    .map(|f| json!({"fieldName": f.field_name, "error": f.error.as_str(), "params": f.params}))
                    .collect();
                Reply::json(
                    400,
                    &json!({"message": "The request has invalid fields.", "syntaxErrors": {"invalidFields": invalid}}),
                )
            }
            ApiError::MalformedBody(message) => Reply::json(400, &json!({"message": message})),
            ApiError::IdempotencyMismatch => Reply::json(
                400,
                &json!({"message": "This idempotency-ref was already used with another operation or body."}),
            ),
            ApiError::Unauthorized => Reply::new(401, None),
            ApiError::StepUpRequired => Reply::json(403, &json!({"errorCode": "STEP_UP_REQUIRED"})),
            ApiError::NotFound => Reply::json(
                404,
                &json!({"code": "NOT_FOUND", "message": "The requested resource couldn't be found."}),
            ),
            ApiError::PayloadTooLarge => Reply::json(
                413,
                &json!({"message": "The request body is larger than this route accepts."}),
            ),
            ApiError::MethodNotAllowed(allow) => Reply::json(
                405,
                &json!({"code": "METHOD_NOT_ALLOWED", "message": "This method is not allowed on this resource."}),
            )
            .with_header("allow", (*allow).to_owned()),
            ApiError::Conflict(code) => Reply::json(409, &json!({"errorCode": code.as_str()})),
            ApiError::RateLimited(limited) => Reply::new(429, None)
                .with_header("x-ratelimit-limit", limited.limit_header.clone())
                .with_header("x-ratelimit-reset", limited.reset_secs.to_string())
                .with_header("retry-after", limited.reset_secs.to_string()),
            ApiError::Unavailable(_) => {
                Reply::new(503, None).with_header("retry-after", RETRY_AFTER_UNAVAILABLE_SECS.to_string())
            }
            ApiError::Internal(_) => Reply::new(500, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &Reply) -> serde_json::Value {
        reply
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    #[test]
    fn each_variant_maps_to_its_status_and_body() {
        let fields = ApiError::InvalidFields(vec![FieldError::new(
            "channel",
            FieldErrorKind::In,
            &["SMS"],
        )])
        .to_reply();
        assert_eq!(fields.status, 400);
        assert_eq!(
            body(&fields)["syntaxErrors"]["invalidFields"],
            json!([{"fieldName": "channel", "error": "IN", "params": ["SMS"]}])
        );
        let malformed = ApiError::MalformedBody("bad").to_reply();
        assert_eq!(
            (malformed.status, body(&malformed)),
            (400, json!({"message": "bad"}))
        );
        assert_eq!(ApiError::IdempotencyMismatch.to_reply().status, 400);
        assert_eq!(ApiError::Unauthorized.to_reply(), Reply::new(401, None));
        assert_eq!(
            body(&ApiError::StepUpRequired.to_reply()),
            json!({"errorCode": "STEP_UP_REQUIRED"})
        );
        assert_eq!(body(&ApiError::NotFound.to_reply())["code"], "NOT_FOUND");
        let too_large = ApiError::PayloadTooLarge.to_reply();
        assert_eq!(too_large.status, 413);
        assert!(body(&too_large)["message"].is_string());
        let not_allowed = ApiError::MethodNotAllowed("POST, DELETE").to_reply();
        assert_eq!(
            (not_allowed.status, not_allowed.headers.clone()),
            (405, vec![("allow", "POST, DELETE".to_owned())])
        );
        let conflict = ApiError::Conflict(ErrorCode::StateInvalid).to_reply();
        assert_eq!(
            (conflict.status, body(&conflict)),
            (409, json!({"errorCode": "STATE_INVALID"}))
        );
        let limited = ApiError::RateLimited(RateLimited {
            limit_header: "5, 5;w=3600".into(),
            reset_secs: 10,
        })
        .to_reply();
        assert_eq!(limited.status, 429);
        assert_eq!(limited.body, None);
        assert_eq!(limited.headers.len(), 3);
        let unavailable = ApiError::Unavailable("x".into()).to_reply();
        assert_eq!((unavailable.status, unavailable.body.clone()), (503, None));
        assert_eq!(unavailable.headers, vec![("retry-after", "2".to_owned())]);
        assert_eq!(
            ApiError::Internal("secret detail".into()).to_reply(),
            Reply::new(500, None)
        );
    }

    #[test]
    fn only_final_2xx_400_and_409_are_kept() {
        for (status, kept) in [
            (200, true),
            (204, true),
            (400, true),
            (409, true),
            (401, false),
            (403, false),
            (429, false),
            (500, false),
            (503, false),
        ] {
            assert_eq!(Reply::new(status, None).is_kept(), kept, "{status}");
        }
    }
}
