//! Amazon SNS SMS sender: `Publish` straight to the phone number, as a transactional SMS
//! (delivered with priority, not subject to marketing opt-out windows), with the
//! programme's sender id where one is set.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_sns::{types::MessageAttributeValue, Client};

use super::{SmsError, SmsMessage, SmsSender};

pub struct SnsSmsSender {
    client: crate::aws::Lazy<Client>,
    requests: AtomicU64,
}

impl SnsSmsSender {
    pub fn new(client: Client) -> Self {
        Self::with_lazy_client(crate::aws::lazy(move || client))
    }

    /// A sender whose client is built on its first SMS.
    pub fn with_lazy_client(client: crate::aws::Lazy<Client>) -> Self {
        Self {
            client,
            requests: AtomicU64::new(0),
        }
    }

    /// How many SNS requests this sender has made.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, SmsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(SmsError::not_sent)
}

/// A definite refusal is an answer from SNS saying no (a 4xx: throttled, invalid number,
/// opted out, ...) or a request that was never built; a timeout, a connection lost after
/// sending, an unreadable answer or an SNS fault (5xx) may hide a sent SMS.
fn classify(
    error: aws_sdk_sns::error::SdkError<aws_sdk_sns::operation::publish::PublishError>,
) -> SmsError {
    use aws_sdk_sns::error::SdkError;
    let definite = match &error {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(service) => (400..500).contains(&service.raw().status().as_u16()),
        _ => false,
    };
    if definite {
        SmsError::not_sent(error)
    } else {
        SmsError::unknown(error)
    }
}

#[async_trait]
impl SmsSender for SnsSmsSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut publish = self
            .client
            .publish()
            .phone_number(message.to.expose_e164())
            .message(&message.text)
            .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?);
        if let Some(sender_id) = &message.sender_id {
            publish =
                publish.message_attributes("AWS.SNS.SMS.SenderID", string_attribute(sender_id)?);
        }
        publish.send().await.map_err(classify)?;
        Ok(())
    }
}
