//! `POST /stepup/challenges/otp/SMS`: send a step-up code to the user's `ACTIVE` SMS factor.
//!
//! The same guarantees as enrolment: the challenge (keyed by the token's session) and every
//! send-limit counter are written in one transaction, conditional on the factor being
//! `ACTIVE` for the token's phone and on the session's last code being at least 15 s old;
//! then the SMS says the code and the programme. No step-up is needed here: this *is* one.

use super::{new_sms_code, send_code, sms_counters_for, Unsent};
use crate::{
    app::App,
    auth::PhoneClaim,
    domain::channel::Channel,
    handlers::reply::{ApiError, ErrorCode, Reply},
    handlers::Caller,
    store::{ChallengeSlot, StepUpStart},
};

pub async fn step_up_sms(app: &App, caller: &Caller) -> Result<Reply, ApiError> {
    let programme = &caller.programme;
    if !programme.channel_enabled(Channel::Sms) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    // The code goes to the token's phone, which must be the one the factor was verified with.
    let PhoneClaim::Valid(phone) = &caller.phone else {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
    };
    let (code, challenge) = new_sms_code(app, caller, app.hasher.phone_hash(phone.expose_e164()))?;
    let counters = sms_counters_for(app, caller, phone, &challenge.phone_hash);
    match app
        .store
        .start_step_up_sms(
            &caller.user,
            &caller.session,
            &challenge,
            &counters,
            caller.now,
        )
        .await?
    {
        StepUpStart::Started => {}
        StepUpStart::NotRegistered => {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered))
        }
        StepUpStart::TooSoon => return Err(ApiError::Conflict(ErrorCode::RetryIn15Sec)),
        StepUpStart::Limited(full) => {
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
        Unsent::Challenge(
            &ChallengeSlot::StepUp(caller.session.clone()),
            &challenge.challenge_id,
        ),
        &counters,
    )
    .await?;
    Ok(Reply::no_content())
}
