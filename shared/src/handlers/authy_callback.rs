//! `POST /webhooks/authy`: Twilio Authy's callback when the user answers (or lets expire) an
//! enrolment approval request. No api key or token: Authy's signature instead.
//!
//! Order matters: the body's size is capped before the handler runs; the nonce (Authy's
//! nonce is a Unix timestamp) must be within its window before the body is parsed; the
//! signature is verified (constant time, over at most `MAX_PARAMS` parameters) before
//! anything is read from the store; then the nonce must be unseen (it is remembered in the
//! store, so a replayed callback is refused by every function instance); only then is the
//! request looked up. A valid callback about an unknown request, or one no
//! longer pending, answers 200 and changes nothing. approved → `ACTIVE`, denied →
//! `INACTIVE`, expired → stays `PENDING_VERIFICATION`.

use async_trait::async_trait;
use aws_lc_rs::digest;
use lambda_http::Request;
use serde_json::Value;

use super::{
    reply::{ApiError, Reply},
    settle_payment, settle_step_up, PaymentSettlement, PublicHandler, PushAnswer,
};
use crate::{
    app::{CallbackSignatureKey, Context},
    domain::{channel::Channel, hex::hex},
    events::{Change, EventPublisher},
    ports,
    proof::ProofSigner,
    push::authy_signature,
    store::{Callbacks, Payments, PushEnrolments, PushPurpose, StepUps},
};

/// How far Authy's nonce (a timestamp) may be from our clock, and how long nonces are kept.
pub const NONCE_WINDOW_SECS: i64 = 300;

ports! {
    pub struct Ports {
        key: Option<CallbackSignatureKey>,
        callbacks: dyn Callbacks,
        enrolments: dyn PushEnrolments,
        step_ups: dyn StepUps,
        payments: dyn Payments,
        signer: dyn ProofSigner,
        events: dyn EventPublisher,
    }
}

fn refuse(reason: &'static str) -> ApiError {
    tracing::info!(reason, "Authy callback refused");
    ApiError::Unauthorized
}

pub struct AuthyCallback;

#[async_trait]
impl PublicHandler for AuthyCallback {
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        request: &Request,
        now: i64,
    ) -> Result<Reply, ApiError> {
        let Some(key) = ports.key else {
            return Err(ApiError::NotFound);
        };
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let (Some(nonce), Some(signature)) = (
            header("x-authy-signature-nonce"),
            header("x-authy-signature"),
        ) else {
            return Err(refuse("unsigned"));
        };
        // The nonce's window first: a stale or malformed nonce costs no parse and no MAC.
        match nonce.parse::<i64>() {
            Ok(sent) if (now - sent).abs() <= NONCE_WINDOW_SECS => {}
            _ => return Err(refuse("stale or malformed nonce")),
        }
        // The body is at most the route's cap (checked before the handler runs), and its
        // flattening stops at `authy_signature::MAX_PARAMS`.
        let Ok(body) = serde_json::from_slice::<Value>(request.body().as_ref()) else {
            return Err(refuse("body is not JSON"));
        };
        if !authy_signature::verify(&key.api_key, nonce, "POST", &key.url, &body, signature) {
            return Err(refuse("wrong signature or too many parameters"));
        }
        let nonce_key =
            hex(
                digest::digest(&digest::SHA256, format!("{nonce}|{signature}").as_bytes()).as_ref(),
            );
        if !ports
            .callbacks
            .claim_callback_nonce(&nonce_key, now + 2 * NONCE_WINDOW_SECS, now)
            .await?
        {
            return Err(refuse("replayed"));
        }
        let (Some(uuid), Some(status)) = (
            body.get("uuid").and_then(Value::as_str),
            body.get("status").and_then(Value::as_str),
        ) else {
            tracing::info!("Authy callback without uuid or status: nothing to do");
            return Ok(Reply::ok());
        };
        let approved = match status {
            "approved" => true,
            "denied" => false,
            other => {
                tracing::info!(status = other, "Authy callback: the request stays pending");
                return Ok(Reply::ok());
            }
        };
        let Some(request) = ports.callbacks.find_push_request(uuid).await? else {
            tracing::info!("Authy callback about an unknown request: nothing changed");
            return Ok(Reply::ok());
        };
        let user = request.user;
        match request.purpose {
            // A payment challenge's answer settles it (with a proof when approved).
            PushPurpose::Payment(payment_id) => {
                let settled = match ports.payments.get_payment(&user, &payment_id).await? {
                    Some(challenge) => {
                        let settlement = PaymentSettlement {
                            payments: ports.payments,
                            // Authy serves live programmes only (no sandbox calls it).
                            signer: ports.signer,
                            sandbox: false,
                            events: ports.events,
                        };
                        settle_payment(
                            settlement,
                            cx,
                            &user,
                            &challenge,
                            PushAnswer::Said(approved),
                            now,
                        )
                        .await?
                    }
                    None => false,
                };
                tracing::info!(approved, settled, "Authy payment answer");
            }
            // A step-up challenge's answer settles the challenge; an enrolment's, the factor.
            PushPurpose::StepUp(challenge_id) => {
                let settled = match ports
                    .step_ups
                    .get_push_challenge(&user, &challenge_id)
                    .await?
                {
                    Some(challenge) => {
                        settle_step_up(
                            ports.step_ups,
                            ports.events,
                            &user,
                            &challenge,
                            approved,
                            now,
                        )
                        .await?
                    }
                    None => false,
                };
                tracing::info!(approved, settled, "Authy step-up answer");
            }
            PushPurpose::Enrolment => {
                if ports
                    .enrolments
                    .resolve_push(&user, Some(uuid), approved, now)
                    .await?
                {
                    tracing::info!(approved, "Authy enrolment answered");
                    super::announce(
                        ports.events,
                        &user,
                        Channel::Authy,
                        Change::answer(approved),
                        now,
                    )
                    .await;
                } else {
                    tracing::info!(
                        "Authy callback about a request no longer pending: nothing changed"
                    );
                }
            }
        }
        Ok(Reply::ok())
    }
}
