//! A fake SMS sender that records what it was asked to send, and can be told to fail.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    Mutex,
};

use async_trait::async_trait;

use super::{SmsError, SmsMessage, SmsSender};

/// One recorded SMS: the full number and text (tests only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub to: String,
    pub text: String,
}

#[derive(Default)]
pub struct RecordingSmsSender {
    sent: Mutex<Vec<SentSms>>,
    failures_to_inject: AtomicU32,
    unknown_outcomes_to_inject: AtomicU32,
}

impl RecordingSmsSender {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<SentSms> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The next `n` sends fail with a definite refusal (nothing sent).
    pub fn fail_next(&self, n: u32) {
        self.failures_to_inject.store(n, Ordering::SeqCst);
    }

    /// The next `n` sends fail with an unknown outcome (a timeout: the SMS may have left).
    pub fn fail_next_unknown(&self, n: u32) {
        self.unknown_outcomes_to_inject.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl SmsSender for RecordingSmsSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let take = |counter: &AtomicU32| {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if take(&self.failures_to_inject) {
            return Err(SmsError::not_sent("injected refusal"));
        }
        if take(&self.unknown_outcomes_to_inject) {
            return Err(SmsError::unknown("injected timeout"));
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SentSms {
                to: message.to.expose_e164().to_owned(),
                text: message.text.clone(),
            });
        Ok(())
    }
}
