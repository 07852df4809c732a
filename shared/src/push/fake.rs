//! A fake push provider: remembers registrations and requests, and can be told to fail.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    Mutex,
};

use async_trait::async_trait;

use super::{Approval, PushError, PushProvider};
use crate::domain::phone::PhoneNumber;

#[derive(Default)]
pub struct FakePushProvider {
    requests: Mutex<Vec<(String, String)>>,
    forgotten: Mutex<Vec<String>>,
    next_id: AtomicU32,
    failures_to_inject: AtomicU32,
}

impl FakePushProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// (provider user id, request id) of every approval request pushed.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Provider user ids forgotten on unlink.
    pub fn forgotten(&self) -> Vec<String> {
        self.forgotten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn fail_next(&self, n: u32) {
        self.failures_to_inject.store(n, Ordering::SeqCst);
    }

    fn injected(&self) -> Result<(), PushError> {
        match self
            .failures_to_inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err(PushError {
                source: "injected failure".into(),
            }),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait]
impl PushProvider for FakePushProvider {
    async fn register_user(&self, phone: &PhoneNumber) -> Result<String, PushError> {
        self.injected()?;
        Ok(format!(
            "authy-{}",
            phone.national_number().len() * 1000
                + self.next_id.fetch_add(1, Ordering::SeqCst) as usize
        ))
    }

    async fn request_approval(
        &self,
        provider_user_id: &str,
        _approval: &Approval,
    ) -> Result<String, PushError> {
        self.injected()?;
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((provider_user_id.to_owned(), id.clone()));
        Ok(id)
    }

    async fn forget_user(&self, provider_user_id: &str) -> Result<(), PushError> {
        self.injected()?;
        self.forgotten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(provider_user_id.to_owned());
        Ok(())
    }
}
