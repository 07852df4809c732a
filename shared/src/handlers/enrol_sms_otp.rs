//! `POST /authentication_factors/otp/SMS`: step one of SMS enrolment — a fresh code, sent.
//!
//! The challenge is written first (with the send limits consumed in the same atomic write),
//! then the SMS is sent (`super::send_code`). If the send fails, the challenge is removed
//! (and the counters given back when SNS definitely sent nothing), and the caller gets a 503
//! whose retry works; the stored code hash was harmless meanwhile, since nobody knows its code.

use super::{enrolment_phone, new_sms_code, send_code, sms_counters_for, Unsent};
use crate::{
    app::App,
    domain::channel::Channel,
    handlers::{
        reply::{ApiError, ErrorCode, Reply},
        Caller,
    },
    store::{ChallengeSlot, StartOutcome},
};

pub async fn enrol_sms_otp(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let phone = enrolment_phone(app, caller, Channel::Sms)?;
    let programme = &caller.programme;
    let (code, challenge) = new_sms_code(app, caller, app.hasher.phone_hash(phone.expose_e164()))?;
    let counters = sms_counters_for(app, caller, phone, &challenge.phone_hash);
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
            return Err(super::sms_refused(app, caller, phone, &counters, &full))
        }
    }
    let text = programme.sms_text(code.expose());
    send_code(
        app,
        caller,
        phone,
        code,
        text,
        Unsent::Challenge(&ChallengeSlot::Enrolment, &challenge.challenge_id),
        &counters,
    )
    .await?;
    Ok(Reply::no_content())
}
