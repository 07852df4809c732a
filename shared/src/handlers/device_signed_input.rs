//! The BIOMETRIC inputs that carry a device's signature, parsed at the edge: the enrolment's
//! step two and a challenge's answer.

use serde_json::Value;

use super::{
    device_input::{object, signature_field},
    input::{channel_among, with_channel, Edge, Input},
    reply::{ApiError, FieldError, FieldErrorKind},
};
use crate::domain::{
    channel::Channel,
    device::{Decision, DeviceSignature},
    ids::{AttemptId, ChallengeId},
};

/// A device's signature, on `{channel}` `BIOMETRIC`: `{"signature": "..."}`.
pub struct SignedByDevice {
    pub signature: DeviceSignature,
    pub attempt: AttemptId,
}

impl Input for SignedByDevice {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (_, signature) = with_channel(
            channel_among(edge.channel, &[Channel::Biometric]),
            object(edge.body).and_then(|body| {
                let mut errors = Vec::new();
                let signature = signature_field(&body, &mut errors);
                match signature {
                    Some(signature) if errors.is_empty() => Ok(signature),
                    _ => Err(ApiError::InvalidFields(errors)),
                }
            }),
        )?;
        Ok(SignedByDevice {
            signature,
            attempt: edge.attempt.clone(),
        })
    }
}

/// `POST /authentication_factors/push/BIOMETRIC/challenges/{id}`: the device's answer,
/// `{"decision": "APPROVE" | "DECLINE", "signature"}`.
pub struct DeviceAnswer {
    pub id: ChallengeId,
    pub decision: Decision,
    pub signature: DeviceSignature,
    pub attempt: AttemptId,
}

impl Input for DeviceAnswer {
    fn parse(edge: &Edge<'_>) -> Result<Self, ApiError> {
        let (_, (decision, signature)) = with_channel(
            channel_among(edge.channel, &[Channel::Biometric]),
            object(edge.body).and_then(|body| {
                let mut errors = Vec::new();
                let decision = match body.get("decision") {
                    None | Some(Value::Null) => {
                        errors.push(FieldError::new("decision", FieldErrorKind::Required, &[]));
                        None
                    }
                    Some(value) => {
                        let parsed = match value.as_str() {
                            Some("APPROVE") => Some(Decision::Approve),
                            Some("DECLINE") => Some(Decision::Decline),
                            _ => None,
                        };
                        if parsed.is_none() {
                            errors.push(FieldError::new(
                                "decision",
                                FieldErrorKind::In,
                                &["APPROVE", "DECLINE"],
                            ));
                        }
                        parsed
                    }
                };
                let signature = signature_field(&body, &mut errors);
                match (decision, signature) {
                    (Some(decision), Some(signature)) if errors.is_empty() => {
                        Ok((decision, signature))
                    }
                    _ => Err(ApiError::InvalidFields(errors)),
                }
            }),
        )?;
        Ok(DeviceAnswer {
            id: ChallengeId::new(edge.id),
            decision,
            signature,
            attempt: edge.attempt.clone(),
        })
    }
}
