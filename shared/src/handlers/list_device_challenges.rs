//! `GET /authentication_factors/push/BIOMETRIC/challenges`: what the user's BIOMETRIC device
//! has to answer — the pending step-up and payment challenges pushed to it, newest first, at
//! most 10, each with the signing input the app shows and signs. The app lists on start and
//! when a push arrives (pushes get lost, and a disabled endpoint gets none). No `ACTIVE`
//! BIOMETRIC factor, or nothing pending: `[]`.

use async_trait::async_trait;
use serde_json::json;

use super::{
    input::BiometricChannel,
    reply::{ApiError, Reply},
    Caller, Handler,
};
use crate::{
    app::Context,
    domain::{channel::Channel, device::rfc3339, factor::FactorStatus},
    ports,
    store::{Devices, FactorReads},
};

/// At most this many challenges in one list.
pub const MAX_LISTED: usize = 10;

ports! {
    pub struct Ports {
        factors: dyn FactorReads,
        devices: dyn Devices,
    }
}

pub struct ListDeviceChallenges;

#[async_trait]
impl Handler for ListDeviceChallenges {
    type Input = BiometricChannel;
    type Ports<'a> = Ports<'a>;
    const IS_GET: bool = true;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        caller: &Caller,
        _input: BiometricChannel,
    ) -> Result<Reply, ApiError> {
        let device = ports
            .factors
            .get_factor(&caller.user, Channel::Biometric)
            .await?
            .filter(|f| f.status == FactorStatus::Active)
            .and_then(|f| f.device);
        let challenges = match device {
            Some(device) => {
                ports
                    .devices
                    .device_challenges(
                        &caller.user,
                        &device.key.thumbprint(),
                        MAX_LISTED,
                        caller.now,
                    )
                    .await?
            }
            None => Vec::new(),
        };
        let listed: Vec<_> = challenges
            .iter()
            .filter_map(|c| {
                Some(json!({
                    "id": c.id.as_str(),
                    "purpose": c.purpose()?.as_str(),
                    "signingInput": c.signing_input,
                    "expiresAt": rfc3339(c.expires_at),
                }))
            })
            .collect();
        Ok(Reply::json(200, &json!({ "challenges": listed })))
    }
}
