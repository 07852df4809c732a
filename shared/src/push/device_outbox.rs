//! The local device push: no SNS. Each push is one JSON line `{"platform", "pushToken",
//! "challengeId", "body"}` appended to the `PUSH_OUTBOX` file (when set) and kept in memory
//! (the tests read it); the console line names only the challenge and the token's last
//! characters. Every platform is supported; an endpoint is the platform and token it was
//! made for (`outbox:APNS:<token>`), so a token replaced is a new endpoint string kept by the
//! factor.

use std::{io::Write, path::PathBuf, sync::Mutex};

use async_trait::async_trait;

use super::{
    device::{token_tail, Delivery, DeviceMessage, DevicePlatforms, DevicePush},
    PushError,
};
use crate::domain::device::Platform;

/// One push, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxPush {
    pub platform: Platform,
    pub push_token: String,
    pub message: DeviceMessage,
}

#[derive(Default)]
pub struct OutboxDevicePush {
    file: Option<PathBuf>,
    sent: Mutex<Vec<OutboxPush>>,
    /// Endpoints reported disabled (a test marks a token stale).
    disabled: Mutex<Vec<String>>,
    deleted: Mutex<Vec<String>>,
}

impl OutboxDevicePush {
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            ..Self::default()
        }
    }

    /// Every push so far.
    pub fn sent(&self) -> Vec<OutboxPush> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Endpoints deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.deleted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The endpoint of this token now answers "disabled", as SNS does for a stale token.
    pub fn disable(&self, endpoint: &str) {
        self.disabled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(endpoint.to_owned());
    }

    fn split(endpoint: &str) -> Option<(Platform, &str)> {
        let rest = endpoint.strip_prefix("outbox:")?;
        let (platform, token) = rest.split_once(':')?;
        Some((Platform::parse(platform)?, token))
    }
}

impl DevicePlatforms for OutboxDevicePush {
    fn supports(&self, _platform: Platform) -> bool {
        true
    }
}

#[async_trait]
impl DevicePush for OutboxDevicePush {
    async fn create_endpoint(&self, platform: Platform, token: &str) -> Result<String, PushError> {
        Ok(format!("outbox:{}:{token}", platform.as_str()))
    }

    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &DeviceMessage,
    ) -> Result<Delivery, PushError> {
        if self
            .disabled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|e| e == endpoint)
        {
            return Ok(Delivery::EndpointDisabled);
        }
        let (_, token) =
            Self::split(endpoint).ok_or_else(|| PushError::new("not an outbox endpoint"))?;
        tracing::info!(
            challenge = %message.challenge_id,
            platform = platform.as_str(),
            token = %token_tail(token),
            "push delivered to the outbox"
        );
        if let Some(file) = &self.file {
            let line = serde_json::json!({
                "platform": platform.as_str(),
                "pushToken": token,
                "challengeId": message.challenge_id,
                "body": message.body,
            });
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .map_err(PushError::new)?;
            writeln!(out, "{line}").map_err(PushError::new)?;
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(OutboxPush {
                platform,
                push_token: token.to_owned(),
                message: message.clone(),
            });
        Ok(Delivery::Sent)
    }

    async fn set_token(
        &self,
        _endpoint: &str,
        platform: Platform,
        token: &str,
    ) -> Result<String, PushError> {
        self.create_endpoint(platform, token).await
    }

    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), PushError> {
        self.deleted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(endpoint.to_owned());
        Ok(())
    }
}
