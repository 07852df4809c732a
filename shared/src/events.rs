//! Events: on every change of a factor to `ACTIVE` or `INACTIVE`, and on unlink, an event
//! `{credentialId, programmeId, type, status, publishedTimestamp}`; on every outcome of a
//! step-up challenge, `{type: "stepup", credentialId, programmeId, challengeId, channel,
//! status, publishedTimestamp}` (never the token). They go to one SNS topic (when
//! `EVENTS_TOPIC_ARN` is set), so platforms can forward them to their webhooks.
//!
//! Publishing is best-effort, after the change is stored: a failure is logged and the caller
//! still gets the answer of the change that happened. (At-least-once delivery would need an
//! outbox, e.g. a DynamoDB stream consumer; see the README.)

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::domain::{channel::Channel, step_up::ChallengeStatus};

/// What happened to a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Active,
    Inactive,
    Unlinked,
}

impl Change {
    /// A push enrolment's answer: approved makes the factor active, denied inactive.
    pub fn answer(approved: bool) -> Self {
        if approved {
            Change::Active
        } else {
            Change::Inactive
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Active => "ACTIVE",
            Change::Inactive => "INACTIVE",
            Change::Unlinked => "UNLINKED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorEvent {
    pub credential_id: String,
    pub programme_id: String,
    pub channel: Channel,
    pub change: Change,
    /// Milliseconds since the epoch.
    pub published_timestamp: i64,
}

impl FactorEvent {
    pub fn to_json(&self) -> Value {
        let kind = match self.channel {
            Channel::Sms => "SMS_OTP",
            Channel::Authy => "AUTHY_PUSH",
            Channel::Biometric => "BIOMETRIC",
        };
        json!({
            "credentialId": self.credential_id,
            "programmeId": self.programme_id,
            "type": kind,
            "status": self.change.as_str(),
            "publishedTimestamp": self.published_timestamp,
        })
    }
}

/// An outcome of a step-up challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpEvent {
    pub credential_id: String,
    pub programme_id: String,
    pub challenge_id: String,
    pub channel: Channel,
    pub status: ChallengeStatus,
    /// Milliseconds since the epoch.
    pub published_timestamp: i64,
}

/// An outcome of a payment challenge (never the payee's account, never the proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    pub credential_id: String,
    pub programme_id: String,
    pub sca_challenge_id: String,
    pub channel: Channel,
    pub reference: String,
    pub status: ChallengeStatus,
    /// Milliseconds since the epoch.
    pub published_timestamp: i64,
}

/// Anything published on the events topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Factor(FactorEvent),
    StepUp(StepUpEvent),
    Payment(PaymentEvent),
}

impl From<FactorEvent> for Event {
    fn from(event: FactorEvent) -> Self {
        Event::Factor(event)
    }
}

impl Event {
    pub fn to_json(&self) -> Value {
        match self {
            Event::Factor(event) => event.to_json(),
            Event::StepUp(event) => json!({
                "type": "stepup",
                "credentialId": event.credential_id,
                "programmeId": event.programme_id,
                "challengeId": event.challenge_id,
                "channel": event.channel.as_str(),
                "status": event.status.as_str(),
                "publishedTimestamp": event.published_timestamp,
            }),
            Event::Payment(event) => json!({
                "type": "payment_challenge",
                "credentialId": event.credential_id,
                "programmeId": event.programme_id,
                "scaChallengeId": event.sca_challenge_id,
                "channel": event.channel.as_str(),
                "reference": event.reference,
                "status": event.status.as_str(),
                "publishedTimestamp": event.published_timestamp,
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the event could not be published")]
pub struct EventError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &Event) -> Result<(), EventError>;
}

/// No topic configured: events go nowhere.
pub struct NoEvents;

#[async_trait]
impl EventPublisher for NoEvents {
    async fn publish(&self, _event: &Event) -> Result<(), EventError> {
        Ok(())
    }
}

/// Writes each event to the log (the local server without a topic).
pub struct LogEvents;

#[async_trait]
impl EventPublisher for LogEvents {
    async fn publish(&self, event: &Event) -> Result<(), EventError> {
        tracing::info!(event = %event.to_json(), "event");
        Ok(())
    }
}

/// Records events (tests).
#[derive(Default)]
pub struct RecordingEvents(Mutex<Vec<Value>>);

impl RecordingEvents {
    pub fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingEvents {
    async fn publish(&self, event: &Event) -> Result<(), EventError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.to_json());
        Ok(())
    }
}

/// Publishes each event as a JSON message to an SNS topic.
pub struct SnsTopicEvents {
    client: crate::aws::Lazy<aws_sdk_sns::Client>,
    topic_arn: String,
}

impl SnsTopicEvents {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self::with_lazy_client(crate::aws::lazy(move || client), topic_arn)
    }

    /// A publisher whose client is built on its first event.
    pub fn with_lazy_client(
        client: crate::aws::Lazy<aws_sdk_sns::Client>,
        topic_arn: impl Into<String>,
    ) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for SnsTopicEvents {
    async fn publish(&self, event: &Event) -> Result<(), EventError> {
        let kind = event
            .to_json()
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(kind)
            .build()
            .map_err(|e| EventError { source: e.into() })?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(event.to_json().to_string())
            .message_attributes("type", attribute)
            .send()
            .await
            .map_err(|e| EventError { source: e.into() })?;
        Ok(())
    }
}
