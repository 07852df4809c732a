//! The push provider port: register a user's phone with the provider and push an enrolment
//! approval request to the device. Adapters: Twilio Authy (`authy`), a fake, and
//! `unconfigured` for deployments without a provider.

pub mod authy;
pub mod authy_signature;
pub mod device;
pub mod device_outbox;
pub mod device_sns;
pub mod fake;
pub mod unconfigured;

use async_trait::async_trait;

use crate::domain::phone::PhoneNumber;

#[derive(Debug, thiserror::Error)]
#[error("the push provider failed")]
pub struct PushError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl PushError {
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// What the device shows and how long the user has to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The headline, naming the programme.
    pub message: String,
    /// The `Action` detail line.
    pub action: String,
    pub seconds_to_expire: u32,
}

#[async_trait]
pub trait PushProvider: Send + Sync {
    /// Registers the phone with the provider; returns the provider's user id.
    async fn register_user(&self, phone: &PhoneNumber) -> Result<String, PushError>;
    /// Pushes an approval request to the user's device; returns the request's id.
    async fn request_approval(
        &self,
        provider_user_id: &str,
        approval: &Approval,
    ) -> Result<String, PushError>;
    /// Forgets a user whose factor was unlinked (their pending requests die with them).
    async fn forget_user(&self, provider_user_id: &str) -> Result<(), PushError>;
}
