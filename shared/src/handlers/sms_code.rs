//! An SMS code about to be stored and sent (enrolment, step-up and payment alike): the phone
//! it goes to, the code, the challenge that keeps its hash, the send limits it consumes, and
//! what a failed send removes.

use super::{
    new_id,
    reply::{ApiError, ErrorCode},
    Caller,
};
use crate::{
    app::Context,
    domain::{
        channel::Channel,
        ids::ChallengeId,
        otp::VerificationCode,
        payment::PaymentChallenge,
        phone::{HashedPhone, TokenPhone},
        send_limits::LimitCounter,
    },
    metrics::Metric,
    sms::SmsSender,
    store::{ChallengeSlot, Codes, Payments},
};

/// The phone a new factor is enrolled on: the token's, if the programme allows the channel
/// and the number's country. The 409s of both enrolment routes, in the contract's order.
pub(super) fn enrolment_phone<'c>(
    cx: &Context,
    caller: &'c Caller,
    channel: Channel,
) -> Result<&'c HashedPhone, ApiError> {
    if !caller.programme.channel_enabled(channel) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    match &caller.phone {
        TokenPhone::Absent => Err(ApiError::Conflict(ErrorCode::MobileNumberNotAvailable)),
        TokenPhone::Invalid => Err(ApiError::Conflict(ErrorCode::MobileNumberInvalid)),
        TokenPhone::Valid(phone)
            if !caller
                .programme
                .country_allowed(phone.number.allow_list_code(), &cx.policy.default_countries) =>
        {
            Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported))
        }
        TokenPhone::Valid(phone) => Ok(phone),
    }
}

/// A random number for picking a counter shard.
pub(super) fn shard_pick(cx: &Context) -> u32 {
    let mut buf = [0u8; 4];
    let _ = cx.random.fill(&mut buf);
    u32::from_le_bytes(buf)
}

/// An SMS code about to be stored and sent: the code (`123456` in a sandbox, else uniform
/// from the CSPRNG), the challenge that stores its hash (live for `CODE_TTL_SECS`), and the
/// send-limit counters its SMS consumes. What every SMS route stores in its start's atomic
/// write, then sends.
pub(super) struct SmsCode<'a> {
    pub(super) phone: &'a HashedPhone,
    pub(super) code: VerificationCode,
    pub(super) challenge: crate::store::NewChallenge,
    pub(super) counters: Vec<LimitCounter>,
}

impl<'a> SmsCode<'a> {
    pub(super) fn new(
        cx: &Context,
        caller: &Caller,
        phone: &'a HashedPhone,
    ) -> Result<Self, ApiError> {
        use crate::domain::{
            otp::{generate_code, SANDBOX_CODE},
            send_limits::{sms_counters, Destination, Sender},
        };
        let programme = &caller.programme;
        // The allow-list holds whenever an SMS is about to be sent, not only at enrolment:
        // cutting a country stops step-up and payment codes to numbers enrolled there.
        if !programme.country_allowed(phone.number.allow_list_code(), &cx.policy.default_countries)
        {
            return Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported));
        }
        let code = if programme.sandbox {
            VerificationCode::parse(SANDBOX_CODE).map_err(|e| ApiError::Internal(e.into()))?
        } else {
            generate_code(cx.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?
        };
        let challenge_id = ChallengeId::new(new_id(cx)?);
        let challenge = crate::store::NewChallenge {
            code_hash: cx.hasher.code_hash(challenge_id.as_str(), &code),
            challenge_id,
            phone_hash: phone.hash.clone(),
            wrong_code_limit: programme.wrong_code_limit,
            expires_at: caller.now + crate::domain::challenge::CODE_TTL_SECS,
        };
        // Enrolment, step-up and payment codes share the same counters.
        let counters = sms_counters(
            &programme.send_limits,
            &cx.policy.sms_budget,
            &Sender {
                programme_id: &programme.id,
                credential_id: &caller.user.credential_id,
                sandbox: programme.sandbox,
            },
            &Destination {
                phone_hash: phone.hash.as_str(),
                country_code: phone.number.country_code(),
            },
            caller.now,
            shard_pick(cx),
        );
        Ok(Self {
            phone,
            code,
            challenge,
            counters,
        })
    }

    /// The 429 of a code refused by its send limits: `full` are the indices of the full
    /// counters (counted by the limit that was full).
    pub(super) fn refused(&self, cx: &Context, caller: &Caller, full: &[usize]) -> ApiError {
        let hit: Vec<_> = full.iter().filter_map(|&i| self.counters.get(i)).collect();
        tracing::info!(to = %self.phone.number, "SMS send limit reached");
        for counter in &hit {
            cx.metrics.count(
                Metric::SmsRefused,
                &[
                    ("programme", &caller.programme.id),
                    ("limit", counter.kind().name()),
                ],
                caller.now,
            );
        }
        match crate::domain::send_limits::rate_limited(&self.counters, &hit, caller.now) {
            Some(limited) => ApiError::RateLimited(limited),
            None => ApiError::Internal("limited without a full counter".into()),
        }
    }

    /// Sends the stored code, its text written by `text` from the code (a sandbox sends
    /// nothing). If the send fails, what was stored for it is removed (`unsent`), the counters
    /// are given back when SNS definitely sent nothing (an SMS that may have left still
    /// counts), and the caller gets a 503 whose retry works.
    pub(super) async fn send(
        self,
        sms: &dyn SmsSender,
        cx: &Context,
        caller: &Caller,
        text: impl FnOnce(&str) -> String,
        unsent: Unsent<'_>,
    ) -> Result<(), ApiError> {
        use crate::sms::{Delivery, SmsMessage};
        let programme = &caller.programme;
        let phone = &self.phone.number;
        if programme.sandbox {
            tracing::info!(to = %phone, "sandbox programme: challenge stored, no SMS sent");
            return Ok(());
        }
        let message = SmsMessage {
            to: phone.clone(),
            text: text(self.code.expose()),
            code: self.code,
            sender_id: programme.sms_sender_id.clone(),
        };
        let Err(error) = sms.send(&message).await else {
            tracing::info!(to = %phone, "SMS code sent");
            let country = phone.country_code().to_string();
            cx.metrics.count(
                Metric::SmsSent,
                &[("programme", &programme.id), ("country", &country)],
                caller.now,
            );
            return Ok(());
        };
        let refund: &[_] = match error.delivery {
            Delivery::NotSent => &self.counters,
            Delivery::Unknown => &[],
        };
        let delivery = match error.delivery {
            Delivery::NotSent => "not_sent",
            Delivery::Unknown => "unknown",
        };
        tracing::info!(delivery, refunded = !refund.is_empty(), "SMS not sent");
        let id = &self.challenge.challenge_id;
        let abandoned = match unsent {
            Unsent::Challenge(codes, slot) => {
                codes
                    .abandon_challenge(&caller.user, &slot, id, refund)
                    .await
            }
            Unsent::Payment(payments, challenge) => {
                payments
                    .abandon_payment(&caller.user, challenge, id, refund)
                    .await
            }
        };
        if let Err(cleanup) = abandoned {
            tracing::warn!(error = %crate::logging::redacted_chain(&cleanup), "the unsent challenge could not be removed");
        }
        Err(ApiError::Unavailable(error.into()))
    }
}

/// What a failed send leaves behind to remove, besides the code.
pub(super) enum Unsent<'a> {
    /// An enrolment or step-up code: the slot's challenge.
    Challenge(&'a dyn Codes, ChallengeSlot),
    /// A payment challenge, and its hold on the reference.
    Payment(&'a dyn Payments, &'a PaymentChallenge),
}
