//! The SMS port: sends one text to one phone. Adapters: Amazon SNS (`sns`), the console
//! sender of the local server (`console`), and a recording fake for tests (`recording`).

pub mod console;
pub mod recording;
pub mod sns;

use std::fmt;

use async_trait::async_trait;

use crate::domain::{otp::VerificationCode, phone::PhoneNumber};

/// One SMS. `Debug` shows neither the code nor the full number.
pub struct SmsMessage {
    pub to: PhoneNumber,
    /// The full text, the code included.
    pub text: String,
    /// The code inside `text`, so that a sender that echoes the text can mask it.
    pub code: VerificationCode,
    /// The programme's alphanumeric sender id, where the destination country supports it.
    pub sender_id: Option<String>,
}

impl SmsMessage {
    /// The text with the code starred out: the only form of it that may be logged.
    pub fn masked_text(&self) -> String {
        self.text.replace(self.code.expose(), "******")
    }
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &self.to)
            .field("text", &self.masked_text())
            .field("sender_id", &self.sender_id)
            .finish()
    }
}

/// What a failed send says about the SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The provider answered a definite refusal (or the request never left): no SMS.
    NotSent,
    /// A timeout, a lost answer or a provider fault: the SMS may have left.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("the SMS could not be sent ({delivery:?})")]
pub struct SmsError {
    pub delivery: Delivery,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SmsError {
    /// A definite refusal: the send-limit counters may be given back.
    pub fn not_sent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            delivery: Delivery::NotSent,
            source: source.into(),
        }
    }

    /// An unknown outcome: the SMS may have left, so it still counts.
    pub fn unknown(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            delivery: Delivery::Unknown,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError>;
}

/// The sender of a function that sends no SMS (its route never calls it): a call fails.
pub struct NoSmsSender;

#[async_trait]
impl SmsSender for NoSmsSender {
    async fn send(&self, _message: &SmsMessage) -> Result<(), SmsError> {
        Err(SmsError::not_sent("this function does not send SMS"))
    }
}
