//! `POST /authentication_factors/otp/SMS`: step one of SMS enrolment — a fresh code, sent.
//!
//! The challenge is written first (with the send limits consumed in the same atomic write),
//! then the SMS is sent. If the send fails, the challenge is removed (and the counters given
//! back when SNS definitely sent nothing), and the caller gets a 503 whose retry works; the
//! stored code hash was harmless meanwhile, since nobody knows its code.

use super::{enrolment_phone, shard_pick};
use crate::{
    app::App,
    domain::{
        challenge::CODE_TTL_SECS,
        channel::Channel,
        limits::{rate_limited, sms_counters, Destination, Sender},
        otp::{generate_code, random_id, VerificationCode, SANDBOX_CODE},
    },
    http::{
        response::{ApiError, ErrorCode, Reply},
        Caller,
    },
    sms::{Delivery, SmsMessage},
    store::{NewChallenge, StartOutcome},
};

pub async fn enrol_sms_otp(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let phone = enrolment_phone(app, caller, Channel::Sms)?;
    let programme = &caller.programme;
    let code = if programme.sandbox {
        VerificationCode::parse(SANDBOX_CODE).map_err(|e| ApiError::Internal(e.into()))?
    } else {
        generate_code(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?
    };
    let challenge_id = random_id(app.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))?;
    let phone_hash = app.hasher.phone_hash(phone.expose_e164());
    let challenge = NewChallenge {
        code_hash: app.hasher.code_hash(&challenge_id, &code),
        challenge_id,
        phone_hash,
        wrong_code_limit: programme.wrong_code_limit,
        expires_at: caller.now + CODE_TTL_SECS,
    };
    let counters = sms_counters(
        &programme.send_limits,
        &app.policy.sms_budget,
        &Sender {
            programme_id: &programme.id,
            credential_id: &caller.user.credential_id,
            sandbox: programme.sandbox,
        },
        &Destination {
            phone_hash: &challenge.phone_hash,
            country_code: phone.country_code(),
        },
        caller.now,
        shard_pick(app),
    );
    match app
        .store
        .start_sms_challenge(&caller.user, &challenge, &counters, caller.now)
        .await?
    {
        StartOutcome::Started => {}
        StartOutcome::AlreadyRegistered => {
            return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered))
        }
        StartOutcome::Limited(full) => {
            let hit: Vec<_> = full.iter().filter_map(|&i| counters.get(i)).collect();
            tracing::info!(to = %phone, "SMS send limit reached");
            return match rate_limited(&counters, &hit, caller.now) {
                Some(limited) => Err(ApiError::RateLimited(limited)),
                None => Err(ApiError::Internal("limited without a full counter".into())),
            };
        }
    }
    if programme.sandbox {
        tracing::info!(to = %phone, "sandbox programme: challenge stored, no SMS sent");
        return Ok(Reply::no_content());
    }
    let message = SmsMessage {
        to: phone.clone(),
        text: programme.sms_text(code.expose()),
        code,
        sender_id: programme.sms_sender_id.clone(),
    };
    if let Err(error) = app.sms.send(&message).await {
        // The counters are given back only when SNS definitely sent nothing: an SMS that may
        // have left (a timeout, an unknown outcome) still counts against every limit.
        let refund: &[_] = match error.delivery {
            Delivery::NotSent => &counters,
            Delivery::Unknown => &[],
        };
        tracing::info!(delivery = ?error.delivery, refunded = !refund.is_empty(), "SMS not sent");
        let abandoned = app
            .store
            .abandon_sms_challenge(&caller.user, &challenge.challenge_id, refund)
            .await;
        if let Err(cleanup) = abandoned {
            tracing::warn!(error = %crate::logging::redacted_chain(&cleanup), "the unsent challenge could not be removed");
        }
        return Err(ApiError::Unavailable(error.into()));
    }
    tracing::info!(to = %phone, "SMS code sent");
    Ok(Reply::no_content())
}
