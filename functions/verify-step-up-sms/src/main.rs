//! Lambda function for `POST /stepup/challenges/otp/{channel}/verify`: the code steps the session up.

use additional_factors::{handlers::verify_step_up_sms::VerifyStepUpSms, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<VerifyStepUpSms>().await
}
