//! `POST /stepup/challenges/otp/SMS`: send a step-up code to the user's `ACTIVE` SMS factor.
//!
//! The same guarantees as enrolment: the challenge (keyed by the token's session) and every
//! send-limit counter are written in one transaction, conditional on the factor being
//! `ACTIVE` for the token's phone and on the session's last code being at least 15 s old;
//! then the SMS says the code and the programme. No step-up is needed here: this *is* one.

use async_trait::async_trait;

use super::{
    input::SmsChannel,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, SmsCode, Unsent,
};
use crate::{
    app::Context,
    domain::{channel::Channel, phone::TokenPhone},
    ports,
    sms::SmsSender,
    store::{ChallengeSlot, Codes, StepUpStart, StepUps},
};

ports! {
    pub struct Ports {
        step_ups: dyn StepUps,
        codes: dyn Codes,
        sms: dyn SmsSender,
    }
}

pub struct StepUpSms;

#[async_trait]
impl Handler for StepUpSms {
    type Input = SmsChannel;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        _input: SmsChannel,
    ) -> Result<Reply, ApiError> {
        let programme = &caller.programme;
        if !programme.channel_enabled(Channel::Sms) {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
        }
        // The code goes to the token's phone, which must be the one the factor was verified
        // with.
        let TokenPhone::Valid(phone) = &caller.phone else {
            return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered));
        };
        let code = SmsCode::new(cx, caller, phone)?;
        match ports
            .step_ups
            .start_step_up_sms(
                &caller.user,
                &caller.session,
                &code.challenge,
                &code.counters,
                caller.now,
            )
            .await?
        {
            StepUpStart::Started => {}
            StepUpStart::NotRegistered => {
                return Err(ApiError::Conflict(ErrorCode::ChannelNotRegistered))
            }
            StepUpStart::TooSoon => return Err(ApiError::Conflict(ErrorCode::RetryIn15Sec)),
            StepUpStart::Limited(full) => return Err(code.refused(cx, caller, &full)),
        }
        let unsent = Unsent::Challenge(ports.codes, ChallengeSlot::StepUp(caller.session.clone()));
        code.send(
            ports.sms,
            cx,
            caller,
            |code| programme.sms_text(code),
            unsent,
        )
        .await?;
        Ok(Reply::no_content())
    }
}
