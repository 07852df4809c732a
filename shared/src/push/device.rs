//! The device push port: what the BIOMETRIC routes do with the programme's own app through
//! Amazon SNS mobile push — make a device's platform endpoint, push a challenge to it, replace
//! its token, forget it. Adapters: `sns_mobile` (AWS, or a local AWS-compatible server such as
//! moto), `outbox` (the local server and the tests: one JSON line per push), and
//! `NoDevicePush` (a deployment with no platform application: every platform unsupported).
//!
//! A push carries only the challenge's id and a line to show, never a code, a full account
//! or the signing input's nonce: the app fetches the challenge's signing input by listing.

use async_trait::async_trait;

use super::PushError;
use crate::domain::device::Platform;

/// What one push says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMessage {
    pub challenge_id: String,
    /// The line the device shows (the payment's line, or the step-up's).
    pub body: String,
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// SNS reports the endpoint disabled (the token went stale): the app finds its challenge
    /// by listing.
    EndpointDisabled,
}

/// Which platforms the deployment can push to: configuration, no call (BIOMETRIC step one
/// asks it; a route that only asks it does not reach SNS).
pub trait DevicePlatforms: Send + Sync {
    /// Whether the deployment has a platform application for this platform.
    fn supports(&self, platform: Platform) -> bool;
}

#[async_trait]
pub trait DevicePush: DevicePlatforms {
    /// Makes the device's endpoint for its push token; returns the endpoint's id (an ARN).
    async fn create_endpoint(&self, platform: Platform, token: &str) -> Result<String, PushError>;
    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &DeviceMessage,
    ) -> Result<Delivery, PushError>;
    /// Replaces the endpoint's token (and enables it again); returns the endpoint's id from
    /// now on (SNS keeps its ARN; the outbox names a new one).
    async fn set_token(
        &self,
        endpoint: &str,
        platform: Platform,
        token: &str,
    ) -> Result<String, PushError>;
    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), PushError>;
}

/// No platform application: BIOMETRIC enrolment answers 409 `CHANNEL_NOT_SUPPORTED`.
pub struct NoDevicePush;

impl DevicePlatforms for NoDevicePush {
    fn supports(&self, _platform: Platform) -> bool {
        false
    }
}

#[async_trait]
impl DevicePush for NoDevicePush {
    async fn create_endpoint(&self, _: Platform, _: &str) -> Result<String, PushError> {
        Err(PushError::new("no SNS platform application is configured"))
    }
    async fn publish(
        &self,
        _: &str,
        _: Platform,
        _: &DeviceMessage,
    ) -> Result<Delivery, PushError> {
        Err(PushError::new("no SNS platform application is configured"))
    }
    async fn set_token(&self, _: &str, _: Platform, _: &str) -> Result<String, PushError> {
        Err(PushError::new("no SNS platform application is configured"))
    }
    async fn delete_endpoint(&self, _: &str) -> Result<(), PushError> {
        Ok(())
    }
}

/// The last characters of a push token, for a log line (never the whole token).
pub fn token_tail(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    let keep = chars.len().min(4);
    format!(
        "…{}",
        chars
            .get(chars.len() - keep..)
            .map(|c| c.iter().collect::<String>())
            .unwrap_or_default()
    )
}
