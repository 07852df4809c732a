//! `POST /authentication_factors/otp/SMS`: step one of SMS enrolment — a fresh code, sent.
//!
//! The challenge is written first (with the send limits consumed in the same atomic write),
//! then the SMS is sent (`super::SmsCode::send`). If the send fails, the challenge is removed
//! (and the counters given back when SNS definitely sent nothing), and the caller gets a 503
//! whose retry works; the stored code hash was harmless meanwhile, since nobody knows its code.
//! An `idempotency-ref`'s claim is one more item of that same transaction (`claim`).

use async_trait::async_trait;

use super::{
    claim::{ClaimState, Ridden},
    enrolment_phone,
    input::SmsChannel,
    reply::{ApiError, ErrorCode, Reply},
    Caller, Handler, SmsCode, Unsent,
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
    /// The claim rides in step one's transaction; the answer is kept after the send.
    const CLAIM_RIDES: bool = true;

    async fn handle(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        input: SmsChannel,
    ) -> Result<Reply, ApiError> {
        Self::handle_riding(ports, cx, caller, input).await.result
    }

    async fn handle_riding(
        ports: Ports<'_>,
        cx: &Context,
        caller: &Caller,
        _input: SmsChannel,
    ) -> Ridden {
        let mut claim = ClaimState::Unwritten;
        let result = enrol(ports, cx, caller, &mut claim).await;
        Ridden { result, claim }
    }
}

/// Step one; `claim` says what became of the riding claim (written in progress with the
/// challenge, or refused for a live record).
async fn enrol(
    ports: Ports<'_>,
    cx: &Context,
    caller: &Caller,
    claim: &mut ClaimState,
) -> Result<Reply, ApiError> {
    {
        let phone = enrolment_phone(cx, caller, Channel::Sms)?;
        let code = SmsCode::new(cx, caller, phone)?;
        match ports
            .enrolments
            .start_sms_challenge_claiming(
                &caller.user,
                &code.challenge,
                &code.counters,
                caller.claim_in_progress(),
                caller.now,
            )
            .await?
        {
            StartOutcome::Started if caller.claim.is_some() => *claim = ClaimState::InProgress,
            StartOutcome::Started => {}
            StartOutcome::Unclaimed(outcome) => {
                *claim = ClaimState::Refused;
                return caller.claim_refused(outcome);
            }
            StartOutcome::AlreadyRegistered => {
                return Err(ApiError::Conflict(ErrorCode::ChannelAlreadyRegistered))
            }
            StartOutcome::Limited(full) => return Err(code.refused(cx, caller, &full)),
        }
        let unsent = Unsent::Challenge(ports.codes, ChallengeSlot::Enrolment);
        code.send(
            ports.sms,
            cx,
            caller,
            |code| caller.programme.sms_text(code),
            unsent,
        )
        .await?;
        Ok(Reply::no_content())
    }
}
