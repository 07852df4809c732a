//! The push provider of a deployment without one configured: every call fails, so live
//! programmes get an honest 503 instead of a push that never leaves. Sandbox programmes never
//! call a provider.

use async_trait::async_trait;

use super::{PushError, PushProvider};
use crate::domain::phone::PhoneNumber;

pub struct UnconfiguredPushProvider;

fn unconfigured() -> PushError {
    PushError {
        source: "no push provider is configured (AUTHY_API_KEY)".into(),
    }
}

#[async_trait]
impl PushProvider for UnconfiguredPushProvider {
    async fn register_user(&self, _phone: &PhoneNumber) -> Result<String, PushError> {
        Err(unconfigured())
    }

    async fn request_approval(
        &self,
        _provider_user_id: &str,
        _approval: &super::Approval,
    ) -> Result<String, PushError> {
        Err(unconfigured())
    }

    async fn forget_user(&self, _provider_user_id: &str) -> Result<(), PushError> {
        Err(unconfigured())
    }
}
