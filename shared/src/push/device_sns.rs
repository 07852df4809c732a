//! Amazon SNS mobile push: a platform endpoint per device under the deployment's platform
//! application for its platform (APNs, APNs sandbox, FCM), `Publish` with `TargetArn` and a
//! payload per platform (`MessageStructure=json`), `SetEndpointAttributes` for a new token,
//! `DeleteEndpoint` when the factor is unlinked. An endpoint SNS reports disabled
//! (`EndpointDisabled`: the token went stale) is a delivery that did not happen, not a
//! failure: the challenge stands and the app finds it by listing.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sns::Client;
use serde_json::json;

use super::{
    device::{Delivery, DeviceMessage, DevicePlatforms, DevicePush},
    PushError,
};
use crate::domain::device::Platform;

pub struct SnsDevicePush {
    client: crate::aws::Lazy<Client>,
    /// The platform application of each platform the deployment has one for.
    applications: HashMap<Platform, String>,
}

impl SnsDevicePush {
    pub fn new(client: crate::aws::Lazy<Client>, applications: HashMap<Platform, String>) -> Self {
        Self {
            client,
            applications,
        }
    }
}

/// The message of one push, per platform: the line to show and the challenge's id, nothing
/// else (no code, no account, no nonce).
pub fn payload(platform: Platform, message: &DeviceMessage) -> String {
    let apns = json!({
        "aps": {"alert": message.body, "sound": "default"},
        "challengeId": message.challenge_id,
    })
    .to_string();
    let fcm = json!({
        "notification": {"title": "Approve", "body": message.body},
        "data": {"challengeId": message.challenge_id},
    })
    .to_string();
    let mut structure = serde_json::Map::new();
    structure.insert(
        "default".into(),
        json!(format!("{} ({})", message.body, message.challenge_id)),
    );
    structure.insert(
        platform.sns_name().into(),
        json!(match platform {
            Platform::Fcm => fcm,
            Platform::Apns | Platform::ApnsSandbox => apns,
        }),
    );
    serde_json::Value::Object(structure).to_string()
}

impl DevicePlatforms for SnsDevicePush {
    fn supports(&self, platform: Platform) -> bool {
        self.applications.contains_key(&platform)
    }
}

#[async_trait]
impl DevicePush for SnsDevicePush {
    async fn create_endpoint(&self, platform: Platform, token: &str) -> Result<String, PushError> {
        let application = self
            .applications
            .get(&platform)
            .ok_or_else(|| PushError::new("no platform application for this platform"))?;
        let output = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(application)
            .token(token)
            .send()
            .await
            .map_err(|e| PushError::new(e.into_service_error()))?;
        output
            .endpoint_arn
            .ok_or_else(|| PushError::new("SNS returned no endpoint"))
    }

    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &DeviceMessage,
    ) -> Result<Delivery, PushError> {
        let sent = self
            .client
            .publish()
            .target_arn(endpoint)
            .message_structure("json")
            .message(payload(platform, message))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Delivery::Sent),
            Err(error) => {
                let service = error.into_service_error();
                if service.is_endpoint_disabled_exception() {
                    Ok(Delivery::EndpointDisabled)
                } else {
                    Err(PushError::new(service))
                }
            }
        }
    }

    async fn set_token(
        &self,
        endpoint: &str,
        _platform: Platform,
        token: &str,
    ) -> Result<String, PushError> {
        self.client
            .set_endpoint_attributes()
            .endpoint_arn(endpoint)
            .attributes("Token", token)
            .attributes("Enabled", "true")
            .send()
            .await
            .map_err(|e| PushError::new(e.into_service_error()))?;
        Ok(endpoint.to_owned())
    }

    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), PushError> {
        self.client
            .delete_endpoint()
            .endpoint_arn(endpoint)
            .send()
            .await
            .map_err(|e| PushError::new(e.into_service_error()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_carries_the_line_and_the_challenge_id_only() {
        let message = DeviceMessage {
            challenge_id: "c1".into(),
            body: "Acme: approve EUR 1.00 to Bob (GB29...6819)".into(),
        };
        let apns: serde_json::Value =
            serde_json::from_str(&payload(Platform::Apns, &message)).unwrap_or_default();
        let inner: serde_json::Value =
            serde_json::from_str(apns["APNS"].as_str().unwrap_or_default()).unwrap_or_default();
        assert_eq!(inner["challengeId"], "c1");
        assert_eq!(inner["aps"]["alert"], message.body);
        let fcm: serde_json::Value =
            serde_json::from_str(&payload(Platform::Fcm, &message)).unwrap_or_default();
        assert!(fcm["GCM"]
            .as_str()
            .unwrap_or_default()
            .contains("\"challengeId\":\"c1\""));
        assert!(fcm["default"].as_str().unwrap_or_default().contains("c1"));
    }
}
