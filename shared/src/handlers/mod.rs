//! One module per route, named after what it does. Each takes an authenticated, validated
//! request and returns a response or an `ApiError`; the pipeline in `http` did the rest.

pub mod authy_callback;
pub mod enrol_push;
pub mod enrol_sms_otp;
pub mod list_factors;
pub mod simulate_push;
pub mod unlink_push;
pub mod verify_sms_otp;

use crate::{
    domain::{channel::Channel, phone::PhoneNumber},
    http::{
        auth::PhoneClaim,
        response::{ApiError, ErrorCode},
        Caller,
    },
};

/// The phone a new factor is enrolled on: the token's, if the programme allows the channel
/// and the number's country. The 409s of both enrolment routes, in the contract's order.
fn enrolment_phone<'c>(
    app: &crate::app::App,
    caller: &'c Caller,
    channel: Channel,
) -> Result<&'c PhoneNumber, ApiError> {
    if !caller.programme.channel_enabled(channel) {
        return Err(ApiError::Conflict(ErrorCode::ChannelNotSupported));
    }
    match &caller.phone {
        PhoneClaim::Absent => Err(ApiError::Conflict(ErrorCode::MobileNumberNotAvailable)),
        PhoneClaim::Invalid => Err(ApiError::Conflict(ErrorCode::MobileNumberInvalid)),
        PhoneClaim::Valid(phone)
            if !caller
                .programme
                .country_allowed(phone.country_code(), &app.policy.default_countries) =>
        {
            Err(ApiError::Conflict(ErrorCode::MobileCountryNotSupported))
        }
        PhoneClaim::Valid(phone) => Ok(phone),
    }
}

/// A random number for picking a counter shard.
fn shard_pick(app: &crate::app::App) -> u32 {
    let mut buf = [0u8; 4];
    let _ = app.random.fill(&mut buf);
    u32::from_le_bytes(buf)
}
