//! `POST /authentication_factors/otp/SMS`: step one of SMS enrolment — a fresh code, sent.
//!
//! The challenge is written first (with the send limits consumed in the same atomic write),
//! then the SMS is sent (`super::send_code`). If the send fails, the challenge is removed
//! (and the counters given back when SNS definitely sent nothing), and the caller gets a 503
//! whose retry works; the stored code hash was harmless meanwhile, since nobody knows its code.

use async_trait::async_trait;

use super::{
    enrolment_phone,
    input::SmsChannel,
    new_sms_code,
    reply::{ApiError, ErrorCode, Reply},
    send_code, sms_counters_for, Caller, Handler, Outgoing, Unsent,
};
use crate::{
    app::Context,
    domain::channel::Channel,
    ports,
    sms::SmsSender,
    store::{ChallengeSlot, Codes, SmsEnrolments, StartOutcome},
};

ports! {
    pub struct Ports {
        enrolments: dyn SmsEnrolments,
        codes: dyn Codes,
        sms: dyn SmsSender,
    }
}

pub struct EnrolSmsOtp;

#[async_trait]
impl Handler for EnrolSmsOtp {
    type Input = SmsChannel;
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        _input: SmsChannel,
    ) -> Result<Reply, ApiError> {
        let phone = enrolment_phone(cx, caller, Channel::Sms)?;
        let programme = &caller.programme;
        let (code, challenge) = new_sms_code(cx, caller, &phone.hash)?;
        let counters = sms_counters_for(cx, caller, phone);
        match ports
            .enrolments
            .start_sms_challenge(&caller.user, &challenge, &counters, caller.now)
            .await?
        {
            StartOutcome::Started => {}
            StartOutcome::AlreadyRegistered => {
                return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered))
            }
            StartOutcome::Limited(full) => {
                return Err(super::sms_refused(
                    cx,
                    caller,
                    &phone.number,
                    &counters,
                    &full,
                ))
            }
        }
        let text = programme.sms_text(code.expose());
        send_code(
            ports.sms,
            cx,
            caller,
            Outgoing {
                to: &phone.number,
                code,
                text,
            },
            Unsent::Challenge(
                ports.codes,
                ChallengeSlot::Enrolment,
                &challenge.challenge_id,
            ),
            &counters,
        )
        .await?;
        Ok(Reply::no_content())
    }
}
